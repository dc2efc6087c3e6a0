//! The memory store's records and the indexes over them.

use std::collections::BTreeSet;
use std::sync::Arc;

use hashbrown::HashMap;
use uuid::Uuid;

use crate::model::{GroupKey, JobStatus, RunOutcome};
use crate::trigger::{Compiled, JobSpec, JobState};

/// "No slot" / "no run".
pub(super) const NONE: u32 = u32::MAX;
/// "No instant".
pub(super) const NO_TIME: i64 = i64::MIN;

/// One job. Plain one-time jobs (the common case, and what W3 measures) carry no spec: their
/// schedule is `when`. Anything else keeps its spec, compiled triggers and progress in `spec`.
pub(super) struct JobRec {
    pub id: Uuid,
    pub group: u16,
    pub paused: bool,
    /// `None` while unfinished, else the final status.
    pub done: Option<JobStatus>,
    pub when: i64,
    /// The next fire, or `NO_TIME`.
    pub next_due: i64,
    /// The key under which the job sits in `ready` or `held`.
    pub sort_due: i64,
    pub created: i64,
    pub updated: i64,
    pub version: u32,
    /// Newest run of this job (head of a list linked through `RunRec::prev_of_job`).
    pub last_run: u32,
    /// The run in progress, or `NONE`.
    pub current_run: u32,
    pub payload: Arc<str>,
    pub spec: Option<Box<SpecRec>>,
}

/// A job's schedule beyond a plain one-time fire.
pub(super) struct SpecRec {
    pub spec: Arc<JobSpec>,
    pub compiled: Arc<[Compiled]>,
    pub state: JobState,
    /// When the previous run started and ended (overlap policy `skip`).
    pub last_run: Option<crate::trigger::LastRun>,
    /// Runs in progress of a job whose overlap policy is `allow`.
    pub concurrent_runs: u32,
    /// The idempotency key it was created with, if any.
    pub key: Option<(String, String)>,
}

impl SpecRec {
    pub fn allows_overlap(&self) -> bool {
        self.spec.overlap == crate::trigger::OverlapPolicy::Allow
    }
}

pub(super) struct RunRec {
    /// Insertion order (slots are reused after retention removes runs).
    pub seq: u64,
    pub id: Uuid,
    pub job_id: Uuid,
    pub group: u16,
    pub attempt: u32,
    pub prev_of_job: u32,
    pub outcome: RunOutcome,
    pub scheduled_for: i64,
    pub started: i64,
    pub finished: i64,
    pub trace: u128,
    pub trigger: Option<u32>,
    pub error: Option<Box<str>>,
    pub output: Option<Box<str>>,
    pub listener_error: Option<Box<str>>,
    pub note: Option<Box<str>>,
    /// 0: none; 1: requested; 2: handed to the node.
    pub cancel: u8,
}

pub(super) struct GroupState {
    pub key: GroupKey,
    /// Claimable jobs by (next fire, id).
    pub ready: BTreeSet<(i64, Uuid)>,
    /// Running or paused unfinished jobs by (sort instant, id).
    pub held: BTreeSet<(i64, Uuid)>,
    /// Jobs with a non-zero priority (the claim consults priorities only when there are some).
    pub prioritized: u32,
    /// Claimable jobs with a positive priority by (highest priority, next fire, id), so that
    /// an urgent job is found however many ordinary jobs are due before it.
    pub urgent: BTreeSet<(std::cmp::Reverse<i16>, i64, Uuid)>,
    /// Runs in progress.
    pub running: u32,
    /// The most runs in progress the last claim allowed (none: no limit).
    pub max_running: Option<u32>,
    /// Idempotency keys of the group's jobs.
    pub keys: HashMap<String, Uuid>,
}

impl GroupState {
    /// True while the group may start another run.
    pub fn has_room(&self) -> bool {
        self.max_running.is_none_or(|m| self.running < m)
    }

    /// How many more runs it may start now.
    pub fn room(&self) -> usize {
        self.max_running.map_or(usize::MAX, |m| m.saturating_sub(self.running) as usize)
    }

    pub fn new(key: GroupKey) -> GroupState {
        GroupState {
            key,
            ready: BTreeSet::new(),
            held: BTreeSet::new(),
            prioritized: 0,
            urgent: BTreeSet::new(),
            running: 0,
            max_running: None,
            keys: HashMap::new(),
        }
    }
}

/// The final status of a job whose last run ended with `outcome` and nothing is left to fire.
pub(super) fn final_status(outcome: RunOutcome) -> JobStatus {
    match outcome {
        RunOutcome::Succeeded | RunOutcome::Skipped => JobStatus::Completed,
        RunOutcome::Vetoed => JobStatus::Vetoed,
        RunOutcome::Cancelled => JobStatus::Cancelled,
        _ => JobStatus::Failed,
    }
}

/// A statistics cell of the memory store: group, UTC hour, outcome, measure, bucket.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct StatKey {
    pub group: u16,
    pub hour: i64,
    pub outcome: u8,
    pub measure: u8,
    pub bucket: u16,
}

/// An outcome as a small number, and back.
pub(super) fn outcome_code(o: RunOutcome) -> u8 {
    o.index() as u8
}

pub(super) fn outcome_of(code: u8) -> RunOutcome {
    RunOutcome::ALL.get(code as usize).copied().unwrap_or(RunOutcome::Running)
}
