//! The bulk create (`Scheduler::jobs_create_many`, for imports) in process: a single create's
//! checks apply to every job, and a batch is taken whole or not at all.

use std::sync::Arc;
use std::time::Duration;

use harness::PluginDir;
use scheduler_core::clock::{Clock, SystemClock};
use scheduler_core::plugin::load_plugins;
use scheduler_core::request::CreateRequest;
use scheduler_core::store::memory::MemoryStore;
use scheduler_core::trigger::OverlapPolicy;
use scheduler_core::{CoreError, Scheduler, SchedulerConfig};

struct Rig {
    s: Scheduler,
    _plugins: PluginDir,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.s.shutdown(Duration::from_secs(5), Duration::from_secs(1));
    }
}

fn start(quota: u64) -> Rig {
    let plugins = PluginDir::with(&["fixture_sleepy"]);
    let report = load_plugins(plugins.path()).expect("plugins load");
    let mut config = SchedulerConfig::new("bulk");
    config.limits.pending_per_product = Some(quota);
    let s = Scheduler::start(Arc::new(MemoryStore::new()), Arc::new(report.registry), Arc::new(SystemClock), config)
        .expect("the scheduler starts");
    Rig { s, _plugins: plugins }
}

/// Jobs an hour away, so none runs during the test.
fn later(payload: &str) -> CreateRequest {
    CreateRequest::once(SystemClock.now().plus_micros(3_600_000_000), payload)
}

fn batch(n: usize) -> Vec<CreateRequest> {
    (0..n).map(|_| later(r#"{"sleepMs": 1}"#)).collect()
}

fn stored(rig: &Rig) -> usize {
    rig.s.jobs_list("fixtures", "sleepy", 1_000, None).unwrap().len()
}

#[test]
fn a_batch_over_the_quota_is_refused_whole() {
    let rig = start(5);
    let e = rig.s.jobs_create_many("fixtures", "sleepy", batch(6)).unwrap_err();
    assert!(matches!(e, CoreError::QuotaReached { .. }), "{e:?}");
    assert_eq!(stored(&rig), 0, "nothing of a refused batch is kept");
    assert_eq!(rig.s.jobs_create_many("fixtures", "sleepy", batch(5)).unwrap().len(), 5);
    assert_eq!(stored(&rig), 5);
    let e = rig.s.jobs_create_many("fixtures", "sleepy", batch(1)).unwrap_err();
    assert!(matches!(e, CoreError::QuotaReached { .. }), "{e:?}");
    assert_eq!(stored(&rig), 5);
}

#[test]
fn one_job_a_single_create_would_refuse_refuses_the_batch() {
    let rig = start(10);
    // The job type's own validation.
    let mut jobs = batch(3);
    jobs.push(later(r#"{"sleepMs": "soon"}"#));
    let e = rig.s.jobs_create_many("fixtures", "sleepy", jobs).unwrap_err();
    assert!(matches!(e, CoreError::PayloadRejected { .. }), "{e:?}");
    // Overlapping runs for a job type that does not allow them.
    let mut jobs = batch(3);
    let mut allow = later(r#"{"sleepMs": 1}"#);
    allow.spec.overlap = OverlapPolicy::Allow;
    jobs.push(allow);
    let e = rig.s.jobs_create_many("fixtures", "sleepy", jobs).unwrap_err();
    assert!(matches!(&e, CoreError::InvalidField { field, .. } if field == "overlap"), "{e:?}");
    // A payload over the size limit.
    let mut jobs = batch(3);
    jobs.push(later(&format!(r#"{{"sleepMs": 1, "pad": "{}"}}"#, "x".repeat(1 << 20))));
    let e = rig.s.jobs_create_many("fixtures", "sleepy", jobs).unwrap_err();
    assert!(matches!(e, CoreError::PayloadTooLarge { .. }), "{e:?}");
    assert_eq!(stored(&rig), 0, "no job of a refused batch is kept");
    // The refused batches took none of the quota: all of it is still there.
    assert_eq!(rig.s.jobs_create_many("fixtures", "sleepy", batch(10)).unwrap().len(), 10);
}
