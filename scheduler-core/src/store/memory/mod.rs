//! The in-memory store: everything in one process, lost at exit. For local development and
//! tests, and the fastest store: a claim or a completion is a few hundred nanoseconds under
//! one lock.
//!
//! Layout, chosen for memory per pending job (see BENCHMARKS.md, W3): job records live in a
//! slab; a hash table of slab indices finds them by id; each group keeps two ordered sets of
//! `(instant, id)`: `ready` (due work the claim takes from) and `held` (running or paused jobs,
//! which the list shows but the claim skips). Every unfinished job is in exactly one of them.
//! Plain one-time jobs carry no schedule record; recurring and configured jobs keep theirs
//! (spec, compiled triggers, progress) beside the record.

mod records;
mod state;

use crate::store::{AuditStore, ClaimStore, HistoryStore, JobStore, NodeStore};
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{
    Begun, Change, Claim, ClaimDue, Claimed, Control, DueSummary, Inserted, JobListQuery, JobReschedule, KeyedJob,
    NewJob, NodeInfo, NodeRecord, Pruned, RescueDead, RescuedRun, Retention, RunCursor, RunFinish, RunQuery, RunStart,
    Store, StoreError, DUE_COUNT_CAP,
};
use crate::model::{GroupKey, Job, JobId, Run, RunId};
use state::State;

/// The in-memory job store.
pub struct MemoryStore {
    state: Mutex<State>,
    nodes: Mutex<Vec<NodeRecord>>,
    audit: Mutex<Vec<crate::audit::AuditEntry>>,
    clock: Arc<dyn crate::clock::Clock>,
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
            state: Mutex::new(State::new()),
            nodes: Mutex::new(Vec::new()),
            audit: Mutex::new(Vec::new()),
            clock: Arc::new(crate::clock::SystemClock),
        }
    }

    /// Reads time (what retention removes, the instants of heartbeats, releases and the due
    /// summary) from `clock` instead of the system's: the scheduler's clock, or a
    /// [`crate::clock::ManualClock`] in tests. (What is due is judged at the instant the claim
    /// names, from the engine's clock.)
    pub fn with_clock(mut self, clock: Arc<dyn crate::clock::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Keeps (the default) or stops keeping run statistics as runs finish.
    pub fn with_stats(self, on: bool) -> Self {
        self.state.lock().stats = on.then(Default::default);
        self
    }
}

impl Store for MemoryStore {
    fn blocking(&self) -> bool {
        false
    }
}

impl JobStore for MemoryStore {
    fn job_insert(&self, new: NewJob) -> Result<Inserted, StoreError> {
        self.state.lock().insert_job(new)
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

    fn job_by_key(&self, group: &GroupKey, key: &str) -> Result<Option<Job>, StoreError> {
        let st = self.state.lock();
        let Some(&g) = st.group_index.get(group) else { return Ok(None) };
        let slot = st.groups[g as usize].keys.get(key).and_then(|&id| st.find_job(id));
        Ok(slot.map(|slot| st.to_job(slot)))
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

    fn jobs_pending(&self, product: &str) -> Result<u64, StoreError> {
        let st = self.state.lock();
        let n = st
            .group_index
            .iter()
            .filter(|(key, _)| key.product() == product)
            .map(|(_, &g)| st.groups[g as usize].ready.len() + st.groups[g as usize].held.len())
            .sum::<usize>();
        Ok(n as u64)
    }

    fn job_reschedule(&self, c: &JobReschedule) -> Result<Option<Change<Job>>, StoreError> {
        let mut st = self.state.lock();
        let Some(slot) = st.find_job_in(&c.group, c.id.0) else {
            return Ok(Some(Change::NotFound));
        };
        if let Some(done) = st.job(slot).done {
            return Ok(Some(Change::Finished(done)));
        }
        if i64::from(st.job(slot).version) != c.version {
            return Ok(None);
        }
        st.reschedule(slot, c.spec.clone(), c.state.clone(), c.now)?;
        if let Some(r) = &c.replace {
            st.replace(slot, r);
        }
        Ok(Some(Change::Done(st.to_job(slot))))
    }

    fn job_control(
        &self,
        group: &GroupKey,
        id: JobId,
        control: Control,
        now: crate::clock::Ts,
    ) -> Result<Change<Job>, StoreError> {
        let mut st = self.state.lock();
        let Some(slot) = st.find_job_in(group, id.0) else {
            return Ok(Change::NotFound);
        };
        if let Some(done) = st.job(slot).done {
            if control != Control::RunNow {
                return Ok(Change::Finished(done));
            }
        }
        st.control(slot, control, now);
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

    fn jobs_keyed(&self, groups: &[GroupKey], prefix: &str) -> Result<Vec<KeyedJob>, StoreError> {
        let st = self.state.lock();
        let mut out = Vec::new();
        for g in groups {
            let Some(&gi) = st.group_index.get(g) else { continue };
            for (key, id) in &st.groups[gi as usize].keys {
                if !key.starts_with(prefix) {
                    continue;
                }
                if st.find_job(*id).is_some_and(|slot| st.job(slot).done.is_none()) {
                    out.push(KeyedJob { group: g.clone(), id: JobId(*id), key: key.clone() });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn due_summary(&self, groups: &[GroupKey]) -> Result<(Vec<DueSummary>, crate::clock::Ts), StoreError> {
        let st = self.state.lock();
        let now = self.clock.now();
        let out = st
            .groups
            .iter()
            .filter(|g| groups.contains(&g.key))
            .filter_map(|g| {
                let due = g.ready.iter().take_while(|(d, _)| *d <= now.0).take(DUE_COUNT_CAP as usize).count() as u64;
                let oldest = g.ready.first().map(|k| crate::clock::Ts(k.0))?;
                (due > 0).then(|| DueSummary { group: g.key.clone(), due, oldest })
            })
            .collect();
        Ok((out, now))
    }
}

impl ClaimStore for MemoryStore {
    fn runs_claim_due(&self, c: &ClaimDue) -> Result<Claim, StoreError> {
        let mut st = self.state.lock();
        if *st.node != *c.node {
            st.node = c.node.clone();
        }
        st.set_limits(&c.max_running);
        let runs = st.claim(c.now, c.limit);
        Ok(Claim { runs, next_due: st.next_ready(), store_now: c.now, events: std::mem::take(&mut st.events) })
    }

    fn runs_start(&self, runs: &[RunStart], at: crate::clock::Ts) -> Result<Vec<Begun>, StoreError> {
        let mut st = self.state.lock();
        Ok(runs.iter().map(|r| st.start_one(r, at)).collect())
    }

    fn runs_started(&self, _runs: &[(RunId, crate::clock::Ts)]) -> Result<(), StoreError> {
        Ok(()) // `runs_start` wrote the records already
    }

    fn runs_finish(&self, batch: &[RunFinish]) -> Result<Option<crate::clock::Ts>, StoreError> {
        let mut st = self.state.lock();
        Ok(batch.iter().filter_map(|f| st.finish_one(f)).min())
    }

    fn runs_release(&self, runs: &[Claimed]) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut st = self.state.lock();
        for c in runs {
            st.release_one(c, now);
        }
        Ok(())
    }

    fn run_cancel(&self, group: &GroupKey, run: RunId) -> Result<Option<bool>, StoreError> {
        Ok(self.state.lock().cancel(group, run.0))
    }

    fn runs_cancel_requested(&self, _node: &str) -> Result<Vec<RunId>, StoreError> {
        Ok(self.state.lock().take_cancels())
    }
}

impl HistoryStore for MemoryStore {
    fn job_runs(&self, group: &GroupKey, id: JobId, limit: usize) -> Result<Option<Vec<Run>>, StoreError> {
        let st = self.state.lock();
        let Some(slot) = st.find_job_in(group, id.0) else {
            return Ok(None);
        };
        let slots = st.job_run_slots(slot, limit);
        Ok(Some(slots.into_iter().filter_map(|s| st.run(s).map(|r| st.to_run(r))).collect()))
    }

    fn runs_query(&self, q: &RunQuery) -> Result<Vec<(RunCursor, Run)>, StoreError> {
        let st = self.state.lock();
        // A job's runs are a chain; everything else is a scan keeping the newest `limit`.
        let slots: Vec<u32> = match q.job.and_then(|j| st.find_job(j.0)) {
            Some(slot) => st.job_run_slots(slot, usize::MAX),
            None if q.job.is_some() => Vec::new(),
            None => (0..st.runs.len() as u32).collect(),
        };
        type Key = (Option<crate::clock::Ts>, i64);
        let mut newest: std::collections::BinaryHeap<std::cmp::Reverse<(Key, u32)>> =
            std::collections::BinaryHeap::with_capacity(q.limit + 1);
        for slot in slots {
            let Some(r) = st.run(slot) else { continue };
            let run = st.to_run(r);
            let c = q.cursor_of(i64::try_from(r.seq).unwrap_or(i64::MAX), &run);
            if !q.past_before(c) || !q.matches(&run) {
                continue;
            }
            newest.push(std::cmp::Reverse(((c.at, c.seq), slot)));
            if newest.len() > q.limit {
                newest.pop();
            }
        }
        let mut page: Vec<(Key, u32)> = newest.into_iter().map(|r| r.0).collect();
        page.sort_by_key(|p| std::cmp::Reverse(p.0));
        Ok(page
            .into_iter()
            .filter_map(|((at, seq), slot)| st.run(slot).map(|r| (RunCursor { seq, at }, st.to_run(r))))
            .collect())
    }

    fn run_get(&self, id: RunId) -> Result<Option<Run>, StoreError> {
        let st = self.state.lock();
        Ok(st.find_run(id.0).and_then(|s| st.run(s)).map(|r| st.to_run(r)))
    }

    fn stats(&self, q: &crate::stats::StatsQuery) -> Result<Vec<crate::stats::StatRow>, StoreError> {
        use crate::stats::{day_of, hour_of, StatRow};
        let st = self.state.lock();
        let Some(stats) = &st.stats else { return Ok(Vec::new()) };
        let from = hour_of(q.from).0;
        let mut agg: hashbrown::HashMap<(i64, u16, u8, u8, u16), u64> = hashbrown::HashMap::new();
        for (k, n) in stats {
            let g = &st.groups[k.group as usize].key;
            if k.hour < from
                || q.to.is_some_and(|t| k.hour >= t.0)
                || q.product.as_deref().is_some_and(|p| p != g.product())
                || q.job_group.as_deref().is_some_and(|j| j != g.job_group())
            {
                continue;
            }
            let period = if q.by_day { day_of(crate::clock::Ts(k.hour)).0 } else { q.from.0 };
            *agg.entry((period, k.group, k.outcome, k.measure, k.bucket)).or_default() += n;
        }
        Ok(agg
            .into_iter()
            .map(|((period, g, outcome, measure, bucket), count)| StatRow {
                period: crate::clock::Ts(period),
                group: st.groups[g as usize].key.clone(),
                outcome: records::outcome_of(outcome),
                measure,
                bucket,
                count,
            })
            .collect())
    }

    fn prune(&self, r: &Retention) -> Result<Pruned, StoreError> {
        let mut st = self.state.lock();
        Ok(st.prune(r, self.clock.now()))
    }
}

impl AuditStore for MemoryStore {
    fn audit_append(&self, at: crate::clock::Ts, change: crate::audit::Change) -> Result<(), StoreError> {
        let mut trail = self.audit.lock();
        let seq = trail.last().map_or(1, |e| e.seq + 1);
        trail.push(crate::audit::AuditEntry { seq, at, change });
        Ok(())
    }

    fn audit_list(&self, q: &crate::audit::AuditQuery) -> Result<Vec<crate::audit::AuditEntry>, StoreError> {
        let trail = self.audit.lock();
        Ok(trail.iter().rev().filter(|e| q.matches(e)).take(q.limit).cloned().collect())
    }
}

impl NodeStore for MemoryStore {
    // One process is the only node of a memory store: it is live while it runs, and no other
    // node's runs can be in it, so there is nothing to rescue.

    fn node_register(&self, node: &NodeInfo) -> Result<(), StoreError> {
        let now = self.clock.now();
        let record =
            NodeRecord { info: node.clone(), started_at: now, heartbeat_at: now, stopped_at: None, live: true };
        let mut nodes = self.nodes.lock();
        match nodes.iter_mut().find(|n| n.info.id == node.id) {
            Some(n) => *n = record,
            None => nodes.push(record),
        }
        Ok(())
    }

    fn node_heartbeat(&self, node: &str, _gap: std::time::Duration) -> Result<bool, StoreError> {
        let now = self.clock.now();
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
        let now = self.clock.now();
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
