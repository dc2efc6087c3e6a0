//! The engine's only way to data. The engine writes no SQL and keeps no job state of its own:
//! everything it decides goes through one of these methods, so the memory store and the
//! PostgreSQL store behave the same (the conformance suite in `tests/` holds them to it).
//!
//! Methods are named noun-first and take one input struct each.

pub mod memory;
pub mod postgres;

use std::sync::Arc;

use crate::clock::Ts;
use crate::model::{GroupKey, Job, JobId, JobStatus, Run, RunId, RunOutcome, Schedule, TraceId};

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
    /// When it fires.
    pub schedule: Schedule,
    /// Its payload, a JSON object.
    pub payload: Arc<str>,
    /// Created paused.
    pub paused: bool,
    /// The creation instant.
    pub now: Ts,
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

/// A position in a group's job list: the job's sort instant and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor {
    /// The job's sort instant (its next fire, or the fire in progress).
    pub due: Ts,
    /// The job's id, to order jobs due at the same instant.
    pub id: JobId,
}

/// A new `when` for a job.
#[derive(Debug, Clone)]
pub struct JobReschedule {
    /// The job's group.
    pub group: GroupKey,
    /// The job.
    pub id: JobId,
    /// The new schedule.
    pub schedule: Schedule,
    /// The change instant.
    pub now: Ts,
}

/// A request for due work.
#[derive(Debug, Clone)]
pub struct ClaimDue {
    /// Claim what is due at or before this instant (stores shared by several nodes use their
    /// own clock instead).
    pub now: Ts,
    /// At most this many (the free worker slots).
    pub limit: usize,
    /// The claiming node, recorded with each run.
    pub node: Arc<str>,
    /// The product/groups the claiming node has plugins for: it claims nothing else.
    pub groups: Arc<[GroupKey]>,
}

/// What a claim returned.
#[derive(Debug, Default)]
pub struct Claim {
    /// The claimed runs, each now `running` and owned by the claiming node.
    pub runs: Vec<Claimed>,
    /// The earliest due instant among the jobs left unclaimed, if the store knows it cheaply.
    pub next_due: Option<Ts>,
    /// The instant the store judged "due" against (its clock), to turn `next_due` into a wait.
    pub store_now: Ts,
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
#[derive(Debug, Clone)]
pub struct RescueDead {
    /// A node is dead once its last heartbeat is older than this (store clock).
    pub dead_after: std::time::Duration,
    /// The groups the rescuing node knows, with whether their job type requests recovery.
    /// Runs of other groups are left for a node that knows them.
    pub groups: Vec<(GroupKey, bool)>,
}

/// One run resolved by a rescue.
#[derive(Debug, Clone, PartialEq)]
pub struct RescuedRun {
    /// The run, now `abandoned`.
    pub run_id: RunId,
    /// Its job.
    pub job_id: JobId,
    /// The dead node that held it.
    pub node: String,
    /// True when the job runs again (its type requests recovery).
    pub rerun: bool,
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
    /// The attempt number.
    pub attempt: u32,
    /// When it was due.
    pub scheduled_for: Ts,
    /// The job's payload.
    pub payload: Arc<str>,
    /// The run's trace id.
    pub trace_id: TraceId,
}

/// A finished run, as the worker reports it.
#[derive(Debug, Clone)]
pub struct RunFinish {
    /// The claim's token.
    pub token: u64,
    /// The run.
    pub run_id: RunId,
    /// Its job.
    pub job_id: JobId,
    /// When the worker started it.
    pub started_at: Ts,
    /// When it ended.
    pub finished_at: Ts,
    /// How it ended.
    pub outcome: RunOutcome,
    /// The error or veto reason.
    pub error: Option<String>,
    /// A successful run's output (JSON).
    pub output: Option<String>,
    /// Listeners that failed while asked about this run.
    pub listener_error: Option<String>,
    /// Put the job back to run again at its scheduled instant (the run was interrupted by
    /// this node's shutdown, not by the job).
    pub requeue: bool,
}

/// A store of jobs and runs. Calls are synchronous; [`Store::blocking`] says whether they
/// may wait on I/O, in which case async callers must move them off their threads.
pub trait Store: Send + Sync + 'static {
    /// True when calls may block on I/O (a database); false when they only take a lock.
    fn blocking(&self) -> bool;

    /// Inserts one job.
    fn job_insert(&self, new: NewJob) -> Result<Job, StoreError>;

    /// Inserts many jobs in one go (the bulk path); returns how many were inserted.
    fn jobs_insert_many(&self, new: Vec<NewJob>) -> Result<usize, StoreError>;

    /// One job of a group.
    fn job_get(&self, group: &GroupKey, id: JobId) -> Result<Option<Job>, StoreError>;

    /// A page of a group's unfinished jobs (scheduled, running, paused), soonest first.
    fn jobs_list(&self, query: &JobListQuery) -> Result<Vec<Job>, StoreError>;

    /// Moves a job to a new schedule, keeping its payload and pause state. A running job
    /// keeps running and fires again at the new instant after the run ends.
    fn job_reschedule(&self, change: &JobReschedule) -> Result<Change<Job>, StoreError>;

    /// Removes a job that has not finished; a run in progress is left to finish.
    fn job_delete(&self, group: &GroupKey, id: JobId) -> Result<Change<()>, StoreError>;

    /// A job's runs, newest first; `None` when there is no such job.
    fn job_runs(&self, group: &GroupKey, id: JobId, limit: usize) -> Result<Option<Vec<Run>>, StoreError>;

    /// Claims due runs, earliest first, marking each job running so it cannot run twice.
    fn runs_claim_due(&self, claim: &ClaimDue) -> Result<Claim, StoreError>;

    /// Records finished runs and moves their jobs on (finished, or scheduled again).
    /// A completion whose claim no longer holds is ignored and logged.
    fn runs_finish(&self, batch: &[RunFinish]) -> Result<(), StoreError>;

    /// Gives back claimed runs that never started: their run records disappear and their
    /// jobs are due again as before.
    fn runs_release(&self, runs: &[Claimed]) -> Result<(), StoreError>;

    /// Records this node as live (at start).
    fn node_register(&self, node: &NodeInfo) -> Result<(), StoreError>;

    /// Refreshes this node's heartbeat on the store's clock. `Ok(false)` when the store no
    /// longer counts the node as live (it was declared dead or stopped).
    fn node_heartbeat(&self, node: &str) -> Result<bool, StoreError>;

    /// Records that this node stopped cleanly (the last thing a stopping node does).
    fn node_stop(&self, node: &str) -> Result<(), StoreError>;

    /// The nodes the store knows, live or recently stopped; a node is live when it has not
    /// stopped and heartbeated within `dead_after`.
    fn nodes_list(&self, dead_after: std::time::Duration) -> Result<Vec<NodeRecord>, StoreError>;

    /// Resolves runs held by dead nodes with one guarded update: each becomes `abandoned`;
    /// its job runs again when its type requests recovery, else it is finished as failed.
    fn runs_rescue(&self, rescue: &RescueDead) -> Result<Vec<RescuedRun>, StoreError>;
}
