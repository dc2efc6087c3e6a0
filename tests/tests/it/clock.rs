//! The engine on a manual clock, in process: the planner, the engine's sleeps and the memory
//! store all read the one injected clock, so schedules that span hours run in milliseconds
//! and no test waits for real time to pass.

use std::sync::Arc;
use std::time::Duration;

use harness::{wait_until, PluginDir};
use scheduler_core::clock::{Clock, ManualClock, Ts};
use scheduler_core::model::{Run, RunOutcome};
use scheduler_core::plugin::load_plugins;
use scheduler_core::store::memory::MemoryStore;
use scheduler_core::{Scheduler, SchedulerConfig};
use serde_json::{json, Value};

const HOUR: i64 = 3_600_000_000;

struct Rig {
    s: Scheduler,
    clock: Arc<ManualClock>,
    _plugins: PluginDir,
}

fn start(at: &str) -> Rig {
    let plugins = PluginDir::with(&["fixture_sleepy"]);
    let report = load_plugins(plugins.path()).expect("plugins load");
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    let clock = Arc::new(ManualClock::at(Ts::from_datetime(at.parse().unwrap())));
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let s = Scheduler::start(store, Arc::new(report.registry), clock.clone(), SchedulerConfig::new("manual-clock"))
        .expect("the scheduler starts");
    Rig { s, clock, _plugins: plugins }
}

impl Rig {
    fn create(&self, group: &str, body: Value) -> scheduler_core::model::JobId {
        self.s.job_create("fixtures", group, &body, None).expect("created").job().id
    }

    /// The job's ended runs, oldest first, once there are `n` (bounded wait for the workers).
    fn ended(&self, group: &str, id: scheduler_core::model::JobId, n: usize) -> Vec<Run> {
        wait_until(&format!("{n} ended runs"), Duration::from_secs(10), || {
            let mut runs = self.s.job_runs("fixtures", group, id, 100).unwrap();
            runs.retain(|r| r.finished_at.is_some());
            runs.reverse();
            (runs.len() >= n).then_some(runs)
        })
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.s.shutdown(Duration::from_secs(5), Duration::from_secs(1));
    }
}

#[test]
fn an_hourly_job_fires_once_for_each_hour_the_clock_moves() {
    let rig = start("2030-01-01T00:00:00Z");
    let t0 = rig.clock.now();
    let id = rig.create("sleepy", json!({"sleepMs": 0, "interval": "PT1H", "when": "2030-01-01T01:00:00Z"}));
    for hour in 1..=3 {
        rig.clock.set(t0.plus_micros(hour * HOUR));
        let runs = rig.ended("sleepy", id, hour as usize);
        assert_eq!(runs.len(), hour as usize, "one fire per hour: {runs:?}");
    }
    let runs = rig.ended("sleepy", id, 3);
    let due: Vec<Ts> = runs.iter().map(|r| r.scheduled_for).collect();
    assert_eq!(due, (1..=3).map(|h| t0.plus_micros(h * HOUR)).collect::<Vec<_>>());
    assert!(runs.iter().all(|r| r.outcome == RunOutcome::Succeeded), "{runs:?}");
    // Started by the clock, not the wall: each started at the hour it was due.
    assert!(runs.iter().all(|r| r.started_at == Some(r.scheduled_for)), "{runs:?}");
}

#[test]
fn a_retry_waits_its_backoff_on_the_engines_clock() {
    let rig = start("2030-06-01T12:00:00Z");
    let t0 = rig.clock.now();
    // The first attempt fails; the second comes ten minutes later, by the clock.
    let id = rig.create(
        "flaky",
        json!({"failAttempts": 1, "when": "2030-06-01T12:00:00Z", "attempts": 2, "backoff": {"type": "fixed", "delay": 600_000, "jitter": false}}),
    );
    let first = rig.ended("flaky", id, 1);
    assert_eq!((first[0].outcome, first[0].attempt), (RunOutcome::Failed, 1), "{first:?}");
    // The retry is due ten minutes after the failure, as the clock (not the wall) counts them.
    let job = rig.s.job_get("fixtures", "flaky", id).unwrap();
    assert_eq!(job.next_run, Some(t0.plus_micros(600_000_000)), "{job:?}");
    rig.clock.set(t0.plus_micros(600_000_000));
    let runs = rig.ended("flaky", id, 2);
    assert_eq!((runs[1].outcome, runs[1].attempt), (RunOutcome::Succeeded, 2), "{runs:?}");
    assert_eq!(runs[1].scheduled_for, t0.plus_micros(600_000_000));
    assert_eq!(runs[1].started_at, Some(t0.plus_micros(600_000_000)));
}
