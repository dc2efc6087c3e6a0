//! TLS: the service serving HTTPS with a certificate made in the test, and its PostgreSQL
//! connections encrypted and verified when the database URL asks for it.

use std::time::Duration;

use harness::{instant_in, Backend, Server, ServerOptions, TestDb, VM};
use serde_json::json;

use crate::security::run_until;

const JOBS: &str = "/api/scheduler/vps4/backups/jobs";

/// A self-signed certificate for 127.0.0.1 and localhost: its PEM files and its DER.
struct TestCert {
    dir: tempfile::TempDir,
    der: Vec<u8>,
}

impl TestCert {
    fn new() -> TestCert {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("a test certificate");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), made.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), made.key_pair.serialize_pem()).unwrap();
        TestCert { dir, der: made.cert.der().to_vec() }
    }

    fn cert(&self) -> std::path::PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn key(&self) -> std::path::PathBuf {
        self.dir.path().join("key.pem")
    }
}

fn serves_https_with_the_given_certificate(b: Backend) {
    let c = TestCert::new();
    let s = Server::start_with(ServerOptions::on(b).tls(&c.cert(), &c.key(), c.der.clone()));
    assert!(s.url("/").starts_with("https://"));
    assert_eq!(s.get("/health").status, 200);
    let job = s.create(JOBS, &json!({"vmId": VM, "when": instant_in(3_600_000)}));
    let r = s.get(&format!("{JOBS}/{}", job["id"].as_str().unwrap()));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.get("jobRequest")["vmId"], VM);

    // A client that does not trust the certificate is refused by its own TLS check.
    let untrusting = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
    let err = untrusting.get(&s.url("/health")).call().expect_err("an untrusted certificate");
    assert!(matches!(err, ureq::Error::Transport(_)), "{err}");
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
    let r = plain.get(&format!("http://127.0.0.1:{}/health", s.port)).call();
    assert!(!matches!(r, Ok(ref resp) if resp.status() == 200), "plain HTTP must not be served");
}

on_both_stores!(serves_https_with_the_given_certificate);

#[test]
fn a_bad_certificate_or_key_stops_the_start_with_a_clear_line() {
    let c = TestCert::new();
    let other = TestCert::new();
    let (cert, key, other_key) = (c.cert(), c.key(), other.key());
    // A certificate without its key is refused by the command line.
    let out = std::process::Command::new(harness::scheduler_bin())
        .args(["--tls-cert", cert.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"), "{out:?}");
    let cases: [(&[&str], &str); 2] = [
        (&["--tls-cert", key.to_str().unwrap(), "--tls-key", key.to_str().unwrap()], "no PEM certificate"),
        (&["--tls-cert", cert.to_str().unwrap(), "--tls-key", other_key.to_str().unwrap()], "does not match"),
    ];
    for (args, needle) in cases {
        let (status, out) = run_until(args, "\u{0}never");
        assert!(status.is_some_and(|s| !s.success()), "{args:?} must not start: {out}");
        assert!(out.contains(needle), "{args:?}: the output should say {needle:?}: {out}");
    }
}

/// `TEST_DATABASE_CA`: the test cluster's certificate (scripts/pg.sh makes one). A server
/// without TLS is a failure under CI, where the test command starts the cluster.
fn database_ca() -> Option<String> {
    match std::env::var("TEST_DATABASE_CA") {
        Ok(ca) => Some(ca),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("TEST_DATABASE_CA is not set: scripts/pg.sh starts the test cluster with TLS")
        }
        Err(_) => {
            eprintln!("TEST_DATABASE_CA is not set (a PostgreSQL without TLS): not checking TLS to PostgreSQL");
            None
        }
    }
}

/// `url` with `sslmode=…` replaced by `params`.
fn with_params(url: &str, params: &str) -> String {
    let base = url.split_once('?').map_or(url, |(b, _)| b);
    format!("{base}?{params}")
}

#[test]
fn postgres_connections_are_encrypted_and_verified_when_the_url_asks() {
    let Some(ca) = database_ca() else { return };
    let db = TestDb::create();
    let app = format!("sched_tls_{}", std::process::id());
    let url = with_params(&db.url, &format!("sslmode=verify-full&sslrootcert={ca}&application_name={app}"));
    let s = Server::start_with(ServerOptions::default().args(&["--jobstore", "postgres", "--database-url", &url]));
    s.create(JOBS, &json!({"vmId": VM, "when": instant_in(3_600_000)}));
    let count = |ssl: bool| {
        db.count(&format!(
            "SELECT count(*) AS n FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = '{app}' AND s.ssl = {ssl}"
        ))
    };
    assert!(count(true) > 0, "the service's connections use TLS");
    assert_eq!(count(false), 0, "and none without it");
    drop(s);

    // A certificate the URL does not trust: the service does not start, and says why.
    let other = TestCert::new();
    let url = with_params(&db.url, &format!("sslmode=verify-full&sslrootcert={}", other.cert().display()));
    let (status, out) = run_until(&["--jobstore", "postgres", "--database-url", &url], "\u{0}never");
    assert!(status.is_some_and(|s| !s.success()), "{out}");
    assert!(out.contains("certificate verify failed"), "{out}");
}
