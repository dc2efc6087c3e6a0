//! The REST API against the real binary: the reference service's curl flow, every prefix,
//! every error row of API.md (with nothing stored changed), listing and follow-ups.

use std::time::Duration;

use harness::{instant_in, wait_until, Backend, Server, ServerOptions, NIL_VM, VM};
use serde_json::{json, Value};

const JOBS: &str = "/api/scheduler/vps4/backups/jobs";

fn job_path(id: &str) -> String {
    format!("{JOBS}/{id}")
}

fn wait_status(s: &Server, path: &str, status: &str) -> Value {
    wait_until(&format!("{path} to be {status}"), Duration::from_secs(20), || {
        let r = s.get(path);
        (r.status == 200 && r.body["status"] == status).then_some(r.body)
    })
}

fn runs(s: &Server, job: &str) -> Vec<Value> {
    let r = s.get(&format!("{}/runs", job_path(job)));
    assert_eq!(r.status, 200, "{}", r.text);
    r.body.as_array().cloned().unwrap_or_default()
}

fn the_reference_curl_flow_works_unchanged(b: Backend) {
    let s = Server::start_on(b);
    // POST exactly as the seed does (its body key order, Accept and Content-Type).
    let when = instant_in(1_500);
    let created = s.post(JOBS, &format!("{{\n  \"vmId\": \"{VM}\",\n  \"when\": \"{when}\"\n}}"));
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.get("id").as_str().unwrap().to_owned();
    assert_eq!(created.location.as_deref(), Some(job_path(&id).as_str()));
    assert_eq!(created.get("status"), "scheduled");
    assert_eq!(created.get("nextRun"), when.as_str());
    assert_eq!(created.get("isPaused"), false);
    assert_eq!(created.get("jobRequest"), &json!({"when": when, "jobType": "ONE_TIME", "vmId": VM}));

    // GET list and GET one.
    let list = s.get(JOBS);
    assert_eq!(list.status, 200);
    assert!(list.body.as_array().unwrap().iter().any(|j| j["id"] == id.as_str()));
    let one = s.get(&job_path(&id));
    assert_eq!(one.status, 200);
    assert_eq!(one.body, created.body);

    // It runs at `when` with the payload delivered to the plugin (the job echoes it).
    let done = wait_status(&s, &job_path(&id), "completed");
    assert_eq!(done["nextRun"], Value::Null);
    let runs = runs(&s, &id);
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run["outcome"], "succeeded");
    assert_eq!(run["output"]["vmId"], VM);
    assert_eq!(run["attempt"], 1);
    assert_eq!(run["scheduledFor"], when.as_str());
    assert!(run["startedAt"].as_str().unwrap() >= when.as_str(), "never early: {run}");
    assert_eq!(run["traceId"].as_str().unwrap().len(), 32);
    // A finished job leaves the list but stays readable.
    assert!(!s.get(JOBS).body.as_array().unwrap().iter().any(|j| j["id"] == id.as_str()));

    // PATCH moves a pending job; DELETE removes one.
    let other = s.post(JOBS, &json!({"vmId": VM, "when": instant_in(3_600_000)}).to_string());
    let other_id = other.get("id").as_str().unwrap().to_owned();
    let new_when = instant_in(7_200_000);
    let patched = s.patch(&job_path(&other_id), &json!({"when": new_when}).to_string());
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.get("nextRun"), new_when.as_str());
    assert_eq!(patched.get("jobRequest")["vmId"], VM, "payload kept");
    let deleted = s.delete(&job_path(&other_id));
    assert_eq!(deleted.status, 204);
    s.get(&job_path(&other_id)).assert_problem(404, &other_id);
}

fn every_prefix_serves_the_same_routes(b: Backend) {
    let s = Server::start_on(b);
    let created = s.post_json(JOBS, &json!({"vmId": VM, "when": instant_in(3_600_000)}));
    let id = created.get("id").as_str().unwrap().to_owned();
    for prefix in ["/api/scheduler", "/api/schedulers", "/scheduler", "/schedulers"] {
        let r = s.get(&format!("{prefix}/vps4/backups/jobs/{id}"));
        assert_eq!(r.status, 200, "{prefix}: {}", r.text);
        let root = s.get(prefix);
        assert_eq!(root.status, 200, "{prefix}");
        assert!(root.get("groups").as_array().unwrap().iter().any(|g| g["product"] == "vps4"));
        let trailing = s.get(&format!("{prefix}/vps4/backups/jobs/"));
        assert_eq!(trailing.status, 200, "{prefix} with a trailing slash");
    }
    let via_alias = s.post_json("/schedulers/vps4/backups/jobs", &json!({"vmId": VM, "when": instant_in(3_600_000)}));
    assert_eq!(via_alias.status, 201);
    assert!(via_alias.location.unwrap().starts_with("/schedulers/vps4/backups/jobs/"));
}

fn the_groups_route_names_plugins_files_and_listeners(b: Backend) {
    let s = Server::start_on(b);
    let r = s.get("/api/scheduler");
    let groups = r.get("groups").as_array().unwrap();
    let backups = groups.iter().find(|g| g["product"] == "vps4" && g["jobGroup"] == "backups").unwrap();
    assert_eq!(backups["jobType"], "Vps4BackupJob");
    assert_eq!(backups["plugin"]["name"], "vps4-backups");
    assert!(backups["plugin"]["file"].as_str().unwrap().ends_with("libvps4_backups.so"));
    assert_eq!(backups["plugin"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(backups["listeners"], json!(["Vps4BackupTriggerListener"]));
    assert_eq!(r.get("pluginAbi"), "1.0.0");
}

fn a_vetoed_run_is_recorded_and_does_not_block_the_group(b: Backend) {
    let s = Server::start_on(b);
    let vetoed = s.post_json(JOBS, &json!({"vmId": NIL_VM, "when": instant_in(0)}));
    let vid = vetoed.get("id").as_str().unwrap().to_owned();
    let done = wait_status(&s, &job_path(&vid), "vetoed");
    assert_eq!(done["nextRun"], Value::Null);
    let r = runs(&s, &vid);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["outcome"], "vetoed");
    assert!(r[0]["error"].as_str().unwrap().contains("Vps4BackupTriggerListener"), "{}", r[0]);
    assert!(r[0]["finishedAt"].is_string());
    // The next job of the group runs normally.
    let ok = s.post_json(JOBS, &json!({"vmId": VM, "when": instant_in(0)}));
    wait_status(&s, &job_path(ok.get("id").as_str().unwrap()), "completed");
    // A vetoed job is finished: it cannot be rescheduled.
    s.patch(&job_path(&vid), &json!({"when": instant_in(0)}).to_string()).assert_problem(409, "vetoed");
}

fn a_panicking_job_fails_its_run_and_the_host_stays_up(b: Backend) {
    let s = Server::start_on(b);
    let path = "/api/scheduler/fixtures/panics/jobs";
    let created = s.post_json(path, &json!({"when": instant_in(0), "message": "kaboom 42"}));
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.get("id").as_str().unwrap().to_owned();
    let job = wait_until("the panicking job to fail", Duration::from_secs(20), || {
        let r = s.get(&format!("{path}/{id}"));
        (r.body["status"] == "failed").then_some(r.body)
    });
    assert_eq!(job["nextRun"], Value::Null);
    let runs = s.get(&format!("{path}/{id}/runs")).body;
    let run = &runs[0];
    assert_eq!(run["outcome"], "failed");
    let error = run["error"].as_str().unwrap();
    assert!(error.contains("panicked") && error.contains("kaboom 42"), "{error}");
    // The host keeps serving and running other jobs.
    let ok = s.post_json(JOBS, &json!({"vmId": VM, "when": instant_in(0)}));
    wait_status(&s, &job_path(ok.get("id").as_str().unwrap()), "completed");
}

fn a_panicking_listener_is_recorded_and_treated_as_allow(b: Backend) {
    let s = Server::start_on(b);
    let path = "/api/scheduler/fixtures/panics/jobs";
    let created = s.post_json(path, &json!({"when": instant_in(0), "listenerPanics": true}));
    let id = created.get("id").as_str().unwrap().to_owned();
    let runs = wait_until("the run to finish", Duration::from_secs(20), || {
        let r = s.get(&format!("{path}/{id}/runs")).body;
        (r[0]["finishedAt"].is_string()).then_some(r)
    });
    let run = &runs[0];
    // The listener's panic did not veto: the job itself ran (and panicked, as this fixture does).
    assert_eq!(run["outcome"], "failed");
    assert!(run["error"].as_str().unwrap().contains("boom"), "{run}");
    let le = run["listenerError"].as_str().unwrap();
    assert!(le.contains("PanickingListener") && le.contains("listener exploded"), "{le}");
}

fn a_panic_in_submit_time_validation_is_a_400_not_a_crash(b: Backend) {
    let s = Server::start_on(b);
    let r = s.post_json("/api/scheduler/fixtures/panics/jobs", &json!({"when": instant_in(0), "panicInCheck": true}));
    r.assert_problem(400, "validation exploded");
    assert_eq!(s.get("/api/scheduler").status, 200);
}

fn a_job_schedules_its_next_run_through_its_context(b: Backend) {
    let s = Server::start_on(b);
    let created = s.post_json(JOBS, &json!({"vmId": VM, "when": instant_in(0), "scheduleNextInSeconds": 3600}));
    let id = created.get("id").as_str().unwrap().to_owned();
    wait_status(&s, &job_path(&id), "completed");
    let next_id = runs(&s, &id)[0]["output"]["nextJobId"].as_str().unwrap().to_owned();
    let next = s.get(&job_path(&next_id));
    assert_eq!(next.status, 200);
    assert_eq!(next.get("status"), "scheduled");
    assert_eq!(next.get("jobRequest")["vmId"], VM);
    assert_eq!(next.get("jobRequest")["scheduleNextInSeconds"], 3600);
    let due = chrono::DateTime::parse_from_rfc3339(next.get("nextRun").as_str().unwrap()).unwrap();
    let first = chrono::DateTime::parse_from_rfc3339(created.get("when").as_str().unwrap()).unwrap();
    assert_eq!((due - first).num_seconds(), 3600);
}

fn an_earlier_job_wakes_the_timer(b: Backend) {
    let s = Server::start_on(b);
    // The timer sleeps until this far-away job...
    s.post_json(JOBS, &json!({"vmId": VM, "when": instant_in(3_600_000)}));
    // ...and must wake early for this one.
    let soon = s.post_json(JOBS, &json!({"vmId": VM, "when": instant_in(300)}));
    wait_status(&s, &job_path(soon.get("id").as_str().unwrap()), "completed");
}

fn an_overdue_job_runs_at_once_and_records_its_lateness(b: Backend) {
    let s = Server::start_on(b);
    let when = instant_in(-60_000);
    let created = s.post_json(JOBS, &json!({"vmId": VM, "when": when}));
    assert_eq!(created.status, 201);
    assert_eq!(created.get("nextRun"), when.as_str());
    let id = created.get("id").as_str().unwrap().to_owned();
    wait_status(&s, &job_path(&id), "completed");
    let run = &runs(&s, &id)[0];
    assert_eq!(run["scheduledFor"], when.as_str());
}

fn listing_pages_with_a_cursor_soonest_first(b: Backend) {
    let s = Server::start_on(b);
    let mut ids = Vec::new();
    for i in (0..5).rev() {
        let r = s.post_json(JOBS, &json!({"vmId": VM, "when": instant_in(3_600_000 + i * 1000)}));
        ids.push((r.get("nextRun").as_str().unwrap().to_owned(), r.get("id").as_str().unwrap().to_owned()));
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut next = Some(format!("{JOBS}?limit=2"));
    let mut pages = 0;
    while let Some(url) = next.take() {
        let r = s.get(&url);
        assert_eq!(r.status, 200, "{}", r.text);
        for j in r.body.as_array().unwrap() {
            seen.push((j["nextRun"].as_str().unwrap().to_owned(), j["id"].as_str().unwrap().to_owned()));
        }
        next = r.link.as_deref().map(|l| l.trim_start_matches('<').split('>').next().unwrap().to_owned());
        pages += 1;
        assert!(pages < 10);
    }
    assert_eq!(seen, ids);
    s.get(&format!("{JOBS}?limit=0")).assert_problem(400, "limit");
    s.get(&format!("{JOBS}?limit=1001")).assert_problem(400, "limit");
    s.get(&format!("{JOBS}?limit=abc")).assert_problem(400, "limit");
    s.get(&format!("{JOBS}?after=garbage")).assert_problem(400, "after");
}

/// Asserts the group's stored jobs are exactly `before`.
fn assert_unchanged(s: &Server, before: &Value) {
    assert_eq!(&s.get(&format!("{JOBS}?limit=1000")).body, before, "an error changed stored jobs");
}

fn every_error_row_of_the_contract_answers_with_a_problem_and_changes_nothing(b: Backend) {
    let s = Server::start_with(ServerOptions::on(b).args(&["--max-body-bytes", "2048"]));
    let pending = s.post_json(JOBS, &json!({"vmId": VM, "when": instant_in(3_600_000)}));
    let pending_id = pending.get("id").as_str().unwrap().to_owned();
    let finished = s.post_json(JOBS, &json!({"vmId": VM, "when": instant_in(0)}));
    let finished_id = finished.get("id").as_str().unwrap().to_owned();
    wait_status(&s, &job_path(&finished_id), "completed");
    let before = s.get(&format!("{JOBS}?limit=1000")).body;

    // Body not JSON, not an object, empty, over the limit.
    s.post(JOBS, "{not json").assert_problem(400, "body");
    s.post(JOBS, "[1,2]").assert_problem(400, "body");
    s.post(JOBS, "\"x\"").assert_problem(400, "body");
    s.post(JOBS, "").assert_problem(400, "body");
    let big = json!({"when": instant_in(0), "vmId": VM, "pad": "x".repeat(4096)});
    s.post_json(JOBS, &big).assert_problem(413, "body");
    // `when` missing, not a string, not an instant, no offset.
    s.post_json(JOBS, &json!({"vmId": VM})).assert_problem(400, "when");
    s.post_json(JOBS, &json!({"vmId": VM, "when": 1506038296797_i64})).assert_problem(400, "when");
    s.post_json(JOBS, &json!({"vmId": VM, "when": "next tuesday"})).assert_problem(400, "when");
    s.post_json(JOBS, &json!({"vmId": VM, "when": "2017-09-21T23:58:16.797"})).assert_problem(400, "offset");
    s.post_json(JOBS, &json!({"vmId": VM, "when": "2017-02-30T23:58:16Z"})).assert_problem(400, "when");
    // Job types other than ONE_TIME and RECURRING; a RECURRING job without its interval.
    s.post_json(JOBS, &json!({"vmId": VM, "when": instant_in(0), "jobType": "RECURRING"}))
        .assert_problem(400, "repeatIntervalInDays");
    s.post_json(JOBS, &json!({"vmId": VM, "when": instant_in(0), "jobType": "WEEKLY"})).assert_problem(400, "jobType");
    // Payload rejected by the job type's own validation, naming its field.
    let r = s.post_json(JOBS, &json!({"vmId": "not-a-uuid", "when": instant_in(0)}));
    r.assert_problem(400, "vmId");
    assert_eq!(r.body["type"], "urn:scheduler:problem:payload-rejected");
    s.post_json(JOBS, &json!({"when": instant_in(0)})).assert_problem(400, "vmId");
    s.post_json(JOBS, &json!({"vmId": VM, "when": instant_in(0), "scheduleNextInSeconds": 0}))
        .assert_problem(400, "scheduleNextInSeconds");
    // No plugin for that product/group.
    s.post_json("/api/scheduler/vps5/backups/jobs", &json!({"vmId": VM, "when": instant_in(0)}))
        .assert_problem(404, "vps5");
    s.get("/api/scheduler/vps4/restores/jobs").assert_problem(404, "restores");
    // Job id not a UUID, unknown, or in another group.
    s.get(&job_path("not-a-uuid")).assert_problem(404, "not-a-uuid");
    let unknown = uuid::Uuid::new_v4().to_string();
    s.get(&job_path(&unknown)).assert_problem(404, &unknown);
    s.patch(&job_path(&unknown), &json!({"when": instant_in(0)}).to_string()).assert_problem(404, &unknown);
    s.delete(&job_path(&unknown)).assert_problem(404, &unknown);
    s.get(&format!("{}/runs", job_path(&unknown))).assert_problem(404, &unknown);
    s.get(&format!("/api/scheduler/bench/noop/jobs/{pending_id}")).assert_problem(404, &pending_id);
    // PATCH or DELETE of a finished job.
    s.patch(&job_path(&finished_id), &json!({"when": instant_in(0)}).to_string()).assert_problem(409, "finished");
    s.delete(&job_path(&finished_id)).assert_problem(409, "finished");
    // PATCH with a bad body: not JSON, no when, payload keys.
    s.patch(&job_path(&pending_id), "nope").assert_problem(400, "body");
    s.patch(&job_path(&pending_id), "{}").assert_problem(400, "when");
    s.patch(&job_path(&pending_id), &json!({"when": "soon"}).to_string()).assert_problem(400, "when");
    s.patch(&job_path(&pending_id), &json!({"when": instant_in(0), "vmId": VM}).to_string())
        .assert_problem(400, "vmId");
    // Unknown routes and methods.
    s.get("/api/nothing-here").assert_problem(404, "/api/nothing-here");
    s.request("PUT", JOBS).assert_problem(405, "GET, POST");

    assert_unchanged(&s, &before);
    assert_eq!(s.get(&job_path(&pending_id)).body, pending.body, "the pending job is untouched");
}

fn the_openapi_document_describes_the_routes(b: Backend) {
    let s = Server::start_on(b);
    for path in ["/api/openapi.json", "/swagger.json"] {
        let r = s.get(path);
        assert_eq!(r.status, 200);
        assert!(r.body["openapi"].as_str().unwrap().starts_with("3."));
        let paths = r.body["paths"].as_object().unwrap();
        for p in [
            "/api/scheduler",
            "/api/scheduler/{product}/{jobGroup}/jobs",
            "/api/scheduler/{product}/{jobGroup}/jobs/{jobId}",
            "/api/scheduler/{product}/{jobGroup}/jobs/{jobId}/runs",
            "/api/scheduler/{product}/{jobGroup}/jobs/{jobId}/next",
            "/api/scheduler/{product}/{jobGroup}/jobs/{jobId}/run",
            "/api/scheduler/{product}/{jobGroup}/jobs/{jobId}/pause",
            "/api/scheduler/{product}/{jobGroup}/jobs/{jobId}/resume",
            "/api/scheduler/{product}/{jobGroup}/runs/{runId}/cancel",
            "/api/scheduler/{product}/{jobGroup}/jobs/{jobId}/stats",
            "/api/runs",
            "/api/runs/{runId}",
            "/api/stats",
            "/api/stats/daily",
            "/health",
            "/live",
            "/ready",
            "/metrics",
        ] {
            assert!(paths.contains_key(p), "{p} missing from {path}");
        }
        assert!(r.body["components"]["schemas"]["JobDto"].is_object());
        assert!(r.body["paths"]["/api/scheduler"]["put"].is_object(), "the schedules reload");
        assert!(r.body["components"]["schemas"]["TriggerDto"].is_object());
    }
}

on_both_stores!(
    the_reference_curl_flow_works_unchanged,
    every_prefix_serves_the_same_routes,
    the_groups_route_names_plugins_files_and_listeners,
    a_vetoed_run_is_recorded_and_does_not_block_the_group,
    a_panicking_job_fails_its_run_and_the_host_stays_up,
    a_panicking_listener_is_recorded_and_treated_as_allow,
    a_panic_in_submit_time_validation_is_a_400_not_a_crash,
    a_job_schedules_its_next_run_through_its_context,
    an_earlier_job_wakes_the_timer,
    an_overdue_job_runs_at_once_and_records_its_lateness,
    listing_pages_with_a_cursor_soonest_first,
    every_error_row_of_the_contract_answers_with_a_problem_and_changes_nothing,
    the_openapi_document_describes_the_routes,
);
