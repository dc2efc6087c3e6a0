//! The PostgreSQL store end to end: surviving a SIGKILL, refusing bad configuration with one
//! clear line, migrations, and the schema staying in step with the code.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::sql_types::Text;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use harness::{instant_in, spawn, wait_until, Server, ServerOptions, TestDb};
use serde_json::{json, Value};

const NOOP: &str = "/api/scheduler/bench/noop/jobs";
const SLEEPY: &str = "/api/scheduler/fixtures/sleepy/jobs";
const SLEEPY_ONCE: &str = "/api/scheduler/fixtures/sleepy-once/jobs";

fn create(s: &Server, path: &str, body: Value) -> String {
    let r = s.post_json(path, &body);
    assert_eq!(r.status, 201, "{}", r.text);
    r.get("id").as_str().unwrap().to_owned()
}

fn status(s: &Server, path: &str, id: &str) -> String {
    s.get(&format!("{path}/{id}")).body["status"].as_str().unwrap_or_default().to_owned()
}

fn runs(s: &Server, path: &str, id: &str) -> Vec<Value> {
    s.get(&format!("{path}/{id}/runs")).body.as_array().cloned().unwrap_or_default()
}

/// Job id → number of starts in the noop plugin's own record.
fn starts(record: &std::path::Path) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for line in std::fs::read_to_string(record).unwrap_or_default().lines() {
        if let Some(job) = line.split_whitespace().next() {
            *n.entry(job.to_owned()).or_default() += 1;
        }
    }
    n
}

#[test]
fn a_killed_server_restarts_and_every_job_runs_once_with_interrupted_runs_resolved() {
    let db = Arc::new(TestDb::create());
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("starts.log");
    let opts = || {
        ServerOptions::default()
            .database(db.clone())
            .args(&["--heartbeat", "500ms"])
            .env("NOOP_RECORD_FILE", record.to_str().unwrap())
    };
    let mut a = Server::start_with(opts());
    let pending: Vec<String> =
        (0..20).map(|i| create(&a, NOOP, json!({"when": instant_in(2_500 + i * 10), "i": i}))).collect();
    let recovers = create(&a, SLEEPY, json!({"when": instant_in(0), "sleepMs": 2_000}));
    let abandons = create(&a, SLEEPY_ONCE, json!({"when": instant_in(0), "sleepMs": 2_000}));
    wait_until("both sleepers to run", Duration::from_secs(20), || {
        let executing = |path: &str, id: &str| runs(&a, path, id).first().is_some_and(|r| r["outcome"] == "running");
        (executing(SLEEPY, &recovers) && executing(SLEEPY_ONCE, &abandons)).then_some(())
    });
    a.sigkill();
    a.wait_exit(Duration::from_secs(10)).expect("killed");

    let b = Server::start_with(opts());
    // Every pending job runs, once, whether it came due before or after the restart.
    wait_until("every pending job to complete", Duration::from_secs(30), || {
        pending.iter().all(|id| status(&b, NOOP, id) == "completed").then_some(())
    });
    let counted = starts(&record);
    for id in &pending {
        assert_eq!(counted.get(id), Some(&1), "job {id} started {:?} times", counted.get(id));
        assert_eq!(runs(&b, NOOP, id).len(), 1);
    }
    // The interrupted run of a type that asks for recovery is resolved and the job runs again.
    // The runs are read after the job is seen completed: read before, they could be a moment old.
    let r = wait_until("the recovering job to complete", Duration::from_secs(30), || {
        (status(&b, SLEEPY, &recovers) == "completed").then(|| runs(&b, SLEEPY, &recovers))
    });
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0]["outcome"], "succeeded");
    assert_eq!(r[0]["attempt"], 2);
    assert_eq!(r[1]["outcome"], "abandoned");
    assert!(r[1]["error"].as_str().unwrap().contains("runs again"), "{}", r[1]);
    // The other is abandoned, not lost and not stuck in `running`.
    let r = wait_until("the other job to be resolved", Duration::from_secs(30), || {
        (status(&b, SLEEPY_ONCE, &abandons) == "failed").then(|| runs(&b, SLEEPY_ONCE, &abandons))
    });
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["outcome"], "abandoned");
    assert!(r[0]["finishedAt"].is_string());
}

#[test]
fn jobs_and_runs_survive_a_clean_restart() {
    let db = Arc::new(TestDb::create());
    let mut a = Server::start_with(ServerOptions::default().database(db.clone()));
    let done = create(&a, NOOP, json!({"when": instant_in(0)}));
    wait_until("the job to run", Duration::from_secs(20), || (status(&a, NOOP, &done) == "completed").then_some(()));
    let later = create(&a, NOOP, json!({"when": instant_in(3_600_000), "keep": "me"}));
    a.sigterm();
    assert!(a.wait_exit(Duration::from_secs(20)).expect("exits").success());

    let b = Server::start_with(ServerOptions::default().database(db));
    assert_eq!(status(&b, NOOP, &done), "completed");
    assert_eq!(runs(&b, NOOP, &done)[0]["outcome"], "succeeded");
    let job = b.get(&format!("{NOOP}/{later}"));
    assert_eq!(job.get("status"), "scheduled");
    assert_eq!(job.get("jobRequest")["keep"], "me");
}

/// Audit entries are queued, not waited for; a clean stop writes every one of them.
#[test]
fn a_clean_stop_writes_every_queued_audit_entry() {
    let db = Arc::new(TestDb::create());
    let mut a = Server::start_with(ServerOptions::default().database(db.clone()));
    let bodies: Vec<_> = (0..200).map(|i| json!({"when": instant_in(3_600_000 + i)})).collect();
    let ids = harness::create_many(&[&a], NOOP, bodies, 8);
    a.sigterm();
    assert!(a.wait_exit(Duration::from_secs(20)).expect("exits").success());
    assert_eq!(db.count("SELECT count(*) AS n FROM audit WHERE action = 'create'"), ids.len() as i64);
}

fn fails_with(args: &[&str], needle: &str) {
    let opts = ServerOptions::default().args(args);
    let (mut child, logs) = spawn(&opts);
    let status = wait_until("the server to exit", Duration::from_secs(60), || child.try_wait().ok().flatten());
    assert!(!status.success(), "started anyway");
    harness::wait_for_line(&logs, "scheduler: ", Duration::from_secs(5));
    let out = logs.0.lock().unwrap().join("\n");
    assert!(out.contains(needle), "expected {needle:?} in:\n{out}");
    assert!(!out.contains("panicked"), "{out}");
    let line = out.lines().find(|l| l.starts_with("scheduler: ")).unwrap_or_default();
    assert!(line.contains(needle), "one clear line saying {needle:?}: {out}");
}

fn admin_url_with(password: &str) -> String {
    let url = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
    let (scheme, rest) = url.split_once("://").unwrap();
    let (_, host) = rest.split_once('@').unwrap();
    format!("{scheme}://postgres:{password}@{host}")
}

#[test]
fn bad_database_configuration_gives_one_clear_line_and_a_failure_exit() {
    fails_with(
        &["--jobstore", "postgres", "--database-url", "postgres://postgres:pw@127.0.0.1:1/nothing"],
        "cannot connect to PostgreSQL at postgres://postgres:***@127.0.0.1:1/nothing",
    );
    let wrong = admin_url_with("not-the-password");
    fails_with(&["--jobstore", "postgres", "--database-url", &wrong], "password authentication failed");
    fails_with(&["--jobstore", "postgres"], "--database-url");
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
}

#[test]
fn migrations_apply_once_refuse_a_newer_schema_and_match_the_code() {
    let db = TestDb::create();
    let bin = harness::scheduler_bin();
    let migrate = || {
        let out = std::process::Command::new(&bin)
            .args(["migrate", "--database-url", &db.url])
            .output()
            .expect("run migrate");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (ok, out) = migrate();
    assert!(ok && out.contains("applied migrations"), "{out}");
    let (ok, out) = migrate();
    assert!(ok && out.contains("current"), "{out}");

    // The migrated tables are exactly what the code declares.
    let mut conn = PgConnection::establish(&db.url).unwrap();
    let cols: Vec<Column> = diesel::sql_query(
        "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name IN ('jobs', 'runs', 'nodes', 'audit') ORDER BY table_name, ordinal_position",
    )
    .load(&mut conn)
    .unwrap();
    for (table, expected) in scheduler_core::store::postgres::schema::TABLES {
        let actual: Vec<(String, String)> = cols
            .iter()
            .filter(|c| c.table_name == *table)
            .map(|c| (c.column_name.clone(), c.data_type.clone()))
            .collect();
        let expected: Vec<(String, String)> = expected.iter().map(|(c, t)| (c.to_string(), t.to_string())).collect();
        assert_eq!(actual, expected, "table {table} drifted from schema.rs");
    }

    // A schema from a newer scheduler is refused.
    db.execute("INSERT INTO __diesel_schema_migrations (version) VALUES ('29990101000000')");
    fails_with(&["--jobstore", "postgres", "--database-url", &db.url], "schema is newer than this scheduler");
    let (ok, out) = migrate();
    assert!(!ok, "{out}");
}

#[test]
fn no_migrate_refuses_an_unmigrated_database() {
    let db = TestDb::create();
    fails_with(&["--jobstore", "postgres", "--database-url", &db.url, "--no-migrate"], "run `scheduler migrate`");
}
