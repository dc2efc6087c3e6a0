//! Prometheus metrics (the `prometheus` crate). Per-run figures are recorded by each worker into
//! thread-local counters and histograms and flushed every 100 ms or when the worker goes idle,
//! so recording a run touches no shared cache line; depth and lag are read from the store at
//! scrape time.

use hashbrown::HashMap;
use std::time::{Duration, Instant};

use prometheus::local::{LocalHistogram, LocalIntCounter};
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::model::{GroupKey, RunOutcome};
use crate::plugin::Registry as Plugins;
use crate::store::{Claimed, DueSummary, RunFinish};
use crate::trigger::FireEvent;
use crate::Ts;

/// Lateness and duration buckets, in seconds.
const BUCKETS: [f64; 16] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0, 3600.0];

/// One product/group's handles, resolved once.
struct GroupHandles {
    started: IntCounter,
    finished: Vec<IntCounter>,
    lateness: Histogram,
    duration: Histogram,
    retries: IntCounter,
}

/// Every metric of the service.
pub struct Metrics {
    registry: Registry,
    groups: HashMap<GroupKey, GroupHandles>,
    misfires: IntCounterVec,
    overlap_skips: IntCounterVec,
    due: IntGaugeVec,
    lag: GaugeVec,
    /// Runs executing on this node.
    pub running: IntGauge,
    /// Worker threads of this node.
    pub workers: IntGauge,
    /// Heartbeats that failed.
    pub heartbeat_failures: IntCounter,
    recovered: IntCounterVec,
    store_errors: IntCounterVec,
    store_seconds: HistogramVec,
    /// By operation, in the order of `store::OPERATIONS`; made at the first timed call, so a
    /// node whose store is not timed (memory) exports none.
    store_seconds_by_op: std::sync::OnceLock<Vec<Histogram>>,
}

/// Store calls: from a lock taken in memory to a database round trip under load.
const STORE_BUCKETS: [f64; 14] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

impl Metrics {
    /// Registers every metric, with handles for each job type this node hosts.
    pub fn new(plugins: &Plugins, workers: usize) -> Metrics {
        let registry = Registry::new();
        let group_labels = ["product", "job_group"];
        let type_labels = ["product", "job_group", "job_type"];
        let started =
            IntCounterVec::new(opts("scheduler_runs_started_total", "Runs started"), &type_labels).expect("metric");
        let finished = IntCounterVec::new(
            opts("scheduler_runs_finished_total", "Runs finished, by outcome"),
            &["product", "job_group", "job_type", "outcome"],
        )
        .expect("metric");
        let hist = |name: &str, help: &str| {
            HistogramVec::new(HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()), &group_labels).expect("metric")
        };
        let lateness = hist("scheduler_run_lateness_seconds", "Start minus due instant of each run");
        let duration = hist("scheduler_run_duration_seconds", "End minus start of each run");
        let retries =
            IntCounterVec::new(opts("scheduler_retries_total", "Retries scheduled after failed runs"), &group_labels)
                .expect("metric");
        let misfires = IntCounterVec::new(
            opts("scheduler_misfires_total", "Missed fires handled by a misfire policy, by what it did"),
            &["product", "job_group", "action"],
        )
        .expect("metric");
        let overlap_skips = IntCounterVec::new(
            opts("scheduler_overlap_skips_total", "Fires skipped because the previous run was still running"),
            &group_labels,
        )
        .expect("metric");
        let due = IntGaugeVec::new(
            opts("scheduler_jobs_due", "Jobs due and not started (depth; counted up to 100,000)"),
            &group_labels,
        )
        .expect("metric");
        let lag = GaugeVec::new(
            opts("scheduler_oldest_due_age_seconds", "How long the oldest due job has waited (lag)"),
            &group_labels,
        )
        .expect("metric");
        let running = IntGauge::new("scheduler_runs_running", "Runs executing on this node").expect("metric");
        let workers_g = IntGauge::new("scheduler_workers", "Worker threads of this node").expect("metric");
        workers_g.set(i64::try_from(workers).unwrap_or(i64::MAX));
        let heartbeat_failures =
            IntCounter::new("scheduler_heartbeat_failures_total", "Heartbeats that failed").expect("metric");
        let recovered = IntCounterVec::new(
            opts("scheduler_runs_recovered_total", "Runs of dead nodes resolved by this node, by result"),
            &["result"],
        )
        .expect("metric");
        let store_errors = IntCounterVec::new(
            opts("scheduler_store_errors_total", "Job store calls that failed, by operation"),
            &["operation"],
        )
        .expect("metric");
        let store_seconds = HistogramVec::new(
            HistogramOpts::new(
                "scheduler_store_call_seconds",
                "How long calls to a job store that does I/O (PostgreSQL) took, by operation",
            )
            .buckets(STORE_BUCKETS.to_vec()),
            &["operation"],
        )
        .expect("metric");
        let build = IntGaugeVec::new(
            opts("scheduler_build_info", "The service version and plugin ABI (always 1)"),
            &["version", "plugin_abi"],
        )
        .expect("metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION"), scheduler_plugin_api::ABI_VERSION]).set(1);
        for c in [
            Box::new(started.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(finished.clone()),
            Box::new(lateness.clone()),
            Box::new(duration.clone()),
            Box::new(retries.clone()),
            Box::new(misfires.clone()),
            Box::new(overlap_skips.clone()),
            Box::new(due.clone()),
            Box::new(lag.clone()),
            Box::new(running.clone()),
            Box::new(workers_g.clone()),
            Box::new(heartbeat_failures.clone()),
            Box::new(recovered.clone()),
            Box::new(store_errors.clone()),
            Box::new(store_seconds.clone()),
            Box::new(build),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        let groups = plugins
            .job_types()
            .iter()
            .map(|e| {
                let (p, g, t) = (e.group.product(), e.group.job_group(), e.name.as_str());
                let handles = GroupHandles {
                    started: started.with_label_values(&[p, g, t]),
                    finished: RunOutcome::ALL
                        .iter()
                        .map(|o| finished.with_label_values(&[p, g, t, o.as_str()]))
                        .collect(),
                    lateness: lateness.with_label_values(&[p, g]),
                    duration: duration.with_label_values(&[p, g]),
                    retries: retries.with_label_values(&[p, g]),
                };
                (e.group.clone(), handles)
            })
            .collect();
        Metrics {
            registry,
            groups,
            misfires,
            overlap_skips,
            due,
            lag,
            running,
            workers: workers_g,
            heartbeat_failures,
            recovered,
            store_errors,
            store_seconds,
            store_seconds_by_op: std::sync::OnceLock::new(),
        }
    }

    /// Counts what misfire and overlap policies did during a claim.
    pub fn fire_events(&self, events: &[(GroupKey, FireEvent)]) {
        for (g, e) in events {
            let (p, j) = (g.product(), g.job_group());
            match e {
                FireEvent::OverlapSkipped => self.overlap_skips.with_label_values(&[p, j]).inc(),
                FireEvent::MisfireSkipped => self.misfires.with_label_values(&[p, j, "skipped"]).inc(),
                FireEvent::MisfireCaughtUp => self.misfires.with_label_values(&[p, j, "caught_up"]).inc(),
            }
        }
    }

    /// Counts runs of dead nodes this node resolved.
    pub fn recovered(&self, result: crate::store::Rescue) {
        self.recovered.with_label_values(&[result.as_str()]).inc();
    }

    /// The Prometheus text exposition, with depth and lag from `due` (judged at `now`).
    pub fn render(&self, due: &[DueSummary], now: Ts) -> String {
        self.due.reset();
        self.lag.reset();
        for d in due {
            let labels = [d.group.product(), d.group.job_group()];
            self.due.with_label_values(&labels).set(i64::try_from(d.due).unwrap_or(i64::MAX));
            self.lag.with_label_values(&labels).set(now.micros_since(d.oldest).max(0) as f64 / 1e6);
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// A worker's thread-local recorder.
    pub fn local(&self) -> LocalRecorder<'_> {
        LocalRecorder { metrics: self, groups: HashMap::new(), last_flush: Instant::now(), pending: 0 }
    }
}

/// A group's thread-local counters.
struct LocalGroup {
    started: LocalIntCounter,
    finished: Vec<LocalIntCounter>,
    lateness: LocalHistogram,
    duration: LocalHistogram,
    retries: LocalIntCounter,
}

/// Per-run figures recorded by one worker, flushed to the shared metrics now and then.
pub struct LocalRecorder<'a> {
    metrics: &'a Metrics,
    groups: HashMap<GroupKey, LocalGroup>,
    last_flush: Instant,
    /// Runs recorded since the last flush.
    pending: u32,
}

/// How often a busy worker flushes.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

impl LocalRecorder<'_> {
    /// Records a run the worker executed.
    pub fn run(&mut self, run: &Claimed, finish: &RunFinish) {
        let metrics = self.metrics;
        let g = match self.groups.get_mut(&run.group) {
            Some(g) => g,
            None => {
                let Some(h) = metrics.groups.get(&run.group) else { return };
                self.groups.entry(run.group.clone()).or_insert(LocalGroup {
                    started: h.started.local(),
                    finished: h.finished.iter().map(IntCounter::local).collect(),
                    lateness: h.lateness.local(),
                    duration: h.duration.local(),
                    retries: h.retries.local(),
                })
            }
        };
        g.started.inc();
        g.finished[finish.ending.outcome().index()].inc();
        g.lateness.observe(finish.started_at.micros_since(run.scheduled_for).max(0) as f64 / 1e6);
        g.duration.observe(finish.finished_at.micros_since(finish.started_at).max(0) as f64 / 1e6);
        if finish.ending.retry_at().is_some() {
            g.retries.inc();
        }
        self.pending += 1;
        // Reading the clock costs about as much as recording a run: look every 64 runs.
        if self.pending % 64 == 0 && self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush();
        }
    }

    /// Pushes what this worker recorded to the shared metrics.
    pub fn flush(&mut self) {
        if self.pending == 0 {
            return;
        }
        for g in self.groups.values_mut() {
            g.started.flush();
            for f in &g.finished {
                f.flush();
            }
            g.lateness.flush();
            g.duration.flush();
            g.retries.flush();
        }
        self.pending = 0;
        self.last_flush = Instant::now();
    }

    /// True when something is waiting to be flushed.
    pub fn dirty(&self) -> bool {
        self.pending > 0
    }
}

impl Drop for LocalRecorder<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

impl crate::store::Observe for Metrics {
    fn store_call_took(&self, operation: usize, took: Duration) {
        let by_op = self.store_seconds_by_op.get_or_init(|| {
            crate::store::OPERATIONS.iter().map(|op| self.store_seconds.with_label_values(&[op])).collect()
        });
        if let Some(h) = by_op.get(operation) {
            h.observe(took.as_secs_f64());
        }
    }

    fn store_call_failed(&self, operation: usize) {
        let name = crate::store::OPERATIONS.get(operation).copied().unwrap_or("unknown");
        self.store_errors.with_label_values(&[name]).inc();
    }
}
