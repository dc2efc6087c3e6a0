//! Authentication and scopes through the real binary: tokens made by `scheduler token new`,
//! 401 versus 403 on every route, nothing changed by a refused request, the certificate-subject
//! header from a trusted proxy, and the refusal to serve a public address without tokens.

use std::process::Command;
use std::time::Duration;

use harness::{instant_in, Backend, Server, ServerOptions, VM};
use serde_json::json;

/// Runs `scheduler token new`; returns the token and the tokens-file entry it printed.
pub(crate) fn new_token(name: &str, scopes: &[&str]) -> (String, String) {
    let mut cmd = Command::new(harness::scheduler_bin());
    cmd.args(["token", "new", "--name", name]);
    for s in scopes {
        cmd.args(["--scope", s]);
    }
    let out = cmd.output().expect("run scheduler token new");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text.split_whitespace().find(|w| w.starts_with("sch_")).expect("a token").to_owned();
    let entry = text[text.find("[[token]]").expect("an entry")..].to_owned();
    assert!(!entry.contains(&token), "the file entry must not hold the token itself");
    (token, entry)
}

struct Tokens {
    admin: String,
    vps4_write: String,
    vps4_read: String,
    bench_write: String,
    file: tempfile::NamedTempFile,
}

fn tokens(extra: &str) -> Tokens {
    let (admin, a) = new_token("ops", &["admin"]);
    let (vps4_write, w) = new_token("vps4-ci", &["product:vps4:write"]);
    let (vps4_read, r) = new_token("vps4-dashboard", &["product:vps4:read"]);
    let (bench_write, b) = new_token("bench-ci", &["product:bench:write"]);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("{a}\n{w}\n{r}\n{b}\n{extra}")).unwrap();
    Tokens { admin, vps4_write, vps4_read, bench_write, file }
}

pub(crate) fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

const JOBS: &str = "/api/scheduler/vps4/backups/jobs";

#[test]
fn every_route_checks_the_token_and_its_scopes() {
    let t = tokens("");
    let s = Server::start_with(ServerOptions::default().args(&["--auth-tokens", t.file.path().to_str().unwrap()]));
    let call = |method: &str, path: &str, body: Option<&str>, token: Option<&str>| {
        let auth = token.map(bearer);
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        s.send_with(method, path, body, &headers)
    };

    // Health and the API document stay open; /metrics is open on loopback.
    for path in ["/health", "/live", "/ready", "/api/openapi.json", "/metrics"] {
        assert_eq!(call("GET", path, None, None).status, 200, "{path}");
    }
    // No token, or a wrong one: 401 with a challenge.
    for token in [None, Some("sch_not-a-token"), Some("")] {
        let r = call("GET", "/api/scheduler", None, token);
        r.assert_problem(401, "");
        assert_eq!(r.www_authenticate.as_deref(), Some("Bearer realm=\"scheduler\""));
    }
    // A job to act on, made by the writer.
    let body = json!({"vmId": VM, "when": instant_in(3600)}).to_string();
    let created = call("POST", JOBS, Some(&body), Some(&t.vps4_write));
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.get("id").as_str().unwrap().to_owned();
    let job = format!("{JOBS}/{id}");
    let stored = || call("GET", &job, None, Some(&t.admin)).body;
    let before = stored();

    // Every vps4 route: (method, path, body, is a change).
    let later = json!({"when": instant_in(7200)}).to_string();
    let routes: Vec<(&str, String, Option<&str>, bool)> = vec![
        ("GET", JOBS.to_owned(), None, false),
        ("GET", job.clone(), None, false),
        ("GET", format!("{job}/runs"), None, false),
        ("GET", format!("{job}/stats"), None, false),
        ("GET", format!("{job}/next"), None, false),
        ("POST", JOBS.to_owned(), Some(&body), true),
        ("PATCH", job.clone(), Some(&later), true),
        ("POST", format!("{job}/pause"), None, true),
        ("POST", format!("{job}/resume"), None, true),
        ("POST", format!("{job}/run"), None, true),
        ("POST", "/api/scheduler/vps4/backups/runs/00000000-0000-7000-8000-000000000000/cancel".to_owned(), None, true),
        ("DELETE", job.clone(), None, true),
    ];
    // Refused callers change nothing: the reader on changes, another product's writer on all.
    for (method, path, body, change) in &routes {
        if *change {
            call(method, path, *body, Some(&t.vps4_read)).assert_problem(403, "product:vps4:write");
        }
        call(method, path, *body, Some(&t.bench_write)).assert_problem(403, "vps4");
        assert_eq!(stored(), before, "{method} {path} was refused but changed the job");
    }
    let listed = call("GET", JOBS, None, Some(&t.admin)).body;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "no job was created by a refused POST: {listed}");
    // Allowed callers get past authorisation (the route's own answer, never 401/403).
    for (method, path, body, change) in &routes {
        let tokens: &[&String] = if *change { &[&t.vps4_write] } else { &[&t.vps4_read, &t.vps4_write, &t.admin] };
        for token in tokens {
            let r = call(method, path, *body, Some(token));
            assert!(r.status != 401 && r.status != 403, "{method} {path}: {} {}", r.status, r.text);
        }
    }

    // Node-wide routes: listing needs any token, reloading schedules needs admin.
    assert_eq!(call("GET", "/api/scheduler", None, Some(&t.vps4_read)).status, 200);
    assert_eq!(call("GET", "/api/scheduler/nodes", None, Some(&t.bench_write)).status, 200);
    call("PUT", "/api/scheduler", None, Some(&t.vps4_write)).assert_problem(403, "admin");
    let reload = call("PUT", "/api/scheduler", None, Some(&t.admin));
    assert!(reload.status != 401 && reload.status != 403, "{}", reload.text);

    // History and statistics across products: admin, or a product the token can read.
    assert_eq!(call("GET", "/api/runs", None, Some(&t.admin)).status, 200);
    call("GET", "/api/runs", None, Some(&t.vps4_read)).assert_problem(403, "product=");
    assert_eq!(call("GET", "/api/runs?product=vps4", None, Some(&t.vps4_read)).status, 200);
    call("GET", "/api/runs?product=vps4", None, Some(&t.bench_write)).assert_problem(403, "product:vps4:read");
    call("GET", "/api/stats?product=vps4&product=bench", None, Some(&t.vps4_read)).assert_problem(403, "product=");
    assert_eq!(call("GET", "/api/stats/daily?product=bench", None, Some(&t.bench_write)).status, 200);
    // One run: readable by its product's tokens; to the others it does not exist.
    let job2 = call("POST", JOBS, Some(&json!({"vmId": VM, "when": instant_in(0)}).to_string()), Some(&t.vps4_write));
    let job2 = format!("{JOBS}/{}", job2.get("id").as_str().unwrap());
    let run_id = harness::wait_until("a run", Duration::from_secs(20), || {
        let runs = call("GET", &format!("{job2}/runs"), None, Some(&t.vps4_read)).body;
        runs.as_array().and_then(|r| r.first()).and_then(|r| r["id"].as_str()).map(str::to_owned)
    });
    assert_eq!(call("GET", &format!("/api/runs/{run_id}"), None, Some(&t.vps4_read)).status, 200);
    call("GET", &format!("/api/runs/{run_id}"), None, Some(&t.bench_write)).assert_problem(404, &run_id);
}

#[test]
fn a_trusted_proxys_certificate_subject_maps_to_scopes() {
    let t = tokens("[[subject]]\ndn = \"CN=vps4-deployer,O=Example\"\nscopes = [\"product:vps4:write\"]\n");
    let file = t.file.path().to_str().unwrap().to_owned();
    let s = Server::start_with(ServerOptions::default().args(&[
        "--auth-tokens",
        &file,
        "--trust-cert-subject-header",
        "127.0.0.1",
    ]));
    let dn = |v: &str| s.send_with("GET", JOBS, None, &[("X-Cert-Subject-DN", v)]);
    assert_eq!(dn("CN=vps4-deployer,O=Example").status, 200);
    dn("CN=someone-else").assert_problem(403, "CN=someone-else");
    s.send_with("GET", "/api/scheduler/bench/noop/jobs", None, &[("X-Cert-Subject-DN", "CN=vps4-deployer,O=Example")])
        .assert_problem(403, "product:bench:read");
    // From the proxy, neither a subject nor a token: 403, as the reference service answered.
    s.get(JOBS).assert_problem(403, "X-Cert-Subject-DN".to_ascii_lowercase().as_str());
    // Tokens still work next to the header.
    let r = s.send_with("GET", JOBS, None, &[("Authorization", &bearer(&t.vps4_read))]);
    assert_eq!(r.status, 200);

    // A server that trusts another address ignores the header from this one.
    let other = Server::start_with(ServerOptions::default().args(&[
        "--auth-tokens",
        &file,
        "--trust-cert-subject-header",
        "10.9.8.7",
    ]));
    other
        .send_with("GET", JOBS, None, &[("X-Cert-Subject-DN", "CN=vps4-deployer,O=Example")])
        .assert_problem(403, "proxy");
}

/// Runs the binary until it exits or prints `needle` (30 s at most), then stops it; returns
/// whether it exited by itself (and how) and its output.
pub(crate) fn run_until(args: &[&str], needle: &str) -> (Option<std::process::ExitStatus>, String) {
    use std::io::Read;
    let mut child = Command::new(harness::scheduler_bin())
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    for mut stream in
        [Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>, Box::new(child.stderr.take().unwrap())]
    {
        let out = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }
    let status = harness::wait_until("the process to exit or say it", Duration::from_secs(30), || {
        match child.try_wait().ok().flatten() {
            Some(s) => Some(Some(s)),
            None => out.lock().unwrap().contains(needle).then_some(None),
        }
    });
    let _ = child.kill();
    let _ = child.wait();
    // The output threads end with the process; give them a moment to hand over the last lines.
    harness::wait_until("the output to settle", Duration::from_secs(5), || {
        (status.is_none() || out.lock().unwrap().contains("scheduler:")).then_some(())
    });
    let text = out.lock().unwrap().clone();
    (status, text)
}

#[test]
fn serving_a_public_address_without_tokens_is_refused_unless_insisted() {
    let (status, out) = run_until(&["--bind", "0.0.0.0:0"], "\u{0}never");
    assert!(status.is_some_and(|s| !s.success()), "{out}");
    assert!(out.contains("refusing to listen on 0.0.0.0:0") && out.contains("--auth-tokens"), "{out}");

    let (status, out) = run_until(&["--bind", "0.0.0.0:0", "--insecure-no-auth"], "scheduler listening on");
    assert!(status.is_none(), "it starts: {out}");
    assert!(out.contains("WITHOUT AUTHENTICATION"), "warned at start: {out}");
}

/// SIGHUP re-reads the tokens file: a new token works and a removed one is refused, without a
/// restart; a broken file leaves the tokens in use as they were.
#[test]
fn sighup_reloads_the_tokens_file() {
    let (old, old_entry) = new_token("old-ci", &["product:vps4:read"]);
    let (new, new_entry) = new_token("new-ci", &["product:vps4:read"]);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &old_entry).unwrap();
    let s = Server::start_with(ServerOptions::default().args(&["--auth-tokens", file.path().to_str().unwrap()]));
    let status = |token: &str| s.send_with("GET", JOBS, None, &[("Authorization", &bearer(token))]).status;
    assert_eq!((status(&old), status(&new)), (200, 401));

    std::fs::write(file.path(), &new_entry).unwrap();
    s.sighup();
    harness::wait_until("the new token to be accepted", Duration::from_secs(10), || {
        (status(&new) == 200).then_some(())
    });
    assert_eq!(status(&old), 401, "the removed token is refused");

    std::fs::write(file.path(), "[[token]]\nname = \"broken\"").unwrap();
    s.sighup();
    s.wait_for_log("tokens file not reloaded", Duration::from_secs(10)).expect("the broken file is reported");
    assert_eq!(status(&new), 200, "a broken file leaves the tokens in use");
}

/// Every change through the API is in the audit trail with who made it; refused requests and
/// reads are not; only admin reads the trail.
fn changes_are_audited_with_who_and_what(b: Backend) {
    let t = tokens("");
    let schedules = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        schedules.path(),
        "[[job]]\nkey = \"hourly\"\nproduct = \"bench\"\ngroup = \"noop\"\ninterval = \"1h\"\n",
    )
    .unwrap();
    let s = Server::start_with(ServerOptions::on(b).args(&[
        "--auth-tokens",
        t.file.path().to_str().unwrap(),
        "--schedules",
        schedules.path().to_str().unwrap(),
    ]));
    let call = |method: &str, path: &str, body: Option<&str>, token: &str| {
        s.send_with(method, path, body, &[("Authorization", &bearer(token))])
    };
    let body = json!({"vmId": VM, "when": instant_in(3600)}).to_string();
    let created = call("POST", JOBS, Some(&body), &t.vps4_write);
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.get("id").as_str().unwrap().to_owned();
    let job = format!("{JOBS}/{id}");
    let later = json!({"when": instant_in(7200)}).to_string();
    assert_eq!(call("PATCH", &job, Some(&later), &t.vps4_write).status, 200);
    assert_eq!(call("POST", &format!("{job}/pause"), None, &t.vps4_write).status, 200);
    assert_eq!(call("POST", &format!("{job}/resume"), None, &t.admin).status, 200);
    assert_eq!(call("GET", &job, None, &t.vps4_read).status, 200);
    call("DELETE", &job, None, &t.vps4_read).assert_problem(403, "write");
    assert_eq!(call("DELETE", &job, None, &t.vps4_write).status, 204);

    call("GET", "/api/audit", None, &t.vps4_write).assert_problem(403, "admin");
    // Entries are queued and written in batches: wait (bounded) for the five changes.
    let trail = harness::wait_until("the five changes in the audit trail", Duration::from_secs(10), || {
        let r = call("GET", "/api/audit", None, &t.admin);
        assert_eq!(r.status, 200, "{}", r.text);
        (r.body.as_array().map_or(0, Vec::len) >= 5).then_some(r)
    });
    let got: Vec<(String, String, String)> = trail
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["product"], "vps4", "{e}");
            assert_eq!(e["target"], id.as_str(), "{e}");
            assert!(e["at"].as_str().is_some_and(|a| a.ends_with('Z')), "{e}");
            (
                e["who"].as_str().unwrap().into(),
                e["action"].as_str().unwrap().into(),
                e["method"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: Vec<(String, String, String)> = [
        ("vps4-ci", "delete", "DELETE"),
        ("ops", "resume", "POST"),
        ("vps4-ci", "pause", "POST"),
        ("vps4-ci", "reschedule", "PATCH"),
        ("vps4-ci", "create", "POST"),
    ]
    .iter()
    .map(|(w, a, m)| ((*w).into(), (*a).into(), (*m).into()))
    .collect();
    assert_eq!(got, want, "newest first, reads and the refused delete left out");
    // Filters and pages.
    let mine = call("GET", "/api/audit?who=ops", None, &t.admin).body;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let first = call("GET", "/api/audit?limit=2", None, &t.admin).body;
    let before = first[1]["seq"].as_i64().unwrap();
    let next = call("GET", &format!("/api/audit?limit=2&before={before}"), None, &t.admin).body;
    assert_eq!(next[0]["action"], "pause", "{next}");
    assert_eq!(next[1]["action"], "reschedule", "{next}");
    assert_eq!(call("GET", "/api/audit?product=bench", None, &t.admin).body.as_array().unwrap().len(), 0);
    call("GET", "/api/audit?before=x", None, &t.admin).assert_problem(400, "before");

    // Run-now, cancel and reload are changes too.
    const SLEEPY: &str = "/api/scheduler/fixtures/sleepy/jobs";
    let body = json!({"sleepMs": 60_000, "when": instant_in(3_600_000)}).to_string();
    let made = call("POST", SLEEPY, Some(&body), &t.admin);
    assert_eq!(made.status, 201, "{}", made.text);
    let sleepy = format!("{SLEEPY}/{}", made.get("id").as_str().unwrap());
    assert_eq!(call("POST", &format!("{sleepy}/run"), None, &t.admin).status, 200);
    let run = harness::wait_until("the run-now run to start", Duration::from_secs(20), || {
        let runs = call("GET", &format!("{sleepy}/runs"), None, &t.admin).body;
        runs.as_array()?.iter().find(|r| r["outcome"] == "running").map(|r| r["id"].as_str().unwrap().to_owned())
    });
    let cancel = format!("/api/scheduler/fixtures/sleepy/runs/{run}/cancel");
    assert_eq!(call("POST", &cancel, None, &t.admin).status, 202);
    assert_eq!(call("PUT", "/api/scheduler", None, &t.admin).status, 200);
    let ops = harness::wait_until("the admin's changes in the audit trail", Duration::from_secs(10), || {
        let r = call("GET", "/api/audit?who=ops", None, &t.admin).body;
        (r.as_array().map_or(0, Vec::len) >= 5).then_some(r)
    });
    let actions: Vec<&str> = ops.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["reload", "cancel", "run", "create", "resume"], "{ops}");
    assert_eq!(ops[1]["target"], run.as_str(), "the cancel names its run");
}

on_both_stores!(changes_are_audited_with_who_and_what);
