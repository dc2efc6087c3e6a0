//! The process lifecycle: graceful shutdown, cancellation at its deadline, and plugin log
//! records inside the run's span.

use std::time::{Duration, Instant};

use harness::{instant_in, wait_until, Backend, Server, ServerOptions};
use serde_json::json;

const SLEEPY: &str = "/api/scheduler/fixtures/sleepy/jobs";

fn start_sleeper(s: &Server, ms: u64) -> String {
    let r = s.post_json(SLEEPY, &json!({"when": instant_in(0), "sleepMs": ms}));
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.get("id").as_str().unwrap().to_owned();
    wait_until("the job to start", Duration::from_secs(20), || {
        let runs = s.get(&format!("{SLEEPY}/{id}/runs")).body;
        (runs[0]["outcome"] == "running").then_some(())
    });
    id
}

fn sigterm_waits_for_running_jobs_to_finish(b: Backend) {
    let mut s = Server::start_on(b);
    start_sleeper(&s, 1_500);
    let t = Instant::now();
    s.sigterm();
    let status = s.wait_exit(Duration::from_secs(20)).expect("exits");
    assert!(status.success(), "{status:?}\n{}", s.logs());
    assert!(t.elapsed() >= Duration::from_millis(1_000), "it waited for the job");
    let logs = s.logs();
    assert!(logs.contains("stopping: no new runs"), "{logs}");
    assert!(!logs.contains("asking running jobs to stop"), "{logs}");
    assert!(logs.contains("stopped"), "{logs}");
}

fn sigterm_cancels_running_jobs_after_the_shutdown_timeout(b: Backend) {
    let mut s = Server::start_with(ServerOptions::on(b).args(&["--shutdown-timeout", "300ms"]));
    start_sleeper(&s, 120_000);
    let t = Instant::now();
    s.sigterm();
    let status = s.wait_exit(Duration::from_secs(20)).expect("exits");
    assert!(status.success(), "{status:?}");
    assert!(t.elapsed() < Duration::from_secs(15), "the job was cancelled, not waited for");
    let logs = s.logs();
    assert!(logs.contains("asking running jobs to stop"), "{logs}");
    assert!(logs.contains("run cancelled"), "{logs}");
}

fn plugin_log_records_land_in_the_runs_span_with_its_trace_id(b: Backend) {
    let s = Server::start_on(b);
    let r = s.post_json(SLEEPY, &json!({"when": instant_in(0), "sleepMs": 10}));
    let id = r.get("id").as_str().unwrap().to_owned();
    let run = wait_until("the run", Duration::from_secs(20), || {
        let r = s.get(&format!("{SLEEPY}/{id}/runs")).body;
        r[0]["finishedAt"].is_string().then(|| r[0].clone())
    });
    let trace = run["traceId"].as_str().unwrap();
    let line = s
        .wait_for_log("sleeping sleep_ms=10", Duration::from_secs(5))
        .expect("the plugin's record reached the host log");
    assert!(line.contains(&format!("trace_id={trace}")), "{line}");
    assert!(line.contains(&format!("run_id={}", run["id"].as_str().unwrap())), "{line}");
    assert!(line.contains("plugin=\"fixture-sleepy\""), "{line}");
}

on_both_stores!(
    sigterm_waits_for_running_jobs_to_finish,
    sigterm_cancels_running_jobs_after_the_shutdown_timeout,
    plugin_log_records_land_in_the_runs_span_with_its_trace_id,
);
