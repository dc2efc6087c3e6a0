//! The memory store's state and every operation on it, under the store's one lock.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use uuid::Uuid;

use super::records::{final_status, outcome_code, GroupState, JobRec, RunRec, SpecRec, StatKey, NONE, NO_TIME};
use crate::clock::Ts;
use crate::model::{GroupKey, Job, JobId, JobSpec, JobState, JobStatus, Run, RunId, RunOutcome, TraceId};
use crate::store::{
    Begun, Claimed, Control, Ending, Inserted, NewJob, Pruned, Retention, RunFinish, RunStart, StoreError,
};
use crate::trigger::{plan, ExtraFire, Fire, TriggerState};

pub(super) struct State {
    pub jobs: Vec<Option<JobRec>>,
    pub free: Vec<u32>,
    pub by_id: HashTable<u32>,
    pub groups: Vec<GroupState>,
    pub group_index: HashMap<GroupKey, u16>,
    /// Run records are never removed except by release (a run that never started).
    pub runs: Vec<Option<RunRec>>,
    /// Run slots freed by retention, for reuse.
    pub free_runs: Vec<u32>,
    /// The next run's `seq`.
    pub next_seq: u64,
    pub run_by_id: HashTable<u32>,
    pub hasher: DefaultHashBuilder,
    pub empty_payload: Arc<str>,
    pub node: Arc<str>,
    /// Run slots asked to stop and not yet handed to the node.
    pub pending_cancels: Vec<u32>,
    /// Run statistics (none when switched off).
    pub stats: Option<HashMap<StatKey, u64>>,
    /// What misfire and overlap policies did during the current claim.
    pub events: Vec<(GroupKey, crate::trigger::FireEvent)>,
}

/// A due job the claim looks at.
struct Candidate {
    due: i64,
    id: Uuid,
    group: usize,
    priority: i16,
}

impl State {
    pub fn new() -> State {
        State {
            jobs: Vec::new(),
            free: Vec::new(),
            by_id: HashTable::new(),
            groups: Vec::new(),
            group_index: HashMap::new(),
            runs: Vec::new(),
            free_runs: Vec::new(),
            next_seq: 1,
            run_by_id: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            empty_payload: Arc::from("{}"),
            node: Arc::from(""),
            pending_cancels: Vec::new(),
            stats: Some(HashMap::new()),
            events: Vec::new(),
        }
    }

    pub fn group_id(&mut self, key: &GroupKey) -> Result<u16, StoreError> {
        if let Some(&g) = self.group_index.get(key) {
            return Ok(g);
        }
        let g = u16::try_from(self.groups.len())
            .map_err(|_| StoreError::Internal("more than 65535 product/groups".into()))?;
        self.groups.push(GroupState::new(key.clone()));
        self.group_index.insert(key.clone(), g);
        Ok(g)
    }

    pub fn find_job(&self, id: Uuid) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        let jobs = &self.jobs;
        self.by_id.find(hash, |&s| jobs[s as usize].as_ref().is_some_and(|j| j.id == id)).copied()
    }

    pub fn find_job_in(&self, group: &GroupKey, id: Uuid) -> Option<u32> {
        let g = *self.group_index.get(group)?;
        let slot = self.find_job(id)?;
        (self.job(slot).group == g).then_some(slot)
    }

    pub fn job(&self, slot: u32) -> &JobRec {
        self.jobs[slot as usize].as_ref().expect("slot indexed but empty")
    }

    pub fn job_mut(&mut self, slot: u32) -> &mut JobRec {
        self.jobs[slot as usize].as_mut().expect("slot indexed but empty")
    }

    pub fn run(&self, slot: u32) -> Option<&RunRec> {
        self.runs.get(slot as usize).and_then(Option::as_ref)
    }

    pub fn find_run(&self, id: Uuid) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        let runs = &self.runs;
        self.run_by_id.find(hash, |&s| runs[s as usize].as_ref().is_some_and(|r| r.id == id)).copied()
    }

    pub fn insert_job(&mut self, new: NewJob) -> Result<Inserted, StoreError> {
        let g = self.group_id(&new.group)?;
        if let Some(key) = &new.idempotency {
            if let Some(existing) = self.groups[g as usize].keys.get(&key.key).copied() {
                if let Some(slot) = self.find_job(existing) {
                    let same = self
                        .job(slot)
                        .spec
                        .as_ref()
                        .and_then(|s| s.key.as_ref())
                        .is_some_and(|(_, f)| *f == key.fingerprint);
                    let job = self.to_job(slot);
                    return Ok(if same { Inserted::Existing(job) } else { Inserted::Conflict(job) });
                }
            }
        }
        if let Some(slot) = self.find_job(new.id.0) {
            // A client-chosen id already in use (in this group or another).
            return Ok(Inserted::Conflict(self.to_job(slot)));
        }
        let plain = new.spec.is_plain_once() && new.idempotency.is_none() && new.state.extra.is_none();
        let next_due = new.state.next_due().map_or(NO_TIME, |t| t.0);
        let payload = if &*new.payload == "{}" { self.empty_payload.clone() } else { new.payload };
        let spec = if plain {
            None
        } else {
            let compiled =
                new.spec.compile().map_err(|e| StoreError::Internal(format!("stored schedule invalid: {e}")))?;
            Some(Box::new(SpecRec {
                spec: new.spec.clone(),
                compiled: compiled.into(),
                state: new.state,
                last_run: None,
                concurrent_runs: 0,
                key: new.idempotency.as_ref().map(|k| (k.key.clone(), k.fingerprint.clone())),
            }))
        };
        let priority = new.spec.priority;
        let rec = JobRec {
            id: new.id.0,
            group: g,
            paused: new.paused,
            done: None,
            when: new.spec.anchor.0,
            next_due,
            sort_due: if next_due == NO_TIME { new.spec.anchor.0 } else { next_due },
            created: new.now.0,
            updated: new.now.0,
            version: 1,
            last_run: NONE,
            current_run: NONE,
            payload,
            spec,
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
        if priority != 0 {
            gs.prioritized += 1;
        }
        if let Some(key) = new.idempotency {
            gs.keys.insert(key.key, new.id.0);
        }
        self.index(slot);
        Ok(Inserted::Created(self.to_job(slot)))
    }

    /// Takes the job out of whichever index holds it.
    pub fn unindex(&mut self, slot: u32) {
        let j = self.job(slot);
        let (key, g, priority) = ((j.sort_due, j.id), j.group as usize, priority_of(j));
        let gs = &mut self.groups[g];
        if gs.ready.remove(&key) {
            if priority > 0 {
                gs.urgent.remove(&(Reverse(priority), key.0, key.1));
            }
        } else {
            gs.held.remove(&key);
        }
    }

    /// Puts an unfinished job into the index its state calls for, keyed by its next fire
    /// (or, while it runs, the fire in progress).
    pub fn index(&mut self, slot: u32) {
        let j = self.job_mut(slot);
        if j.done.is_some() {
            return;
        }
        if j.current_run == NONE && j.next_due != NO_TIME {
            j.sort_due = j.next_due;
        }
        let ready = j.current_run == NONE && !j.paused && j.next_due != NO_TIME;
        let (key, g, priority) = ((j.sort_due, j.id), j.group as usize, priority_of(j));
        let gs = &mut self.groups[g];
        if ready {
            gs.ready.insert(key);
            if priority > 0 {
                gs.urgent.insert((Reverse(priority), key.0, key.1));
            }
        } else {
            gs.held.insert(key);
        }
    }

    pub fn remove_job(&mut self, slot: u32) {
        let (id, g) = (self.job(slot).id, self.job(slot).group as usize);
        let key = self.job(slot).spec.as_ref().and_then(|s| s.key.as_ref().map(|(k, _)| k.clone()));
        if self.job(slot).spec.as_ref().is_some_and(|s| s.spec.priority != 0) {
            self.groups[g].prioritized -= 1;
        }
        if let Some(k) = key {
            self.groups[g].keys.remove(&k);
        }
        let hash = self.hasher.hash_one(id);
        let jobs = &self.jobs;
        if let Ok(e) = self.by_id.find_entry(hash, |&s| jobs[s as usize].as_ref().is_some_and(|j| j.id == id)) {
            e.remove();
        }
        self.jobs[slot as usize] = None;
        self.free.push(slot);
    }

    pub fn to_job(&self, slot: u32) -> Job {
        let j = self.job(slot);
        let running = j.current_run != NONE || j.spec.as_ref().is_some_and(|s| s.concurrent_runs > 0);
        let status = if running {
            JobStatus::Running
        } else if let Some(done) = j.done {
            done
        } else {
            JobStatus::Scheduled
        };
        let (spec, state) = match &j.spec {
            Some(s) => (s.spec.clone(), s.state.clone()),
            None => {
                let pending = j.next_due != NO_TIME;
                (
                    Arc::new(JobSpec::once(Ts(j.when))),
                    JobState {
                        triggers: vec![TriggerState {
                            next: pending.then_some(Ts(j.next_due)),
                            fired: u64::from(!pending),
                        }],
                        extra: None,
                    },
                )
            }
        };
        Job {
            id: JobId(j.id),
            group: self.groups[j.group as usize].key.clone(),
            spec,
            state,
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

    /// A job's runs, newest first: its chain through `prev_of_job`, which ends where a slot was
    /// freed by retention (or reused by a newer run of any job).
    pub fn job_run_slots(&self, slot: u32, limit: usize) -> Vec<u32> {
        let job = self.job(slot).id;
        let mut out = Vec::new();
        let mut next = self.job(slot).last_run;
        let mut newer = u64::MAX;
        while next != NONE && out.len() < limit {
            let Some(r) = self.run(next) else { break };
            if r.job_id != job || r.seq >= newer {
                break;
            }
            out.push(next);
            newer = r.seq;
            next = r.prev_of_job;
        }
        out
    }

    /// Removes one batch of history older than the retention allows.
    pub fn prune(&mut self, r: &Retention, now: Ts) -> Pruned {
        let cutoff = |age: Option<std::time::Duration>| {
            age.map(|a| now.0.saturating_sub(i64::try_from(a.as_micros()).unwrap_or(i64::MAX)))
        };
        let (ok_before, bad_before, stats_before) = (cutoff(r.succeeded), cutoff(r.failed), cutoff(r.stats));
        let expired = |succeeded: bool, at: i64| {
            let before = if succeeded { ok_before } else { bad_before };
            before.is_some_and(|b| at < b)
        };
        let mut pruned = Pruned::default();
        let old_runs: Vec<u32> = (0..self.runs.len() as u32)
            .filter(|s| {
                self.run(*s).is_some_and(|run| {
                    !run.outcome.in_progress()
                        && run.finished != NO_TIME
                        && expired(matches!(run.outcome, RunOutcome::Succeeded | RunOutcome::Skipped), run.finished)
                })
            })
            .take(r.batch)
            .collect();
        for s in old_runs {
            self.remove_run(s);
            pruned.runs += 1;
        }
        let old_jobs: Vec<u32> = (0..self.jobs.len() as u32)
            .filter(|s| {
                self.jobs[*s as usize].as_ref().is_some_and(|j| {
                    let declared = j
                        .spec
                        .as_ref()
                        .and_then(|s| s.key.as_ref())
                        .is_some_and(|(k, _)| k.starts_with(crate::model::DECLARED_KEY_PREFIX));
                    j.done.is_some_and(|d| expired(d == JobStatus::Completed, j.updated)) && !declared
                })
            })
            .take(r.batch)
            .collect();
        for s in old_jobs {
            self.remove_job(s);
            pruned.jobs += 1;
        }
        if let (Some(before), Some(stats)) = (stats_before, self.stats.as_mut()) {
            let n = stats.len();
            stats.retain(|k, _| k.hour >= before);
            pruned.stats = (n - stats.len()) as u64;
        }
        pruned
    }

    /// Adds a finished run to the statistics.
    fn count_run(&mut self, group: u16, outcome: RunOutcome, scheduled: i64, started: i64, finished: i64) {
        let Some(stats) = self.stats.as_mut() else { return };
        let hour = crate::stats::hour_of(Ts(finished)).0;
        let outcome = outcome_code(outcome);
        let mut add = |measure: u8, bucket: u16| {
            *stats.entry(StatKey { group, hour, outcome, measure, bucket }).or_default() += 1;
        };
        add(crate::stats::RUNS, 0);
        if started != NO_TIME {
            add(crate::stats::LATENESS, crate::stats::bucket(started - scheduled));
            add(crate::stats::DURATION, crate::stats::bucket(finished - started));
        }
    }

    /// Frees a run's slot (retention, or a claim given back).
    pub fn remove_run(&mut self, slot: u32) {
        let Some(r) = self.runs.get_mut(slot as usize).and_then(Option::take) else { return };
        let hash = self.hasher.hash_one(r.id);
        let runs = &self.runs;
        // The slot is already empty: find the entry by slot number.
        if let Ok(e) = self.run_by_id.find_entry(hash, |&s| s == slot && runs[s as usize].is_none()) {
            e.remove();
        }
        self.free_runs.push(slot);
    }

    pub fn to_run(&self, r: &RunRec) -> Run {
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
            trigger: r.trigger,
            note: r.note.as_deref().map(str::to_owned),
        }
    }

    /// Due jobs to claim, in claim order: the highest priority first, then the earliest. Due
    /// jobs with a positive priority are always considered; of the rest, the earliest
    /// `4 × limit` (ordered by their priority when any group has non-zero ones).
    fn candidates(&self, now: i64, limit: usize) -> Vec<Candidate> {
        let window = limit.saturating_mul(4).max(limit);
        let mut all: Vec<Candidate> = Vec::new();
        let mut any_priority = false;
        let mut limited = false;
        for (g, gs) in self.groups.iter().enumerate() {
            let room = gs.room();
            if room == 0 {
                continue;
            }
            limited |= gs.max_running.is_some();
            any_priority |= gs.prioritized > 0;
            urgent_due(&gs.urgent, now, limit.min(room), |priority, due, id| {
                all.push(Candidate { due, id, group: g, priority })
            });
            for &(due, id) in gs.ready.iter().take_while(|(d, _)| *d <= now).take(window.min(room)) {
                all.push(Candidate { due, id, group: g, priority: 0 });
            }
        }
        if any_priority {
            for c in &mut all {
                if c.priority == 0 && self.groups[c.group].prioritized > 0 {
                    if let Some(slot) = self.find_job(c.id) {
                        c.priority = priority_of(self.job(slot));
                    }
                }
            }
            all.sort_by(|a, b| b.priority.cmp(&a.priority).then((a.due, a.id).cmp(&(b.due, b.id))));
            all.dedup_by_key(|c| c.id);
        } else if self.groups.len() > 1 {
            all.sort_by_key(|c| (c.due, c.id));
        }
        if limited {
            // No group beyond its room.
            let mut taken = vec![0usize; self.groups.len()];
            all.retain(|c| {
                taken[c.group] += 1;
                taken[c.group] <= self.groups[c.group].room()
            });
        }
        all.truncate(limit);
        all
    }

    /// The earliest due instant among claimable jobs.
    pub fn next_ready(&self) -> Option<Ts> {
        self.groups.iter().filter(|g| g.has_room()).filter_map(|g| g.ready.first().map(|k| k.0)).min().map(Ts)
    }

    /// Applies the claim's per-group limits of runs in progress.
    pub fn set_limits(&mut self, max_running: &[(GroupKey, u32)]) {
        for gs in &mut self.groups {
            gs.max_running = None;
        }
        for (key, n) in max_running {
            if let Some(&g) = self.group_index.get(key) {
                self.groups[g as usize].max_running = Some(*n);
            }
        }
    }

    /// Claims up to `limit` due runs; fires that a policy skips are recorded and not returned.
    pub fn claim(&mut self, now: Ts, limit: usize) -> Vec<Claimed> {
        let mut out = Vec::with_capacity(limit.min(1024));
        // A skipped fire frees its slot: look again until the batch is full or nothing is due.
        loop {
            let want = limit - out.len();
            if want == 0 {
                break;
            }
            let cands = self.candidates(now.0, want);
            if cands.is_empty() {
                break;
            }
            for c in cands {
                if let Some(run) = self.claim_job(c.group, (c.due, c.id), now) {
                    out.push(run);
                }
            }
        }
        out
    }

    fn new_run(&mut self, slot: u32, scheduled_for: i64, attempt: u32, trigger: Option<u32>) -> (u32, RunId, TraceId) {
        let run_id = RunId::new();
        let trace_id = TraceId::new();
        let run_slot = match self.free_runs.pop() {
            Some(s) => s,
            None => {
                self.runs.push(None);
                u32::try_from(self.runs.len() - 1).unwrap_or(NONE)
            }
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        let (job_id, group, prev) = {
            let j = self.job_mut(slot);
            let prev = j.last_run;
            j.last_run = run_slot;
            (j.id, j.group, prev)
        };
        self.runs[run_slot as usize] = Some(RunRec {
            seq,
            id: run_id.0,
            job_id,
            group,
            attempt,
            prev_of_job: prev,
            outcome: RunOutcome::Claimed,
            scheduled_for,
            started: NO_TIME,
            finished: NO_TIME,
            trace: trace_id.0,
            trigger,
            error: None,
            output: None,
            listener_error: None,
            note: None,
            cancel: 0,
        });
        let hash = self.hasher.hash_one(run_id.0);
        let (runs, hasher) = (&self.runs, &self.hasher);
        self.run_by_id.insert_unique(hash, run_slot, |&s| {
            hasher.hash_one(runs[s as usize].as_ref().map_or(Uuid::nil(), |r| r.id))
        });
        (run_slot, run_id, trace_id)
    }

    /// Fires one due job: starts a run, or records a skipped fire.
    fn claim_job(&mut self, g: usize, key: (i64, Uuid), now: Ts) -> Option<Claimed> {
        let slot = self.find_job(key.1).expect("ready job is indexed");
        self.unindex(slot);
        let group = self.groups[g].key.clone();
        let mut event = None;
        let (scheduled_for, attempt, trigger, note, skipped, concurrent, retry, data) = {
            let j = self.job_mut(slot);
            j.version += 1;
            j.updated = now.0;
            match j.spec.as_deref_mut() {
                None => {
                    let due = j.next_due;
                    j.next_due = NO_TIME;
                    (due, 1, Some(0), None, None, false, None, None)
                }
                Some(s) => {
                    let p = plan(&s.spec, &s.compiled, &mut s.state, now, s.last_run);
                    event = p.event;
                    j.next_due = s.state.next_due().map_or(NO_TIME, |t| t.0);
                    let retry = s.spec.retry.clone();
                    match p.fire {
                        Fire::Run(r) => {
                            let data =
                                r.trigger.and_then(|t| s.spec.triggers.get(t as usize)).and_then(|t| t.data.clone());
                            (r.scheduled_for.0, r.attempt, r.trigger, r.note, None, s.allows_overlap(), retry, data)
                        }
                        Fire::Skip { at, reason } => (at.0, 1, None, None, Some(reason), false, retry, None),
                        Fire::Nothing => (NO_TIME, 1, None, None, None, false, retry, None),
                    }
                }
            }
        };
        if let Some(e) = event {
            self.events.push((group.clone(), e));
        }
        if scheduled_for == NO_TIME {
            // Nothing left to fire (every trigger ended or is disabled).
            self.index(slot);
            return None;
        }
        let (run_slot, run_id, trace_id) = self.new_run(slot, scheduled_for, attempt, trigger);
        if let Some(reason) = skipped {
            if let Some(r) = self.runs[run_slot as usize].as_mut() {
                r.outcome = RunOutcome::Skipped;
                r.started = NO_TIME;
                r.finished = now.0;
                r.note = Some(reason.into());
            }
            let group = self.job(slot).group;
            self.count_run(group, RunOutcome::Skipped, scheduled_for, NO_TIME, now.0);
            let j = self.job_mut(slot);
            if j.next_due == NO_TIME && j.current_run == NONE && j.spec.as_ref().is_none_or(|s| s.concurrent_runs == 0)
            {
                j.done = Some(JobStatus::Completed);
            }
            self.index(slot);
            return None;
        }
        if let Some(n) = &note {
            if let Some(r) = self.runs[run_slot as usize].as_mut() {
                r.note = Some(n.as_str().into());
            }
        }
        let payload = {
            let j = self.job_mut(slot);
            if concurrent {
                if let Some(s) = j.spec.as_deref_mut() {
                    s.concurrent_runs += 1;
                }
            } else {
                j.current_run = run_slot;
                j.sort_due = scheduled_for;
            }
            match &data {
                Some(d) => Arc::from(crate::trigger::merge_data(&j.payload, d)),
                None => j.payload.clone(),
            }
        };
        self.index(slot);
        self.groups[g].running += 1;
        Some(Claimed {
            token: u64::from(run_slot),
            run_id,
            job_id: JobId(key.1),
            group,
            node: self.node.clone(),
            attempt,
            scheduled_for: Ts(scheduled_for),
            payload,
            trace_id,
            trigger,
            note,
            retry,
        })
    }

    /// Makes sure a job has a spec record (a plain one-time job gains one when it needs a
    /// retry or a run-now).
    fn ensure_spec(&mut self, slot: u32) -> &mut SpecRec {
        let j = self.job_mut(slot);
        if j.spec.is_none() {
            let spec = Arc::new(JobSpec::once(Ts(j.when)));
            let compiled = spec.compile().unwrap_or_default();
            let pending = j.next_due != NO_TIME && j.done.is_none();
            j.spec = Some(Box::new(SpecRec {
                spec,
                compiled: compiled.into(),
                state: JobState {
                    triggers: vec![TriggerState {
                        next: pending.then_some(Ts(j.next_due)),
                        fired: u64::from(!pending),
                    }],
                    extra: None,
                },
                last_run: None,
                concurrent_runs: 0,
                key: None,
            }));
        }
        j.spec.as_deref_mut().expect("just set")
    }

    /// Records one completion; returns the job's next fire when it is claimable again.
    pub fn finish_one(&mut self, f: &RunFinish) -> Option<Ts> {
        let run_slot = f.token as u32;
        let Some(run) = self.runs.get_mut(run_slot as usize).and_then(Option::as_mut) else {
            tracing::warn!(run = %f.run_id, "completion for an unknown run ignored");
            return None;
        };
        if run.id != f.run_id.0 || !run.outcome.in_progress() {
            tracing::warn!(run = %f.run_id, "completion for a run no longer held ignored");
            return None;
        }
        let outcome = f.ending.outcome();
        run.outcome = outcome;
        let run_group = run.group as usize;
        run.started = f.started_at.0;
        run.finished = f.finished_at.0;
        run.error = f.ending.error().map(Box::from);
        run.output = f.ending.output().map(Box::from);
        run.listener_error = f.listener_error.as_deref().map(Box::from);
        let (scheduled_for, attempt, trigger) = (run.scheduled_for, run.attempt, run.trigger);
        self.count_run(run_group as u16, outcome, scheduled_for, f.started_at.0, f.finished_at.0);
        let gs = &mut self.groups[run_group];
        gs.running = gs.running.saturating_sub(1);
        // A limited group with room again: its earliest ready job may start.
        let room_wake = if gs.max_running.is_some() { gs.ready.first().map(|k| Ts(k.0)) } else { None };
        let Some(slot) = self.find_job(f.job_id.0) else {
            return room_wake; // deleted while it ran
        };
        let concurrent = self.job(slot).spec.as_ref().is_some_and(|s| s.allows_overlap());
        if !concurrent && self.job(slot).current_run != run_slot {
            return None;
        }
        self.unindex(slot);
        let extra = if let Some(at) = f.ending.retry_at() {
            Some(ExtraFire { at, attempt: attempt + 1, trigger, manual: false })
        } else if f.ending.requeue() {
            Some(ExtraFire { at: Ts(scheduled_for), attempt, trigger, manual: false })
        } else {
            None
        };
        if let Some(e) = extra {
            let s = self.ensure_spec(slot);
            s.state.extra = Some(s.state.extra.map_or(e, |old| if old.at <= e.at { old } else { e }));
        }
        let j = self.job_mut(slot);
        j.version += 1;
        j.updated = f.finished_at.0;
        if concurrent {
            if let Some(s) = j.spec.as_deref_mut() {
                s.concurrent_runs = s.concurrent_runs.saturating_sub(1);
            }
        } else {
            j.current_run = NONE;
        }
        if let Some(s) = j.spec.as_deref_mut() {
            s.last_run = Some(crate::trigger::LastRun { started: f.started_at, finished: f.finished_at });
            j.next_due = s.state.next_due().map_or(NO_TIME, |t| t.0);
        }
        let idle = j.current_run == NONE && j.spec.as_ref().is_none_or(|s| s.concurrent_runs == 0);
        if j.next_due == NO_TIME && idle {
            j.done = Some(final_status(outcome));
        }
        let wake = (j.next_due != NO_TIME && !j.paused && j.done.is_none()).then_some(Ts(j.next_due));
        self.index(slot);
        match (wake, room_wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Records that a worker begins a claimed run.
    pub fn start_one(&mut self, start: &RunStart, at: Ts) -> Begun {
        match self.runs.get_mut(start.token as usize).and_then(Option::as_mut) {
            Some(run) if run.id == start.run_id.0 && run.outcome == RunOutcome::Claimed => {
                run.outcome = RunOutcome::Running;
                run.started = at.0;
                Begun::Go
            }
            // A retry (the same start again) is answered alike and changes nothing.
            Some(run) if run.id == start.run_id.0 && run.outcome == RunOutcome::Running && run.started == at.0 => {
                Begun::Go
            }
            _ => Begun::Lost,
        }
    }

    /// Gives back a claimed run that never started (one asked to stop ends `cancelled`).
    pub fn release_one(&mut self, c: &Claimed, now: Ts) {
        let run_slot = c.token as u32;
        let Some(run) = self.run(run_slot) else { return };
        if run.id != c.run_id.0 || run.outcome != RunOutcome::Claimed {
            return;
        }
        if run.cancel != 0 {
            let cancelled = RunFinish {
                token: c.token,
                limited: false,
                run_id: c.run_id,
                job_id: c.job_id,
                started_at: now,
                finished_at: now,
                ending: Ending::Cancelled { reason: "cancelled before it started".to_owned(), requeue: false },
                listener_error: None,
            };
            self.finish_one(&cancelled);
            if let Some(r) = self.runs[run_slot as usize].as_mut() {
                r.started = NO_TIME;
            }
            return;
        }
        let (prev, run_group) = (run.prev_of_job, run.group as usize);
        let gs = &mut self.groups[run_group];
        gs.running = gs.running.saturating_sub(1);
        self.remove_run(run_slot);
        let Some(slot) = self.find_job(c.job_id.0) else { return };
        let concurrent = self.job(slot).spec.as_ref().is_some_and(|s| s.allows_overlap());
        if !concurrent && self.job(slot).current_run != run_slot {
            return;
        }
        self.unindex(slot);
        let extra = ExtraFire { at: c.scheduled_for, attempt: c.attempt, trigger: c.trigger, manual: false };
        let plain = self.job(slot).spec.is_none();
        let j = self.job_mut(slot);
        j.last_run = prev;
        if concurrent {
            if let Some(s) = j.spec.as_deref_mut() {
                s.concurrent_runs = s.concurrent_runs.saturating_sub(1);
            }
        } else {
            j.current_run = NONE;
        }
        if plain {
            if j.next_due == NO_TIME {
                j.next_due = c.scheduled_for.0;
            }
        } else {
            let s = self.ensure_spec(slot);
            s.state.extra = Some(extra);
            let next = s.state.next_due().map_or(NO_TIME, |t| t.0);
            self.job_mut(slot).next_due = next;
        }
        self.index(slot);
    }

    /// Replaces a job's triggers (PATCH).
    pub fn reschedule(&mut self, slot: u32, spec: Arc<JobSpec>, state: JobState, now: Ts) -> Result<(), StoreError> {
        let running = self.job(slot).current_run != NONE;
        if !running {
            self.unindex(slot);
        }
        let next = state.next_due().map_or(NO_TIME, |t| t.0);
        let old_priority = self.job(slot).spec.as_ref().map_or(0, |s| s.spec.priority);
        let plain_now = self.job(slot).spec.is_none() && spec.is_plain_once() && state.extra.is_none();
        if plain_now {
            let j = self.job_mut(slot);
            j.when = spec.anchor.0;
            j.next_due = next;
        } else {
            let compiled = spec.compile().map_err(|e| StoreError::Internal(format!("stored schedule invalid: {e}")))?;
            let s = self.ensure_spec(slot);
            s.spec = spec.clone();
            s.compiled = compiled.into();
            s.state = state;
            let j = self.job_mut(slot);
            j.when = spec.anchor.0;
            j.next_due = next;
        }
        let g = self.job(slot).group as usize;
        match (old_priority != 0, spec.priority != 0) {
            (false, true) => self.groups[g].prioritized += 1,
            (true, false) => self.groups[g].prioritized -= 1,
            _ => {}
        }
        let j = self.job_mut(slot);
        j.version += 1;
        j.updated = now.0;
        if !running {
            self.index(slot);
        }
        Ok(())
    }

    /// Replaces a declared job's payload, pause state and fingerprint (after a reschedule).
    pub fn replace(&mut self, slot: u32, r: &crate::store::Replacement) {
        let running = self.job(slot).current_run != NONE;
        if !running {
            self.unindex(slot);
        }
        let j = self.job_mut(slot);
        j.payload = r.payload.clone();
        j.paused = r.paused;
        if let Some((_, fingerprint)) = j.spec.as_deref_mut().and_then(|s| s.key.as_mut()) {
            fingerprint.clone_from(&r.fingerprint);
        }
        if !running {
            self.index(slot);
        }
    }

    /// Pause, resume or run-now.
    pub fn control(&mut self, slot: u32, control: Control, now: Ts) {
        let running = self.job(slot).current_run != NONE;
        if !running {
            self.unindex(slot);
        }
        match control {
            Control::Pause => self.job_mut(slot).paused = true,
            Control::Resume => self.job_mut(slot).paused = false,
            Control::RunNow => {
                let s = self.ensure_spec(slot);
                s.state.extra = Some(ExtraFire { at: now, attempt: 1, trigger: None, manual: true });
                let next = s.state.next_due().map_or(NO_TIME, |t| t.0);
                let j = self.job_mut(slot);
                j.next_due = next;
                j.done = None;
            }
        }
        let j = self.job_mut(slot);
        j.version += 1;
        j.updated = now.0;
        if !running {
            self.index(slot);
        }
    }

    /// Marks a claimed or running run as asked to stop (a claimed one sees it when it starts).
    pub fn cancel(&mut self, group: &GroupKey, run: Uuid) -> Option<bool> {
        let g = *self.group_index.get(group)?;
        let slot = self.find_run(run)?;
        let r = self.runs[slot as usize].as_mut()?;
        if r.group != g {
            return None;
        }
        if !r.outcome.in_progress() {
            return Some(false);
        }
        if r.cancel == 0 {
            r.cancel = 1;
            self.pending_cancels.push(slot);
        }
        Some(true)
    }

    /// Runs in progress (executing, or waiting for a worker) asked to stop and not yet handed
    /// to the node.
    pub fn take_cancels(&mut self) -> Vec<RunId> {
        let mut out = Vec::new();
        for slot in std::mem::take(&mut self.pending_cancels) {
            if let Some(r) = self.runs.get_mut(slot as usize).and_then(Option::as_mut) {
                if r.cancel == 1 && r.outcome.in_progress() {
                    r.cancel = 2;
                    out.push(RunId(r.id));
                }
            }
        }
        out
    }
}

fn priority_of(j: &JobRec) -> i16 {
    j.spec.as_ref().map_or(0, |s| s.spec.priority)
}

/// Calls `f` for up to `limit` due entries of an urgent set, highest priority first, skipping
/// each priority level's entries that are not yet due.
fn urgent_due(set: &BTreeSet<(Reverse<i16>, i64, Uuid)>, now: i64, limit: usize, mut f: impl FnMut(i16, i64, Uuid)) {
    let mut from = Bound::Unbounded;
    let mut n = 0;
    while n < limit {
        let Some(&(Reverse(p), due, id)) = set.range((from, Bound::Unbounded)).next() else { break };
        if due <= now {
            f(p, due, id);
            n += 1;
            from = Bound::Excluded((Reverse(p), due, id));
        } else {
            // Nothing more is due at this level: go to the next lower priority.
            from = Bound::Excluded((Reverse(p), i64::MAX, Uuid::max()));
        }
    }
}
