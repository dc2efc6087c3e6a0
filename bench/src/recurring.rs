//! Recurring workloads in process (the engine API with the `noop` plugin), and the next-fire
//! micro-benchmark.
//!
//! - R1 sustained: N interval jobs every second, their first fires spread uniformly over the
//!   first second, for S seconds (N fires/s): lateness of every fire (start − due) p50/p99/max,
//!   fires missed, and the CPU the process used over the window (cores).
//! - R2 synchronised: N jobs on the cron `* * * * * *` for S seconds (a burst of N every
//!   second): each fire's start after its second, p50/p99/max, and fires missed.
//! - Next fire: the time to compute the next fire of typical cron patterns.

use std::hint::black_box;
use std::time::{Duration, Instant};

use scheduler_core::model::RunOutcome;
use scheduler_core::request::parse_create;
use scheduler_core::trigger::{Compiled, ScheduleSpec, Trigger};
use scheduler_core::{Clock, SystemClock, Ts};
use serde_json::json;

use crate::inproc::{insert_with, label, start, Rig};
use crate::pg;
use crate::report::{line, percentiles};
use crate::StoreKind;

/// CPU time (user + system) this process has used, from /proc/self/stat (clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; the first after the name is field 3.
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(14) + field(15);
    Duration::from_millis(ticks * 10)
}

/// Every run's (due, start, outcome) with its due instant in `[from, to)`, microseconds.
fn runs_between(
    rig: &Rig,
    group: &str,
    ids: &[scheduler_core::model::JobId],
    from: Ts,
    to: Ts,
    per_job: usize,
) -> anyhow::Result<Vec<(i64, Option<i64>, bool)>> {
    let all: Vec<(i64, Option<i64>, bool)> = match &rig.db {
        Some(db) => pg::run_records(&mut db.conn()?)?
            .into_iter()
            .map(|(due, start, outcome)| (due, start, outcome == "skipped"))
            .collect(),
        None => {
            let mut out = Vec::with_capacity(ids.len() * per_job);
            for id in ids {
                for r in rig.s.job_runs("bench", group, *id, per_job + 10)? {
                    out.push((r.scheduled_for.0, r.started_at.map(|t| t.0), r.outcome == RunOutcome::Skipped));
                }
            }
            out
        }
    };
    Ok(all.into_iter().filter(|(due, _, _)| *due >= from.0 && *due < to.0).collect())
}

/// Reports lateness, missed fires and skips of the runs due in the window.
fn report_fires(name: &str, runs: &[(i64, Option<i64>, bool)], expected: usize) -> anyhow::Result<()> {
    let skipped = runs.iter().filter(|r| r.2).count();
    let lateness: Vec<i64> = runs.iter().filter_map(|(due, start, _)| start.map(|s| s - due)).collect();
    let early = lateness.iter().filter(|l| **l < 0).count();
    anyhow::ensure!(early == 0, "{early} fires started before they were due");
    let started = lateness.len();
    line(
        name,
        format!(
            "{started} fires started of {expected} due in the window, {skipped} skipped, {} missing",
            expected.saturating_sub(started + skipped)
        ),
    );
    line(name, format!("lateness (start - due) {}", percentiles(lateness)));
    Ok(())
}

/// R1: N interval jobs every second for S seconds.
pub fn r1(n: usize, secs: u64, workers: usize, queue: usize, store: StoreKind) -> anyhow::Result<()> {
    let name = format!("{} {n} every 1s", label("R1", store));
    let rig = start(store, workers, queue)?;
    // The first fires fall in the second after `begin`, one every 1/N s.
    let lead = if store == StoreKind::Postgres { 5_000_000 + n as i64 * 100 } else { 3_000_000 };
    let begin = SystemClock.now().plus_micros(lead);
    let step = 1_000_000.0 / n as f64;
    let now = SystemClock.now();
    let (ids, took) = insert_with(&rig.s, n, |i| {
        let when = begin.plus_micros((i as f64 * step) as i64).to_rfc3339();
        parse_create(&json!({"interval": 1, "when": when}), now).expect("a valid interval job")
    })?;
    line(&name, format!("insert {:.0} jobs/s ({n} in {took:.2?})", n as f64 / took.as_secs_f64()));
    anyhow::ensure!(SystemClock.now() < begin, "insert took longer than the lead");
    let end = begin.plus_micros(secs as i64 * 1_000_000);
    while SystemClock.now() < begin {
        std::thread::sleep(Duration::from_millis(1));
    }
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    while SystemClock.now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
    // Let the last fires of the window finish before stopping.
    std::thread::sleep(Duration::from_millis(500));
    rig.s.shutdown(Duration::from_secs(5), Duration::from_secs(1));
    line(
        &name,
        format!(
            "CPU {:.2} cores over the {secs} s window ({cpu:.2?} in {wall:.2?}), workers {workers}, queue {queue}",
            cpu.as_secs_f64() / wall.as_secs_f64()
        ),
    );
    let runs = runs_between(&rig, "noop", &ids, begin, end, secs as usize)?;
    report_fires(&name, &runs, n * secs as usize)
}

/// R2: N jobs on `* * * * * *` for S seconds.
pub fn r2(n: usize, secs: u64, workers: usize, queue: usize, store: StoreKind) -> anyhow::Result<()> {
    let name = format!("{} {n} on * * * * * *", label("R2", store));
    let rig = start(store, workers, queue)?;
    let now = SystemClock.now();
    let (ids, took) =
        insert_with(&rig.s, n, |_| parse_create(&json!({"cron": "* * * * * *"}), now).expect("a valid cron job"))?;
    line(&name, format!("insert {:.0} jobs/s ({n} in {took:.2?})", n as f64 / took.as_secs_f64()));
    // Measure whole seconds starting two seconds from now.
    let begin = Ts((SystemClock.now().0 / 1_000_000 + 2) * 1_000_000);
    let end = begin.plus_micros(secs as i64 * 1_000_000);
    while SystemClock.now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    rig.s.shutdown(Duration::from_secs(5), Duration::from_secs(1));
    let runs = runs_between(&rig, "noop", &ids, begin, end, secs as usize + 5)?;
    report_fires(&name, &runs, n * secs as usize)?;
    let late = runs.iter().filter_map(|(due, start, _)| start.map(|s| s - due)).filter(|l| *l > 50_000).count();
    line(&name, format!("{late} fires started more than 50 ms after their second"));
    Ok(())
}

/// The next-fire computation for typical cron patterns: each step asks for the fire after the
/// previous one. Prints the median of five rounds per pattern.
pub fn next_fire(iterations: usize) -> anyhow::Result<()> {
    let patterns = [
        ("0 0 5 * * *", "UTC"),
        ("0 30 2 * * *", "Europe/Prague"),
        ("*/15 * * * *", "America/New_York"),
        ("0 0 * * * *", "UTC"),
        ("0 0 9 * * MON-FRI", "Europe/Prague"),
        ("0 0 0 1 * *", "Australia/Lord_Howe"),
        ("*/5 * * * * *", "UTC"),
        // Modifiers take croner's own search (no fast path).
        ("0 0 0 L * *", "Europe/Prague"),
    ];
    let start = Ts::from_datetime(chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")?.to_utc());
    for (expr, tz) in patterns {
        let c = Compiled::new(&Trigger::new(ScheduleSpec::Cron { expr: expr.into(), timezone: tz.into() }))?;
        let mut rounds = Vec::new();
        for _ in 0..5 {
            let mut t = start;
            let began = Instant::now();
            for _ in 0..iterations {
                t = black_box(c.next_after(black_box(t), 0)).unwrap_or(start);
            }
            rounds.push(began.elapsed().as_nanos() as f64 / iterations as f64);
        }
        rounds.sort_by(f64::total_cmp);
        let ns = rounds[2];
        line("next-fire", format!("{expr:<20} {tz:<20} {ns:>7.0} ns/op, {:>9.0} per second on one core", 1e9 / ns));
    }
    Ok(())
}
