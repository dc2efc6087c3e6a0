//! The scheduler as its callers see it: create, read, reschedule and delete jobs, read runs,
//! and stop. It validates, talks to the store, and wakes the engine when new work is due soon.
//!
//! All methods are synchronous. With a store that blocks on I/O ([`Scheduler::store_blocking`])
//! async callers run them on a blocking pool.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use abi_stable::std_types::RStr;
use parking_lot::Mutex;
use serde_json::Value;

use crate::clock::{Clock, Ts};
use crate::cluster::{ClusterConfig, Maintenance};
use crate::engine::wake::Wake;
use crate::engine::{Engine, EngineConfig};
use crate::error::CoreError;
use crate::model::{GroupKey, Job, JobId, Run, Schedule};
use crate::plugin::{JobTypeEntry, Registry};
use crate::request::{self, CreateRequest};
use crate::store::{Change, JobListQuery, JobReschedule, ListCursor, NewJob, NodeInfo, NodeRecord, Store};

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
}

impl SchedulerConfig {
    /// Defaults with this node id.
    pub fn new(node: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            host: String::new(),
            engine: EngineConfig::default(),
            cluster: ClusterConfig::default(),
        }
    }
}

/// What the engine's threads and the API share.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) node: Arc<str>,
    /// The product/groups this node has plugins for (what it may claim).
    pub(crate) groups: Arc<[GroupKey]>,
    pub(crate) wake: Wake,
    pub(crate) counters: Counters,
    /// How long a silent node still counts as live.
    pub(crate) dead_after: Duration,
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

impl Shared {
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn validate(entry: &JobTypeEntry, payload: &str) -> Result<(), CoreError> {
        entry
            .plugin
            .instance
            .validate(entry.index, RStr::from_str(payload))
            .into_result()
            .map_err(|m| CoreError::PayloadRejected { message: m.into_string() })
    }

    fn insert(&self, entry: &JobTypeEntry, req: CreateRequest) -> Result<Job, CoreError> {
        Self::validate(entry, &req.payload)?;
        let when = req.schedule.when();
        let job = self.store.job_insert(NewJob {
            id: JobId::new(),
            group: entry.group.clone(),
            schedule: req.schedule,
            payload: Arc::from(req.payload),
            paused: req.paused,
            now: self.clock.now(),
        })?;
        if !job.paused {
            self.wake.due_at(when);
        }
        Ok(job)
    }

    /// A job scheduled by a running job through its context.
    pub(crate) fn create_follow_up(&self, group: &GroupKey, when_ms: i64, payload: &str) -> Result<Job, CoreError> {
        let entry = self.registry.get(group).ok_or_else(|| CoreError::GroupNotFound {
            product: group.product().to_owned(),
            job_group: group.job_group().to_owned(),
        })?;
        let value: Value = serde_json::from_str(payload)
            .map_err(|e| CoreError::InvalidField { field: "payload", reason: format!("is not JSON: {e}") })?;
        if !value.is_object() {
            return Err(CoreError::InvalidField { field: "payload", reason: "must be a JSON object".into() });
        }
        let when = Ts::from_millis(when_ms);
        request::check_instant("when", when)?;
        request::check_storable(&value)?;
        let req = CreateRequest { schedule: Schedule::Once { when }, payload: payload.to_owned(), paused: false };
        self.insert(entry, req)
    }
}

/// The running scheduler.
pub struct Scheduler {
    shared: Arc<Shared>,
    engine: Mutex<Option<Engine>>,
    maintenance: Mutex<Option<Maintenance>>,
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
            node: Arc::from(config.node.as_str()),
            groups: registry.job_types().iter().map(|e| e.group.clone()).collect(),
            wake: Wake::default(),
            counters: Counters::default(),
            dead_after: config.cluster.dead_after(),
            stopping: AtomicBool::new(false),
        });
        let node = NodeInfo { id: shared.node.clone(), host: config.host.clone(), groups: shared.groups.to_vec() };
        shared.store.node_register(&node)?;
        // Heartbeats start before the first claim and stop after the last run.
        let maintenance = Maintenance::start(shared.clone(), node, config.cluster.clone());
        let engine = Engine::start(shared.clone(), &config.engine);
        Ok(Scheduler { shared, engine: Mutex::new(Some(engine)), maintenance: Mutex::new(Some(maintenance)) })
    }

    /// What the loaded plugins registered.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// True when store calls may block on I/O.
    pub fn store_blocking(&self) -> bool {
        self.shared.store.blocking()
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.shared.node
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

    fn entry(&self, product: &str, job_group: &str) -> Result<&Arc<JobTypeEntry>, CoreError> {
        self.shared.registry.lookup(product, job_group).ok_or_else(|| CoreError::GroupNotFound {
            product: product.chars().take(64).collect(),
            job_group: job_group.chars().take(64).collect(),
        })
    }

    fn job_id(entry: &JobTypeEntry, id: &str) -> Result<JobId, CoreError> {
        id.parse::<JobId>()
            .map_err(|_| CoreError::JobNotFound { id: id.chars().take(64).collect(), group: entry.group.to_string() })
    }

    fn not_found(entry: &JobTypeEntry, id: JobId) -> CoreError {
        CoreError::JobNotFound { id: id.to_string(), group: entry.group.to_string() }
    }

    /// Creates a job from a POST body.
    pub fn job_create(&self, product: &str, job_group: &str, body: &Value) -> Result<Job, CoreError> {
        if self.shared.is_stopping() {
            return Err(CoreError::ShuttingDown);
        }
        let entry = self.entry(product, job_group)?;
        let req = request::parse_create(body)?;
        self.shared.insert(entry, req)
    }

    /// Creates many jobs of one group through the store's bulk path (benchmarks, imports).
    /// Every payload is validated first; nothing is inserted if one is rejected.
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
            if !req.paused {
                earliest = earliest.min(req.schedule.when());
            }
            batch.push(NewJob {
                id: JobId::new(),
                group: entry.group.clone(),
                schedule: req.schedule,
                payload: Arc::from(req.payload),
                paused: req.paused,
                now,
            });
        }
        let ids = batch.iter().map(|j| j.id).collect();
        self.shared.store.jobs_insert_many(batch)?;
        if earliest != Ts::MAX {
            self.shared.wake.due_at(earliest);
        }
        Ok(ids)
    }

    /// One job.
    pub fn job_get(&self, product: &str, job_group: &str, id: &str) -> Result<Job, CoreError> {
        let entry = self.entry(product, job_group)?;
        let id = Self::job_id(entry, id)?;
        self.shared.store.job_get(&entry.group, id)?.ok_or_else(|| Self::not_found(entry, id))
    }

    /// A page of a group's unfinished jobs, soonest first.
    pub fn jobs_list(
        &self,
        product: &str,
        job_group: &str,
        limit: usize,
        after: Option<ListCursor>,
    ) -> Result<Vec<Job>, CoreError> {
        let entry = self.entry(product, job_group)?;
        Ok(self.shared.store.jobs_list(&JobListQuery { group: entry.group.clone(), limit, after })?)
    }

    /// Reschedules a job from a PATCH body.
    pub fn job_reschedule(&self, product: &str, job_group: &str, id: &str, body: &Value) -> Result<Job, CoreError> {
        let entry = self.entry(product, job_group)?;
        let id = Self::job_id(entry, id)?;
        let schedule = request::parse_reschedule(body)?;
        let when = schedule.when();
        match self.shared.store.job_reschedule(&JobReschedule {
            group: entry.group.clone(),
            id,
            schedule,
            now: self.shared.clock.now(),
        })? {
            Change::Done(job) => {
                if !job.paused {
                    self.shared.wake.due_at(when);
                }
                Ok(job)
            }
            Change::NotFound => Err(Self::not_found(entry, id)),
            Change::Finished(status) => Err(CoreError::JobFinished { id: id.to_string(), status }),
        }
    }

    /// Deletes a job that has not finished.
    pub fn job_delete(&self, product: &str, job_group: &str, id: &str) -> Result<(), CoreError> {
        let entry = self.entry(product, job_group)?;
        let id = Self::job_id(entry, id)?;
        match self.shared.store.job_delete(&entry.group, id)? {
            Change::Done(()) => Ok(()),
            Change::NotFound => Err(Self::not_found(entry, id)),
            Change::Finished(status) => Err(CoreError::JobFinished { id: id.to_string(), status }),
        }
    }

    /// A job's runs, newest first.
    pub fn job_runs(&self, product: &str, job_group: &str, id: &str, limit: usize) -> Result<Vec<Run>, CoreError> {
        let entry = self.entry(product, job_group)?;
        let id = Self::job_id(entry, id)?;
        self.shared.store.job_runs(&entry.group, id, limit)?.ok_or_else(|| Self::not_found(entry, id))
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
        // Heartbeats stop last, and only when nothing of ours is still running: runs left
        // executing stay owned by a live-looking node until this process is gone, then the
        // cluster resolves them.
        if let Some(m) = self.maintenance.lock().take() {
            m.stop();
        }
        if left == 0 {
            if let Err(e) = self.shared.store.node_stop(&self.shared.node) {
                tracing::warn!(error = %e, "could not record this node as stopped");
            }
        }
        left
    }
}
