//! The one create path: a request is validated against its job type ([`Runtime::prepare`])
//! and inserted ([`Runtime::insert_prepared`]); [`Runtime::create`] does both. The REST and
//! every other entry point, follow-up jobs that runs schedule, and declared schedules (which
//! validate every job of the file before inserting any) all go through it.

use std::sync::Arc;

use abi_stable::std_types::RStr;
use serde_json::Value;

use super::runtime::Runtime;
use crate::clock::Ts;
use crate::error::CoreError;
use crate::model::{GroupKey, Job, JobId};
use crate::plugin::JobTypeEntry;
use crate::request::{self, CreateRequest};
use crate::store::{Inserted, NewJob};
use crate::trigger::{ExtraFire, JobSpec, JobState, RetryPolicy};

/// What a create did.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// A new job.
    New(Job),
    /// The idempotency key was used before with the same request: the job it made.
    Existing(Job),
}

impl Created {
    /// The job, new or existing.
    pub fn job(&self) -> &Job {
        match self {
            Created::New(j) | Created::Existing(j) => j,
        }
    }
}

/// A validated job, ready for the store.
pub(crate) struct Prepared {
    pub(crate) spec: Arc<JobSpec>,
    pub(crate) state: JobState,
    pub(crate) payload: Arc<str>,
    pub(crate) paused: bool,
    pub(crate) id: Option<JobId>,
    pub(crate) now: Ts,
}

impl Runtime {
    /// Asks the job type whether it takes this payload.
    fn validate(entry: &JobTypeEntry, payload: &str) -> Result<(), CoreError> {
        entry
            .plugin
            .instance
            .validate(entry.index, RStr::from_str(payload))
            .into_result()
            .map_err(|m| CoreError::PayloadRejected { message: m.into_string() })
    }

    /// The retry policy runs of this job type get when the job names none.
    pub(crate) fn default_retry(entry: &JobTypeEntry) -> Option<RetryPolicy> {
        let attempts = entry.options.max_attempts.unwrap_or(1);
        (attempts > 1).then(|| RetryPolicy {
            attempts: std::num::NonZeroU32::new(attempts),
            backoff: crate::trigger::Backoff {
                base_ms: entry.options.retry_base_ms.unwrap_or(1_000),
                ..crate::trigger::Backoff::default()
            },
        })
    }

    /// Validates a create request against its job type and computes the job's first state.
    pub(crate) fn prepare(&self, entry: &JobTypeEntry, req: CreateRequest) -> Result<Prepared, CoreError> {
        crate::limits::check_payload_size(&req.payload, &req.spec.triggers, self.limits.payload_bytes)?;
        Self::validate(entry, &req.payload)?;
        if req.spec.overlap == crate::trigger::OverlapPolicy::Allow && !entry.options.allow_concurrent {
            return Err(CoreError::InvalidField {
                field: "overlap".into(),
                reason: format!("\"allow\" needs a job type that allows concurrent runs, and {} does not", entry.name),
            });
        }
        let now = self.clock.now();
        let compiled = req.spec.compile()?;
        let mut state = req.spec.initial_state(&compiled, now);
        // Run now, beside a schedule whose first fire is later (a one-time `now` job is due now
        // already).
        if req.run_now && state.next_due().is_none_or(|d| d > now) {
            state.extra = Some(ExtraFire { at: now, attempt: 1, trigger: None, manual: true });
        }
        Ok(Prepared {
            spec: Arc::new(req.spec),
            state,
            payload: Arc::from(req.payload),
            paused: req.paused,
            id: req.id,
            now,
        })
    }

    /// Inserts a prepared job under an optional idempotency key and fingerprint, waking the
    /// engine for a new job's first fire.
    pub(crate) fn insert_prepared(
        &self,
        entry: &JobTypeEntry,
        p: &Prepared,
        key: Option<(String, String)>,
    ) -> Result<Inserted, CoreError> {
        let idempotency = match (key, p.id) {
            (Some((key, fingerprint)), _) => Some(crate::store::Idempotency { key, fingerprint }),
            (None, Some(id)) => Some(crate::store::Idempotency { key: id.to_string(), fingerprint: String::new() }),
            (None, None) => None,
        };
        let inserted = self.store.job_insert(NewJob {
            id: p.id.unwrap_or_default(),
            group: entry.group.clone(),
            spec: p.spec.clone(),
            state: p.state.clone(),
            payload: p.payload.clone(),
            paused: p.paused,
            now: p.now,
            idempotency,
        })?;
        if let Inserted::Created(job) = &inserted {
            if let (false, Some(t)) = (job.paused, p.state.next_due()) {
                self.wake.due_at(t);
            }
        }
        Ok(inserted)
    }

    /// Validates and inserts a job; `fingerprint` makes it idempotent under `key`.
    pub(crate) fn create(
        &self,
        entry: &JobTypeEntry,
        req: CreateRequest,
        key: Option<(String, String)>,
    ) -> Result<Created, CoreError> {
        let p = self.prepare(entry, req)?;
        let shown_key = key.as_ref().map(|(k, _)| k.chars().take(200).collect::<String>());
        match self.insert_prepared(entry, &p, key)? {
            Inserted::Created(job) => Ok(Created::New(job)),
            Inserted::Existing(job) => Ok(Created::Existing(job)),
            Inserted::Conflict(job) => Err(CoreError::Conflict {
                reason: format!(
                    "job `{}` was created under the key `{}` with a different request; an idempotency key (or job id) \
                     stands for one request",
                    job.id,
                    shown_key.unwrap_or_default()
                ),
            }),
        }
    }

    /// A job scheduled by a running job through its context.
    pub(crate) fn create_follow_up(&self, group: &GroupKey, when_ms: i64, payload: &str) -> Result<Job, CoreError> {
        let entry = self.registry.get(group).ok_or_else(|| CoreError::GroupNotFound {
            product: group.product().to_owned(),
            job_group: group.job_group().to_owned(),
        })?;
        let value: Value = crate::json::parse(payload.as_bytes())
            .map_err(|e| CoreError::InvalidField { field: "payload".into(), reason: e.to_string() })?;
        if !value.is_object() {
            return Err(CoreError::InvalidField { field: "payload".into(), reason: "must be a JSON object".into() });
        }
        let when = Ts::from_millis(when_ms);
        request::check_instant("when", when)?;
        // Also refuses a NUL in any string or key.
        crate::limits::check_body(&value, self.limits.payload_depth)?;
        let created = self.create(entry, CreateRequest::once(when, payload), None)?;
        Ok(created.job().clone())
    }
}
