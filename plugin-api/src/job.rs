//! What a plugin author implements for a job type, and what a run sees.

use std::time::Duration;

use abi_stable::{sabi_types::RRef, std_types::RStr};
use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Serialize};

use crate::abi::RunContext_TO;
use crate::error::JobError;
use crate::manifest::JobOptions;

/// The result a job returns.
pub type JobResult = Result<JobOutput, JobError>;

/// A job type: the work done when a job of its product and group is due.
///
/// ```
/// use scheduler_plugin_api::prelude::*;
///
/// #[derive(Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// pub struct Request { vm_id: String }
///
/// pub struct BackupJob;
///
/// impl Job for BackupJob {
///     const PRODUCT: &'static str = "vps4";
///     const GROUP: &'static str = "backups";
///     type Request = Request;
///
///     fn execute(&self, request: Request, ctx: &JobContext<'_>) -> JobResult {
///         tracing::info!(vm_id = %request.vm_id, attempt = ctx.attempt(), "backing up");
///         Ok(JobOutput::none())
///     }
/// }
/// ```
pub trait Job: Send + Sync + 'static {
    /// The product this job type serves (`[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`).
    const PRODUCT: &'static str;
    /// The job group within the product (same syntax as the product).
    const GROUP: &'static str;
    /// The request the job receives: the POST body's payload keys, deserialized with serde.
    /// Whether unknown keys are an error is this type's choice (`#[serde(deny_unknown_fields)]`).
    type Request: DeserializeOwned;

    /// The name shown to operators; the type's own name by default.
    fn name() -> &'static str {
        short_type_name::<Self>()
    }

    /// Options the host applies to this job type (recovery, concurrency, retry defaults).
    fn options() -> JobOptions {
        JobOptions::default()
    }

    /// Checks a request beyond its shape, at submit time: an `Err` rejects the POST with 400
    /// and this message. Shape errors (missing or mistyped fields) are reported before this.
    fn check(&self, _request: &Self::Request) -> Result<(), String> {
        Ok(())
    }

    /// Does the work of one run.
    fn execute(&self, request: Self::Request, ctx: &JobContext<'_>) -> JobResult;
}

/// What a successful run returns: nothing, or a JSON document stored with the run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobOutput {
    pub(crate) json: Option<String>,
}

impl JobOutput {
    /// No output.
    pub fn none() -> Self {
        Self { json: None }
    }

    /// Output stored with the run as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        Self { json: serde_json::to_string(value).ok() }
    }
}

/// One run as the job sees it: its ids, its attempt, its due instant, cancellation, and a way to
/// schedule further jobs of the same product and group.
pub struct JobContext<'a> {
    raw: RunContext_TO<'a, RRef<'a, ()>>,
}

impl<'a> JobContext<'a> {
    pub(crate) fn new(raw: RunContext_TO<'a, RRef<'a, ()>>) -> Self {
        Self { raw }
    }

    /// The job's id (a hyphenated UUID).
    pub fn job_id(&self) -> &str {
        rstr(self.raw.job_id())
    }

    /// This run's id (a hyphenated UUID): use it to make side effects idempotent.
    pub fn run_id(&self) -> &str {
        rstr(self.raw.run_id())
    }

    /// The trace id stored with the run; log records of the run carry it.
    pub fn trace_id(&self) -> &str {
        rstr(self.raw.trace_id())
    }

    /// 1 for the first attempt of a fire, then 2, 3, ... for retries.
    pub fn attempt(&self) -> u32 {
        self.raw.attempt()
    }

    /// The instant this run was due.
    pub fn scheduled_for(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.raw.scheduled_for_ms()).unwrap_or_default()
    }

    /// The raw request payload (a JSON object).
    pub fn payload_json(&self) -> &str {
        rstr(self.raw.payload_json())
    }

    /// True once the host asked this run to stop; a long job should check it between steps.
    pub fn is_cancelled(&self) -> bool {
        self.raw.is_cancelled()
    }

    /// Waits for `duration`, returning early with [`JobError::Cancelled`] if the run is cancelled.
    pub fn sleep(&self, duration: Duration) -> Result<(), JobError> {
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        if self.raw.wait_cancelled(ms) {
            Err(JobError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Returns [`JobError::Cancelled`] if the run was asked to stop, for use with `?`.
    pub fn check_cancelled(&self) -> Result<(), JobError> {
        if self.is_cancelled() {
            Err(JobError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Schedules a new job of this job's product and group at `when` with `request` as its
    /// payload (a JSON object). Returns the new job's id.
    pub fn schedule<T: Serialize + ?Sized>(&self, when: DateTime<Utc>, request: &T) -> Result<String, JobError> {
        let payload = serde_json::to_string(request)
            .map_err(|e| JobError::permanent(format!("request for the new job is not JSON: {e}")))?;
        self.raw
            .schedule(when.timestamp_millis(), RStr::from_str(&payload))
            .into_result()
            .map(|id| id.into_string())
            .map_err(|e| JobError::retryable(format!("could not schedule the next job: {e}")))
    }
}

fn rstr<'s>(s: RStr<'s>) -> &'s str {
    s.as_str()
}

/// `std::any::type_name` without its module path.
pub(crate) fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    let start = base.rfind("::").map(|i| i + 2).unwrap_or(0);
    &full[start..]
}
