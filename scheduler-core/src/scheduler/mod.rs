//! The scheduler as its callers see it: create, read, reschedule, control and delete jobs, read
//! runs, and stop. It validates, talks to the store, and wakes the engine when new work is due
//! soon. Job operations are in `jobs.rs`.
//!
//! All methods are synchronous. With a store that blocks on I/O ([`Scheduler::store_blocking`])
//! async callers run them on a blocking pool.

mod declared;
mod history;
mod jobs;

pub use declared::{ApplyReport, DECLARED_KEY_PREFIX};

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::clock::{Clock, Ts};
use crate::cluster::{ClusterConfig, Heartbeat, Maintenance};
use crate::engine::runtime::{Runtime, RuntimeConfig};
pub use crate::engine::{Counters, Created, EngineStats};
use crate::engine::{Engine, EngineConfig};
use crate::error::CoreError;
use crate::model::{GroupKey, JobId};
use crate::plugin::{JobTypeEntry, Registry};
use crate::request::CreateRequest;
use crate::store::{NewJob, NodeInfo, NodeRecord, Store};

/// How to run the scheduler.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// This node's id, recorded with every run it executes: unique per process start.
    pub node: String,
    /// The host it runs on.
    pub host: String,
    /// The engine's settings.
    pub engine: EngineConfig,
    /// Heartbeat and rescue settings.
    pub cluster: ClusterConfig,
    /// Product/groups whose runs in progress across the cluster may not exceed a number.
    pub max_running: Vec<(GroupKey, u32)>,
    /// Pruning of old history (none: keep everything).
    pub retention: Option<crate::retention::RetentionConfig>,
    /// Keep Prometheus metrics.
    pub metrics: bool,
    /// Payload size and depth, and the per-product quota of unfinished jobs.
    pub limits: crate::limits::Limits,
}

impl SchedulerConfig {
    /// Defaults with this node id.
    pub fn new(node: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            host: String::new(),
            engine: EngineConfig::default(),
            cluster: ClusterConfig::default(),
            max_running: Vec::new(),
            retention: None,
            metrics: true,
            limits: crate::limits::Limits::default(),
        }
    }
}

/// The running scheduler.
pub struct Scheduler {
    rt: Arc<Runtime>,
    engine: Mutex<Option<Engine>>,
    maintenance: Mutex<Option<Maintenance>>,
    heartbeat: Mutex<Option<Heartbeat>>,
    pruner: Mutex<Option<crate::retention::Pruner>>,
}

impl Scheduler {
    /// Registers this node with the store and starts the engine over it with the job types in
    /// `registry`. Fails when the store cannot record the node.
    pub fn start(
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
        config: SchedulerConfig,
    ) -> Result<Scheduler, CoreError> {
        let rt = Arc::new(Runtime::new(
            store,
            registry,
            clock,
            RuntimeConfig {
                node: &config.node,
                max_running: &config.max_running,
                metrics: config.metrics,
                workers: config.engine.workers,
                dead_after: config.cluster.dead_after(),
                limits: config.limits,
            },
        ));
        let node = NodeInfo { id: rt.node(), host: config.host.clone(), groups: rt.groups.to_vec() };
        rt.store.node_register(&node)?;
        let engine = Engine::start(rt.clone(), &config.engine);
        // Heartbeats start before the first claim completes and stop after the last run.
        let heartbeat = Heartbeat::start(rt.clone(), node, config.cluster.clone());
        let maintenance = Maintenance::start(rt.clone(), config.cluster.clone());
        let pruner = config.retention.map(|r| crate::retention::Pruner::start(rt.store.clone(), r));
        Ok(Scheduler {
            rt,
            engine: Mutex::new(Some(engine)),
            maintenance: Mutex::new(Some(maintenance)),
            heartbeat: Mutex::new(Some(heartbeat)),
            pruner: Mutex::new(pruner),
        })
    }

    /// Whether this node can do its work: the store reachable with a current schema, and at
    /// least one job type loaded. Each check with its reason when it fails.
    pub fn readiness(&self) -> Vec<(&'static str, Result<(), String>)> {
        let store =
            if self.rt.is_stopping() { Err("the node is shutting down".to_owned()) } else { self.rt.store.readiness() };
        let plugins = if self.rt.registry.job_types().is_empty() {
            Err("no plugin registers a job type (see --plugins)".to_owned())
        } else {
            Ok(())
        };
        vec![("store", store), ("plugins", plugins)]
    }

    /// The Prometheus text exposition (none when metrics are off). Reads depth and lag from
    /// the store.
    pub fn metrics_text(&self) -> Option<String> {
        let m = self.rt.metrics.as_deref()?;
        let running = self.engine.lock().as_ref().map_or(0, |e| e.executing());
        m.running.set(i64::try_from(running).unwrap_or(i64::MAX));
        let (due, now) = match self.rt.store.due_summary(&self.rt.groups) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "reading depth and lag for metrics failed");
                (Vec::new(), self.rt.clock.now())
            }
        };
        Some(m.render(&due, now))
    }

    /// What the loaded plugins registered.
    pub fn registry(&self) -> &Registry {
        &self.rt.registry
    }

    /// True when store calls may block on I/O.
    pub fn store_blocking(&self) -> bool {
        self.rt.store.blocking()
    }

    /// This node's name (a fresh one after the cluster counted this node as dead).
    pub fn node(&self) -> Arc<str> {
        self.rt.node()
    }

    /// The nodes the store knows (for a memory store, this one).
    pub fn nodes(&self) -> Result<Vec<NodeRecord>, CoreError> {
        Ok(self.rt.store.nodes_list(self.rt.dead_after)?)
    }

    /// What the engine did since start.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            claimed: self.rt.counters.claimed.load(Ordering::Relaxed),
            recorded: self.rt.counters.recorded.load(Ordering::Relaxed),
        }
    }

    /// The current instant on the engine's clock.
    pub fn now(&self) -> Ts {
        self.rt.clock.now()
    }

    /// Stops taking new work, gives back queued runs, waits for running ones up to `grace`,
    /// then asks them to stop and waits up to `cancel_grace` more. Blocks; call once.
    /// Returns how many runs were still executing when it stopped waiting.
    pub fn shutdown(&self, grace: Duration, cancel_grace: Duration) -> usize {
        self.rt.stop();
        let left = match self.engine.lock().take() {
            Some(engine) => engine.shutdown(&self.rt, grace, cancel_grace),
            None => 0,
        };
        if let Some(p) = self.pruner.lock().take() {
            p.stop();
        }
        // Heartbeats stop last, and only when nothing of ours is still running: runs left
        // executing stay owned by a live-looking node until this process is gone, then the
        // cluster resolves them.
        if let Some(m) = self.maintenance.lock().take() {
            m.stop();
        }
        if let Some(h) = self.heartbeat.lock().take() {
            h.stop();
        }
        if left == 0 {
            if let Err(e) = self.rt.store.node_stop(&self.rt.node()) {
                tracing::warn!(error = %e, "could not record this node as stopped");
            }
        }
        left
    }

    /// Writes what the store queued without waiting (audit entries); call after the last
    /// request has been answered.
    pub fn flush_writes(&self) {
        self.rt.store.flush();
    }

    /// Creates many jobs of one group in one store call (imports, benchmarks), with the checks
    /// a single create has (payload size and the job type's validation, overlap, the product's
    /// quota): nothing is inserted if one is refused. Requests carry no idempotency key here.
    pub fn jobs_create_many(
        &self,
        product: &str,
        job_group: &str,
        jobs: Vec<CreateRequest>,
    ) -> Result<Vec<JobId>, CoreError> {
        if self.rt.is_stopping() {
            return Err(CoreError::ShuttingDown);
        }
        let entry = self.entry(product, job_group)?;
        let mut earliest = Ts::MAX;
        let mut batch = Vec::with_capacity(jobs.len());
        for req in jobs {
            let p = self.rt.prepare(entry, req)?;
            if let (false, Some(t)) = (p.paused, p.state.next_due()) {
                earliest = earliest.min(t);
            }
            batch.push(NewJob {
                id: p.id.unwrap_or_default(),
                group: entry.group.clone(),
                spec: p.spec,
                state: p.state,
                payload: p.payload,
                paused: p.paused,
                now: p.now,
                idempotency: None,
            });
        }
        let n = batch.len() as u64;
        let ids = batch.iter().map(|j| j.id).collect();
        self.rt.quota.admit_many(self.rt.store.as_ref(), entry.group.product(), n)?;
        if let Err(e) = self.rt.store.jobs_insert_many(batch) {
            self.rt.quota.release_many(entry.group.product(), n);
            return Err(e.into());
        }
        if earliest != Ts::MAX {
            self.rt.wake.due_at(earliest);
        }
        Ok(ids)
    }

    fn entry(&self, product: &str, job_group: &str) -> Result<&Arc<JobTypeEntry>, CoreError> {
        self.rt.registry.lookup(product, job_group).ok_or_else(|| CoreError::GroupNotFound {
            product: product.chars().take(64).collect(),
            job_group: job_group.chars().take(64).collect(),
        })
    }
}
