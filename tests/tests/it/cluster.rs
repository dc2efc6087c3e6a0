//! Several real server processes on one PostgreSQL database: every run once, never two at a
//! time, nothing lost when a node dies, freezes, stops or loses the database. Counts come from
//! the plugin's own record of starts (`SLEEPY_RECORD_FILE`), not from the scheduler's view.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use harness::{
    create_many, instant_in, now_ms, read_starts, wait_until, PgServer, PluginDir, Server, ServerOptions, TestDb,
};
use serde_json::{json, Value};

const SLEEPY: &str = "/api/scheduler/fixtures/sleepy/jobs";
const SLEEPY_ONCE: &str = "/api/scheduler/fixtures/sleepy-once/jobs";

/// Nodes on one database, sharing one start record.
struct Cluster {
    db: Arc<TestDb>,
    nodes: Vec<Server>,
    record: PathBuf,
    _dir: tempfile::TempDir,
}

fn node_options(db: &Arc<TestDb>, record: &std::path::Path, extra: &[&str]) -> ServerOptions {
    ServerOptions::default()
        .database(db.clone())
        .args(&["--heartbeat", "500ms", "--workers", "4", "--queue", "4", "--poll-interval", "200ms"])
        .args(extra)
        .env("SLEEPY_RECORD_FILE", record.to_str().unwrap())
}

impl Cluster {
    fn start(db: TestDb, n: usize, extra: &[&str]) -> Cluster {
        let db = Arc::new(db);
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("starts.log");
        let nodes = (0..n).map(|_| Server::start_with(node_options(&db, &record, extra))).collect();
        Cluster { db, nodes, record, _dir: dir }
    }

    fn unfinished(&self) -> i64 {
        self.db.count("SELECT count(*) AS n FROM jobs WHERE final_status IS NULL")
    }

    fn starts_per_job(&self) -> HashMap<String, Vec<i64>> {
        let mut m: HashMap<String, Vec<i64>> = HashMap::new();
        for (job, _, _, ms) in read_starts(&self.record) {
            m.entry(job).or_default().push(ms);
        }
        m
    }

    /// No job has two runs whose executions overlap.
    fn assert_no_overlap(&self) {
        let overlapping = self.db.count(
            "SELECT count(*) AS n FROM runs a JOIN runs b ON a.job_id = b.job_id AND a.id < b.id
             WHERE a.started_at < coalesce(b.finished_at, now()) AND b.started_at < coalesce(a.finished_at, now())",
        );
        assert_eq!(overlapping, 0, "two runs of one job overlapped");
    }
}

fn bodies(n: usize, sleep_ms: u64) -> Vec<Value> {
    (0..n).map(|_| json!({"when": instant_in(0), "sleepMs": sleep_ms})).collect()
}

#[derive(diesel::QueryableByName)]
struct JobRuns {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    job_group: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    final_status: Option<String>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    succeeded: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    abandoned: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total: i64,
}

fn job_runs(db: &TestDb) -> Vec<JobRuns> {
    use diesel::RunQueryDsl;
    diesel::sql_query(
        "SELECT j.id::text AS id, j.job_group, j.final_status,
                count(r.id) FILTER (WHERE r.outcome = 'succeeded') AS succeeded,
                count(r.id) FILTER (WHERE r.outcome = 'abandoned') AS abandoned,
                count(r.id) AS total
         FROM jobs j LEFT JOIN runs r ON r.job_id = j.id GROUP BY j.id",
    )
    .load(&mut db.connect())
    .expect("job runs")
}

#[test]
fn a_node_killed_mid_burst_loses_nothing_and_nothing_runs_twice() {
    let c = Cluster::start(TestDb::create(), 3, &[]);
    let servers: Vec<&Server> = c.nodes.iter().collect();
    // Half the burst is of a type that asks for recovery, half of one that does not.
    let created = std::thread::scope(|scope| {
        let a = scope.spawn(|| create_many(&servers, SLEEPY, bodies(5_000, 100), 3));
        let b = scope.spawn(|| create_many(&servers, SLEEPY_ONCE, bodies(5_000, 100), 3));
        a.join().unwrap().len() + b.join().unwrap().len()
    });
    assert_eq!(created, 10_000);

    // Kill a node in the middle of the burst.
    wait_until("a third of the burst to run", Duration::from_secs(120), || {
        (read_starts(&c.record).len() >= 3_000).then_some(())
    });
    let victim = c.nodes[0].node_id();
    c.nodes[0].sigkill();
    let killed_at = now_ms();
    assert!(c.unfinished() > 1_000, "the burst was over before the kill");
    wait_until("every job to be resolved", Duration::from_secs(180), || (c.unfinished() == 0).then_some(()));

    let starts = c.starts_per_job();
    let rows = job_runs(&c.db);
    assert_eq!(rows.len(), 10_000);
    let mut abandoned = 0;
    for r in &rows {
        let lines = starts.get(&r.id).map(Vec::as_slice).unwrap_or(&[]);
        assert!(r.succeeded <= 1, "job {} succeeded {} times", r.id, r.succeeded);
        assert!(lines.len() as i64 <= r.total, "job {} started {} times with {} runs", r.id, lines.len(), r.total);
        assert!(lines.iter().filter(|ms| **ms >= killed_at).count() <= 1, "job {} started twice after the kill", r.id);
        abandoned += r.abandoned;
        if r.job_group == "sleepy" {
            assert_eq!(r.succeeded, 1, "recovering job {} did not run to success once", r.id);
            assert_eq!(r.final_status.as_deref(), Some("completed"));
        } else {
            assert_eq!(r.total, 1, "job {} of a non-recovering type ran {} times", r.id, r.total);
            assert!(
                (r.succeeded == 1 && r.final_status.as_deref() == Some("completed"))
                    || (r.abandoned == 1 && r.final_status.as_deref() == Some("failed")),
                "job {} is neither completed nor abandoned",
                r.id
            );
        }
    }
    assert!(abandoned > 0, "the kill interrupted nothing");
    let foreign =
        c.db.count(&format!("SELECT count(*) AS n FROM runs WHERE outcome = 'abandoned' AND node <> '{victim}'"));
    assert_eq!(foreign, 0, "only the killed node's runs are abandoned");
    assert_eq!(c.db.count("SELECT count(*) AS n FROM runs WHERE outcome = 'running'"), 0);
    c.assert_no_overlap();
    // Resolved within 2 heartbeat periods (2 x 500 ms) + one rescue pass (1 s) of the dead
    // node's last heartbeat, plus 500 ms for a loaded test machine.
    let resolved_after_ms = c.db.count(&format!(
        "SELECT (extract(epoch FROM max(r.finished_at) - n.heartbeat_at) * 1000)::bigint AS n
         FROM runs r JOIN nodes n ON n.id = r.node WHERE r.outcome = 'abandoned' AND n.id = '{victim}'
         GROUP BY n.heartbeat_at"
    ));
    assert!(resolved_after_ms <= 2_500, "runs resolved {resolved_after_ms} ms after the last heartbeat");
}

#[test]
fn a_job_rescheduled_while_it_runs_never_runs_twice_at_once() {
    let c = Cluster::start(TestDb::create(), 3, &[]);
    let id = c.nodes[0].post_json(SLEEPY, &json!({"when": instant_in(0), "sleepMs": 1_500})).body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{SLEEPY}/{id}");
    wait_until("the run to start", Duration::from_secs(20), || {
        (c.nodes[1].get(&path).body["status"] == "running").then_some(())
    });
    // Due again at once, from another node, while the first run is still going.
    let r = c.nodes[2].patch(&path, &json!({"when": instant_in(-1_000)}).to_string());
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.get("status"), "running");
    let runs = wait_until("both runs to finish", Duration::from_secs(30), || {
        let runs = c.nodes[1].get(&format!("{path}/runs")).body;
        let runs = runs.as_array().cloned().unwrap_or_default();
        (runs.len() == 2 && runs.iter().all(|r| r["outcome"] == "succeeded")).then_some(runs)
    });
    assert!(runs[0]["startedAt"].as_str().unwrap() >= runs[1]["finishedAt"].as_str().unwrap(), "{runs:?}");
    c.assert_no_overlap();
    assert_eq!(c.starts_per_job().get(&id).map(Vec::len), Some(2));
}

#[test]
fn a_database_outage_is_survived_and_every_job_runs_exactly_once() {
    let pg = PgServer::start();
    let c = Cluster::start(pg.database(), 3, &[]);
    let servers: Vec<&Server> = c.nodes.iter().collect();
    let ids = create_many(&servers, SLEEPY, bodies(2_000, 10), 4);
    wait_until("a quarter of the burst to run", Duration::from_secs(120), || {
        (read_starts(&c.record).len() >= 500).then_some(())
    });
    let down = std::time::Instant::now();
    pg.halt();
    for n in &c.nodes {
        n.wait_for_log("the job store is unreachable", Duration::from_secs(20)).expect("every node logs the outage");
    }
    // The outage lasts 10 seconds.
    std::thread::sleep(Duration::from_secs(10).saturating_sub(down.elapsed()));
    pg.resume();
    wait_until("every job to finish", Duration::from_secs(180), || (c.unfinished() == 0).then_some(()));
    for n in &c.nodes {
        n.wait_for_log("heartbeat restored", Duration::from_secs(20)).expect("every node reconnects");
    }
    let starts = c.starts_per_job();
    for id in &ids {
        assert_eq!(starts.get(id).map(Vec::len), Some(1), "job {id} did not run exactly once");
    }
    let rows = job_runs(&c.db);
    assert!(rows.iter().all(|r| r.succeeded == 1 && r.total == 1), "every job has one succeeded run");
    c.assert_no_overlap();
}

#[test]
fn sigterm_mid_burst_abandons_nothing_and_hands_work_to_the_others() {
    let mut c = Cluster::start(TestDb::create(), 3, &[]);
    let servers: Vec<&Server> = c.nodes.iter().collect();
    let ids = create_many(&servers, SLEEPY_ONCE, bodies(3_000, 10), 4);
    wait_until("a third of the burst to run", Duration::from_secs(120), || {
        (read_starts(&c.record).len() >= 1_000).then_some(())
    });
    let stopping = c.nodes[0].node_id();
    c.nodes[0].sigterm();
    let status = c.nodes[0].wait_exit(Duration::from_secs(60)).expect("the node stops");
    assert!(status.success());
    wait_until("every job to finish", Duration::from_secs(180), || (c.unfinished() == 0).then_some(()));
    assert_eq!(c.db.count("SELECT count(*) AS n FROM runs WHERE outcome <> 'succeeded'"), 0, "nothing abandoned");
    let starts = c.starts_per_job();
    for id in &ids {
        assert_eq!(starts.get(id).map(Vec::len), Some(1), "job {id} did not run exactly once");
    }
    let nodes = c.nodes[1].get("/api/scheduler/nodes").body;
    let me = nodes.as_array().unwrap().iter().find(|n| n["id"] == stopping.as_str()).expect("listed");
    assert_eq!(me["live"], false);
    assert!(me["stoppedAt"].is_string());
    c.assert_no_overlap();
    c.nodes.remove(0);
}

#[test]
fn a_frozen_node_loses_its_claim_and_its_late_completion_is_ignored() {
    let c = Cluster::start(TestDb::create(), 2, &[]);
    let id = c.nodes[0].post_json(SLEEPY, &json!({"when": instant_in(0), "sleepMs": 2_000})).body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{SLEEPY}/{id}");
    let holder = wait_until("the run to start", Duration::from_secs(20), || {
        let runs = c.nodes[0].get(&format!("{path}/runs")).body;
        runs[0]["node"].as_str().map(str::to_owned)
    });
    let (frozen, other) =
        if c.nodes[0].node_id() == holder { (&c.nodes[0], &c.nodes[1]) } else { (&c.nodes[1], &c.nodes[0]) };
    frozen.freeze();
    // The other node declares it dead, resolves its run and runs the job again.
    let runs = wait_until("the job to run again elsewhere", Duration::from_secs(30), || {
        let runs = other.get(&format!("{path}/runs")).body;
        let runs = runs.as_array().cloned().unwrap_or_default();
        (runs.len() == 2 && runs[0]["outcome"] == "succeeded").then_some(runs)
    });
    assert_eq!(runs[1]["outcome"], "abandoned");
    frozen.thaw();
    frozen
        .wait_for_log("counted this node as dead", Duration::from_secs(20))
        .expect("the frozen node learns it was declared dead");
    frozen
        .wait_for_log("completions for runs no longer held were ignored", Duration::from_secs(20))
        .expect("its late completion is refused and logged");
    let after = other.get(&format!("{path}/runs")).body;
    assert_eq!(after[1]["outcome"], "abandoned", "the late completion changed nothing");
    assert_eq!(after[0]["outcome"], "succeeded");
    c.assert_no_overlap();
}

#[test]
fn a_node_without_a_plugin_never_claims_or_resolves_that_groups_jobs() {
    let db = Arc::new(TestDb::create());
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("starts.log");
    let mut full = Server::start_with(node_options(&db, &record, &[]));
    let partial = Server::start_with(node_options(&db, &record, &[]).plugins(PluginDir::with(&["noop"])));
    let nodes = partial.get("/api/scheduler/nodes").body;
    let me = nodes.as_array().unwrap().iter().find(|n| n["id"] == partial.node_id().as_str()).unwrap();
    assert_eq!(me["groups"], json!(["bench/noop"]));

    let id = full.post_json(SLEEPY, &json!({"when": instant_in(0), "sleepMs": 60_000})).body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{SLEEPY}/{id}");
    wait_until("the run to start", Duration::from_secs(20), || {
        (full.get(&path).body["status"] == "running").then_some(())
    });
    full.sigkill();
    full.wait_exit(Duration::from_secs(10));
    // The partial node sees the dead node (dead after 1 s, looked for every second) but does not
    // know the group: for longer than it takes to notice, the run stays as it is.
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    while std::time::Instant::now() < deadline {
        assert_eq!(
            db.count("SELECT count(*) AS n FROM runs WHERE outcome = 'running'"),
            1,
            "a node without the plugin resolved the run"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A node with the plugin comes back and resolves it.
    let again = Server::start_with(node_options(&db, &record, &[]));
    let runs = wait_until("the run to be resolved and re-run", Duration::from_secs(30), || {
        let runs = again.get(&format!("{path}/runs")).body;
        let runs = runs.as_array().cloned().unwrap_or_default();
        (runs.len() == 2).then_some(runs)
    });
    assert_eq!(runs[1]["outcome"], "abandoned");
    assert_ne!(runs[0]["node"], partial.node_id().as_str());
}

#[test]
fn a_group_limit_holds_across_nodes() {
    // Both nodes run the group at once: a limit counted per node would let three run at once.
    let db = Arc::new(TestDb::create());
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("starts.log");
    let node = |workers: &str| {
        Server::start_with(
            ServerOptions::default()
                .database(db.clone())
                .args(&["--workers", workers, "--poll-interval", "100ms", "--max-running", "fixtures/sleepy=2"])
                .env("SLEEPY_RECORD_FILE", record.to_str().unwrap()),
        )
    };
    let (small, big) = (node("1"), node("4"));
    // The small node runs a long job first, so the big node (four workers, nine jobs) may only
    // take the second slot while it lasts.
    let mut ids = create_many(&[&small], SLEEPY, bodies(1, 1500), 1);
    wait_until("the small node to start its job", Duration::from_secs(20), || {
        (db.count("SELECT count(*) AS n FROM runs WHERE outcome = 'running'") == 1).then_some(())
    });
    ids.extend(create_many(&[&big], SLEEPY, bodies(9, 600), 4));
    wait_until("every job to finish", Duration::from_secs(60), || {
        (db.count("SELECT count(*) AS n FROM jobs WHERE final_status IS NULL") == 0).then_some(())
    });
    assert_eq!(read_starts(&record).len(), ids.len(), "each job ran once");
    // The most runs of the group in progress at any run's start, across both nodes.
    let peak = db.count(
        "SELECT coalesce(max(n), 0) AS n FROM (
             SELECT (SELECT count(*) FROM runs b
                     WHERE b.job_group = 'sleepy' AND b.started_at <= a.started_at AND b.finished_at > a.started_at) AS n
             FROM runs a WHERE a.job_group = 'sleepy') t",
    );
    assert_eq!(peak, 2, "at most two ran at once, and the limit was used");
    let nodes = db.count("SELECT count(DISTINCT node) AS n FROM runs WHERE job_group = 'sleepy'");
    assert_eq!(nodes, 2, "both nodes ran the group's jobs");
}
