//! The in-memory store: everything in one process, lost at exit. For local development and
//! tests, and the fastest store: a claim or a completion is a few hundred nanoseconds under
//! one lock.
//!
//! Layout, chosen for memory per pending job (see BENCHMARKS.md, W3): job records live in a
//! slab; a hash table of slab indices finds them by id; each group keeps two ordered sets of
//! `(instant, id)`: `ready` (due work the claim takes from) and `held` (running or paused jobs,
//! which the list shows but the claim skips). Every unfinished job is in exactly one of them.

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use parking_lot::Mutex;
use uuid::Uuid;

use super::{
    Change, Claim, ClaimDue, Claimed, JobListQuery, JobReschedule, NewJob, NodeInfo, NodeRecord, RescueDead,
    RescuedRun, RunFinish, Store, StoreError,
};
use crate::clock::Ts;
use crate::model::{GroupKey, Job, JobId, JobStatus, Run, RunId, RunOutcome, Schedule, TraceId};

const NONE: u32 = u32::MAX;
const NO_TIME: i64 = i64::MIN;

/// The in-memory job store.
pub struct MemoryStore {
    state: Mutex<State>,
    nodes: Mutex<Vec<NodeRecord>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                jobs: Vec::new(),
                free: Vec::new(),
                by_id: HashTable::new(),
                groups: Vec::new(),
                group_index: HashMap::new(),
                runs: Vec::new(),
                run_by_id: HashTable::new(),
                hasher: DefaultHashBuilder::default(),
                empty_payload: Arc::from("{}"),
                node: Arc::from(""),
            }),
            nodes: Mutex::new(Vec::new()),
        }
    }
}

struct JobRec {
    id: Uuid,
    group: u16,
    paused: bool,
    /// 0 while unfinished, else the final status.
    done: Option<JobStatus>,
    when: i64,
    /// The next fire, or `NO_TIME`.
    next_due: i64,
    /// The key under which the job sits in `ready` or `held`.
    sort_due: i64,
    created: i64,
    updated: i64,
    version: u32,
    /// Newest run of this job (head of a list linked through `RunRec::prev_of_job`).
    last_run: u32,
    /// The run in progress, or `NONE`.
    current_run: u32,
    payload: Arc<str>,
}

struct RunRec {
    id: Uuid,
    job_id: Uuid,
    group: u16,
    attempt: u32,
    prev_of_job: u32,
    outcome: RunOutcome,
    scheduled_for: i64,
    started: i64,
    finished: i64,
    trace: u128,
    error: Option<Box<str>>,
    output: Option<Box<str>>,
    listener_error: Option<Box<str>>,
}

struct GroupState {
    key: GroupKey,
    ready: BTreeSet<(i64, Uuid)>,
    held: BTreeSet<(i64, Uuid)>,
}

struct State {
    jobs: Vec<Option<JobRec>>,
    free: Vec<u32>,
    by_id: HashTable<u32>,
    groups: Vec<GroupState>,
    group_index: HashMap<GroupKey, u16>,
    /// Run records are never removed except by release (a run that never started).
    runs: Vec<Option<RunRec>>,
    run_by_id: HashTable<u32>,
    hasher: DefaultHashBuilder,
    empty_payload: Arc<str>,
    node: Arc<str>,
}

impl State {
    fn group_id(&mut self, key: &GroupKey) -> Result<u16, StoreError> {
        if let Some(&g) = self.group_index.get(key) {
            return Ok(g);
        }
        let g = u16::try_from(self.groups.len())
            .map_err(|_| StoreError::Internal("more than 65535 product/groups".into()))?;
        self.groups.push(GroupState { key: key.clone(), ready: BTreeSet::new(), held: BTreeSet::new() });
        self.group_index.insert(key.clone(), g);
        Ok(g)
    }

    fn find_job(&self, id: Uuid) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        let jobs = &self.jobs;
        self.by_id.find(hash, |&s| jobs[s as usize].as_ref().is_some_and(|j| j.id == id)).copied()
    }

    fn find_job_in(&self, group: &GroupKey, id: Uuid) -> Option<u32> {
        let g = *self.group_index.get(group)?;
        let slot = self.find_job(id)?;
        (self.job(slot).group == g).then_some(slot)
    }

    fn job(&self, slot: u32) -> &JobRec {
        self.jobs[slot as usize].as_ref().expect("slot indexed but empty")
    }

    fn job_mut(&mut self, slot: u32) -> &mut JobRec {
        self.jobs[slot as usize].as_mut().expect("slot indexed but empty")
    }

    fn run(&self, slot: u32) -> Option<&RunRec> {
        self.runs.get(slot as usize).and_then(Option::as_ref)
    }

    fn insert_job(&mut self, new: NewJob) -> Result<u32, StoreError> {
        let g = self.group_id(&new.group)?;
        let when = new.schedule.when().0;
        let payload = if &*new.payload == "{}" { self.empty_payload.clone() } else { new.payload };
        let rec = JobRec {
            id: new.id.0,
            group: g,
            paused: new.paused,
            done: None,
            when,
            next_due: when,
            sort_due: when,
            created: new.now.0,
            updated: new.now.0,
            version: 1,
            last_run: NONE,
            current_run: NONE,
            payload,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.jobs[s as usize] = Some(rec);
                s
            }
            None => {
                let s = u32::try_from(self.jobs.len())
                    .ok()
                    .filter(|s| *s != NONE)
                    .ok_or_else(|| StoreError::Internal("more than 4 billion jobs in memory".into()))?;
                self.jobs.push(Some(rec));
                s
            }
        };
        let hash = self.hasher.hash_one(new.id.0);
        let (jobs, hasher) = (&self.jobs, &self.hasher);
        self.by_id
            .insert_unique(hash, slot, |&s| hasher.hash_one(jobs[s as usize].as_ref().map_or(Uuid::nil(), |j| j.id)));
        let gs = &mut self.groups[g as usize];
        if new.paused {
            gs.held.insert((when, new.id.0));
        } else {
            gs.ready.insert((when, new.id.0));
        }
        Ok(slot)
    }

    /// Takes the job out of whichever index holds it.
    fn unindex(&mut self, slot: u32) {
        let j = self.job(slot);
        let (key, g) = ((j.sort_due, j.id), j.group as usize);
        let gs = &mut self.groups[g];
        if !gs.ready.remove(&key) {
            gs.held.remove(&key);
        }
    }

    /// Puts an unfinished job into the index its state calls for.
    fn index(&mut self, slot: u32) {
        let j = self.job(slot);
        let (key, g) = ((j.sort_due, j.id), j.group as usize);
        let ready = j.current_run == NONE && !j.paused && j.next_due != NO_TIME;
        let gs = &mut self.groups[g];
        if ready {
            gs.ready.insert(key);
        } else {
            gs.held.insert(key);
        }
    }

    fn remove_job(&mut self, slot: u32) {
        let id = self.job(slot).id;
        let hash = self.hasher.hash_one(id);
        let jobs = &self.jobs;
        if let Ok(e) = self.by_id.find_entry(hash, |&s| jobs[s as usize].as_ref().is_some_and(|j| j.id == id)) {
            e.remove();
        }
        self.jobs[slot as usize] = None;
        self.free.push(slot);
    }

    fn to_job(&self, slot: u32) -> Job {
        let j = self.job(slot);
        let status = if j.current_run != NONE {
            JobStatus::Running
        } else if let Some(done) = j.done {
            done
        } else if j.paused {
            JobStatus::Paused
        } else {
            JobStatus::Scheduled
        };
        Job {
            id: JobId(j.id),
            group: self.groups[j.group as usize].key.clone(),
            schedule: Schedule::Once { when: Ts(j.when) },
            payload: j.payload.clone(),
            status,
            paused: j.paused,
            next_run: (j.next_due != NO_TIME).then_some(Ts(j.next_due)),
            sort_due: Ts(j.sort_due),
            created_at: Ts(j.created),
            updated_at: Ts(j.updated),
            version: i64::from(j.version),
        }
    }

    fn to_run(&self, r: &RunRec) -> Run {
        let opt = |t: i64| (t != NO_TIME).then_some(Ts(t));
        Run {
            id: RunId(r.id),
            job_id: JobId(r.job_id),
            group: self.groups[r.group as usize].key.clone(),
            attempt: r.attempt,
            scheduled_for: Ts(r.scheduled_for),
            started_at: opt(r.started),
            finished_at: opt(r.finished),
            node: self.node.clone(),
            outcome: r.outcome,
            error: r.error.as_deref().map(str::to_owned),
            trace_id: TraceId(r.trace),
            output: r.output.as_deref().map(str::to_owned),
            listener_error: r.listener_error.as_deref().map(str::to_owned),
        }
    }

    /// The group whose first ready job is the earliest one, if it is due by `now`.
    fn earliest_ready(&self) -> Option<(usize, (i64, Uuid))> {
        let mut best: Option<(usize, (i64, Uuid))> = None;
        for (g, gs) in self.groups.iter().enumerate() {
            if let Some(&first) = gs.ready.first() {
                if best.is_none_or(|(_, b)| first < b) {
                    best = Some((g, first));
                }
            }
        }
        best
    }

    fn claim_one(&mut self, g: usize, key: (i64, Uuid), now: Ts) -> Claimed {
        self.groups[g].ready.remove(&key);
        let slot = self.find_job(key.1).expect("ready job is indexed");
        let run_id = RunId::new();
        let trace_id = TraceId::new();
        let run_slot = u32::try_from(self.runs.len()).unwrap_or(NONE);
        let (prev, payload, scheduled_for, attempt) = {
            let j = self.job_mut(slot);
            let scheduled_for = j.next_due;
            j.next_due = NO_TIME;
            j.current_run = run_slot;
            let prev = j.last_run;
            j.last_run = run_slot;
            j.version += 1;
            j.updated = now.0;
            (prev, j.payload.clone(), scheduled_for, 1)
        };
        self.groups[g].held.insert(key);
        self.runs.push(Some(RunRec {
            id: run_id.0,
            job_id: key.1,
            group: g as u16,
            attempt,
            prev_of_job: prev,
            outcome: RunOutcome::Running,
            scheduled_for,
            started: now.0,
            finished: NO_TIME,
            trace: trace_id.0,
            error: None,
            output: None,
            listener_error: None,
        }));
        let hash = self.hasher.hash_one(run_id.0);
        let (runs, hasher) = (&self.runs, &self.hasher);
        self.run_by_id.insert_unique(hash, run_slot, |&s| {
            hasher.hash_one(runs[s as usize].as_ref().map_or(Uuid::nil(), |r| r.id))
        });
        Claimed {
            token: u64::from(run_slot),
            run_id,
            job_id: JobId(key.1),
            group: self.groups[g].key.clone(),
            attempt,
            scheduled_for: Ts(scheduled_for),
            payload,
            trace_id,
        }
    }

    fn finish_one(&mut self, f: &RunFinish) {
        let run_slot = f.token as u32;
        let Some(run) = self.runs.get_mut(run_slot as usize).and_then(Option::as_mut) else {
            tracing::warn!(run = %f.run_id, "completion for an unknown run ignored");
            return;
        };
        if run.id != f.run_id.0 || run.outcome != RunOutcome::Running {
            tracing::warn!(run = %f.run_id, "completion for a run no longer held ignored");
            return;
        }
        run.outcome = f.outcome;
        run.started = f.started_at.0;
        run.finished = f.finished_at.0;
        run.error = f.error.as_deref().map(Box::from);
        run.output = f.output.as_deref().map(Box::from);
        run.listener_error = f.listener_error.as_deref().map(Box::from);
        let scheduled_for = run.scheduled_for;
        let Some(slot) = self.find_job(f.job_id.0) else {
            return; // deleted while it ran
        };
        if self.job(slot).current_run != run_slot {
            return;
        }
        self.unindex(slot);
        let j = self.job_mut(slot);
        j.current_run = NONE;
        j.version += 1;
        j.updated = f.finished_at.0;
        if f.requeue && j.next_due == NO_TIME {
            j.next_due = scheduled_for;
        }
        if j.next_due != NO_TIME {
            j.sort_due = j.next_due;
            self.index(slot);
        } else {
            j.done = Some(match f.outcome {
                RunOutcome::Succeeded => JobStatus::Completed,
                RunOutcome::Vetoed => JobStatus::Vetoed,
                _ => JobStatus::Failed,
            });
        }
    }

    fn release_one(&mut self, c: &Claimed) {
        let run_slot = c.token as u32;
        let Some(run) = self.run(run_slot) else {
            return;
        };
        if run.id != c.run_id.0 || run.outcome != RunOutcome::Running {
            return;
        }
        let prev = run.prev_of_job;
        let hash = self.hasher.hash_one(c.run_id.0);
        let runs = &self.runs;
        if let Ok(e) =
            self.run_by_id.find_entry(hash, |&s| runs[s as usize].as_ref().is_some_and(|r| r.id == c.run_id.0))
        {
            e.remove();
        }
        self.runs[run_slot as usize] = None;
        let Some(slot) = self.find_job(c.job_id.0) else {
            return;
        };
        if self.job(slot).current_run != run_slot {
            return;
        }
        self.unindex(slot);
        let j = self.job_mut(slot);
        j.current_run = NONE;
        j.last_run = prev;
        if j.next_due == NO_TIME {
            j.next_due = c.scheduled_for.0;
        }
        j.sort_due = j.next_due;
        self.index(slot);
    }
}

impl Store for MemoryStore {
    fn blocking(&self) -> bool {
        false
    }

    fn job_insert(&self, new: NewJob) -> Result<Job, StoreError> {
        let mut st = self.state.lock();
        let slot = st.insert_job(new)?;
        Ok(st.to_job(slot))
    }

    fn jobs_insert_many(&self, new: Vec<NewJob>) -> Result<usize, StoreError> {
        let n = new.len();
        let mut st = self.state.lock();
        for j in new {
            st.insert_job(j)?;
        }
        Ok(n)
    }

    fn job_get(&self, group: &GroupKey, id: JobId) -> Result<Option<Job>, StoreError> {
        let st = self.state.lock();
        Ok(st.find_job_in(group, id.0).map(|slot| st.to_job(slot)))
    }

    fn jobs_list(&self, q: &JobListQuery) -> Result<Vec<Job>, StoreError> {
        let st = self.state.lock();
        let Some(&g) = st.group_index.get(&q.group) else {
            return Ok(Vec::new());
        };
        let gs = &st.groups[g as usize];
        let from = match q.after {
            Some(c) => Bound::Excluded((c.due.0, c.id.0)),
            None => Bound::Unbounded,
        };
        let mut a = gs.ready.range((from, Bound::Unbounded)).peekable();
        let mut b = gs.held.range((from, Bound::Unbounded)).peekable();
        let mut out = Vec::with_capacity(q.limit.min(1024));
        while out.len() < q.limit {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x <= y => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => None,
            };
            let Some(&(_, id)) = next else { break };
            if let Some(slot) = st.find_job(id) {
                out.push(st.to_job(slot));
            }
        }
        Ok(out)
    }

    fn job_reschedule(&self, c: &JobReschedule) -> Result<Change<Job>, StoreError> {
        let mut st = self.state.lock();
        let Some(slot) = st.find_job_in(&c.group, c.id.0) else {
            return Ok(Change::NotFound);
        };
        if let Some(done) = st.job(slot).done {
            return Ok(Change::Finished(done));
        }
        let when = c.schedule.when().0;
        let running = st.job(slot).current_run != NONE;
        if !running {
            st.unindex(slot);
        }
        let j = st.job_mut(slot);
        j.when = when;
        j.next_due = when;
        if !running {
            j.sort_due = when;
        }
        j.version += 1;
        j.updated = c.now.0;
        if !running {
            st.index(slot);
        }
        Ok(Change::Done(st.to_job(slot)))
    }

    fn job_delete(&self, group: &GroupKey, id: JobId) -> Result<Change<()>, StoreError> {
        let mut st = self.state.lock();
        let Some(slot) = st.find_job_in(group, id.0) else {
            return Ok(Change::NotFound);
        };
        if let Some(done) = st.job(slot).done {
            return Ok(Change::Finished(done));
        }
        st.unindex(slot);
        st.remove_job(slot);
        Ok(Change::Done(()))
    }

    fn job_runs(&self, group: &GroupKey, id: JobId, limit: usize) -> Result<Option<Vec<Run>>, StoreError> {
        let st = self.state.lock();
        let Some(slot) = st.find_job_in(group, id.0) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        let mut next = st.job(slot).last_run;
        while next != NONE && out.len() < limit {
            let Some(r) = st.run(next) else { break };
            out.push(st.to_run(r));
            next = r.prev_of_job;
        }
        Ok(Some(out))
    }

    fn runs_claim_due(&self, c: &ClaimDue) -> Result<Claim, StoreError> {
        let mut st = self.state.lock();
        if *st.node != *c.node {
            st.node = c.node.clone();
        }
        let mut runs = Vec::with_capacity(c.limit.min(1024));
        let mut next_due = None;
        while runs.len() < c.limit {
            match st.earliest_ready() {
                Some((g, key)) if key.0 <= c.now.0 => runs.push(st.claim_one(g, key, c.now)),
                Some((_, key)) => {
                    next_due = Some(Ts(key.0));
                    break;
                }
                None => break,
            }
        }
        if runs.len() == c.limit {
            next_due = st.earliest_ready().map(|(_, k)| Ts(k.0));
        }
        Ok(Claim { runs, next_due, store_now: c.now })
    }

    fn runs_finish(&self, batch: &[RunFinish]) -> Result<(), StoreError> {
        let mut st = self.state.lock();
        for f in batch {
            st.finish_one(f);
        }
        Ok(())
    }

    fn runs_release(&self, runs: &[Claimed]) -> Result<(), StoreError> {
        let mut st = self.state.lock();
        for c in runs {
            st.release_one(c);
        }
        Ok(())
    }

    // One process is the only node of a memory store: it is live while it runs, and no other
    // node's runs can be in it, so there is nothing to rescue.

    fn node_register(&self, node: &NodeInfo) -> Result<(), StoreError> {
        let now = crate::clock::Clock::now(&crate::clock::SystemClock);
        self.nodes.lock().push(NodeRecord {
            info: node.clone(),
            started_at: now,
            heartbeat_at: now,
            stopped_at: None,
            live: true,
        });
        Ok(())
    }

    fn node_heartbeat(&self, node: &str) -> Result<bool, StoreError> {
        let now = crate::clock::Clock::now(&crate::clock::SystemClock);
        let mut nodes = self.nodes.lock();
        Ok(match nodes.iter_mut().find(|n| &*n.info.id == node) {
            Some(n) if n.stopped_at.is_none() => {
                n.heartbeat_at = now;
                true
            }
            _ => false,
        })
    }

    fn node_stop(&self, node: &str) -> Result<(), StoreError> {
        let now = crate::clock::Clock::now(&crate::clock::SystemClock);
        if let Some(n) = self.nodes.lock().iter_mut().find(|n| &*n.info.id == node) {
            n.stopped_at = Some(now);
        }
        Ok(())
    }

    fn nodes_list(&self, _dead_after: std::time::Duration) -> Result<Vec<NodeRecord>, StoreError> {
        Ok(self.nodes.lock().iter().map(|n| NodeRecord { live: n.stopped_at.is_none(), ..n.clone() }).collect())
    }

    fn runs_rescue(&self, _rescue: &RescueDead) -> Result<Vec<RescuedRun>, StoreError> {
        Ok(Vec::new())
    }
}
