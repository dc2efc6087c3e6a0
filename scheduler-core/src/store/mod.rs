//! The engine's only way to data. The engine writes no SQL and keeps no job state of its own:
//! everything it decides goes through one of these methods, so the memory store and the
//! PostgreSQL store behave the same (the conformance suite in `tests/` holds them to it).
//!
//! Methods are named noun-first and take one input struct each.

mod instrumented;
pub mod memory;
pub mod postgres;
mod roles;

pub use instrumented::{Instrumented, Observe, OPERATIONS};
pub use roles::{AuditStore, ClaimStore, HistoryStore, JobStore, NodeStore, Store};

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
    pub run_id: RunId,
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
    pub run_id: RunId,
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
    pub run_id: RunId,
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
