//! Operating the service: health and readiness, run history queries, statistics, retention,
//! metrics.

use std::time::Duration;

use harness::{wait_until, Backend, PgServer, PluginDir, Server, ServerOptions};
use serde_json::{json, Value};

fn health_live_and_ready_answer_with_versions(b: Backend) {
    let s = Server::start_on(b);
    for path in ["/health", "/live"] {
        let h = s.get(path);
        assert_eq!(h.status, 200, "{path}");
        assert_eq!(h.body["pluginAbi"], "1.0.0", "{path}");
        assert!(h.body["version"].is_string(), "{path}");
    }
    let r = s.get("/ready");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["checks"], serde_json::json!({"store": "ok", "plugins": "ok"}));
    // A node without plugins cannot do its work.
    let empty = Server::start_with(ServerOptions::on(b).plugins(PluginDir::empty()));
    let r = empty.get("/ready");
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.body["checks"]["plugins"].as_str().unwrap().contains("--plugins"), "{}", r.text);
    assert_eq!(empty.get("/live").status, 200);
}

#[test]
fn ready_turns_503_while_postgres_is_down_and_200_when_it_is_back() {
    let pg = PgServer::start();
    let db = std::sync::Arc::new(pg.database());
    let s = Server::start_with(ServerOptions::default().database(db));
    assert_eq!(s.get("/ready").status, 200);
    pg.halt();
    let down: Value = wait_until("/ready to fail", Duration::from_secs(30), || {
        let r = s.get("/ready");
        (r.status == 503).then_some(r.body)
    });
    assert!(down["checks"]["store"].as_str().unwrap().contains("unreachable"), "{down}");
    assert_eq!(down["checks"]["plugins"], "ok");
    assert_eq!(s.get("/live").status, 200, "the process itself is fine");
    pg.resume();
    wait_until("/ready to recover", Duration::from_secs(30), || (s.get("/ready").status == 200).then_some(()));
}

const BACKUPS: &str = "/api/scheduler/vps4/backups/jobs";
const FLAKY: &str = "/api/scheduler/fixtures/flaky/jobs";

/// Runs some jobs to a known history: 3 backups that succeed, 2 vetoed, 2 flaky jobs that fail.
fn make_history(s: &Server) -> Vec<Value> {
    let mut ids = Vec::new();
    for i in 0..7 {
        let (path, body) = match i {
            0..=2 => (BACKUPS, json!({"vmId": harness::VM, "when": harness::instant_in(0)})),
            3..=4 => (BACKUPS, json!({"vmId": harness::NIL_VM, "when": harness::instant_in(0)})),
            _ => (FLAKY, json!({"failAttempts": 1, "when": harness::instant_in(0)})),
        };
        ids.push(format!("{path}/{}", s.create(path, &body)["id"].as_str().unwrap()));
    }
    for p in &ids {
        s.wait_job(p, "finished", Duration::from_secs(20), |j| j["nextRun"].is_null() && j["status"] != "running");
    }
    let all = runs_page(s, "/api/runs?limit=1000");
    assert_eq!(all.len(), 7, "{all:?}");
    all
}

fn runs_page(s: &Server, path: &str) -> Vec<Value> {
    let r = s.get(path);
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.body.as_array().cloned().unwrap()
}

fn ids(runs: &[Value]) -> Vec<String> {
    runs.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
}

/// Follows `Link` headers from `first`, collecting every page.
fn all_pages(s: &Server, first: &str, between: impl Fn(usize)) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next = Some(first.to_owned());
    let mut n = 0;
    while let Some(path) = next {
        let r = s.get(&path);
        assert_eq!(r.status, 200, "{}", r.text);
        out.extend(r.body.as_array().cloned().unwrap());
        next = r.link.as_deref().and_then(|l| l.split('<').nth(1)).and_then(|l| l.split('>').next()).map(str::to_owned);
        between(n);
        n += 1;
        assert!(n < 100, "too many pages");
    }
    out
}

fn history_filters_and_pages_answer_exactly(b: Backend) {
    let s = Server::start_on(b);
    let all = make_history(&s);
    let seqs: Vec<i64> = all.iter().map(|r| harness::ms_of(&r["scheduledFor"])).collect();
    assert!(all.iter().all(|r| !harness::in_progress(r)));
    let count = |q: &str| runs_page(&s, &format!("/api/runs?{q}")).len();
    assert_eq!(count("product=vps4"), 5);
    assert_eq!(count("product=fixtures&jobGroup=flaky"), 2);
    assert_eq!(count("jobGroup=backups"), 5);
    assert_eq!(count("outcome=vetoed"), 2);
    assert_eq!(count("outcome=failed,vetoed"), 4);
    assert_eq!(count("outcome=succeeded&product=vps4"), 3);
    let node = all[0]["node"].as_str().unwrap();
    assert_eq!(count(&format!("node={node}")), 7);
    assert_eq!(count("node=elsewhere"), 0);
    let one = &all[3];
    assert_eq!(
        ids(&runs_page(&s, &format!("/api/runs?jobId={}", one["jobId"].as_str().unwrap()))),
        [one["id"].as_str().unwrap()]
    );
    // Time ranges: from inclusive, to exclusive.
    let earliest = *seqs.iter().min().unwrap();
    let at = |ms: i64| harness::ms_to_rfc3339(ms);
    assert_eq!(count(&format!("scheduledFrom={}", at(earliest))), 7);
    assert_eq!(count(&format!("scheduledTo={}", at(earliest))), 0);
    assert_eq!(count(&format!("startedFrom={}", at(harness::now_ms() + 60_000))), 0);
    assert_eq!(count(&format!("startedTo={}", at(harness::now_ms() + 60_000))), 7);
    // One run by id, and the job's own history route.
    let r = s.get(&format!("/api/runs/{}", one["id"].as_str().unwrap()));
    assert_eq!((r.status, &r.body), (200, one));
    s.get(&format!("/api/runs/{}", uuid::Uuid::new_v4())).assert_problem(404, "no run");
    s.get("/api/runs/nope").assert_problem(404, "nope");

    // Pages: newest first, stable while new runs arrive between them.
    let paged = all_pages(&s, "/api/runs?limit=2", |_| {
        s.create(BACKUPS, &json!({"vmId": harness::VM, "when": harness::instant_in(0)}));
    });
    assert_eq!(ids(&paged[..7]), ids(&all), "the pages hold exactly the history as it was, in order");
    let mut seen = ids(&paged);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), paged.len(), "no run twice");

    // A due window pages latest due first, through its own cursor.
    let windowed = all_pages(&s, &format!("/api/runs?limit=3&scheduledFrom={}", at(earliest)), |_| {});
    let dues: Vec<i64> = windowed.iter().map(|r| harness::ms_of(&r["scheduledFor"])).collect();
    assert!(dues.windows(2).all(|w| w[0] >= w[1]), "latest due first: {dues:?}");
    assert!(windowed.len() >= 7, "every run in the window, across pages");

    // Bad queries change nothing and say which parameter is wrong.
    for (q, needle) in [
        ("outcome=bogus", "outcome"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("after=abc", "after"),
        ("after=-5", "after"),
        ("scheduledFrom=yesterday", "scheduledFrom"),
        ("startedTo=2030-01-01T00:00:00", "offset"),
        ("jobId=7", "jobId"),
        ("color=red", "color"),
        ("limit=1&limit=2", "limit"),
        ("scheduledFrom=2030-01-02T00:00:00Z&scheduledTo=2030-01-01T00:00:00Z", "scheduledTo"),
    ] {
        s.get(&format!("/api/runs?{q}")).assert_problem(400, needle);
    }
}

fn stats_match_the_runs_they_summarise(b: Backend) {
    let s = Server::start_on(b);
    let all = make_history(&s);
    let since = harness::ms_to_rfc3339(harness::now_ms() - 3_600_000);
    let r = s.get(&format!("/api/stats?since={since}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let groups = r.body.as_array().unwrap();
    let of = |g: &str| groups.iter().find(|x| x["jobGroup"] == g).unwrap_or_else(|| panic!("{g} in {groups:?}"));
    assert_eq!(of("backups")["runs"], json!({"succeeded": 3, "vetoed": 2}));
    assert_eq!(of("backups")["total"], 5);
    assert_eq!(of("flaky")["runs"], json!({"failed": 2}));
    // Lateness and duration percentiles bound the real values (histogram bucket bounds).
    let real_max_late = all
        .iter()
        .filter(|r| r["jobGroup"] == "backups" && !r["startedAt"].is_null())
        .map(|r| harness::ms_of(&r["startedAt"]) - harness::ms_of(&r["scheduledFor"]))
        .max()
        .unwrap();
    let late = of("backups")["latenessMs"]["max"].as_f64().unwrap();
    assert!(
        late >= real_max_late as f64 - 1.0 && late <= (real_max_late as f64 + 1.0) * 1.2,
        "{late} vs {real_max_late}"
    );
    // Filters and the daily view.
    let r = s.get(&format!("/api/stats?since={since}&jobGroup=flaky"));
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let day = s.get("/api/stats/daily");
    assert_eq!(day.status, 200, "{}", day.text);
    let days = day.body.as_array().unwrap();
    let total: u64 = days.iter().map(|d| d["total"].as_u64().unwrap()).sum();
    assert_eq!(total, 7);
    assert!(days.iter().all(|d| d["period"].as_str().unwrap().ends_with("T00:00:00.000Z")), "{days:?}");
    // One job: exact.
    let job = all.iter().find(|r| r["outcome"] == "failed").unwrap();
    let path = format!("{FLAKY}/{}/stats", job["jobId"].as_str().unwrap());
    let st = s.get(&path);
    assert_eq!(st.status, 200, "{}", st.text);
    assert_eq!(st.body["runs"], json!({"failed": 1}));
    // Bad parameters.
    s.get("/api/stats?since=soon").assert_problem(400, "since");
    s.get("/api/stats?window=1").assert_problem(400, "window");
    s.get("/api/stats/daily?from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z").assert_problem(400, "to");
    s.get(&format!("{path}?since=x")).assert_problem(400, "since");
}

fn retention_removes_exactly_the_expired_history(b: Backend) {
    let s = Server::start_with(ServerOptions::on(b).args(&[
        "--retain-succeeded",
        "4s",
        "--retain-failed",
        "1h",
        "--retention-interval",
        "200ms",
    ]));
    let all = make_history(&s);
    // A recurring job whose only run so far succeeds: its run goes, the job stays.
    let recurring = format!(
        "{BACKUPS}/{}",
        s.create(BACKUPS, &json!({"vmId": harness::VM, "interval": "1h", "when": harness::instant_in(0)}))["id"]
            .as_str()
            .unwrap()
    );
    s.wait_runs(&recurring, "its first run", Duration::from_secs(20), |r| {
        r.len() == 1 && r[0]["outcome"] == "succeeded"
    });
    wait_until("succeeded runs to be pruned", Duration::from_secs(20), || {
        (runs_page(&s, "/api/runs?outcome=succeeded").is_empty()).then_some(())
    });
    let left = runs_page(&s, "/api/runs?limit=1000");
    let mut kept = ids(&left);
    kept.sort();
    let mut expected: Vec<String> =
        ids(&all.iter().filter(|r| r["outcome"] != "succeeded").cloned().collect::<Vec<_>>());
    expected.sort();
    assert_eq!(kept, expected, "failed and vetoed runs are kept for an hour");
    for r in &all {
        let job = format!(
            "/api/scheduler/{}/{}/jobs/{}",
            r["product"].as_str().unwrap(),
            r["jobGroup"].as_str().unwrap(),
            r["jobId"].as_str().unwrap()
        );
        let status = s.get(&job).status;
        if r["outcome"] == "succeeded" {
            wait_until("completed jobs to be pruned", Duration::from_secs(20), || {
                (s.get(&job).status == 404).then_some(())
            });
        } else {
            assert_eq!(status, 200, "a {} job is kept", r["outcome"]);
        }
    }
    assert_eq!(s.get(&recurring).body["status"], "scheduled", "an unfinished job is never pruned");
    // Statistics are aggregates: pruning history does not change them.
    let since = harness::ms_to_rfc3339(harness::now_ms() - 3_600_000);
    let total: u64 = s
        .get(&format!("/api/stats?since={since}"))
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["total"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 8);
}

/// The value of a sample of `/metrics` with these labels (0 when absent), parsed by a
/// Prometheus text parser.
fn metric(s: &Server, name: &str, labels: &[(&str, &str)]) -> f64 {
    let r = s.get("/metrics");
    assert_eq!(r.status, 200, "{}", r.text);
    let scrape = prometheus_parse::Scrape::parse(r.text.lines().map(|l| Ok(l.to_owned()))).expect("valid exposition");
    scrape
        .samples
        .iter()
        .filter(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(h) => h.iter().map(|b| b.count).fold(0.0, f64::max),
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .sum()
}

fn wait_metric(s: &Server, name: &str, labels: &[(&str, &str)], want: f64) {
    wait_until(&format!("{name}{labels:?} to reach {want}"), Duration::from_secs(20), || {
        (metric(s, name, labels) >= want).then_some(())
    });
    assert_eq!(metric(s, name, labels), want, "{name}{labels:?}");
}

fn metrics_count_runs_policies_depth_and_lag(b: Backend) {
    let s = Server::start_with(ServerOptions::on(b).args(&["--max-running", "fixtures/sleepy=1"]));
    assert_eq!(metric(&s, "scheduler_build_info", &[("plugin_abi", "1.0.0")]), 1.0);
    assert_eq!(metric(&s, "scheduler_workers", &[]), 8.0);
    let backups = [("product", "vps4"), ("job_group", "backups")];
    assert_eq!(metric(&s, "scheduler_runs_started_total", &backups), 0.0);
    make_history(&s);
    wait_metric(&s, "scheduler_runs_started_total", &backups, 5.0);
    wait_metric(&s, "scheduler_runs_finished_total", &[("job_group", "backups"), ("outcome", "succeeded")], 3.0);
    wait_metric(&s, "scheduler_runs_finished_total", &[("job_group", "backups"), ("outcome", "vetoed")], 2.0);
    wait_metric(&s, "scheduler_runs_finished_total", &[("job_group", "flaky"), ("outcome", "failed")], 2.0);
    wait_metric(&s, "scheduler_run_lateness_seconds_count", &backups, 5.0);
    wait_metric(&s, "scheduler_run_duration_seconds_count", &[("job_group", "flaky")], 2.0);
    // Policies: one missed fire skipped, one retry scheduled.
    s.create(
        "/api/scheduler/fixtures/sleepy/jobs",
        &json!({"sleepMs": 1, "interval": 60, "when": harness::instant_in(-630_000), "misfire": "skip"}),
    );
    wait_metric(&s, "scheduler_misfires_total", &[("job_group", "sleepy"), ("action", "skipped")], 1.0);
    s.create(
        FLAKY,
        &json!({"failAttempts": 1, "when": harness::instant_in(0), "attempts": 2, "backoff": {"delay": 100}}),
    );
    wait_metric(&s, "scheduler_retries_total", &[("job_group", "flaky")], 1.0);
    // Depth and lag: the group may run one at a time, so of three due jobs two wait.
    for _ in 0..3 {
        s.create("/api/scheduler/fixtures/sleepy/jobs", &json!({"sleepMs": 30_000, "when": harness::instant_in(0)}));
    }
    let sleepy = [("product", "fixtures"), ("job_group", "sleepy")];
    wait_metric(&s, "scheduler_jobs_due", &sleepy, 2.0);
    wait_until("lag to grow", Duration::from_secs(20), || {
        (metric(&s, "scheduler_oldest_due_age_seconds", &sleepy) >= 1.0).then_some(())
    });
    assert_eq!(metric(&s, "scheduler_runs_running", &[]), 1.0);
    // Every call of the database store is timed, by store method; none of these failed.
    if matches!(b, Backend::Postgres) {
        for op in ["job_insert", "claim", "start", "finish", "due_summary"] {
            assert!(metric(&s, "scheduler_store_call_seconds_count", &[("operation", op)]) >= 1.0, "{op} timed");
        }
    } else {
        assert_eq!(metric(&s, "scheduler_store_call_seconds_count", &[]), 0.0, "the memory store is not timed");
    }
    assert_eq!(metric(&s, "scheduler_store_errors_total", &[]), 0.0);
    // Switched off: a 404 that says so.
    let off = Server::start_with(ServerOptions::on(b).args(&["--no-metrics"]));
    off.get("/metrics").assert_problem(404, "--no-metrics");
}

on_both_stores!(
    health_live_and_ready_answer_with_versions,
    history_filters_and_pages_answer_exactly,
    stats_match_the_runs_they_summarise,
    retention_removes_exactly_the_expired_history,
    metrics_count_runs_policies_depth_and_lag,
);
