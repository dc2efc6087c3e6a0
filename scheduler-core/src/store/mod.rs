//! The engine's only way to data. The engine writes no SQL and keeps no job state of its own:
//! everything it decides goes through one of these methods, so the memory store and the
//! PostgreSQL store behave the same (the conformance suite in `tests/` holds them to it).
//!
//! Methods are named noun-first and take one input struct each.

pub mod memory;
pub mod postgres;

use std::sync::Arc;

use crate::clock::Ts;
use crate::model::{GroupKey, Job, JobId, JobStatus, Run, RunId, RunOutcome, TraceId};
use crate::trigger::{JobSpec, JobState, RetryPolicy};

/// A failure of the store itself (not of the caller's request).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached now; the same call may succeed later.
    #[error("the job store is unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a corrupt store.
    #[error("job store error: {0}")]
    Internal(String),
}

/// The result of a change to one job that may not apply to it.
#[derive(Debug, Clone, PartialEq)]
pub enum Change<T> {
    /// Done; here is the result.
    Done(T),
    /// No such job in that group.
    NotFound,
    /// The job has finished and cannot change.
    Finished(JobStatus),
}

/// A job to insert.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Its id (chosen by the caller).
    pub id: JobId,
    /// Its product and group.
    pub group: GroupKey,
    /// Its triggers and policies.
    pub spec: Arc<JobSpec>,
    /// Its triggers' initial progress (first fires).
    pub state: JobState,
    /// Its payload, a JSON object.
    pub payload: Arc<str>,
    /// Created paused.
    pub paused: bool,
    /// The creation instant.
    pub now: Ts,
    /// Makes the create idempotent within the group.
    pub idempotency: Option<Idempotency>,
}

/// An idempotency key and the fingerprint of the request it was first used with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The client's key (an `Idempotency-Key` header, or the job id it chose).
    pub key: String,
    /// A digest of the request, to tell a repeat from a different request with the same key.
    pub fingerprint: String,
}

/// What an insert did.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    /// A new job.
    Created(Job),
    /// The key was used before with the same request: that job.
    Existing(Job),
    /// The key (or the chosen id) was used before with a different request.
    Conflict(Job),
}

/// A page of a group's unfinished jobs, soonest first.
#[derive(Debug, Clone)]
pub struct JobListQuery {
    /// The group.
    pub group: GroupKey,
    /// At most this many.
    pub limit: usize,
    /// Resume after this position (from a previous page's last job).
    pub after: Option<ListCursor>,
}

/// Work that is due and not started, per product/group (depth and lag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueSummary {
    /// The product/group.
    pub group: GroupKey,
    /// Due jobs not running or paused (counted up to [`DUE_COUNT_CAP`]).
    pub due: u64,
    /// The earliest due instant among them.
    pub oldest: Ts,
}

/// The most due jobs counted per scrape (beyond it, the depth shows the cap).
pub const DUE_COUNT_CAP: u64 = 100_000;

/// How long finished history is kept. `None` keeps that kind forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Runs that succeeded or were skipped, and completed jobs.
    pub succeeded: Option<std::time::Duration>,
    /// Runs that failed, were vetoed, cancelled or abandoned, and jobs that ended so.
    pub failed: Option<std::time::Duration>,
    /// Hourly statistics.
    pub stats: Option<std::time::Duration>,
    /// The most rows of each kind one call removes.
    pub batch: usize,
}

/// What one pruning call removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Runs removed.
    pub runs: u64,
    /// Finished jobs removed.
    pub jobs: u64,
    /// Statistics rows removed.
    pub stats: u64,
    /// Another node was pruning: nothing was done.
    pub busy: bool,
}

impl Pruned {
    /// True when some kind filled its batch (call again).
    pub fn more(&self, batch: usize) -> bool {
        let b = batch as u64;
        self.runs >= b || self.jobs >= b || self.stats >= b
    }
}

/// A page of run history, newest first; every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    /// Only this product.
    pub product: Option<String>,
    /// Only this job group.
    pub job_group: Option<String>,
    /// Only this job's runs.
    pub job: Option<JobId>,
    /// Only these outcomes (empty: any).
    pub outcomes: Vec<RunOutcome>,
    /// Only runs of this node.
    pub node: Option<String>,
    /// Due at or after this instant.
    pub scheduled_from: Option<Ts>,
    /// Due before this instant.
    pub scheduled_to: Option<Ts>,
    /// Started at or after this instant.
    pub started_from: Option<Ts>,
    /// Started before this instant.
    pub started_to: Option<Ts>,
    /// Past this position (from the previous page's last run).
    pub before: Option<RunCursor>,
    /// At most this many.
    pub limit: usize,
}

/// The order of a history page, newest first: by insertion (`seq`), or by the instant a time
/// filter is on (so that a window is read from its own index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOrder {
    /// Newest inserted first.
    Seq,
    /// Latest due first (a `scheduled` range is given).
    Scheduled,
    /// Latest started first (a `started` range is given, no `scheduled` one).
    Started,
}

/// A position in a history page: the run's `seq`, and its instant in the page's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunCursor {
    /// The run's insertion order.
    pub seq: i64,
    /// Its due or start instant, for pages ordered by one.
    pub at: Option<Ts>,
}

impl RunQuery {
    /// The order this query's pages come in.
    pub fn order(&self) -> RunOrder {
        if self.scheduled_from.is_some() || self.scheduled_to.is_some() {
            RunOrder::Scheduled
        } else if self.started_from.is_some() || self.started_to.is_some() {
            RunOrder::Started
        } else {
            RunOrder::Seq
        }
    }

    /// A run's position in this query's order.
    pub fn cursor_of(&self, seq: i64, run: &Run) -> RunCursor {
        match self.order() {
            RunOrder::Seq => RunCursor { seq, at: None },
            RunOrder::Scheduled => RunCursor { seq, at: Some(run.scheduled_for) },
            RunOrder::Started => RunCursor { seq, at: Some(run.started_at.unwrap_or(Ts(i64::MIN))) },
        }
    }

    /// True when `c` lies past the query's `before` position (strictly older in its order).
    pub fn past_before(&self, c: RunCursor) -> bool {
        match self.before {
            None => true,
            Some(b) => match (b.at, c.at) {
                (Some(ba), Some(ca)) => (ca, c.seq) < (ba, b.seq),
                _ => c.seq < b.seq,
            },
        }
    }

    /// True when `run` passes every filter but the position.
    pub fn matches(&self, run: &Run) -> bool {
        let within = |t: Option<Ts>, from: Option<Ts>, to: Option<Ts>| {
            (from.is_none() && to.is_none())
                || t.is_some_and(|t| from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e))
        };
        self.product.as_deref().is_none_or(|p| p == run.group.product())
            && self.job_group.as_deref().is_none_or(|g| g == run.group.job_group())
            && self.job.is_none_or(|j| j == run.job_id)
            && (self.outcomes.is_empty() || self.outcomes.contains(&run.outcome))
            && self.node.as_deref().is_none_or(|n| n == &*run.node)
            && within(Some(run.scheduled_for), self.scheduled_from, self.scheduled_to)
            && within(run.started_at, self.started_from, self.started_to)
    }
}

/// A position in a group's job list: the job's sort instant and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor {
    /// The job's sort instant (its next fire, or the fire in progress).
    pub due: Ts,
    /// The job's id, to order jobs due at the same instant.
    pub id: JobId,
}

/// New triggers for a job.
#[derive(Debug, Clone)]
pub struct JobReschedule {
    /// The job's group.
    pub group: GroupKey,
    /// The job.
    pub id: JobId,
    /// The new spec (the old policies with the new triggers).
    pub spec: Arc<JobSpec>,
    /// The new triggers' progress.
    pub state: JobState,
    /// Apply only if the job is still at this version (optimistic concurrency).
    pub version: i64,
    /// The change instant.
    pub now: Ts,
    /// Replace the payload, pause state and idempotency fingerprint as well (a declared job
    /// whose declaration changed).
    pub replace: Option<Replacement>,
}

/// What a declared job's new declaration replaces besides its schedule.
#[derive(Debug, Clone)]
pub struct Replacement {
    /// The new payload.
    pub payload: Arc<str>,
    /// Paused (declared disabled) or not.
    pub paused: bool,
    /// The fingerprint of the new declaration, kept with the job's idempotency key.
    pub fingerprint: String,
}

/// An unfinished job created under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedJob {
    /// Its group.
    pub group: GroupKey,
    /// The job.
    pub id: JobId,
    /// Its idempotency key.
    pub key: String,
}

/// A change to a job's run control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop firing (a run in progress goes on).
    Pause,
    /// Fire again; missed fires follow their misfire policy.
    Resume,
    /// Fire once now, outside the schedule; revives a finished job.
    RunNow,
}

/// A request for due work.
#[derive(Debug, Clone)]
pub struct ClaimDue {
    /// Claim what is due at or before this instant (stores shared by several nodes use their
    /// own clock instead).
    pub now: Ts,
    /// At most this many (the free worker slots).
    pub limit: usize,
    /// The claiming node, recorded with each run. It must be registered (`node_register`); a
    /// node the store counts as stopped or dead claims nothing.
    pub node: Arc<str>,
    /// The product/groups the claiming node has plugins for: it claims nothing else.
    pub groups: Arc<[GroupKey]>,
    /// Groups whose runs in progress, across every node, may not exceed a number.
    pub max_running: Arc<[(GroupKey, u32)]>,
}

/// What a claim returned.
#[derive(Debug, Default)]
pub struct Claim {
    /// The claimed runs, each now `claimed` and owned by the claiming node.
    pub runs: Vec<Claimed>,
    /// The earliest due instant among the jobs left unclaimed, if the store knows it cheaply.
    pub next_due: Option<Ts>,
    /// The instant the store judged "due" against (its clock), to turn `next_due` into a wait.
    pub store_now: Ts,
    /// What misfire and overlap policies did to the fires of this claim (for metrics).
    pub events: Vec<(GroupKey, crate::trigger::FireEvent)>,
}

/// A node as the store records it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    /// Unique per process start (host name plus a start id).
    pub id: Arc<str>,
    /// The host it runs on.
    pub host: String,
    /// The product/groups it has plugins for.
    pub groups: Vec<GroupKey>,
}

/// A node as listed, with its liveness.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRecord {
    /// The node's id, host and groups.
    pub info: NodeInfo,
    /// When it started.
    pub started_at: Ts,
    /// Its last heartbeat (store clock).
    pub heartbeat_at: Ts,
    /// When it stopped, if it stopped cleanly (or was declared dead).
    pub stopped_at: Option<Ts>,
    /// Not stopped, and its last heartbeat is recent enough (by the store's clock).
    pub live: bool,
}

/// Resolve runs whose node stopped heartbeating.
///
/// The judging node decides nothing unless it has itself heartbeated without a gap longer
/// than `gap` for longer than `dead_after` (on the store's clock), and its last heartbeat is
/// within `gap`: after an outage, a blocked connection or a pause of its own, every other node
/// gets a full `dead_after` to heartbeat again before it can be judged.
#[derive(Debug, Clone)]
pub struct RescueDead {
    /// The judging node (this one).
    pub judge: Arc<str>,
    /// A node is dead once its last heartbeat is older than this (store clock).
    pub dead_after: std::time::Duration,
    /// The longest gap between two of the judge's heartbeats that still counts as connected.
    pub gap: std::time::Duration,
    /// The groups the rescuing node knows, with whether their job type requests recovery.
    /// Runs of other groups are left for a node that knows them.
    pub groups: Vec<(GroupKey, bool)>,
}

/// What a rescue did with one run of a dead node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rescue {
    /// It was claimed and never started: given back (its fire is due again, no attempt spent,
    /// its record gone).
    HandedBack,
    /// It was executing: recorded `abandoned`, and the job runs again (its type requests
    /// recovery).
    Rerun,
    /// It was executing: recorded `abandoned`; the job does not run it again.
    Abandoned,
    /// It was claimed, never started, and asked to stop: recorded `cancelled` instead of given
    /// back.
    Cancelled,
}

impl Rescue {
    /// The metric label and log word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Rescue::HandedBack => "handed_back",
            Rescue::Rerun => "rerun",
            Rescue::Abandoned => "abandoned",
            Rescue::Cancelled => "cancelled",
        }
    }
}

/// One run resolved by a rescue.
#[derive(Debug, Clone, PartialEq)]
pub struct RescuedRun {
    /// The run.
    pub run_id: RunId,
    /// Its job.
    pub job_id: JobId,
    /// The dead node that held it.
    pub node: String,
    /// What became of it.
    pub result: Rescue,
}

/// A claimed run a worker is about to begin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStart {
    /// The claim's token.
    pub token: u64,
    /// The run.
    pub run_id: RunId,
    /// The node (identity) that claimed it.
    pub node: Arc<str>,
}

/// What recording a run's start found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begun {
    /// The run has begun on its node: from now on a rescue treats it as executing.
    Go,
    /// The claim no longer holds (the node was counted dead and the run given back): the
    /// worker must not begin it.
    Lost,
}

/// One claimed run: everything a worker needs to execute it.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The store's proof of the claim, returned with the run's completion.
    pub token: u64,
    /// The run.
    pub run_id: RunId,
    /// Its job.
    pub job_id: JobId,
    /// The job's product and group.
    pub group: GroupKey,
    /// The node that claimed it (its identity at the time of the claim).
    pub node: Arc<str>,
    /// The attempt number.
    pub attempt: u32,
    /// When it was due.
    pub scheduled_for: Ts,
    /// The job's payload.
    pub payload: Arc<str>,
    /// The run's trace id.
    pub trace_id: TraceId,
    /// The trigger that fired it (none for run-now).
    pub trigger: Option<u32>,
    /// Why it runs as it does, when that needs saying (catch-up, run-now).
    pub note: Option<String>,
    /// The job's retry policy (its own, else its job type's).
    pub retry: Option<RetryPolicy>,
}

/// How a run ended, with exactly what each ending carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// The job did its work; its output (JSON), if it returned one.
    Succeeded {
        /// The output.
        output: Option<String>,
    },
    /// The job failed (an error, a panic, a request it refused); the fire runs again, as the
    /// next attempt, at `retry_at` when its retry policy allows.
    Failed {
        /// What failed.
        error: String,
        /// When the next attempt is due, if there is one.
        retry_at: Option<Ts>,
    },
    /// A veto listener stopped it.
    Vetoed {
        /// The listener and its reason.
        reason: String,
    },
    /// It stopped because it was asked to. `requeue` when this node's shutdown asked (not a
    /// client): the fire is due again, as the same attempt.
    Cancelled {
        /// What the job (or the host) said.
        reason: String,
        /// Run the fire again.
        requeue: bool,
    },
}

impl Ending {
    /// The outcome recorded for the run.
    pub fn outcome(&self) -> RunOutcome {
        match self {
            Ending::Succeeded { .. } => RunOutcome::Succeeded,
            Ending::Failed { .. } => RunOutcome::Failed,
            Ending::Vetoed { .. } => RunOutcome::Vetoed,
            Ending::Cancelled { .. } => RunOutcome::Cancelled,
        }
    }

    /// The error, veto reason or cancellation message.
    pub fn error(&self) -> Option<&str> {
        match self {
            Ending::Succeeded { .. } => None,
            Ending::Failed { error, .. } => Some(error),
            Ending::Vetoed { reason } | Ending::Cancelled { reason, .. } => Some(reason),
        }
    }

    /// A successful run's output.
    pub fn output(&self) -> Option<&str> {
        match self {
            Ending::Succeeded { output } => output.as_deref(),
            _ => None,
        }
    }

    /// When the fire's next attempt is due, for a failed run that may be retried.
    pub fn retry_at(&self) -> Option<Ts> {
        match self {
            Ending::Failed { retry_at, .. } => *retry_at,
            _ => None,
        }
    }

    /// True when the fire is due again as the same attempt (cancelled by a stopping node).
    pub fn requeue(&self) -> bool {
        matches!(self, Ending::Cancelled { requeue: true, .. })
    }
}

/// A finished run, as the worker reports it.
#[derive(Debug, Clone)]
pub struct RunFinish {
    /// The claim's token.
    pub token: u64,
    /// The run's product/group has a limit of runs in progress (its end lets another start).
    pub limited: bool,
    /// The run.
    pub run_id: RunId,
    /// Its job.
    pub job_id: JobId,
    /// When the worker started it.
    pub started_at: Ts,
    /// When it ended.
    pub finished_at: Ts,
    /// How it ended.
    pub ending: Ending,
    /// Listeners that failed while asked about this run (they count as allowing it).
    pub listener_error: Option<String>,
}

/// A store of jobs and runs. Calls are synchronous; [`Store::blocking`] says whether they
/// may wait on I/O, in which case async callers must move them off their threads.
pub trait Store: Send + Sync + 'static {
    /// True when calls may block on I/O (a database); false when they only take a lock.
    fn blocking(&self) -> bool;

    /// Whether the store can serve now (reachable, schema current); the reason when not.
    fn readiness(&self) -> Result<(), String> {
        Ok(())
    }

    /// Waits until writes queued without waiting (audit entries) are written; called once the
    /// service has stopped taking requests.
    fn flush(&self) {}

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

    /// Asks a running run to stop: the node running it signals its cancellation. `None` when
    /// there is no such run in the group; `Some(false)` when it is no longer running.
    fn run_cancel(&self, group: &GroupKey, run: RunId) -> Result<Option<bool>, StoreError>;

    /// Runs this node holds that were asked to stop (and not yet told).
    fn runs_cancel_requested(&self, node: &str) -> Result<Vec<RunId>, StoreError>;

    /// The unfinished jobs of `groups` whose idempotency key starts with `prefix`.
    fn jobs_keyed(&self, groups: &[GroupKey], prefix: &str) -> Result<Vec<KeyedJob>, StoreError>;

    /// Removes a job that has not finished; a run in progress is left to finish.
    fn job_delete(&self, group: &GroupKey, id: JobId) -> Result<Change<()>, StoreError>;

    /// A job's runs, newest first; `None` when there is no such job.
    fn job_runs(&self, group: &GroupKey, id: JobId, limit: usize) -> Result<Option<Vec<Run>>, StoreError>;

    /// A page of run history, newest first in the query's order, with each run's position.
    fn runs_query(&self, query: &RunQuery) -> Result<Vec<(RunCursor, Run)>, StoreError>;

    /// One run, by id.
    fn run_get(&self, id: RunId) -> Result<Option<Run>, StoreError>;

    /// Due work not yet started, per group with any, and the store's clock.
    fn due_summary(&self, groups: &[GroupKey]) -> Result<(Vec<DueSummary>, Ts), StoreError>;

    /// Removes one batch of finished runs, finished jobs (except declared ones, which live as
    /// long as their declaration) and statistics older than the retention allows, judged by
    /// the store's clock. Shared stores let one node prune at a time.
    fn prune(&self, retention: &Retention) -> Result<Pruned, StoreError>;

    /// Run statistics of a window, aggregated per period (the window, or each day), group,
    /// outcome, measure and bucket.
    fn stats(&self, query: &crate::stats::StatsQuery) -> Result<Vec<crate::stats::StatRow>, StoreError>;

    /// Appends a change made at `at` to the audit trail (its `seq` is assigned here). Called on
    /// HTTP threads, so it must not wait on I/O: a store that writes remotely queues the entry.
    fn audit_append(&self, at: Ts, change: crate::audit::Change) -> Result<(), StoreError>;

    /// A page of the audit trail, newest first.
    fn audit_list(&self, query: &crate::audit::AuditQuery) -> Result<Vec<crate::audit::AuditEntry>, StoreError>;

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
