//! Limits through the real binary: body size, payload size and depth, the per-product quota of
//! unfinished jobs, and the request rate per token; each reported with its status, and a
//! refused request stores nothing.

use std::time::Duration;

use harness::{instant_in, wait_until, Backend, Server, ServerOptions, VM};
use serde_json::{json, Value};

use crate::security::{bearer, new_token};

const JOBS: &str = "/api/scheduler/vps4/backups/jobs";
const BENCH: &str = "/api/scheduler/bench/noop/jobs";

fn listed(s: &Server, path: &str) -> usize {
    let r = s.get(path);
    assert_eq!(r.status, 200, "{}", r.text);
    r.body.as_array().unwrap().len()
}

/// `{"a": {"a": … {}}}` with `levels` levels of objects under the body.
fn nested(levels: usize) -> Value {
    (0..levels).fold(json!({}), |inner, _| json!({ "a": inner }))
}

fn body_and_payload_limits_are_reported_and_nothing_is_stored(b: Backend) {
    let s = Server::start_with(ServerOptions::on(b).args(&[
        "--max-body-bytes",
        "4096",
        "--max-payload-bytes",
        "1024",
        "--max-payload-depth",
        "4",
    ]));
    let when = instant_in(3_600_000);

    // The body limit: 413 naming the body.
    let big = json!({"vmId": VM, "when": when, "note": "x".repeat(5000)}).to_string();
    s.post(JOBS, &big).assert_problem(413, "4096");
    // Under the body limit but over the payload limit: 413 naming the payload.
    let r = s.post(JOBS, &json!({"vmId": VM, "when": when, "note": "x".repeat(2000)}).to_string());
    r.assert_problem(413, "1024");
    assert_eq!(r.get("field"), "payload");
    // The service's own keys do not count towards the payload.
    let r = s.post(JOBS, &json!({"vmId": VM, "when": when, "note": "x".repeat(900)}).to_string());
    assert_eq!(r.status, 201, "{}", r.text);

    // Depth: the body is level 1, so four levels fit and five do not; the field names the path.
    let ok = json!({"vmId": VM, "when": when, "a": nested(2)});
    assert_eq!(s.post_json(JOBS, &ok).status, 201);
    let deep = json!({"vmId": VM, "when": when, "a": nested(3)});
    let r = s.post_json(JOBS, &deep);
    r.assert_problem(400, "deeper than the limit of 4");
    assert_eq!(r.get("field"), "a.a.a.a");
    let in_array = json!({"vmId": VM, "when": when, "list": [[[[1]]]]});
    let r = s.post_json(JOBS, &in_array);
    r.assert_problem(400, "deeper");
    assert_eq!(r.get("field"), "list[0][0][0]");
    // Hostile nesting beyond what the JSON reader takes at all: still a clean 400.
    let hostile = format!("{}{}", "[".repeat(2000), "]".repeat(2000));
    s.post(JOBS, &hostile).assert_problem(400, "body");

    // A reschedule is held to the same depth.
    let job = s.create(JOBS, &json!({"vmId": VM, "when": when}));
    let path = format!("{JOBS}/{}", job["id"].as_str().unwrap());
    let r = s.patch(&path, &json!({"when": instant_in(7_200_000), "x": nested(4)}).to_string());
    r.assert_problem(400, "deeper");
    assert_eq!(s.get(&path).get("when"), &job["when"], "a refused reschedule changes nothing");

    // Only the three accepted creates were stored.
    assert_eq!(listed(&s, JOBS), 3);
}

fn the_pending_quota_refuses_with_retry_after_until_jobs_finish(b: Backend) {
    let s = Server::start_with(ServerOptions::on(b).args(&["--max-pending-jobs", "3"]));
    let body = |i: i64| json!({"vmId": VM, "when": instant_in(3_600_000 + i)});
    // Due already but paused: it runs (and finishes) only when resumed below.
    let soon = s.create(JOBS, &json!({"vmId": VM, "when": instant_in(-1_000), "isPaused": true}))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let keyed = body(0).to_string();
    let with_key = |text: &str| s.send_with("POST", JOBS, Some(text), &[("Idempotency-Key", "nightly-1")]);
    let first = with_key(&keyed);
    assert_eq!(first.status, 201, "{}", first.text);
    let ids = [first.get("id").as_str().unwrap().to_owned(), s.create(JOBS, &body(1))["id"].as_str().unwrap().into()];

    let r = s.post_json(JOBS, &body(9));
    r.assert_problem(429, "quota is 3");
    assert_eq!(r.retry_after.as_deref(), Some("60"), "429 carries Retry-After");
    assert_eq!(listed(&s, JOBS), 3, "the refused create stored nothing");
    // A repeat of a create that succeeded gets its job, quota or not; a new key does not.
    let again = with_key(&keyed);
    assert_eq!((again.status, again.get("id")), (200, first.get("id")), "{}", again.text);
    s.send_with("POST", JOBS, Some(&body(2).to_string()), &[("Idempotency-Key", "nightly-2")])
        .assert_problem(429, "quota");
    // The quota is per product: another product still takes jobs.
    assert_eq!(s.post_json(BENCH, &json!({"when": instant_in(3_600_000)})).status, 201);

    // A job that runs and finishes frees its place, as does a deleted one.
    assert_eq!(s.delete(&format!("{JOBS}/{}", ids[0])).status, 204);
    let path = format!("{JOBS}/{soon}");
    assert_eq!(s.post(&format!("{path}/resume"), "").status, 200);
    s.wait_job(&path, "the resumed job to finish", Duration::from_secs(20), |j| j["status"] == "completed");
    let mut made = 0;
    wait_until("the quota to admit two creates again", Duration::from_secs(10), || {
        let r = s.post_json(JOBS, &body(20 + made));
        match r.status {
            201 => made += 1,
            429 => {}
            other => panic!("unexpected {other}: {}", r.text),
        }
        (made == 2).then_some(())
    });
    s.post_json(JOBS, &body(99)).assert_problem(429, "quota");
    assert_eq!(listed(&s, JOBS), 3);
}

/// What fuzzing found: text no store can keep is a 400 naming the field on both stores (it was
/// a PostgreSQL 500), and a route asked with a method it does not take is a 405.
fn hostile_text_and_methods_get_clear_answers(b: Backend) {
    let s = Server::start_with(ServerOptions::on(b));
    for (path, field) in [
        ("/api/runs?node=%00", "node"),
        ("/api/runs?product=a%00b", "product"),
        ("/api/stats?jobGroup=%00", "jobGroup"),
        ("/api/stats/daily?product=%0A", "product"),
        ("/api/audit?who=%00", "who"),
    ] {
        let r = s.get(path);
        r.assert_problem(400, "control character");
        assert_eq!(r.get("field"), field, "{path}");
    }
    let nul_name = json!({"vmId": VM, "triggers": [{"cron": "0 0 2 * * *", "name": "n\u{0}"}]});
    let r = s.post_json(JOBS, &nul_name);
    r.assert_problem(400, "NUL");
    assert_eq!(r.get("field"), "triggers[0].name");
    let far = json!({"vmId": VM, "interval": "1", "initialDelay": "PT9999999999999S"});
    let r = s.post_json(JOBS, &far);
    r.assert_problem(400, "out of range");
    assert_eq!(r.get("field"), "initialDelay");
    assert_eq!(listed(&s, JOBS), 0, "nothing was stored");

    for path in ["/health", "/ready", "/metrics", "/api/runs", "/api/stats", "/api/audit", "/api/openapi.json"] {
        s.post(path, "{}").assert_problem(405, "GET");
    }
}

/// A key twice in one object: serde_json would keep the last, another reader the first; the
/// service refuses the body instead, on every route that takes one.
fn a_key_given_twice_is_refused_naming_it_and_nothing_changes(b: Backend) {
    let s = Server::start_on(b);
    let when = instant_in(3_600_000);
    let body = format!(r#"{{"vmId": "{VM}", "when": "{when}", "vmId": "00000000-0000-0000-0000-000000000000"}}"#);
    let r = s.post(JOBS, &body);
    r.assert_problem(400, "more than once");
    assert_eq!(r.get("field"), "vmId");
    let nested = format!(
        r#"{{"vmId": "{VM}", "triggers": [{{"cron": "0 0 * * * *"}}, {{"interval": "1h", "enabled": true, "enabled": false}}]}}"#
    );
    let r = s.post(JOBS, &nested);
    r.assert_problem(400, "more than once");
    assert_eq!(r.get("field"), "triggers[1].enabled");
    assert_eq!(listed(&s, JOBS), 0, "nothing was stored");

    let job = s.create(JOBS, &json!({"vmId": VM, "when": when}));
    let path = format!("{JOBS}/{}", job["id"].as_str().unwrap());
    let later = instant_in(7_200_000);
    let r = s.patch(&path, &format!(r#"{{"when": "{later}", "when": "{when}"}}"#));
    r.assert_problem(400, "more than once");
    assert_eq!(r.get("field"), "when");
    assert_eq!(s.get(&path).body["when"], job["when"], "the job is unchanged");
}

on_both_stores!(
    a_key_given_twice_is_refused_naming_it_and_nothing_changes,
    body_and_payload_limits_are_reported_and_nothing_is_stored,
    the_pending_quota_refuses_with_retry_after_until_jobs_finish,
    hostile_text_and_methods_get_clear_answers
);

#[test]
fn each_token_has_its_own_request_rate() {
    let (ci, a) = new_token("ci", &["product:vps4:write"]);
    let (ops, o) = new_token("ops", &["admin"]);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("{a}\n{o}")).unwrap();
    let s = Server::start_with(ServerOptions::default().args(&[
        "--auth-tokens",
        file.path().to_str().unwrap(),
        "--rate-limit",
        "10/min",
        "--rate-limit-burst",
        "5",
    ]));
    let get = |token: &str| s.send_with("GET", JOBS, None, &[("Authorization", &bearer(token))]);

    for i in 0..5 {
        assert_eq!(get(&ci).status, 200, "request {i} of the burst");
    }
    let r = get(&ci);
    r.assert_problem(429, "`ci` is over its request rate");
    let wait: u64 = r.retry_after.as_deref().expect("Retry-After").parse().unwrap();
    assert!((1..=6).contains(&wait), "Retry-After {wait} (one request every 6 s)");
    // A refused change changes nothing.
    let body = json!({"vmId": VM, "when": instant_in(3_600_000)}).to_string();
    let refused = s.send_with("POST", JOBS, Some(&body), &[("Authorization", &bearer(&ci))]);
    assert_eq!(refused.status, 429);
    // Other callers, and the open health routes, are not held back.
    assert_eq!(get(&ops).status, 200);
    assert_eq!(listed_with(&s, &ops), 0);
    assert_eq!(s.get("/health").status, 200);
    // The bucket refills at one request every 6 s.
    wait_until("the ci token's bucket to refill", Duration::from_secs(15), || (get(&ci).status == 200).then_some(()));
}

fn listed_with(s: &Server, token: &str) -> usize {
    let r = s.send_with("GET", JOBS, None, &[("Authorization", &bearer(token))]);
    assert_eq!(r.status, 200, "{}", r.text);
    r.body.as_array().unwrap().len()
}
