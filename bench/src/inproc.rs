//! W1-W3 in process: the engine API with the memory store and the `noop` plugin.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use scheduler_core::engine::EngineConfig;
use scheduler_core::model::{JobId, Schedule};
use scheduler_core::plugin::load_plugins;
use scheduler_core::request::CreateRequest;
use scheduler_core::store::memory::MemoryStore;
use scheduler_core::{Clock, Scheduler, SchedulerConfig, SystemClock, Ts};

use crate::report::{line, noop_plugin_dir, percentiles, proc_status_kib};

const CHUNK: usize = 10_000;

fn start(workers: usize) -> anyhow::Result<(Scheduler, tempfile::TempDir)> {
    let dir = noop_plugin_dir()?;
    let report = load_plugins(dir.path())?;
    anyhow::ensure!(
        report.refused.is_empty(),
        "noop plugin refused: {:?}",
        report.refused
    );
    let mut config = SchedulerConfig::new("bench");
    config.engine = EngineConfig {
        workers,
        queue: workers.max(64),
        ..EngineConfig::default()
    };
    let s = Scheduler::start(
        Arc::new(MemoryStore::new()),
        Arc::new(report.registry),
        Arc::new(SystemClock),
        config,
    )?;
    Ok((s, dir))
}

/// Inserts jobs due at the instants `due(i)`, in chunks, through the validated bulk path.
fn insert(
    s: &Scheduler,
    n: usize,
    due: impl Fn(usize) -> Ts,
) -> anyhow::Result<(Vec<JobId>, Duration)> {
    let mut ids = Vec::with_capacity(n);
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        let end = (i + CHUNK).min(n);
        let batch: Vec<CreateRequest> = (i..end)
            .map(|k| CreateRequest {
                schedule: Schedule::Once { when: due(k) },
                payload: "{}".to_owned(),
                paused: false,
            })
            .collect();
        ids.extend(s.jobs_create_many("bench", "noop", batch)?);
        i = end;
    }
    Ok((ids, t.elapsed()))
}

fn wait_recorded(s: &Scheduler, n: u64, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while s.stats().recorded < n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {n} runs recorded in {timeout:?}",
            s.stats().recorded
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// (scheduled_for, started_at) of each job's run.
fn starts(s: &Scheduler, ids: &[JobId]) -> anyhow::Result<Vec<(Ts, Ts)>> {
    ids.iter()
        .map(|id| {
            let runs = s.job_runs("bench", "noop", &id.to_string(), 2)?;
            anyhow::ensure!(runs.len() == 1, "job {id} ran {} times", runs.len());
            Ok((
                runs[0].scheduled_for,
                runs[0].started_at.context("no start")?,
            ))
        })
        .collect()
}

pub fn w1(n: usize, workers: usize) -> anyhow::Result<()> {
    let name = format!("W1 {n}");
    let (s, _dir) = start(workers)?;
    let t0 = SystemClock.now().plus_micros(5_000_000);
    let (ids, took) = insert(&s, n, |_| t0)?;
    line(
        &name,
        format!(
            "insert {:.0} jobs/s ({n} in {took:.2?})",
            n as f64 / took.as_secs_f64()
        ),
    );
    anyhow::ensure!(
        SystemClock.now() < t0,
        "insert took longer than the 5 s before T0"
    );
    wait_recorded(&s, n as u64, Duration::from_secs(300))?;
    let st = starts(&s, &ids)?;
    let last = st.iter().map(|(_, start)| *start).max().unwrap_or(t0);
    let span = last.micros_since(t0).max(1) as f64 / 1e6;
    let lateness: Vec<i64> = st.iter().map(|(_, start)| start.micros_since(t0)).collect();
    line(
        &name,
        format!(
            "drain {:.0} fires/s (last start {:.1} ms after T0), workers {workers}",
            n as f64 / span,
            span * 1000.0
        ),
    );
    line(
        &name,
        format!("lateness (start - T0) {}", percentiles(lateness)),
    );
    line(
        &name,
        format!(
            "peak RSS {:.1} MiB",
            proc_status_kib("VmHWM:") as f64 / 1024.0
        ),
    );
    s.shutdown(Duration::from_secs(5), Duration::from_secs(1));
    Ok(())
}

pub fn w2(n: usize, secs: u64, workers: usize) -> anyhow::Result<()> {
    let name = format!("W2 {n}/{secs}s");
    let (s, _dir) = start(workers)?;
    let begin = SystemClock.now().plus_micros(2_000_000);
    let step = (secs * 1_000_000) as f64 / n as f64;
    let (ids, _) = insert(&s, n, |i| begin.plus_micros((i as f64 * step) as i64))?;
    wait_recorded(&s, n as u64, Duration::from_secs(secs + 60))?;
    let lateness: Vec<i64> = starts(&s, &ids)?
        .iter()
        .map(|(due, start)| start.micros_since(*due))
        .collect();
    let early = lateness.iter().filter(|l| **l < 0).count();
    anyhow::ensure!(early == 0, "{early} runs started before they were due");
    line(
        &name,
        format!("lateness (start - due) {}", percentiles(lateness)),
    );
    s.shutdown(Duration::from_secs(5), Duration::from_secs(1));
    Ok(())
}

pub fn w3(n: usize) -> anyhow::Result<()> {
    let name = format!("W3 {n}");
    let (s, _dir) = start(2)?;
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
    let (ids, took) = insert(&s, n, |i| base.plus_micros(dues[i]))?;
    let ids_kib = (ids.capacity() * std::mem::size_of::<JobId>()) as u64 / 1024;
    let after = proc_status_kib("VmRSS:");
    let per_job = (after.saturating_sub(before + dues_kib + ids_kib)) as f64 * 1024.0 / n as f64;
    line(
        &name,
        format!(
            "insert {:.0} jobs/s ({n} in {took:.2?})",
            n as f64 / took.as_secs_f64()
        ),
    );
    line(
        &name,
        format!("RSS {per_job:.0} bytes per pending job (RSS {:.1} -> {:.1} MiB, bench's own arrays excluded)", before as f64 / 1024.0, after as f64 / 1024.0),
    );
    drop(ids);
    s.shutdown(Duration::from_secs(5), Duration::from_secs(1));
    Ok(())
}
