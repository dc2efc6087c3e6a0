//! What can go wrong in the engine, in the caller's words.

use crate::model::JobStatus;
use crate::store::StoreError;

/// An error from the scheduler's operations. The web layer maps each variant to one status.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// No loaded plugin registers a job type for this product and group.
    #[error("no plugin registers product `{product}` with job group `{job_group}`")]
    GroupNotFound {
        /// The product asked for.
        product: String,
        /// The group asked for.
        job_group: String,
    },

    /// No job with this id exists in this product and group.
    #[error("no job `{id}` in {group}")]
    JobNotFound {
        /// The id asked for, as given.
        id: String,
        /// Where it was looked for.
        group: String,
    },

    /// The job has finished, so it can no longer be changed.
    #[error("job `{id}` has already finished ({}); a finished job cannot be rescheduled or deleted", status.as_str())]
    JobFinished {
        /// The job.
        id: String,
        /// Its final status.
        status: JobStatus,
    },

    /// A field of the request is missing or wrong.
    #[error("{field}: {reason}")]
    InvalidField {
        /// The field, as the client wrote it (`triggers[1].cron` for nested ones).
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The job type's own validation refused the payload.
    #[error("{message}")]
    PayloadRejected {
        /// The plugin's message, naming the field.
        message: String,
    },

    /// The request conflicts with the job's state or an earlier request.
    #[error("{reason}")]
    Conflict {
        /// What conflicts.
        reason: String,
    },

    /// No run with this id exists in this product and group.
    #[error("no run `{id}` in {group}")]
    RunNotFound {
        /// The id asked for, as given.
        id: String,
        /// Where it was looked for.
        group: String,
    },

    /// The schedules file cannot be read or declares something wrong; nothing was applied.
    #[error("schedules file {path}: {reason}")]
    SchedulesFile {
        /// The file.
        path: String,
        /// What is wrong, naming the place (`job[2].cron`).
        reason: String,
    },

    /// The payload is larger than the service keeps.
    #[error("payload: {bytes} bytes, more than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },

    /// The product has as many unfinished jobs as its quota allows.
    #[error(
        "product `{product}` has {pending} unfinished jobs, its quota is {limit}: wait for some to finish or delete some"
    )]
    QuotaReached {
        /// The product.
        product: String,
        /// Its unfinished jobs, as last counted.
        pending: u64,
        /// The quota.
        limit: u64,
        /// When to try again.
        retry_after: std::time::Duration,
    },

    /// The service is stopping and takes no new work.
    #[error("the scheduler is shutting down")]
    ShuttingDown,

    /// The job store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::model::InvalidName> for CoreError {
    fn from(e: crate::model::InvalidName) -> CoreError {
        CoreError::InvalidField { field: e.field.to_owned(), reason: e.reason }
    }
}
