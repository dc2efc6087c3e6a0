//! How a job says it failed, and how that becomes an outcome code at the boundary.

use std::fmt;
use std::time::Duration;

use abi_stable::std_types::{RNone, ROption, RSome, RString};

use crate::abi::{outcome, RunOutcome};

/// A job's failure. The variant steers what the host does next.
#[derive(Debug, Clone, PartialEq)]
pub enum JobError {
    /// The work failed but may succeed later; `after` asks for a specific delay before the retry.
    Retryable {
        /// What went wrong.
        message: String,
        /// How long to wait before retrying, if the job knows better than the backoff policy.
        after: Option<Duration>,
    },
    /// The work failed and retrying will not help.
    Permanent {
        /// What went wrong.
        message: String,
    },
    /// The job stopped because the host asked it to (shutdown, cancel request).
    Cancelled,
}

impl JobError {
    /// A failure that may succeed if retried.
    pub fn retryable(message: impl fmt::Display) -> Self {
        Self::Retryable { message: message.to_string(), after: None }
    }

    /// A failure that may succeed if retried after `after`.
    pub fn retry_after(after: Duration, message: impl fmt::Display) -> Self {
        Self::Retryable { message: message.to_string(), after: Some(after) }
    }

    /// A failure that retrying will not fix.
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self::Permanent { message: message.to_string() }
    }

    pub(crate) fn into_outcome(self) -> RunOutcome {
        let (code, message, after) = match self {
            JobError::Retryable { message, after } => (outcome::RETRYABLE, message, after),
            JobError::Permanent { message } => (outcome::PERMANENT, message, None),
            JobError::Cancelled => (outcome::CANCELLED, "cancelled".to_owned(), None),
        };
        RunOutcome {
            code,
            message: RString::from(message),
            output_json: RNone,
            retry_after_ms: match after {
                Some(d) => RSome(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                None => RNone,
            },
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Retryable { message, .. } => write!(f, "{message}"),
            JobError::Permanent { message } => write!(f, "{message}"),
            JobError::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl std::error::Error for JobError {}

/// Turns any error into a [`JobError`] with `?`: `client.call().retryable()?`.
pub trait ResultExt<T> {
    /// Maps the error to [`JobError::Retryable`].
    fn retryable(self) -> Result<T, JobError>;
    /// Maps the error to [`JobError::Permanent`].
    fn permanent(self) -> Result<T, JobError>;
}

impl<T, E: fmt::Display> ResultExt<T> for Result<T, E> {
    fn retryable(self) -> Result<T, JobError> {
        self.map_err(JobError::retryable)
    }

    fn permanent(self) -> Result<T, JobError> {
        self.map_err(JobError::permanent)
    }
}

pub(crate) fn success(output_json: Option<String>) -> RunOutcome {
    RunOutcome {
        code: outcome::SUCCEEDED,
        message: RString::new(),
        output_json: match output_json {
            Some(s) => RSome(RString::from(s)),
            None => RNone,
        },
        retry_after_ms: ROption::RNone,
    }
}
