//! The vps4 backups job of the reference service, as a plugin.
//!
//! - Job `Vps4BackupJob` for product `vps4`, group `backups`: receives `{ "vmId": <uuid> }`,
//!   logs its work and returns `{ "vmId", "snapshot" }` as the run's output. With the optional
//!   `scheduleNextInSeconds` it schedules the next backup of the same VM that many seconds after
//!   this run was due, through its context (as the reference's backup job does).
//! - Listener `Vps4BackupTriggerListener`: vetoes a run whose `vmId` is the nil UUID
//!   (`00000000-0000-0000-0000-000000000000`): no VM has it, so there is nothing to back up.
//!   Every other run is allowed. Tests drive the veto path with that id.

use chrono::Duration;
use scheduler_plugin_api::prelude::*;
use uuid::Uuid;

/// The request: the POST body's payload keys.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupRequest {
    /// The VM to back up.
    pub vm_id: Uuid,
    /// When set, the job schedules the next backup of this VM this many seconds after this
    /// run was due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_next_in_seconds: Option<u32>,
}

/// Backs up one VM.
#[derive(Default)]
pub struct Vps4BackupJob;

impl Job for Vps4BackupJob {
    const PRODUCT: &'static str = "vps4";
    const GROUP: &'static str = "backups";
    type Request = BackupRequest;

    fn check(&self, request: &BackupRequest) -> Result<(), String> {
        match request.schedule_next_in_seconds {
            Some(0) => Err("scheduleNextInSeconds: must be at least 1".to_owned()),
            _ => Ok(()),
        }
    }

    fn execute(&self, request: BackupRequest, ctx: &JobContext<'_>) -> JobResult {
        tracing::info!(vm_id = %request.vm_id, attempt = ctx.attempt(), "*********** doing work ***********");
        let snapshot = format!("backup-{}-{}", request.vm_id, ctx.run_id());
        let mut next_job = None;
        if let Some(seconds) = request.schedule_next_in_seconds {
            let when = ctx.scheduled_for() + Duration::seconds(i64::from(seconds));
            let id = ctx.schedule(when, &request)?;
            tracing::info!(next_job = %id, %when, "scheduled the next backup");
            next_job = Some(id);
        }
        Ok(JobOutput::json(&serde_json::json!({
            "vmId": request.vm_id,
            "snapshot": snapshot,
            "nextJobId": next_job,
        })))
    }
}

/// Vetoes backups of the nil VM id; allows everything else.
#[derive(Default)]
pub struct Vps4BackupTriggerListener;

impl VetoListener for Vps4BackupTriggerListener {
    const PRODUCT: &'static str = "vps4";
    const GROUP: &'static str = "backups";

    fn veto(&self, ctx: &VetoContext<'_>) -> Verdict {
        match ctx.request::<BackupRequest>() {
            Ok(r) if r.vm_id.is_nil() => {
                tracing::info!(job = ctx.job_id(), "vetoing backup of the nil VM id");
                Verdict::Veto("no VM has the nil id 00000000-0000-0000-0000-000000000000".to_owned())
            }
            _ => Verdict::Allow,
        }
    }
}

export_plugin! {
    jobs: [Vps4BackupJob],
    listeners: [Vps4BackupTriggerListener],
}

#[cfg(test)]
mod tests;
