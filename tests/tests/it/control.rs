//! Run control and retries through the API: backoff timings, permanent errors, re-queue,
//! run-now, `now: true`, pause and resume (across a restart), cancel, idempotent create,
//! priority.

use std::sync::Arc;
use std::time::Duration;

use harness::{instant_in, ms_of, now_ms, wait_until, Backend, Server, ServerOptions, TestDb, VM};
use serde_json::{json, Value};

const JOBS: &str = "/api/scheduler/vps4/backups/jobs";
const SLEEPY: &str = "/api/scheduler/fixtures/sleepy/jobs";
const FLAKY: &str = "/api/scheduler/fixtures/flaky/jobs";

fn path(base: &str, job: &Value) -> String {
    format!("{base}/{}", job["id"].as_str().expect("job id"))
}

fn finished(runs: &[Value]) -> bool {
    !runs.is_empty() && runs.iter().all(|r| !harness::in_progress(r))
}

/// The wait between each run's end and the next run's due instant, in milliseconds.
fn waits(runs: &[Value]) -> Vec<i64> {
    runs.windows(2).map(|w| ms_of(&w[1]["scheduledFor"]) - ms_of(&w[0]["finishedAt"])).collect()
}

fn retries_wait_their_backoff_by_the_engine_clock(b: Backend) {
    let s = Server::start_on(b);
    let now = instant_in(0);
    // Fixed: fails twice, 700 ms between attempts.
    let fixed = path(
        FLAKY,
        &s.create(
            FLAKY,
            &json!({"failAttempts": 2, "when": now, "attempts": 3, "backoff": {"type": "fixed", "delay": 700, "jitter": false}}),
        ),
    );
    // Exponential: 200 ms, then 600, then 1800 (factor 3).
    let exp = path(
        FLAKY,
        &s.create(
            FLAKY,
            &json!({"failAttempts": 3, "when": now, "attempts": 4,
                    "backoff": {"type": "exponential", "delay": "200ms", "factor": 3, "cap": "1m", "jitter": false}}),
        ),
    );
    // The job asks for its own wait, overriding the backoff.
    let asked = path(
        FLAKY,
        &s.create(
            FLAKY,
            &json!({"failAttempts": 1, "retryAfterMs": 900, "when": now, "attempts": 2, "backoff": {"delay": 60_000}}),
        ),
    );

    for (p, n, expected) in [(&fixed, 3, vec![700, 700]), (&exp, 4, vec![200, 600, 1_800]), (&asked, 2, vec![900])] {
        let job = s.wait_job(p, "completed", Duration::from_secs(30), |j| j["status"] == "completed");
        let runs = s.wait_runs(p, "all attempts", Duration::from_secs(5), |r| r.len() == n && finished(r));
        let attempts: Vec<u64> = runs.iter().map(|r| r["attempt"].as_u64().unwrap()).collect();
        assert_eq!(attempts, (1..=n as u64).collect::<Vec<_>>(), "{runs:?}");
        let outcomes: Vec<&str> = runs.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
        assert_eq!(outcomes.last(), Some(&"succeeded"));
        assert!(outcomes[..n - 1].iter().all(|o| *o == "failed"), "{outcomes:?}");
        // Each retry is due exactly its wait after the failed attempt ended (the engine's own
        // timestamps, to the millisecond they are shown in), and never starts early.
        for (got, want) in waits(&runs).iter().zip(&expected) {
            assert!((got - want).abs() <= 1, "{p}: waits {:?}, expected {expected:?}", waits(&runs));
        }
        assert!(runs.iter().all(|r| ms_of(&r["startedAt"]) >= ms_of(&r["scheduledFor"])), "{runs:?}");
        assert_eq!(job["lastRun"]["outcome"], "succeeded");
    }
}

fn a_permanent_error_or_spent_attempts_fail_the_job_and_run_now_requeues_it(b: Backend) {
    let s = Server::start_on(b);
    // A permanent error is not retried, whatever the attempts.
    let permanent = path(
        FLAKY,
        &s.create(FLAKY, &json!({"failAttempts": 9, "permanent": true, "when": instant_in(0), "attempts": 5})),
    );
    let job = s.wait_job(&permanent, "failed", Duration::from_secs(20), |j| j["status"] == "failed");
    assert_eq!(s.runs_of(&permanent).len(), 1);
    assert_eq!(job["lastRun"]["error"], "attempt 1 failed as asked");

    // Attempts run out while the marker file exists: the job is failed with its last error.
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("failing");
    std::fs::write(&marker, "").unwrap();
    let body = json!({"failWhileExists": marker, "when": instant_in(0), "attempts": 2, "backoff": {"delay": 100}});
    let flaky = path(FLAKY, &s.create(FLAKY, &body));
    let job = s.wait_job(&flaky, "failed", Duration::from_secs(20), |j| j["status"] == "failed");
    assert_eq!(job["lastRun"]["attempt"], 2);
    assert_eq!(job["lastRun"]["error"], "attempt 2 failed as asked");
    assert_eq!(job["nextRun"], Value::Null);

    // The cause is fixed; run-now re-queues the failed job and it completes.
    std::fs::remove_file(&marker).unwrap();
    let r = s.post(&format!("{flaky}/run"), "");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "scheduled");
    let job = s.wait_job(&flaky, "completed", Duration::from_secs(20), |j| j["status"] == "completed");
    assert_eq!(job["lastRun"]["outcome"], "succeeded");
    assert_eq!(job["lastRun"]["attempt"], 1);
    assert!(job["lastRun"]["note"].as_str().unwrap().contains("run now"), "{job}");
    assert_eq!(s.runs_of(&flaky).len(), 3);
}

fn run_now_fires_at_once_and_keeps_the_schedule(b: Backend) {
    let s = Server::start_on(b);
    let later = instant_in(3_600_000);
    let j = s.create(JOBS, &json!({"vmId": VM, "interval": "1h", "when": later}));
    let p = path(JOBS, &j);
    let r = s.post(&format!("{p}/run"), "");
    assert_eq!(r.status, 200, "{}", r.text);
    let runs = s.wait_runs(&p, "the manual run", Duration::from_secs(20), finished);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["outcome"], "succeeded");
    assert_eq!(runs[0]["trigger"], Value::Null, "outside the schedule");
    let j = s.get(&p).body;
    assert_eq!(ms_of(&j["nextRun"]), ms_of(&json!(later)), "the schedule is unchanged: {j}");
    assert_eq!(j["status"], "scheduled");

    // `now: true` on create runs at once; the payload arrives as ever.
    let before = now_ms();
    let j = s.create(JOBS, &json!({"vmId": VM, "now": true}));
    assert!(ms_of(&j["when"]) >= before - 1, "{j}");
    let runs = s.wait_runs(&path(JOBS, &j), "the run", Duration::from_secs(20), finished);
    assert_eq!(runs[0]["output"]["vmId"], VM);
    // `now` and `when` together is a contradiction.
    s.post_json(JOBS, &json!({"vmId": VM, "now": true, "when": later})).assert_problem(400, "now");
    // Control of unknown or finished jobs.
    let unknown = format!("{JOBS}/{}", uuid::Uuid::new_v4());
    for action in ["run", "pause", "resume"] {
        s.post(&format!("{unknown}/{action}"), "").assert_problem(404, "no job");
    }
    let done = path(JOBS, &j);
    s.wait_job(&done, "completed", Duration::from_secs(20), |j| j["status"] == "completed");
    s.post(&format!("{done}/pause"), "").assert_problem(409, "finished");
}

/// Waits until `control` has run `n` times, then asserts `paused` has not run at all: both
/// fire every second, so the paused one would have had as many chances.
fn assert_stays_paused(s: &Server, paused: &str, control: &str, n: usize) {
    s.wait_runs(control, &format!("{n} runs"), Duration::from_secs(30), |r| r.len() >= n);
    assert_eq!(s.runs_of(paused), Vec::<Value>::new(), "a paused job fired");
    assert_eq!(s.get(paused).body["isPaused"], true);
}

fn pause_stops_fires_and_resume_restarts_them(b: Backend) {
    let s = Server::start_on(b);
    let start = instant_in(1_000);
    let paused = path(JOBS, &s.create(JOBS, &json!({"vmId": VM, "interval": 1, "when": start})));
    let control = path(JOBS, &s.create(JOBS, &json!({"vmId": VM, "interval": 1, "when": start})));
    let r = s.post(&format!("{paused}/pause"), "");
    assert_eq!((r.status, &r.body["isPaused"]), (200, &json!(true)), "{}", r.text);
    assert_eq!(r.body["status"], "paused", "a scheduled job that is paused shows as paused");
    s.post(&format!("{paused}/run"), "").assert_problem(409, "paused");
    assert_stays_paused(&s, &paused, &control, 3);

    let r = s.post(&format!("{paused}/resume"), "");
    assert_eq!((r.status, &r.body["isPaused"]), (200, &json!(false)), "{}", r.text);
    assert_ne!(r.body["status"], "paused");
    let runs = s.wait_runs(&paused, "runs after resume", Duration::from_secs(20), |r| r.len() >= 2);
    assert!(runs.iter().all(|r| r["outcome"] != "skipped"), "missed fires were under the threshold: {runs:?}");
    // Pausing twice, or resuming a running job, is harmless.
    assert_eq!(s.post(&format!("{paused}/resume"), "").status, 200);
    // The `isPaused` create key starts a job paused.
    let j = s.create(JOBS, &json!({"vmId": VM, "interval": 1, "when": instant_in(0), "isPaused": true}));
    assert_eq!(j["isPaused"], true);
    assert_stays_paused(&s, &path(JOBS, &j), &control, s.runs_of(&control).len() + 2);
}

/// PostgreSQL only: the memory store forgets everything on restart by design.
#[test]
fn a_pause_survives_a_restart() {
    let db = Arc::new(TestDb::create());
    let start = instant_in(1_000);
    let (paused, control) = {
        let s = Server::start_with(ServerOptions::on(Backend::Postgres).database(db.clone()));
        let paused = path(JOBS, &s.create(JOBS, &json!({"vmId": VM, "interval": 1, "when": start})));
        let control = path(JOBS, &s.create(JOBS, &json!({"vmId": VM, "interval": 1, "when": start})));
        assert_eq!(s.post(&format!("{paused}/pause"), "").status, 200);
        (paused, control)
    };
    let s = Server::start_with(ServerOptions::on(Backend::Postgres).database(db));
    let seen = s.runs_of(&control).len();
    assert_stays_paused(&s, &paused, &control, seen + 3);
    assert_eq!(s.post(&format!("{paused}/resume"), "").status, 200);
    s.wait_runs(&paused, "runs after resume", Duration::from_secs(20), |r| !r.is_empty());
}

fn cancel_reaches_the_running_job(b: Backend) {
    let s = Server::start_on(b);
    let j = s.create(SLEEPY, &json!({"sleepMs": 60_000, "now": true}));
    let p = path(SLEEPY, &j);
    let runs = s.wait_runs(&p, "running", Duration::from_secs(20), |r| r.iter().any(|r| r["outcome"] == "running"));
    let run_id = runs[0]["id"].as_str().unwrap().to_owned();
    let cancel = format!("/api/scheduler/fixtures/sleepy/runs/{run_id}/cancel");
    let asked = now_ms();
    let r = s.post(&cancel, "");
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["status"], "cancelling");
    let runs = s.wait_runs(&p, "cancelled", Duration::from_secs(10), finished);
    assert_eq!(runs[0]["outcome"], "cancelled");
    assert!(ms_of(&runs[0]["finishedAt"]) - asked < 5_000, "the job stopped promptly: {}", runs[0]);
    let job = s.get(&p).body;
    assert_eq!(job["status"], "cancelled", "{job}");
    // A run that is not running, an unknown run, a run of another group.
    s.post(&cancel, "").assert_problem(409, "not running");
    s.post(&format!("/api/scheduler/fixtures/sleepy/runs/{}/cancel", uuid::Uuid::new_v4()), "")
        .assert_problem(404, "no run");
    s.post("/api/scheduler/fixtures/sleepy/runs/not-a-uuid/cancel", "").assert_problem(404, "not-a-uuid");
    s.post(&format!("/api/scheduler/vps4/backups/runs/{run_id}/cancel"), "").assert_problem(404, &run_id);
}

/// A run waiting in a node's queue (claimed, not started) that is asked to stop ends
/// `cancelled` when its turn comes, without the job being called.
fn cancel_of_a_run_waiting_for_a_worker_never_calls_the_job(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("starts.log");
    let s = Server::start_with(
        ServerOptions::on(b)
            .args(&["--workers", "1", "--queue", "4"])
            .env("SLEEPY_RECORD_FILE", record.to_str().unwrap()),
    );
    // The only worker is kept busy while two jobs are created, then freed: one claim takes both.
    let blocker = path(FLAKY, &s.create(FLAKY, &json!({"sleepMs": 60_000, "now": true})));
    let runs =
        s.wait_runs(&blocker, "running", Duration::from_secs(20), |r| r.iter().any(|r| r["outcome"] == "running"));
    let blocker_run = runs[0]["id"].as_str().unwrap().to_owned();
    let first = path(SLEEPY, &s.create(SLEEPY, &json!({"sleepMs": 1_500, "when": instant_in(-1_000)})));
    let waiting = path(SLEEPY, &s.create(SLEEPY, &json!({"sleepMs": 1, "when": instant_in(0)})));
    assert_eq!(s.post(&format!("/api/scheduler/fixtures/flaky/runs/{blocker_run}/cancel"), "").status, 202);
    let runs = s.wait_runs(&waiting, "a claimed run", Duration::from_secs(20), |r| {
        r.first().is_some_and(|r| r["outcome"] == "claimed")
    });
    assert_eq!(runs[0]["startedAt"], Value::Null, "claimed, not started: {}", runs[0]);
    let run_id = runs[0]["id"].as_str().unwrap();
    let r = s.post(&format!("/api/scheduler/fixtures/sleepy/runs/{run_id}/cancel"), "");
    assert_eq!(r.status, 202, "{}", r.text);
    let runs = s.wait_runs(&waiting, "cancelled", Duration::from_secs(20), finished);
    assert_eq!(runs[0]["outcome"], "cancelled", "{}", runs[0]);
    assert_eq!(runs[0]["error"], "cancelled before it started");
    assert_eq!(s.wait_runs(&first, "the first job", Duration::from_secs(20), finished)[0]["outcome"], "succeeded");
    let waiting_id = waiting.rsplit('/').next().unwrap();
    let called = harness::read_starts(&record).iter().filter(|(job, ..)| job == waiting_id).count();
    assert_eq!(called, 0, "the job was never called");
}

fn create_is_idempotent_under_a_client_key(b: Backend) {
    let s = Server::start_on(b);
    let body = json!({"vmId": VM, "when": instant_in(3_600_000)});
    let text = body.to_string();
    let key = [("Idempotency-Key", "nightly-79bf")];
    let first = s.send_with("POST", JOBS, Some(&text), &key);
    assert_eq!(first.status, 201, "{}", first.text);
    let again = s.send_with("POST", JOBS, Some(&text), &key);
    assert_eq!(again.status, 200, "a repeat returns the existing job: {}", again.text);
    assert_eq!(again.body["id"], first.body["id"]);
    let other = json!({"vmId": VM, "when": instant_in(7_200_000)}).to_string();
    s.send_with("POST", JOBS, Some(&other), &key).assert_problem(409, "nightly-79bf");
    // Or the client chooses the job's id: the same id is the same job.
    let id = uuid::Uuid::new_v4().to_string();
    let with_id = json!({"vmId": VM, "when": instant_in(3_600_000), "id": id});
    let a = s.post_json(JOBS, &with_id);
    assert_eq!((a.status, &a.body["id"]), (201, &json!(id)), "{}", a.text);
    let b2 = s.post_json(JOBS, &with_id);
    assert_eq!((b2.status, &b2.body["id"]), (200, &a.body["id"]));
    s.post_json(JOBS, &json!({"vmId": VM, "when": instant_in(60_000), "id": id})).assert_problem(409, &id);
    // Keys are per group; a bad key is a 400.
    let elsewhere =
        s.send_with("POST", SLEEPY, Some(&json!({"sleepMs": 1, "when": instant_in(60_000)}).to_string()), &key);
    assert_eq!(elsewhere.status, 201, "{}", elsewhere.text);
    s.send_with("POST", JOBS, Some(&text), &[("Idempotency-Key", &"k".repeat(300))])
        .assert_problem(400, "Idempotency-Key");
    s.post_json(JOBS, &json!({"vmId": VM, "when": instant_in(60_000), "id": 7})).assert_problem(400, "id");
    let ids: Vec<Value> = s.get(JOBS).body.as_array().unwrap().iter().map(|j| j["id"].clone()).collect();
    assert_eq!(ids.len(), 2, "one job per key: {ids:?}");
}

fn higher_priority_runs_first_when_workers_are_scarce(b: Backend) {
    let s = Server::start_with(ServerOptions::on(b).args(&["--workers", "1"]));
    // The only worker is busy for a second and a half.
    let blocker = path(SLEEPY, &s.create(SLEEPY, &json!({"sleepMs": 1_500, "now": true})));
    s.wait_runs(&blocker, "running", Duration::from_secs(20), |r| !r.is_empty());
    // Meanwhile five ordinary jobs fall due, then one urgent job, due later than all of them.
    let low: Vec<String> = (0..5)
        .map(|i| path(SLEEPY, &s.create(SLEEPY, &json!({"sleepMs": 1, "when": instant_in(-1_000 + i)}))))
        .collect();
    let high = path(SLEEPY, &s.create(SLEEPY, &json!({"sleepMs": 1, "when": instant_in(0), "priority": 10})));
    let started = |p: &str| {
        let runs = s.wait_runs(p, "a finished run", Duration::from_secs(20), finished);
        ms_of(&runs[0]["startedAt"])
    };
    let blocker_end = ms_of(&s.wait_runs(&blocker, "the blocker", Duration::from_secs(20), finished)[0]["finishedAt"]);
    let high_start = started(&high);
    let low_starts: Vec<i64> = low.iter().map(|p| started(p)).collect();
    assert!(
        low_starts.iter().all(|t| *t >= high_start),
        "the urgent job ran first: {high_start} vs {low_starts:?} (blocker ended {blocker_end})"
    );
}

/// Pausing a job whose run is in progress lets the run go on: the job shows `running` and
/// `isPaused`, and once the run ends, `paused`.
fn a_paused_job_with_a_run_in_progress_shows_running(b: Backend) {
    let s = Server::start_on(b);
    let j = s.create(SLEEPY, &json!({"sleepMs": 1_500, "interval": 3_600, "when": instant_in(0)}));
    let p = path(SLEEPY, &j);
    s.wait_runs(&p, "running", Duration::from_secs(20), |r| r.iter().any(|r| r["outcome"] == "running"));
    let r = s.post(&format!("{p}/pause"), "");
    assert_eq!(
        (r.status, &r.body["status"], &r.body["isPaused"]),
        (200, &json!("running"), &json!(true)),
        "{}",
        r.text
    );
    s.wait_runs(&p, "the run to end", Duration::from_secs(20), |r| r.iter().all(|r| r["outcome"] == "succeeded"));
    wait_until("the job to show paused", Duration::from_secs(10), || {
        (s.get(&p).body["status"] == "paused").then_some(())
    });
}

on_both_stores!(
    a_paused_job_with_a_run_in_progress_shows_running,
    retries_wait_their_backoff_by_the_engine_clock,
    a_permanent_error_or_spent_attempts_fail_the_job_and_run_now_requeues_it,
    run_now_fires_at_once_and_keeps_the_schedule,
    pause_stops_fires_and_resume_restarts_them,
    cancel_reaches_the_running_job,
    cancel_of_a_run_waiting_for_a_worker_never_calls_the_job,
    create_is_idempotent_under_a_client_key,
    higher_priority_runs_first_when_workers_are_scarce,
);
