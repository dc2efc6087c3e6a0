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

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use abi_stable::std_types::RStr;
use parking_lot::Mutex;
use serde_json::Value;

use crate::clock::{Clock, Ts};
use crate::cluster::{ClusterConfig, Heartbeat, Maintenance};
use crate::engine::cancel::CancelBoard;
use crate::engine::wake::Wake;
use crate::engine::{Engine, EngineConfig};
use crate::error::CoreError;
use crate::model::{GroupKey, Job, JobId};
use crate::plugin::{JobTypeEntry, Registry};
use crate::request::{self, CreateRequest};
use crate::store::{Inserted, NewJob, NodeInfo, NodeRecord, Store};
use crate::trigger::{ExtraFire, JobSpec, JobState, RetryPolicy};

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

/// What the engine's threads and the API share.
pub(crate) struct Shared {
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

/// What a create did.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// A new job.
    New(Job),
    /// The idempotency key was used before with the same request: the job it made.
    Existing(Job),
}

/// A validated job, ready for the store.
pub(crate) struct Prepared {
    pub(crate) spec: Arc<JobSpec>,
    pub(crate) state: JobState,
    pub(crate) payload: Arc<str>,
    pub(crate) paused: bool,
    pub(crate) id: Option<JobId>,
    pub(crate) now: Ts,
}

impl Created {
    /// The job, new or existing.
    pub fn job(&self) -> &Job {
        match self {
            Created::New(j) | Created::Existing(j) => j,
        }
    }
}

impl Shared {
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

    fn validate(entry: &JobTypeEntry, payload: &str) -> Result<(), CoreError> {
        entry
            .plugin
            .instance
            .validate(entry.index, RStr::from_str(payload))
            .into_result()
            .map_err(|m| CoreError::PayloadRejected { message: m.into_string() })
    }

    /// The retry policy runs of this job type get when the job names none.
    pub(crate) fn default_retry(entry: &JobTypeEntry) -> Option<RetryPolicy> {
        let attempts = entry.options.max_attempts.unwrap_or(1);
        (attempts > 1).then(|| RetryPolicy {
            attempts: std::num::NonZeroU32::new(attempts),
            backoff: crate::trigger::Backoff {
                base_ms: entry.options.retry_base_ms.unwrap_or(1_000),
                ..crate::trigger::Backoff::default()
            },
        })
    }

    /// Validates a create request against its job type and computes the job's first state.
    pub(crate) fn prepare(&self, entry: &JobTypeEntry, req: CreateRequest) -> Result<Prepared, CoreError> {
        crate::limits::check_payload_size(&req.payload, &req.spec.triggers, self.limits.payload_bytes)?;
        Self::validate(entry, &req.payload)?;
        if req.spec.overlap == crate::trigger::OverlapPolicy::Allow && !entry.options.allow_concurrent {
            return Err(CoreError::InvalidField {
                field: "overlap".into(),
                reason: format!("\"allow\" needs a job type that allows concurrent runs, and {} does not", entry.name),
            });
        }
        let now = self.clock.now();
        let compiled = req.spec.compile()?;
        let mut state = req.spec.initial_state(&compiled, now);
        // Run now, beside a schedule whose first fire is later (a one-time `now` job is due now
        // already).
        if req.run_now && state.next_due().is_none_or(|d| d > now) {
            state.extra = Some(ExtraFire { at: now, attempt: 1, trigger: None, manual: true });
        }
        Ok(Prepared {
            spec: Arc::new(req.spec),
            state,
            payload: Arc::from(req.payload),
            paused: req.paused,
            id: req.id,
            now,
        })
    }

    /// Inserts a prepared job under an optional idempotency key and fingerprint, waking the
    /// engine for a new job's first fire.
    pub(crate) fn insert_prepared(
        &self,
        entry: &JobTypeEntry,
        p: &Prepared,
        key: Option<(String, String)>,
    ) -> Result<Inserted, CoreError> {
        let idempotency = match (key, p.id) {
            (Some((key, fingerprint)), _) => Some(crate::store::Idempotency { key, fingerprint }),
            (None, Some(id)) => Some(crate::store::Idempotency { key: id.to_string(), fingerprint: String::new() }),
            (None, None) => None,
        };
        let inserted = self.store.job_insert(NewJob {
            id: p.id.unwrap_or_default(),
            group: entry.group.clone(),
            spec: p.spec.clone(),
            state: p.state.clone(),
            payload: p.payload.clone(),
            paused: p.paused,
            now: p.now,
            idempotency,
        })?;
        if let Inserted::Created(job) = &inserted {
            if let (false, Some(t)) = (job.paused, p.state.next_due()) {
                self.wake.due_at(t);
            }
        }
        Ok(inserted)
    }

    /// Validates and inserts a job; `fingerprint` makes it idempotent under `key`.
    fn insert(
        &self,
        entry: &JobTypeEntry,
        req: CreateRequest,
        key: Option<(String, String)>,
    ) -> Result<Created, CoreError> {
        let p = self.prepare(entry, req)?;
        let shown_key = key.as_ref().map(|(k, _)| k.chars().take(200).collect::<String>());
        match self.insert_prepared(entry, &p, key)? {
            Inserted::Created(job) => Ok(Created::New(job)),
            Inserted::Existing(job) => Ok(Created::Existing(job)),
            Inserted::Conflict(job) => Err(CoreError::Conflict {
                reason: format!(
                    "job `{}` was created under the key `{}` with a different request; an idempotency key (or job id) \
                     stands for one request",
                    job.id,
                    shown_key.unwrap_or_default()
                ),
            }),
        }
    }

    /// A job scheduled by a running job through its context.
    pub(crate) fn create_follow_up(&self, group: &GroupKey, when_ms: i64, payload: &str) -> Result<Job, CoreError> {
        let entry = self.registry.get(group).ok_or_else(|| CoreError::GroupNotFound {
            product: group.product().to_owned(),
            job_group: group.job_group().to_owned(),
        })?;
        let value: Value = crate::json::parse(payload.as_bytes())
            .map_err(|e| CoreError::InvalidField { field: "payload".into(), reason: e.to_string() })?;
        if !value.is_object() {
            return Err(CoreError::InvalidField { field: "payload".into(), reason: "must be a JSON object".into() });
        }
        let when = Ts::from_millis(when_ms);
        request::check_instant("when", when)?;
        // Also refuses a NUL in any string or key.
        crate::limits::check_body(&value, self.limits.payload_depth)?;
        let created = self.insert(entry, CreateRequest::once(when, payload), None)?;
        Ok(created.job().clone())
    }
}

/// The running scheduler.
pub struct Scheduler {
    shared: Arc<Shared>,
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
        let shared = Arc::new(Shared {
            store,
            registry: registry.clone(),
            clock,
            node: parking_lot::RwLock::new(Arc::from(config.node.as_str())),
            groups: registry.job_types().iter().map(|e| e.group.clone()).collect(),
            max_running: config.max_running.iter().cloned().collect(),
            metrics: config.metrics.then(|| Arc::new(crate::metrics::Metrics::new(&registry, config.engine.workers))),
            wake: Wake::default(),
            counters: Counters::default(),
            dead_after: config.cluster.dead_after(),
            board: OnceLock::new(),
            limits: config.limits,
            quota: crate::limits::Quota::new(config.limits.pending_per_product),
            stopping: AtomicBool::new(false),
        });
        let node = NodeInfo { id: shared.node(), host: config.host.clone(), groups: shared.groups.to_vec() };
        shared.store.node_register(&node)?;
        let engine = Engine::start(shared.clone(), &config.engine);
        // Heartbeats start before the first claim completes and stop after the last run.
        let heartbeat = Heartbeat::start(shared.clone(), node, config.cluster.clone());
        let maintenance = Maintenance::start(shared.clone(), config.cluster.clone());
        let pruner =
            config.retention.map(|r| crate::retention::Pruner::start(shared.store.clone(), shared.metrics.clone(), r));
        Ok(Scheduler {
            shared,
            engine: Mutex::new(Some(engine)),
            maintenance: Mutex::new(Some(maintenance)),
            heartbeat: Mutex::new(Some(heartbeat)),
            pruner: Mutex::new(pruner),
        })
    }

    /// Whether this node can do its work: the store reachable with a current schema, and at
    /// least one job type loaded. Each check with its reason when it fails.
    pub fn readiness(&self) -> Vec<(&'static str, Result<(), String>)> {
        let store = if self.shared.is_stopping() {
            Err("the node is shutting down".to_owned())
        } else {
            self.shared.store.readiness()
        };
        let plugins = if self.shared.registry.job_types().is_empty() {
            Err("no plugin registers a job type (see --plugins)".to_owned())
        } else {
            Ok(())
        };
        vec![("store", store), ("plugins", plugins)]
    }

    /// The Prometheus text exposition (none when metrics are off). Reads depth and lag from
    /// the store.
    pub fn metrics_text(&self) -> Option<String> {
        let m = self.shared.metrics.as_deref()?;
        let running = self.engine.lock().as_ref().map_or(0, |e| e.executing());
        m.running.set(i64::try_from(running).unwrap_or(i64::MAX));
        let (due, now) = match self.shared.store.due_summary(&self.shared.groups) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "reading depth and lag for metrics failed");
                m.store_error("due_summary");
                (Vec::new(), self.shared.clock.now())
            }
        };
        Some(m.render(&due, now))
    }

    /// What the loaded plugins registered.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// True when store calls may block on I/O.
    pub fn store_blocking(&self) -> bool {
        self.shared.store.blocking()
    }

    /// This node's name (a fresh one after the cluster counted this node as dead).
    pub fn node(&self) -> Arc<str> {
        self.shared.node()
    }

    /// The nodes the store knows (for a memory store, this one).
    pub fn nodes(&self) -> Result<Vec<NodeRecord>, CoreError> {
        Ok(self.shared.store.nodes_list(self.shared.dead_after)?)
    }

    /// What the engine did since start.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            claimed: self.shared.counters.claimed.load(Ordering::Relaxed),
            recorded: self.shared.counters.recorded.load(Ordering::Relaxed),
        }
    }

    /// The current instant on the engine's clock.
    pub fn now(&self) -> Ts {
        self.shared.clock.now()
    }

    /// Stops taking new work, gives back queued runs, waits for running ones up to `grace`,
    /// then asks them to stop and waits up to `cancel_grace` more. Blocks; call once.
    /// Returns how many runs were still executing when it stopped waiting.
    pub fn shutdown(&self, grace: Duration, cancel_grace: Duration) -> usize {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let left = match self.engine.lock().take() {
            Some(engine) => engine.shutdown(&self.shared, grace, cancel_grace),
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
            if let Err(e) = self.shared.store.node_stop(&self.shared.node()) {
                tracing::warn!(error = %e, "could not record this node as stopped");
            }
        }
        left
    }

    /// Writes what the store queued without waiting (audit entries); call after the last
    /// request has been answered.
    pub fn flush_writes(&self) {
        self.shared.store.flush();
    }

    /// Creates many plain one-time jobs of one group through the store's bulk path
    /// (benchmarks, imports). Every payload is validated first; nothing is inserted if one is
    /// rejected.
    pub fn jobs_create_many(
        &self,
        product: &str,
        job_group: &str,
        jobs: Vec<CreateRequest>,
    ) -> Result<Vec<JobId>, CoreError> {
        let entry = self.entry(product, job_group)?;
        let now = self.shared.clock.now();
        let mut earliest = Ts::MAX;
        let mut batch = Vec::with_capacity(jobs.len());
        for req in jobs {
            Shared::validate(entry, &req.payload)?;
            let compiled = req.spec.compile()?;
            let state = req.spec.initial_state(&compiled, now);
            if let (false, Some(t)) = (req.paused, state.next_due()) {
                earliest = earliest.min(t);
            }
            batch.push(NewJob {
                id: req.id.unwrap_or_default(),
                group: entry.group.clone(),
                spec: Arc::new(req.spec),
                state,
                payload: Arc::from(req.payload),
                paused: req.paused,
                now,
                idempotency: None,
            });
        }
        let ids = batch.iter().map(|j| j.id).collect();
        self.shared.store.jobs_insert_many(batch)?;
        if earliest != Ts::MAX {
            self.shared.wake.due_at(earliest);
        }
        Ok(ids)
    }

    fn entry(&self, product: &str, job_group: &str) -> Result<&Arc<JobTypeEntry>, CoreError> {
        self.shared.registry.lookup(product, job_group).ok_or_else(|| CoreError::GroupNotFound {
            product: product.chars().take(64).collect(),
            job_group: job_group.chars().take(64).collect(),
        })
    }
}
