//! What the engine's threads, the cluster's background threads and the scheduler facade
//! share: the store, the job types, the clock, this node's identity, the wake signal, metrics,
//! limits and counters. It sits below the facade: workers reach everything they need here
//! (a follow-up job a run schedules is created through [`Runtime::create`], not the facade).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::clock::Clock;
use crate::engine::cancel::CancelBoard;
use crate::engine::wake::Wake;
use crate::model::GroupKey;
use crate::plugin::Registry;
use crate::store::Store;

/// What the engine's threads, the cluster's threads and the facade share.
pub(crate) struct Runtime {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) clock: Arc<dyn Clock>,
    /// This node's identity in the store; a fresh one after the cluster counted it as dead.
    node: parking_lot::RwLock<Arc<str>>,
    /// The product/groups this node has plugins for (what it may claim).
    pub(crate) groups: Arc<[GroupKey]>,
    /// Per-group limits of runs in progress across the cluster.
    pub(crate) max_running: Arc<[(GroupKey, u32)]>,
    /// Prometheus metrics, unless switched off.
    pub(crate) metrics: Option<Arc<crate::metrics::Metrics>>,
    pub(crate) wake: Wake,
    pub(crate) counters: Counters,
    /// How long a silent node still counts as live.
    pub(crate) dead_after: Duration,
    /// The workers' cancellation flags, by the run they execute (set when the engine starts).
    pub(crate) board: OnceLock<Arc<CancelBoard>>,
    /// Payload limits.
    pub(crate) limits: crate::limits::Limits,
    /// The per-product quota of unfinished jobs (API creates).
    pub(crate) quota: crate::limits::Quota,
    stopping: AtomicBool,
}

/// Running totals of what the engine did since start.
#[derive(Debug, Default)]
pub struct Counters {
    /// Runs claimed from the store.
    pub claimed: AtomicU64,
    /// Runs whose outcome the store has recorded.
    pub recorded: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineStats {
    /// Runs claimed from the store.
    pub claimed: u64,
    /// Runs whose outcome the store has recorded.
    pub recorded: u64,
}

impl Runtime {
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// This node's current identity.
    pub(crate) fn node(&self) -> Arc<str> {
        self.node.read().clone()
    }

    /// Takes a fresh identity (after the cluster counted the old one as dead).
    pub(crate) fn set_node(&self, id: Arc<str>) {
        *self.node.write() = id;
    }

    /// The runtime of a node about to start, over `store` with the job types in `registry`.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
        config: RuntimeConfig<'_>,
    ) -> Runtime {
        let metrics = config.metrics.then(|| Arc::new(crate::metrics::Metrics::new(&registry, config.workers)));
        // Every call of a store that does I/O is timed and its failures counted, in one place.
        let store: Arc<dyn Store> = match &metrics {
            Some(m) if store.blocking() => Arc::new(crate::store::Instrumented::new(store, m.clone())),
            _ => store,
        };
        Runtime {
            store,
            registry: registry.clone(),
            clock,
            node: parking_lot::RwLock::new(Arc::from(config.node)),
            groups: registry.job_types().iter().map(|e| e.group.clone()).collect(),
            max_running: config.max_running.iter().cloned().collect(),
            metrics,
            wake: Wake::default(),
            counters: Counters::default(),
            dead_after: config.dead_after,
            board: OnceLock::new(),
            limits: config.limits,
            quota: crate::limits::Quota::new(config.limits.pending_per_product),
            stopping: AtomicBool::new(false),
        }
    }

    /// From now on the node takes no new work.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }
}

/// The settings a runtime takes from the node's configuration.
pub(crate) struct RuntimeConfig<'a> {
    pub(crate) node: &'a str,
    pub(crate) max_running: &'a [(GroupKey, u32)],
    pub(crate) metrics: bool,
    pub(crate) workers: usize,
    pub(crate) dead_after: Duration,
    pub(crate) limits: crate::limits::Limits,
}
