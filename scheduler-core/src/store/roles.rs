//! The store seam, by role. A store implements each role; [`Store`] is all of them plus what
//! the service asks of the store as a whole. Callers name the role they use
//! (`use crate::store::ClaimStore`), and `Instrumented` wraps any store to count its calls.

use crate::clock::Ts;
use crate::model::{GroupKey, Job, JobId, Run, RunId};

use super::*;

/// Jobs: create, read, change and delete them.
pub trait JobStore: Send + Sync + 'static {
    /// Inserts one job (or finds the one its idempotency key already made).
    fn job_insert(&self, new: NewJob) -> Result<Inserted, StoreError>;

    /// Inserts many jobs in one go (the bulk path); returns how many were inserted.
    fn jobs_insert_many(&self, new: Vec<NewJob>) -> Result<usize, StoreError>;

    /// One job of a group.
    fn job_get(&self, group: &GroupKey, id: JobId) -> Result<Option<Job>, StoreError>;

    /// The job a create with this idempotency key (or client id) made in a group, if any.
    fn job_by_key(&self, group: &GroupKey, key: &str) -> Result<Option<Job>, StoreError>;

    /// A page of a group's unfinished jobs (scheduled, running, paused), soonest first.
    fn jobs_list(&self, query: &JobListQuery) -> Result<Vec<Job>, StoreError>;

    /// How many unfinished jobs a product has, over all its groups (the quota's count).
    fn jobs_pending(&self, product: &str) -> Result<u64, StoreError>;

    /// Gives a job new triggers, keeping its payload and pause state. A running job keeps
    /// running and fires on the new schedule after the run ends. `Ok(None)` when the job's
    /// version moved on (reread and try again).
    fn job_reschedule(&self, change: &JobReschedule) -> Result<Option<Change<Job>>, StoreError>;

    /// Pauses, resumes or fires a job now.
    fn job_control(&self, group: &GroupKey, id: JobId, control: Control, now: Ts) -> Result<Change<Job>, StoreError>;

    /// Removes a job that has not finished; a run in progress is left to finish.
    fn job_delete(&self, group: &GroupKey, id: JobId) -> Result<Change<()>, StoreError>;

    /// The unfinished jobs of `groups` whose idempotency key starts with `prefix`.
    fn jobs_keyed(&self, groups: &[GroupKey], prefix: &str) -> Result<Vec<KeyedJob>, StoreError>;

    /// Due work not yet started, per group with any, and the store's clock.
    fn due_summary(&self, groups: &[GroupKey]) -> Result<(Vec<DueSummary>, Ts), StoreError>;
}

/// Runs from claim to finish: what the engine of each node calls.
pub trait ClaimStore: Send + Sync + 'static {
    /// Claims due runs, earliest first, marking each job running so it cannot run twice. The
    /// runs are `claimed`: none has started.
    fn runs_claim_due(&self, claim: &ClaimDue) -> Result<Claim, StoreError>;

    /// Records that workers begin these claimed runs at `at`, before any plugin code sees
    /// them, so that from then on a rescue treats them as executing; one answer per run in
    /// order. A run whose claim no longer holds is `Lost`. The run's own record may still read
    /// `claimed` until [`Store::runs_started`] (or its finish) is written.
    fn runs_start(&self, runs: &[RunStart], at: Ts) -> Result<Vec<Begun>, StoreError>;

    /// Writes begun runs' records (`running`, with their start): bookkeeping that may trail the
    /// start, and may be skipped for runs whose finish is written with or before it. Runs no
    /// longer `claimed` are left alone.
    fn runs_started(&self, runs: &[(RunId, Ts)]) -> Result<(), StoreError>;

    /// Records finished runs and moves their jobs on (finished, or scheduled again).
    /// A completion whose claim no longer holds is ignored and logged. Returns the earliest
    /// next fire among the jobs the batch made claimable again (a recurring fire, a retry), so
    /// the engine can wake for it.
    fn runs_finish(&self, batch: &[RunFinish]) -> Result<Option<Ts>, StoreError>;

    /// Gives back claimed runs that never started: their run records disappear and their
    /// jobs are due again as before. A run asked to stop while it waited ends `cancelled`
    /// instead. Runs that started are left alone.
    fn runs_release(&self, runs: &[Claimed]) -> Result<(), StoreError>;

    /// Asks a running run to stop: the node running it signals its cancellation. `None` when
    /// there is no such run in the group; `Some(false)` when it is no longer running.
    fn run_cancel(&self, group: &GroupKey, run: RunId) -> Result<Option<bool>, StoreError>;

    /// Runs this node holds that were asked to stop (and not yet told).
    fn runs_cancel_requested(&self, node: &str) -> Result<Vec<RunId>, StoreError>;
}

/// What happened: runs, statistics, and pruning them.
pub trait HistoryStore: Send + Sync + 'static {
    /// A job's runs, newest first; `None` when there is no such job.
    fn job_runs(&self, group: &GroupKey, id: JobId, limit: usize) -> Result<Option<Vec<Run>>, StoreError>;

    /// A page of run history, newest first in the query's order, with each run's position.
    fn runs_query(&self, query: &RunQuery) -> Result<Vec<(RunCursor, Run)>, StoreError>;

    /// One run, by id.
    fn run_get(&self, id: RunId) -> Result<Option<Run>, StoreError>;

    /// Run statistics of a window, aggregated per period (the window, or each day), group,
    /// outcome, measure and bucket.
    fn stats(&self, query: &crate::stats::StatsQuery) -> Result<Vec<crate::stats::StatRow>, StoreError>;

    /// Removes one batch of finished runs, finished jobs (except declared ones, which live as
    /// long as their declaration) and statistics older than the retention allows, judged by
    /// the store's clock. Shared stores let one node prune at a time.
    fn prune(&self, retention: &Retention) -> Result<Pruned, StoreError>;
}

/// The audit trail of changes made through the API.
pub trait AuditStore: Send + Sync + 'static {
    /// Appends a change made at `at` to the audit trail (its `seq` is assigned here). Called on
    /// HTTP threads, so it must not wait on I/O: a store that writes remotely queues the entry.
    fn audit_append(&self, at: Ts, change: crate::audit::Change) -> Result<(), StoreError>;

    /// A page of the audit trail, newest first.
    fn audit_list(&self, query: &crate::audit::AuditQuery) -> Result<Vec<crate::audit::AuditEntry>, StoreError>;
}

/// The nodes sharing the store, and the runs of the dead ones.
pub trait NodeStore: Send + Sync + 'static {
    /// Records this node as live (at start).
    fn node_register(&self, node: &NodeInfo) -> Result<(), StoreError>;

    /// Refreshes this node's heartbeat on the store's clock. A heartbeat that comes more than
    /// `gap` after the previous one starts the node's connected time again. `Ok(false)` when
    /// the store no longer counts the node as live (it was declared dead or stopped).
    fn node_heartbeat(&self, node: &str, gap: std::time::Duration) -> Result<bool, StoreError>;

    /// Records that this node stopped cleanly (the last thing a stopping node does).
    fn node_stop(&self, node: &str) -> Result<(), StoreError>;

    /// The nodes the store knows, live or recently stopped; a node is live when it has not
    /// stopped and heartbeated within `dead_after`.
    fn nodes_list(&self, dead_after: std::time::Duration) -> Result<Vec<NodeRecord>, StoreError>;

    /// Resolves runs held by dead nodes (see [`RescueDead`] for when a node may judge): a
    /// claimed run is given back as if released; an executing run becomes `abandoned`, and its
    /// job runs again when its type requests recovery, else it is finished as failed.
    fn runs_rescue(&self, rescue: &RescueDead) -> Result<Vec<RescuedRun>, StoreError>;
}

/// A store of jobs and runs: every role. Calls are synchronous; [`Store::blocking`] says whether
/// they may wait on I/O, in which case async callers must move them off their threads.
pub trait Store: JobStore + ClaimStore + HistoryStore + AuditStore + NodeStore {
    /// True when calls may block on I/O (a database); false when they only take a lock.
    fn blocking(&self) -> bool;

    /// Whether the store can serve now (reachable, schema current); the reason when not.
    fn readiness(&self) -> Result<(), String> {
        Ok(())
    }

    /// Waits until writes queued without waiting (audit entries) are written; called once the
    /// service has stopped taking requests.
    fn flush(&self) {}
}
