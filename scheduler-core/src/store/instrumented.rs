//! One wrapper that measures every store call: how long it took and whether it failed, by
//! operation (the method's name). The runtime wraps a store that does I/O in it when metrics
//! are on, so no caller counts store errors itself. The memory store is not wrapped: its calls
//! cannot fail and hold a lock for microseconds, and timing them (one call per run) cost about
//! a tenth of its W1 throughput, measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::clock::Ts;
use crate::model::{GroupKey, Job, JobId, Run, RunId};

/// The label of each store operation in the metrics, in the order the calls below name them:
/// the method's name, except the operations the metrics named before by what they do (`claim`,
/// `start`, `started`, `finish`, `heartbeat`, `rescue`), whose labels dashboards already use.
pub const OPERATIONS: [&str; 30] = [
    "job_insert",
    "jobs_insert_many",
    "job_get",
    "job_by_key",
    "jobs_list",
    "jobs_pending",
    "job_reschedule",
    "job_control",
    "job_delete",
    "jobs_keyed",
    "due_summary",
    "claim",
    "start",
    "started",
    "finish",
    "runs_release",
    "run_cancel",
    "runs_cancel_requested",
    "job_runs",
    "runs_query",
    "run_get",
    "stats",
    "prune",
    "audit_append",
    "audit_list",
    "node_register",
    "heartbeat",
    "node_stop",
    "nodes_list",
    "rescue",
];

/// Where the figures of store calls go (the service's metrics).
pub trait Observe: Send + Sync + 'static {
    /// A call of `OPERATIONS[operation]` took this long.
    fn store_call_took(&self, operation: usize, took: Duration);
    /// A call of `OPERATIONS[operation]` failed.
    fn store_call_failed(&self, operation: usize);
}

/// A store whose calls are timed and whose failures are counted.
pub struct Instrumented {
    inner: Arc<dyn Store>,
    observer: Arc<dyn Observe>,
}

impl Instrumented {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>, observer: Arc<dyn Observe>) -> Instrumented {
        Instrumented { inner, observer }
    }

    fn call<T>(&self, op: usize, f: impl FnOnce(&dyn Store) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let began = Instant::now();
        let r = f(self.inner.as_ref());
        self.observer.store_call_took(op, began.elapsed());
        if r.is_err() {
            self.observer.store_call_failed(op);
        }
        r
    }
}

impl JobStore for Instrumented {
    fn job_insert(&self, new: NewJob) -> Result<Inserted, StoreError> {
        self.call(0, |s| s.job_insert(new))
    }

    fn jobs_insert_many(&self, new: Vec<NewJob>) -> Result<usize, StoreError> {
        self.call(1, |s| s.jobs_insert_many(new))
    }

    fn job_get(&self, group: &GroupKey, id: JobId) -> Result<Option<Job>, StoreError> {
        self.call(2, |s| s.job_get(group, id))
    }

    fn job_by_key(&self, group: &GroupKey, key: &str) -> Result<Option<Job>, StoreError> {
        self.call(3, |s| s.job_by_key(group, key))
    }

    fn jobs_list(&self, query: &JobListQuery) -> Result<Vec<Job>, StoreError> {
        self.call(4, |s| s.jobs_list(query))
    }

    fn jobs_pending(&self, product: &str) -> Result<u64, StoreError> {
        self.call(5, |s| s.jobs_pending(product))
    }

    fn job_reschedule(&self, change: &JobReschedule) -> Result<Option<Change<Job>>, StoreError> {
        self.call(6, |s| s.job_reschedule(change))
    }

    fn job_control(&self, group: &GroupKey, id: JobId, control: Control, now: Ts) -> Result<Change<Job>, StoreError> {
        self.call(7, |s| s.job_control(group, id, control, now))
    }

    fn job_delete(&self, group: &GroupKey, id: JobId) -> Result<Change<()>, StoreError> {
        self.call(8, |s| s.job_delete(group, id))
    }

    fn jobs_keyed(&self, groups: &[GroupKey], prefix: &str) -> Result<Vec<KeyedJob>, StoreError> {
        self.call(9, |s| s.jobs_keyed(groups, prefix))
    }

    fn due_summary(&self, groups: &[GroupKey]) -> Result<(Vec<DueSummary>, Ts), StoreError> {
        self.call(10, |s| s.due_summary(groups))
    }
}

impl ClaimStore for Instrumented {
    fn runs_claim_due(&self, claim: &ClaimDue) -> Result<Claim, StoreError> {
        self.call(11, |s| s.runs_claim_due(claim))
    }

    fn runs_start(&self, runs: &[RunStart], at: Ts) -> Result<Vec<Begun>, StoreError> {
        self.call(12, |s| s.runs_start(runs, at))
    }

    fn runs_started(&self, runs: &[(RunId, Ts)]) -> Result<(), StoreError> {
        self.call(13, |s| s.runs_started(runs))
    }

    fn runs_finish(&self, batch: &[RunFinish]) -> Result<Option<Ts>, StoreError> {
        self.call(14, |s| s.runs_finish(batch))
    }

    fn runs_release(&self, runs: &[Claimed]) -> Result<(), StoreError> {
        self.call(15, |s| s.runs_release(runs))
    }

    fn run_cancel(&self, group: &GroupKey, run: RunId) -> Result<Option<bool>, StoreError> {
        self.call(16, |s| s.run_cancel(group, run))
    }

    fn runs_cancel_requested(&self, node: &str) -> Result<Vec<RunId>, StoreError> {
        self.call(17, |s| s.runs_cancel_requested(node))
    }
}

impl HistoryStore for Instrumented {
    fn job_runs(&self, group: &GroupKey, id: JobId, limit: usize) -> Result<Option<Vec<Run>>, StoreError> {
        self.call(18, |s| s.job_runs(group, id, limit))
    }

    fn runs_query(&self, query: &RunQuery) -> Result<Vec<(RunCursor, Run)>, StoreError> {
        self.call(19, |s| s.runs_query(query))
    }

    fn run_get(&self, id: RunId) -> Result<Option<Run>, StoreError> {
        self.call(20, |s| s.run_get(id))
    }

    fn stats(&self, query: &crate::stats::StatsQuery) -> Result<Vec<crate::stats::StatRow>, StoreError> {
        self.call(21, |s| s.stats(query))
    }

    fn prune(&self, retention: &Retention) -> Result<Pruned, StoreError> {
        self.call(22, |s| s.prune(retention))
    }
}

impl AuditStore for Instrumented {
    fn audit_append(&self, at: Ts, change: crate::audit::Change) -> Result<(), StoreError> {
        self.call(23, |s| s.audit_append(at, change))
    }

    fn audit_list(&self, query: &crate::audit::AuditQuery) -> Result<Vec<crate::audit::AuditEntry>, StoreError> {
        self.call(24, |s| s.audit_list(query))
    }
}

impl NodeStore for Instrumented {
    fn node_register(&self, node: &NodeInfo) -> Result<(), StoreError> {
        self.call(25, |s| s.node_register(node))
    }

    fn node_heartbeat(&self, node: &str, gap: std::time::Duration) -> Result<bool, StoreError> {
        self.call(26, |s| s.node_heartbeat(node, gap))
    }

    fn node_stop(&self, node: &str) -> Result<(), StoreError> {
        self.call(27, |s| s.node_stop(node))
    }

    fn nodes_list(&self, dead_after: std::time::Duration) -> Result<Vec<NodeRecord>, StoreError> {
        self.call(28, |s| s.nodes_list(dead_after))
    }

    fn runs_rescue(&self, rescue: &RescueDead) -> Result<Vec<RescuedRun>, StoreError> {
        self.call(29, |s| s.runs_rescue(rescue))
    }
}

impl Store for Instrumented {
    fn blocking(&self) -> bool {
        self.inner.blocking()
    }

    fn readiness(&self) -> Result<(), String> {
        self.inner.readiness()
    }

    fn flush(&self) {
        self.inner.flush();
    }
}
