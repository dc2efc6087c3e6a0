//! The audit trail: every change made through the API (who, what, when), kept in the same
//! store as the jobs and read newest first.

use crate::clock::Ts;

/// One change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the trail (assigned by the store; larger is newer).
    pub seq: i64,
    /// When the change was made (stamped by the scheduler when recorded).
    pub at: Ts,
    /// The token's or certificate subject's name (`anonymous` without authentication).
    pub who: String,
    /// `create`, `reschedule`, `delete`, `run`, `pause`, `resume`, `cancel` or `reload`.
    pub action: String,
    /// The HTTP method and path of the request.
    pub method: String,
    /// The request path.
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
            && self.who.as_ref().is_none_or(|w| *w == e.who)
            && self.product.as_ref().is_none_or(|p| e.product.as_ref() == Some(p))
    }
}
