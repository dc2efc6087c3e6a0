//! Declared schedules: a TOML file of jobs that must exist, applied at start and on
//! `PUT /api/scheduler`, idempotently across nodes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use harness::{Backend, Server, ServerOptions, TestDb, VM};
use serde_json::Value;

const JOBS: &str = "/api/scheduler/vps4/backups/jobs";

fn declare(key: &str, schedule: &str, extra: &str) -> String {
    format!(
        "[[job]]\nkey = \"{key}\"\nproduct = \"vps4\"\ngroup = \"backups\"\n{schedule}\n{extra}\npayload = {{ vmId = \"{VM}\" }}\n\n"
    )
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// The group's unfinished jobs, read through the API.
fn jobs(s: &Server) -> Vec<Value> {
    let r = s.get(&format!("{JOBS}?limit=1000"));
    assert_eq!(r.status, 200, "{}", r.text);
    r.body.as_array().cloned().unwrap_or_default()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn report(r: &harness::Resp) -> HashMap<String, Vec<String>> {
    assert_eq!(r.status, 200, "{}", r.text);
    ["created", "updated", "unchanged", "removed", "skipped"]
        .iter()
        .map(|k| {
            let list = r.body[k].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
            (k.to_string(), sorted(list))
        })
        .collect()
}

fn a_schedules_file_is_applied_at_start_and_on_reload(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("schedules.toml");
    write(
        &file,
        &(declare("nightly", "cron = \"0 0 2 * * *\"\ntimezone = \"Europe/Prague\"", "attempts = 3")
            + &declare("hourly", "interval = \"1h\"\nwhen = 2030-01-01T00:00:00Z", "enabled = false")),
    );
    let s = Server::start_with(ServerOptions::on(b).args(&["--schedules", file.to_str().unwrap()]));
    let listed = jobs(&s);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let nightly = listed.iter().find(|j| j["triggers"][0]["type"] == "cron").expect("the cron job");
    assert_eq!(nightly["triggers"][0]["timezone"], "Europe/Prague");
    assert_eq!(nightly["retry"]["attempts"], 3);
    assert_eq!(nightly["jobRequest"]["vmId"], VM);
    assert_eq!(nightly["isPaused"], false);
    let hourly = listed.iter().find(|j| j["triggers"][0]["type"] == "interval").expect("the interval job");
    assert_eq!(hourly["isPaused"], true, "enabled = false keeps it paused");
    let nightly_id = nightly["id"].clone();

    // Unchanged file: nothing changes.
    let r = report(&s.request("PUT", "/api/scheduler"));
    assert_eq!(r["unchanged"], ["hourly", "nightly"]);
    assert!(r["created"].is_empty() && r["updated"].is_empty() && r["removed"].is_empty());

    // One changed, one dropped, one added.
    write(
        &file,
        &(declare("nightly", "cron = \"0 30 3 * * *\"\ntimezone = \"Europe/Prague\"", "")
            + &declare("weekly", "cron = \"0 0 4 * * MON\"", "")),
    );
    let r = report(&s.request("PUT", "/api/scheduler"));
    assert_eq!(
        (&r["created"], &r["updated"], &r["removed"]),
        (&vec!["weekly".to_owned()], &vec!["nightly".to_owned()], &vec!["hourly".to_owned()])
    );
    let listed = jobs(&s);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let nightly = listed.iter().find(|j| j["id"] == nightly_id).expect("updated in place, same id");
    assert_eq!(nightly["triggers"][0]["cron"], "0 30 3 * * *");
    assert_eq!(nightly["retry"], Value::Null, "the policy the file dropped is gone");

    // An invalid file changes nothing and says where it is wrong.
    write(
        &file,
        &(declare("nightly", "cron = \"0 61 3 * * *\"", "") + &declare("weekly", "cron = \"0 0 4 * * MON\"", "")),
    );
    let r = s.request("PUT", "/api/scheduler");
    r.assert_problem(422, "job[0] (key `nightly`).cron");
    write(&file, "[[job]]\nkey = \"x\"\nproduct = \"vps4\"\ngroup = \"backups\"\nvmId = \"oops\"\n");
    s.request("PUT", "/api/scheduler").assert_problem(422, "job[0].vmId");
    write(&file, &declare("nightly", "cron = \"0 0 1 * * *\"", "").replace(VM, "not-a-uuid"));
    s.request("PUT", "/api/scheduler").assert_problem(422, "payload");
    std::fs::remove_file(&file).unwrap();
    s.request("PUT", "/api/scheduler").assert_problem(422, "cannot be read");
    assert_eq!(jobs(&s).len(), 2);
    assert_eq!(jobs(&s).iter().find(|j| j["id"] == nightly_id).unwrap()["triggers"][0]["cron"], "0 30 3 * * *");
}

fn without_a_schedules_file_reload_is_a_conflict(b: Backend) {
    let s = Server::start_on(b);
    s.request("PUT", "/api/scheduler").assert_problem(409, "--schedules");
    s.request("DELETE", "/api/scheduler").assert_problem(405, "GET, PUT");
}

on_both_stores!(a_schedules_file_is_applied_at_start_and_on_reload, without_a_schedules_file_reload_is_a_conflict);

#[test]
fn an_invalid_schedules_file_stops_the_start_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("schedules.toml");
    write(&file, &declare("nightly", "cron = \"every night\"", ""));
    let opts = ServerOptions::default().args(&["--schedules", file.to_str().unwrap()]);
    let (mut child, logs) = harness::spawn(&opts);
    let status = child.wait().unwrap();
    assert!(!status.success());
    let line = harness::wait_for_line(&logs, "job[0] (key `nightly`).cron", std::time::Duration::from_secs(10));
    let out = logs.0.lock().unwrap().join("\n");
    assert!(line.is_some_and(|l| l.contains("schedules.toml")), "{out}");
}

#[test]
fn nodes_applying_one_file_at_once_make_each_job_once() {
    let db = Arc::new(TestDb::create());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("schedules.toml");
    let text: String = (0..30).map(|i| declare(&format!("vm-{i}"), &format!("cron = \"0 {i} 2 * * *\""), "")).collect();
    write(&file, &text);
    let path = file.to_str().unwrap().to_owned();
    // Three nodes start together, each applying the file.
    let nodes: Vec<Server> = (0..3)
        .map(|_| {
            let (db, path) = (db.clone(), path.clone());
            std::thread::spawn(move || {
                Server::start_with(ServerOptions::on(Backend::Postgres).database(db).args(&["--schedules", &path]))
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let per_key = "SELECT count(*) AS n FROM (SELECT idempotency_key FROM jobs GROUP BY 1 HAVING count(*) > 1) d";
    assert_eq!(db.count("SELECT count(*) AS n FROM jobs"), 30);
    assert_eq!(db.count(per_key), 0);

    // The file changes; every node reloads at the same moment.
    let text: String =
        (10..40).map(|i| declare(&format!("vm-{i}"), &format!("cron = \"0 {} 3 * * *\"", i % 60), "")).collect();
    write(&file, &text);
    let reports: Vec<HashMap<String, Vec<String>>> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            nodes.iter().map(|n| scope.spawn(|| report(&n.request("PUT", "/api/scheduler")))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(db.count("SELECT count(*) AS n FROM jobs"), 30);
    assert_eq!(db.count(per_key), 0);
    assert_eq!(
        db.count("SELECT count(*) AS n FROM jobs WHERE spec->'triggers'->0->'schedule'->>'expr' LIKE '0 % 3 * * *'"),
        30
    );
    // Between them the nodes created 10, removed 10 and updated 20, each exactly once.
    let all = |k: &str| sorted(reports.iter().flat_map(|r| r[k].clone()).collect());
    assert_eq!(all("created"), sorted((30..40).map(|i| format!("vm-{i}")).collect()));
    assert_eq!(all("removed"), sorted((0..10).map(|i| format!("vm-{i}")).collect()));
    assert_eq!(all("updated"), sorted((10..30).map(|i| format!("vm-{i}")).collect()));
    for n in &nodes {
        assert_eq!(jobs(n).len(), 30);
    }
}
