//! W1-W3 in process: the engine API with the `noop` plugin, on the memory store or PostgreSQL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use scheduler_core::engine::EngineConfig;
use scheduler_core::model::JobId;
use scheduler_core::plugin::load_plugins;
use scheduler_core::request::CreateRequest;
use scheduler_core::store::memory::MemoryStore;
use scheduler_core::store::postgres::{PgConfig, PgStore, CLAIM_SQL};
use scheduler_core::store::Store;
use scheduler_core::{Clock, Scheduler, SchedulerConfig, SystemClock, Ts};

use crate::pg::{self, BenchDb};
use crate::report::{cpu_ns, line, noop_plugin_dir, percentiles, proc_status_kib};
use crate::StoreKind;

const CHUNK: usize = 10_000;

/// The indexes migration 3 adds to `runs` for history pages and retention.
const HISTORY_INDEXES_DROP: &str = "DROP INDEX runs_by_group, runs_by_outcome, runs_by_node, runs_by_scheduled, \
     runs_by_started, runs_finished_by_age";

/// A running engine and what must outlive it.
pub struct Rig {
    pub s: Scheduler,
    pub db: Option<BenchDb>,
    _plugins: tempfile::TempDir,
}

pub fn start(store: StoreKind, workers: usize, queue: usize) -> anyhow::Result<Rig> {
    let plugins = noop_plugin_dir()?;
    let report = load_plugins(plugins.path())?;
    anyhow::ensure!(report.refused.is_empty(), "noop plugin refused: {:?}", report.refused);
    let mut config = SchedulerConfig::new("bench");
    config.engine = EngineConfig { workers, queue, ..EngineConfig::default() };
    // W3 keeps a million jobs pending in one product: past the default quota of unfinished
    // jobs, which bulk creates respect like any other.
    config.limits.pending_per_product = None;
    // The overhead workload switches metrics and statistics off in some of its runs.
    let stats = std::env::var_os("BENCH_NO_STATS").is_none();
    config.metrics = std::env::var_os("BENCH_NO_METRICS").is_none();
    let (backend, db): (Arc<dyn Store>, _) = match store {
        StoreKind::Memory => (Arc::new(MemoryStore::new().with_stats(stats)), None),
        StoreKind::Postgres => {
            let db = BenchDb::create()?;
            let pg = PgStore::connect(&PgConfig {
                url: db.url.clone(),
                pool_size: 16,
                connect_timeout: Duration::from_secs(10),
            })?;
            pg.migrate()?;
            if std::env::var_os("BENCH_NO_HISTORY_INDEXES").is_some() {
                // The overhead workload's baseline: runs kept without the indexes history pages need.
                use diesel::RunQueryDsl;
                diesel::sql_query(HISTORY_INDEXES_DROP).execute(&mut db.conn()?)?;
            }
            config.engine.poll_interval = Some(Duration::from_secs(1));
            (Arc::new(pg.with_stats(stats)), Some(db))
        }
    };
    let s = Scheduler::start(backend, Arc::new(report.registry), Arc::new(SystemClock), config)?;
    Ok(Rig { s, db, _plugins: plugins })
}

pub fn label(w: &str, store: StoreKind) -> String {
    match store {
        StoreKind::Memory => w.to_owned(),
        StoreKind::Postgres => format!("{w}-pg"),
    }
}

/// Inserts jobs due at the instants `due(i)`, in chunks, through the validated bulk path.
fn insert(s: &Scheduler, n: usize, due: impl Fn(usize) -> Ts) -> anyhow::Result<(Vec<JobId>, Duration)> {
    insert_with(s, n, |k| CreateRequest::once(due(k), "{}"))
}

/// Inserts the jobs `make(i)`, in chunks, through the validated bulk path.
pub fn insert_with(
    s: &Scheduler,
    n: usize,
    make: impl Fn(usize) -> CreateRequest,
) -> anyhow::Result<(Vec<JobId>, Duration)> {
    let mut ids = Vec::with_capacity(n);
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        let end = (i + CHUNK).min(n);
        let batch: Vec<CreateRequest> = (i..end).map(&make).collect();
        ids.extend(s.jobs_create_many("bench", "noop", batch)?);
        i = end;
    }
    Ok((ids, t.elapsed()))
}

fn wait_recorded(s: &Scheduler, n: u64, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while s.stats().recorded < n {
        anyhow::ensure!(Instant::now() < deadline, "only {} of {n} runs recorded in {timeout:?}", s.stats().recorded);
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// (scheduled_for, started_at) of each job's one run; fails if a job ran other than once.
fn starts(rig: &Rig, ids: &[JobId]) -> anyhow::Result<Vec<(Ts, Ts)>> {
    if let Some(db) = &rig.db {
        let st = pg::run_starts(&mut db.conn()?)?;
        anyhow::ensure!(st.len() == ids.len(), "{} runs for {} jobs", st.len(), ids.len());
        return Ok(st.into_iter().map(|(d, s)| (Ts(d), Ts(s))).collect());
    }
    ids.iter()
        .map(|id| {
            let runs = rig.s.job_runs("bench", "noop", *id, 2)?;
            anyhow::ensure!(runs.len() == 1, "job {id} ran {} times", runs.len());
            Ok((runs[0].scheduled_for, runs[0].started_at.context("no start")?))
        })
        .collect()
}

/// Job ids the noop plugin recorded as started more than once, and how many it recorded.
fn plugin_record(path: &std::path::Path) -> anyhow::Result<(usize, usize)> {
    let text = std::fs::read_to_string(path)?;
    let mut seen = std::collections::HashSet::new();
    let mut dups = 0;
    let mut total = 0;
    for l in text.lines() {
        total += 1;
        if !seen.insert(l.split_whitespace().next().unwrap_or_default().to_owned()) {
            dups += 1;
        }
    }
    Ok((total, dups))
}

pub fn w1(n: usize, workers: usize, queue: usize, store: StoreKind) -> anyhow::Result<()> {
    let name = format!("{} {n}", label("W1", store));
    let record = tempfile::NamedTempFile::new()?;
    if store == StoreKind::Postgres {
        // The plugin's own record of starts proves each job ran once (read before first run).
        std::env::set_var("NOOP_RECORD_FILE", record.path());
    }
    let rig = start(store, workers, queue)?;
    let lead = if store == StoreKind::Postgres { 5_000_000 + n as i64 * 20 } else { 5_000_000 };
    let t0 = SystemClock.now().plus_micros(lead);
    let (ids, took) = insert(&rig.s, n, |_| t0)?;
    line(
        &name,
        format!(
            "insert {:.0} jobs/s ({n} in {took:.2?}); T0 = start + {} ms",
            n as f64 / took.as_secs_f64(),
            lead / 1000
        ),
    );
    anyhow::ensure!(SystemClock.now() < t0, "insert took longer than the lead before T0");
    let cpu_before = cpu_ns();
    wait_recorded(&rig.s, n as u64, Duration::from_secs(600))?;
    let cpu = cpu_ns().saturating_sub(cpu_before);
    let st = starts(&rig, &ids)?;
    let last = st.iter().map(|(_, start)| *start).max().unwrap_or(t0);
    let span = last.micros_since(t0).max(1) as f64 / 1e6;
    let lateness: Vec<i64> = st.iter().map(|(_, start)| start.micros_since(t0)).collect();
    line(
        &name,
        format!(
            "drain {:.0} fires/s (last start {:.1} ms after T0), workers {workers}, queue {queue}",
            n as f64 / span,
            span * 1000.0
        ),
    );
    line(&name, format!("lateness (start - T0) {}", percentiles(lateness)));
    line(
        &name,
        format!(
            "cpu {:.2} us per fire (every thread, from the end of the insert to the last record)",
            cpu as f64 / 1e3 / n as f64
        ),
    );
    if store == StoreKind::Postgres {
        let (total, dups) = plugin_record(record.path())?;
        line(&name, format!("plugin recorded {total} starts for {n} jobs, {dups} duplicates"));
        anyhow::ensure!(total == n && dups == 0, "a job ran other than exactly once");
    }
    line(&name, format!("peak RSS {:.1} MiB", proc_status_kib("VmHWM:") as f64 / 1024.0));
    rig.s.shutdown(Duration::from_secs(5), Duration::from_secs(1));
    Ok(())
}

pub fn w2(n: usize, secs: u64, workers: usize, store: StoreKind) -> anyhow::Result<()> {
    let name = format!("{} {n}/{secs}s", label("W2", store));
    let rig = start(store, workers, workers.max(16))?;
    let begin = SystemClock.now().plus_micros(3_000_000);
    let step = (secs * 1_000_000) as f64 / n as f64;
    let (ids, _) = insert(&rig.s, n, |i| begin.plus_micros((i as f64 * step) as i64))?;
    wait_recorded(&rig.s, n as u64, Duration::from_secs(secs + 60))?;
    let lateness: Vec<i64> = starts(&rig, &ids)?.iter().map(|(due, start)| start.micros_since(*due)).collect();
    let early = lateness.iter().filter(|l| **l < 0).count();
    anyhow::ensure!(early == 0, "{early} runs started before they were due");
    line(&name, format!("lateness (start - due) {}", percentiles(lateness)));
    rig.s.shutdown(Duration::from_secs(5), Duration::from_secs(1));
    Ok(())
}

pub fn w3(n: usize, store: StoreKind) -> anyhow::Result<()> {
    let name = format!("{} {n}", label("W3", store));
    let rig = start(store, 2, 64)?;
    let before = proc_status_kib("VmRSS:");
    let base = SystemClock.now().plus_micros(3_600_000_000);
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let dues: Vec<i64> = (0..n)
        .map(|_| {
            // xorshift: due instants spread over the hour after `base`, inserted in random order.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % 3_600_000_000) as i64
        })
        .collect();
    let dues_kib = proc_status_kib("VmRSS:") - before;
    if let Some(db) = &rig.db {
        // The claim's cost with few pending jobs, before the big insert.
        insert(&rig.s, 10_000, |i| base.plus_micros(dues[i]))?;
        claim_cost(db, &name, 10_000)?;
    }
    let (ids, took) = insert(&rig.s, n, |i| base.plus_micros(dues[i]))?;
    line(&name, format!("insert {:.0} jobs/s ({n} in {took:.2?})", n as f64 / took.as_secs_f64()));
    match &rig.db {
        None => {
            let ids_kib = (ids.capacity() * std::mem::size_of::<JobId>()) as u64 / 1024;
            let after = proc_status_kib("VmRSS:");
            let per_job = (after.saturating_sub(before + dues_kib + ids_kib)) as f64 * 1024.0 / n as f64;
            line(
                &name,
                format!(
                    "RSS {per_job:.0} bytes per pending job (RSS {:.1} -> {:.1} MiB, bench's own arrays excluded)",
                    before as f64 / 1024.0,
                    after as f64 / 1024.0
                ),
            );
        }
        Some(db) => claim_cost(db, &name, n + 10_000)?,
    }
    rig.s.shutdown(Duration::from_secs(5), Duration::from_secs(1));
    Ok(())
}

/// Measures the claim statement with `pending` jobs waiting (due in an hour) and 2,000 due jobs
/// of a group no engine hosts (so they stay due): each `EXPLAIN ANALYZE` claims 100 of them and
/// is rolled back. The claim must cost the same whatever the number of pending jobs.
fn claim_cost(db: &BenchDb, name: &str, pending: usize) -> anyhow::Result<()> {
    let mut conn = db.conn()?;
    pg::ensure_idle_due(&mut conn, 2_000)?;
    let claim = CLAIM_SQL.replace("$1", "100").replace("$2", "ARRAY['bench/idle']").replace("$3", "'bench'");
    let mut times = Vec::new();
    let mut plan = String::new();
    for _ in 0..30 {
        plan = pg::explain(&mut conn, &claim)?;
        let ms: f64 = plan
            .lines()
            .find_map(|l| l.trim().strip_prefix("Execution Time: "))
            .and_then(|t| t.trim_end_matches(" ms").parse().ok())
            .unwrap_or(f64::NAN);
        times.push((ms * 1000.0) as i64);
    }
    line(name, format!("claim of 100 with {pending} pending: execution {}", percentiles(times)));
    let scan = plan
        .lines()
        .filter(|l| l.contains("Scan") && l.contains("jobs"))
        .map(|l| l.trim().to_owned())
        .collect::<Vec<_>>()
        .join(" | ");
    line(name, format!("claim plan reads jobs by: {scan}"));
    Ok(())
}
