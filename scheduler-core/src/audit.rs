//! The audit trail: every change made through the API (who, what, when), kept in the same
//! store as the jobs and read newest first.

use crate::clock::Ts;

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A job was created.
    Create,
    /// A job's schedule was replaced.
    Reschedule,
    /// A job was deleted.
    Delete,
    /// A job was run now.
    Run,
    /// A job was paused.
    Pause,
    /// A job was resumed.
    Resume,
    /// A run was asked to stop.
    Cancel,
    /// The schedules file was applied again.
    Reload,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 8] = [
        Action::Create,
        Action::Reschedule,
        Action::Delete,
        Action::Run,
        Action::Pause,
        Action::Resume,
        Action::Cancel,
        Action::Reload,
    ];

    /// Its name in the trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Reschedule => "reschedule",
            Action::Delete => "delete",
            Action::Run => "run",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Cancel => "cancel",
            Action::Reload => "reload",
        }
    }

    /// The action of a name in the trail.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// A change made through the API, as the route that made it describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The token's or certificate subject's name (`anonymous` without authentication).
    pub who: String,
    /// What it did.
    pub action: Action,
    /// The request's HTTP method.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// The response status.
    pub status: u16,
    /// The product changed, if any.
    pub product: Option<String>,
    /// The job group changed, if any.
    pub job_group: Option<String>,
    /// The job or run id acted on, if any.
    pub target: Option<String>,
}

/// A change as the trail keeps it: numbered and stamped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the trail (assigned by the store; larger is newer).
    pub seq: i64,
    /// When the change was recorded (the scheduler's clock).
    pub at: Ts,
    pub change: Change,
}

/// A page of the trail.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only entries older than this `seq`.
    pub before: Option<i64>,
    /// Only this caller's.
    pub who: Option<String>,
    /// Only this product's.
    pub product: Option<String>,
    /// At most this many.
    pub limit: usize,
}

impl AuditQuery {
    /// Whether `e` is on this page's side of the filters (not the limit).
    pub fn matches(&self, e: &AuditEntry) -> bool {
        self.before.is_none_or(|b| e.seq < b)
            && self.who.as_ref().is_none_or(|w| *w == e.change.who)
            && self.product.as_ref().is_none_or(|p| e.change.product.as_ref() == Some(p))
    }
}

#[cfg(test)]
mod tests {
    use super::Action;

    #[test]
    fn every_action_is_named_both_ways() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("launch"), None);
    }
}
