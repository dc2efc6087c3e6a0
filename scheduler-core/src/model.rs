//! The scheduler's nouns: groups, jobs, runs, and their states.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use uuid::Uuid;

use crate::clock::Ts;
pub use crate::trigger::{JobSpec, JobState};

/// The idempotency-key prefix of jobs declared in a schedules file: they are the file's, and
/// retention leaves them alone.
pub const DECLARED_KEY_PREFIX: &str = "schedules:";

/// A product or job group name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidName {
    pub field: &'static str,
    pub reason: String,
}

/// A product or job group name: `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`.
pub fn check_name(field: &'static str, value: &str) -> Result<(), InvalidName> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.as_bytes()[0].is_ascii_alphanumeric()
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(InvalidName {
            field,
            reason: format!(
                "`{}` is not a valid name: use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit",
                value.chars().take(80).collect::<String>()
            ),
        })
    }
}

/// A product and job group: the key under which a plugin registers a job type.
/// Cheap to clone (shared).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey(Arc<(String, String)>);

impl GroupKey {
    /// A key from checked names.
    pub fn new(product: &str, job_group: &str) -> Result<GroupKey, InvalidName> {
        check_name("product", product)?;
        check_name("jobGroup", job_group)?;
        Ok(GroupKey(Arc::new((product.to_owned(), job_group.to_owned()))))
    }

    /// The product.
    pub fn product(&self) -> &str {
        &self.0 .0
    }

    /// The job group.
    pub fn job_group(&self) -> &str {
        &self.0 .1
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.product(), self.job_group())
    }
}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupKey({self})")
    }
}

/// A UUID version 7 (time-ordered) from the wall clock and a fast thread-local generator.
///
/// `Uuid::now_v7` draws its random bits from the operating system on every call (a
/// `getrandom` system call) behind a global lock; ids are identifiers, not secrets, so a
/// per-thread generator is enough and much cheaper on the run path.
pub fn new_v7() -> Uuid {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let mut random = [0u8; 10];
    fastrand::fill(&mut random);
    uuid::Builder::from_unix_timestamp_millis(ms, &random).into_uuid()
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id (UUID version 7).
            pub fn new() -> Self {
                Self(new_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A job's id.
    JobId
);
uuid_id!(
    /// A run's id.
    RunId
);

/// A run's trace id: 16 random bytes, written as 32 lowercase hex digits (W3C trace-context).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct TraceId(pub u128);

impl TraceId {
    /// A new random trace id (never zero, which trace-context reserves).
    pub fn new() -> TraceId {
        TraceId(fastrand::u128(1..))
    }

    /// Parses 32 hex digits.
    pub fn parse(s: &str) -> Option<TraceId> {
        if s.len() != 32 {
            return None;
        }
        u128::from_str_radix(s, 16).ok().filter(|v| *v != 0).map(TraceId)
    }

    /// Writes the 32 hex digits into `buf` and returns them.
    pub fn encode<'b>(&self, buf: &'b mut [u8; 32]) -> &'b str {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, b) in buf.iter_mut().enumerate() {
            let nibble = (self.0 >> (124 - 4 * i)) & 0xf;
            *b = HEX[nibble as usize];
        }
        // Only ASCII hex digits were written.
        std::str::from_utf8(buf).unwrap_or_default()
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// What a job is doing, or how it ended. Whether it is paused is another matter (the
/// operator's switch, [`Job::paused`]): a paused job may still have a run in progress, and the
/// API's `paused` status is a scheduled job that is paused ([`Job::status_name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Waiting for its next fire (or, paused, for a resume).
    Scheduled,
    /// A run is in progress.
    Running,
    /// Finished: its last run succeeded and nothing more is scheduled.
    Completed,
    /// Finished: its last run failed and nothing more is scheduled.
    Failed,
    /// Finished: its last fire was vetoed and nothing more is scheduled.
    Vetoed,
    /// Finished: its last run was cancelled through the API and nothing more is scheduled.
    Cancelled,
}

impl JobStatus {
    /// The API's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Scheduled => "scheduled",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Vetoed => "vetoed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// True once nothing more will run.
    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed | JobStatus::Vetoed | JobStatus::Cancelled)
    }
}

impl Job {
    /// The status the API shows: `paused` for a scheduled job that is paused, else the
    /// status's name.
    pub fn status_name(&self) -> &'static str {
        match self.status {
            JobStatus::Scheduled if self.paused => "paused",
            s => s.as_str(),
        }
    }
}

/// A job as the stores return it.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// Its product and group.
    pub group: GroupKey,
    /// Its triggers and policies.
    pub spec: Arc<JobSpec>,
    /// Its triggers' progress.
    pub state: JobState,
    /// The request payload: a JSON object, without the service's own keys.
    pub payload: Arc<str>,
    /// Its state.
    pub status: JobStatus,
    /// Paused (also while a run that started before the pause is still running).
    pub paused: bool,
    /// Its next fire, if one is pending.
    pub next_run: Option<Ts>,
    /// Its position in its group's job list (its next fire, or the fire in progress).
    pub sort_due: Ts,
    /// When it was created.
    pub created_at: Ts,
    /// When it last changed.
    pub updated_at: Ts,
    /// Bumped on every change (optimistic concurrency).
    pub version: i64,
}

impl Job {
    /// The instant shown as `when`.
    pub fn when(&self) -> Ts {
        self.spec.anchor
    }
}

/// How a run ended (or that it has not yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunOutcome {
    /// Claimed by a node and waiting for one of its workers: the job has not been called. A
    /// node that dies or stops gives such runs back (the fire is due again, no attempt spent).
    Claimed,
    /// Executing: a worker began it (asked the veto listeners, called the job).
    Running,
    /// The job did its work.
    Succeeded,
    /// The job returned an error or panicked.
    Failed,
    /// A veto listener stopped it.
    Vetoed,
    /// It stopped because it was asked to.
    Cancelled,
    /// Its node died and the job type did not ask to be recovered.
    Abandoned,
    /// The fire did not run: a misfire or overlap policy skipped it (the reason is its error).
    Skipped,
}

impl RunOutcome {
    /// Every outcome, in declaration order (`index` is the position here).
    pub const ALL: [RunOutcome; 8] = [
        RunOutcome::Claimed,
        RunOutcome::Running,
        RunOutcome::Succeeded,
        RunOutcome::Failed,
        RunOutcome::Vetoed,
        RunOutcome::Cancelled,
        RunOutcome::Abandoned,
        RunOutcome::Skipped,
    ];

    /// Its position in `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// True while the run holds its job: claimed or executing.
    pub fn in_progress(self) -> bool {
        matches!(self, RunOutcome::Claimed | RunOutcome::Running)
    }

    /// The API's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Claimed => "claimed",
            RunOutcome::Running => "running",
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::Vetoed => "vetoed",
            RunOutcome::Cancelled => "cancelled",
            RunOutcome::Abandoned => "abandoned",
            RunOutcome::Skipped => "skipped",
        }
    }

    /// Parses the API's name.
    pub fn parse(s: &str) -> Option<RunOutcome> {
        Some(match s {
            "claimed" => RunOutcome::Claimed,
            "running" => RunOutcome::Running,
            "succeeded" => RunOutcome::Succeeded,
            "failed" => RunOutcome::Failed,
            "vetoed" => RunOutcome::Vetoed,
            "cancelled" => RunOutcome::Cancelled,
            "abandoned" => RunOutcome::Abandoned,
            "skipped" => RunOutcome::Skipped,
            _ => return None,
        })
    }
}

/// One execution of a job.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// Its id.
    pub id: RunId,
    /// The job it belongs to.
    pub job_id: JobId,
    /// The job's product and group.
    pub group: GroupKey,
    /// 1 for the first attempt of a fire.
    pub attempt: u32,
    /// When it was due.
    pub scheduled_for: Ts,
    /// When a worker began it (none while it is only claimed).
    pub started_at: Option<Ts>,
    /// When it finished.
    pub finished_at: Option<Ts>,
    /// The node that ran it.
    pub node: Arc<str>,
    /// How it ended.
    pub outcome: RunOutcome,
    /// The error, for failed, cancelled and vetoed runs (the veto reason).
    pub error: Option<String>,
    pub trace_id: TraceId,
    /// A successful run's JSON output, if the job returned one.
    pub output: Option<String>,
    /// Veto listeners that failed while being asked about this run (treated as allow).
    pub listener_error: Option<String>,
    /// The trigger that fired it (its index in the job's triggers); none for run-now.
    pub trigger: Option<u32>,
    /// Why it ran as it did (a catch-up for missed fires, a run-now request), when that needs saying.
    pub note: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::RunOutcome;

    #[test]
    fn every_outcome_is_listed_at_its_index_and_named_both_ways() {
        for (i, o) in RunOutcome::ALL.iter().enumerate() {
            assert_eq!(o.index(), i);
            assert_eq!(RunOutcome::parse(o.as_str()), Some(*o));
        }
    }
}
