//! Job operations: create, read, list, reschedule, pause/resume/run-now, cancel, preview,
//! delete, runs.

use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Created, Scheduler};
use crate::clock::Ts;
use crate::error::CoreError;
use crate::model::{Job, JobId, Run, RunId};
use crate::plugin::JobTypeEntry;
use crate::request;
use crate::store::{Change, Control, JobListQuery, JobReschedule, ListCursor};
use crate::trigger::JobSpec;

/// The most fires a preview lists.
pub const MAX_PREVIEW: usize = 1_000;

impl Scheduler {
    fn not_found(entry: &JobTypeEntry, id: JobId) -> CoreError {
        CoreError::JobNotFound { id: id.to_string(), group: entry.group.to_string() }
    }

    fn changed<T>(entry: &JobTypeEntry, id: JobId, change: Change<T>) -> Result<T, CoreError> {
        match change {
            Change::Done(t) => Ok(t),
            Change::NotFound => Err(Self::not_found(entry, id)),
            Change::Finished(status) => Err(CoreError::JobFinished { id: id.to_string(), status }),
        }
    }

    /// Creates a job from a POST body. With an idempotency key (the `Idempotency-Key` header),
    /// repeating the same request returns the job it created; another request with the same
    /// key is a conflict.
    pub fn job_create(
        &self,
        product: &str,
        job_group: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Created, CoreError> {
        if self.rt.is_stopping() {
            return Err(CoreError::ShuttingDown);
        }
        let entry = self.entry(product, job_group)?;
        crate::limits::check_body(body, self.rt.limits.payload_depth)?;
        let req = request::parse_create(body, self.rt.clock.now())?;
        let key = idempotency_key.map(|k| (k.to_owned(), fingerprint(body)));
        let key = key.or_else(|| req.id.map(|id| (id.to_string(), fingerprint(body))));
        if let Err(refused) = self.rt.quota.admit(self.rt.store.as_ref(), entry.group.product()) {
            // A repeat of a create that succeeded earlier is answered with its job, quota or not.
            let made = match &key {
                Some((k, _)) => self.rt.store.job_by_key(&entry.group, k)?,
                None => None,
            };
            return match made {
                Some(_) => self.rt.create(entry, req, key),
                None => Err(refused),
            };
        }
        let created = self.rt.create(entry, req, key);
        if !matches!(created, Ok(Created::New(_))) {
            self.rt.quota.release(entry.group.product());
        }
        created
    }

    /// One job.
    pub fn job_get(&self, product: &str, job_group: &str, id: JobId) -> Result<Job, CoreError> {
        let entry = self.entry(product, job_group)?;
        self.rt.store.job_get(&entry.group, id)?.ok_or_else(|| Self::not_found(entry, id))
    }

    /// A page of a group's unfinished jobs, soonest first.
    pub fn jobs_list(
        &self,
        product: &str,
        job_group: &str,
        limit: usize,
        after: Option<ListCursor>,
    ) -> Result<Vec<Job>, CoreError> {
        let entry = self.entry(product, job_group)?;
        Ok(self.rt.store.jobs_list(&JobListQuery { group: entry.group.clone(), limit, after })?)
    }

    /// Gives a job new triggers from a PATCH body (any schedule form), keeping its payload,
    /// pause state and policies.
    pub fn job_reschedule(&self, product: &str, job_group: &str, id: JobId, body: &Value) -> Result<Job, CoreError> {
        let entry = self.entry(product, job_group)?;
        crate::limits::check_body(body, self.rt.limits.payload_depth)?;
        for _ in 0..8 {
            let job = self.rt.store.job_get(&entry.group, id)?.ok_or_else(|| Self::not_found(entry, id))?;
            if job.status.is_finished() {
                return Err(CoreError::JobFinished { id: id.to_string(), status: job.status });
            }
            let now = self.rt.clock.now();
            let triggers = request::parse_reschedule(body, now)?;
            crate::limits::check_payload_size(&job.payload, &triggers, self.rt.limits.payload_bytes)?;
            let spec = JobSpec { anchor: request::anchor_of(&triggers, now), triggers, ..(*job.spec).clone() };
            let compiled = spec.compile()?;
            let state = spec.initial_state(&compiled, now);
            let next_due = state.next_due();
            let change = JobReschedule {
                group: entry.group.clone(),
                id,
                spec: Arc::new(spec),
                state,
                version: job.version,
                now,
                replace: None,
            };
            if let Some(change) = self.rt.store.job_reschedule(&change)? {
                let job = Self::changed(entry, id, change)?;
                if let (false, Some(t)) = (job.paused, next_due) {
                    self.rt.wake.due_at(t);
                }
                return Ok(job);
            }
            // The job changed between the read and the write: read it again.
        }
        Err(CoreError::Conflict {
            reason: format!("job `{id}` kept changing while it was being rescheduled; try again"),
        })
    }

    /// Pauses, resumes or runs a job now (run-now also re-queues a finished job).
    pub fn job_control(&self, product: &str, job_group: &str, id: JobId, control: Control) -> Result<Job, CoreError> {
        let entry = self.entry(product, job_group)?;
        if control == Control::RunNow {
            let job = self.rt.store.job_get(&entry.group, id)?.ok_or_else(|| Self::not_found(entry, id))?;
            if job.paused {
                return Err(CoreError::Conflict {
                    reason: format!("job `{id}` is paused: resume it to run it (a paused job does not fire)"),
                });
            }
        }
        let now = self.rt.clock.now();
        let job = Self::changed(entry, id, self.rt.store.job_control(&entry.group, id, control, now)?)?;
        if control != Control::Pause && !job.paused {
            if let Some(t) = job.next_run {
                self.rt.wake.due_at(t);
            }
        }
        Ok(job)
    }

    /// Asks a running run to stop; the node running it delivers the cancellation to the job.
    pub fn run_cancel(&self, product: &str, job_group: &str, run_id: RunId) -> Result<(), CoreError> {
        let entry = self.entry(product, job_group)?;
        let not_found = || CoreError::RunNotFound { id: run_id.to_string(), group: entry.group.to_string() };
        match self.rt.store.run_cancel(&entry.group, run_id)? {
            None => Err(not_found()),
            Some(false) => Err(CoreError::Conflict { reason: format!("run `{run_id}` is not running") }),
            Some(true) => {
                // On this node the cancellation can be delivered at once.
                if let Some(board) = self.rt.board.get() {
                    board.cancel(run_id);
                }
                Ok(())
            }
        }
    }

    /// The job's next `count` fires (at most [`MAX_PREVIEW`]), earliest first; with `after`,
    /// the fires after that instant, as the schedule would make them.
    pub fn job_next(
        &self,
        product: &str,
        job_group: &str,
        id: JobId,
        count: usize,
        after: Option<Ts>,
    ) -> Result<Vec<Ts>, CoreError> {
        let job = self.job_get(product, job_group, id)?;
        let count = count.min(MAX_PREVIEW);
        let compiled = job.spec.compile()?;
        let mut all: Vec<Ts> =
            job.state.extra.map(|e| e.at).into_iter().filter(|at| after.is_none_or(|a| *at > a)).collect();
        for (c, st) in compiled.iter().zip(&job.state.triggers) {
            if !c.trigger().enabled {
                continue;
            }
            let (from, fired) = match (after, st.next) {
                (Some(a), Some(next)) if next <= a => {
                    // Count the fires skipped over, so that `repeatCount` still ends the preview.
                    let passed = if c.trigger().repeat_count.is_some() {
                        1 + c.count_between(next, a, PREVIEW_COUNT_CAP)
                    } else {
                        0
                    };
                    (c.next_after(a, st.fired + passed), st.fired + passed)
                }
                _ => (st.next, st.fired),
            };
            all.extend(c.upcoming(from, fired, count));
        }
        // Fires past the last instant the API reads and writes (9999-12-31) are not shown.
        all.retain(|t| request::check_instant("after", *t).is_ok());
        all.sort();
        all.truncate(count);
        Ok(all)
    }

    /// Deletes a job that has not finished.
    pub fn job_delete(&self, product: &str, job_group: &str, id: JobId) -> Result<(), CoreError> {
        let entry = self.entry(product, job_group)?;
        Self::changed(entry, id, self.rt.store.job_delete(&entry.group, id)?)
    }

    /// A job's runs, newest first.
    pub fn job_runs(&self, product: &str, job_group: &str, id: JobId, limit: usize) -> Result<Vec<Run>, CoreError> {
        let entry = self.entry(product, job_group)?;
        self.rt.store.job_runs(&entry.group, id, limit)?.ok_or_else(|| Self::not_found(entry, id))
    }
}

/// The most fires counted when a preview starts later than the job's next fire.
const PREVIEW_COUNT_CAP: u64 = 1_000_000;

/// A digest of a request body (keys in a fixed order), to tell a repeat from a new request.
pub(super) fn fingerprint(body: &Value) -> String {
    let text = serde_json::to_string(body).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}
