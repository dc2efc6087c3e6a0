//! Declared jobs: make the store hold exactly the jobs a schedules file declares.
//!
//! Each declaration is created under the idempotency key `schedules:<key>` with the digest of
//! its body, so applying a file is idempotent and safe on several nodes at once: the store's
//! unique key lets one node create a job and the others find it. A declaration whose body
//! changed replaces the job's schedule, policies, payload and pause state (its progress starts
//! again from the new schedule); a job declared before and no longer in the file is deleted.
//! Nothing is changed unless every declaration this node can check is valid.

use std::collections::HashSet;
use std::path::Path;

use serde::Serialize;

use super::jobs::fingerprint;
use super::Scheduler;
use crate::engine::create::Prepared;
use crate::error::CoreError;
use crate::model::GroupKey;
use crate::plugin::JobTypeEntry;
use crate::request;
use crate::schedules_file::{self, Declared};
use crate::store::{Change, Inserted, JobReschedule, Replacement};

pub use crate::model::DECLARED_KEY_PREFIX;

/// What applying a schedules file did, by declaration key.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    /// Jobs created.
    pub created: Vec<String>,
    /// Jobs whose declaration changed, updated.
    pub updated: Vec<String>,
    /// Jobs already as declared (or finished: a finished job is left alone).
    pub unchanged: Vec<String>,
    /// Jobs no longer declared, deleted.
    pub removed: Vec<String>,
    /// Declarations for product/groups this node has no plugin for (a node that has it applies
    /// them).
    pub skipped: Vec<String>,
}

/// A checked declaration, ready to apply.
struct Ready<'a> {
    declared: &'a Declared,
    entry: &'a JobTypeEntry,
    prepared: Prepared,
    fingerprint: String,
}

impl Scheduler {
    /// Reads a schedules file and applies it; an unreadable or invalid file changes nothing.
    pub fn apply_schedules_file(&self, path: &Path) -> Result<ApplyReport, CoreError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| CoreError::SchedulesFile { path: shown.clone(), reason: format!("cannot be read: {e}") })?;
        let declared = schedules_file::parse(&text)
            .map_err(|e| CoreError::SchedulesFile { path: shown.clone(), reason: e.to_string() })?;
        self.apply_declared(&declared).map_err(|e| match e {
            CoreError::InvalidField { field, reason } => {
                CoreError::SchedulesFile { path: shown, reason: format!("{field}: {reason}") }
            }
            other => other,
        })
    }

    /// Makes the store hold exactly these declared jobs (in the groups this node hosts).
    pub fn apply_declared(&self, declared: &[Declared]) -> Result<ApplyReport, CoreError> {
        let mut report = ApplyReport::default();
        let mut ready = Vec::with_capacity(declared.len());
        let mut keep: HashSet<(GroupKey, String)> = HashSet::new();
        for (i, d) in declared.iter().enumerate() {
            let Some(entry) = self.rt.registry.lookup(&d.product, &d.group) else {
                report.skipped.push(d.key.clone());
                continue;
            };
            let place = |field: &str| format!("job[{i}] (key `{}`).{field}", d.key);
            let checked = request::parse_create(&d.body, self.rt.clock.now())
                .and_then(|req| self.rt.prepare(entry, req))
                .map_err(|e| match e {
                    CoreError::InvalidField { field, reason } => {
                        CoreError::InvalidField { field: place(&field), reason }
                    }
                    CoreError::PayloadRejected { message } => {
                        CoreError::InvalidField { field: place("payload"), reason: message }
                    }
                    other => other,
                })?;
            keep.insert((entry.group.clone(), format!("{DECLARED_KEY_PREFIX}{}", d.key)));
            ready.push(Ready { declared: d, entry, prepared: checked, fingerprint: fingerprint(&d.body) });
        }
        for r in &ready {
            let key = r.declared.key.clone();
            match self.apply_one(r)? {
                Outcome::Created => report.created.push(key),
                Outcome::Updated => report.updated.push(key),
                Outcome::Unchanged => report.unchanged.push(key),
            }
        }
        for gone in self.rt.store.jobs_keyed(&self.rt.groups, DECLARED_KEY_PREFIX)? {
            if keep.contains(&(gone.group.clone(), gone.key.clone())) {
                continue;
            }
            // Another node applying the same file may have deleted it first: that is fine.
            if let Change::Done(()) = self.rt.store.job_delete(&gone.group, gone.id)? {
                report.removed.push(gone.key.trim_start_matches(DECLARED_KEY_PREFIX).to_owned());
            }
        }
        tracing::info!(
            created = report.created.len(),
            updated = report.updated.len(),
            unchanged = report.unchanged.len(),
            removed = report.removed.len(),
            skipped = report.skipped.len(),
            "schedules applied"
        );
        Ok(report)
    }

    fn apply_one(&self, r: &Ready<'_>) -> Result<Outcome, CoreError> {
        let key = format!("{DECLARED_KEY_PREFIX}{}", r.declared.key);
        // Another node may change the job between our read and write: read again and retry.
        for _ in 0..8 {
            let job = match self.rt.insert_prepared(r.entry, &r.prepared, Some((key.clone(), r.fingerprint.clone())))? {
                Inserted::Created(_) => return Ok(Outcome::Created),
                Inserted::Existing(_) => return Ok(Outcome::Unchanged),
                Inserted::Conflict(job) => job,
            };
            if job.status.is_finished() {
                return Ok(Outcome::Unchanged);
            }
            let change = JobReschedule {
                group: r.entry.group.clone(),
                id: job.id,
                spec: r.prepared.spec.clone(),
                state: r.prepared.state.clone(),
                version: job.version,
                now: self.rt.clock.now(),
                replace: Some(Replacement {
                    payload: r.prepared.payload.clone(),
                    paused: r.prepared.paused,
                    fingerprint: r.fingerprint.clone(),
                }),
            };
            match self.rt.store.job_reschedule(&change)? {
                Some(Change::Done(job)) => {
                    if let (false, Some(t)) = (job.paused, job.next_run) {
                        self.rt.wake.due_at(t);
                    }
                    return Ok(Outcome::Updated);
                }
                Some(Change::Finished(_)) => return Ok(Outcome::Unchanged),
                // Deleted or changed meanwhile: the next insert attempt tells which.
                Some(Change::NotFound) | None => {}
            }
        }
        Err(CoreError::Conflict {
            reason: format!(
                "declared job `{}` kept changing while the schedules were applied; try again",
                r.declared.key
            ),
        })
    }
}

enum Outcome {
    Created,
    Updated,
    Unchanged,
}
