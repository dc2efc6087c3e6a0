//! Several real server processes on one PostgreSQL database: every run once, never two at a
//! time, nothing lost when a node dies, freezes, stops or loses the database. Counts come from
//! the plugin's own record of starts (`SLEEPY_RECORD_FILE`), not from the scheduler's view.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use harness::{create_many, instant_in, read_starts, wait_until, PgServer, PluginDir, Server, ServerOptions, TestDb};
use serde_json::{json, Value};

const SLEEPY: &str = "/api/scheduler/fixtures/sleepy/jobs";
const SLEEPY_ONCE: &str = "/api/scheduler/fixtures/sleepy-once/jobs";
const FLAKY: &str = "/api/scheduler/fixtures/flaky/jobs";

/// Makes a node with one worker claim a long job and `n` short ones in one claim (the long one
/// executes, the short ones wait in its queue): its worker is kept busy by a blocker job while
/// they are created, and the blocker is cancelled once they all exist. Returns their ids, the
/// long one (of `long_path`) first, then the short ones (of `short_path`).
fn one_claim_of(node: &Server, long_path: &str, short_path: &str, n: usize) -> Vec<String> {
    let blocker = node.create(FLAKY, &json!({"when": instant_in(0), "sleepMs": 60_000}));
    let blocker_path = format!("{FLAKY}/{}", blocker["id"].as_str().unwrap());
    let run = wait_until("the blocker to run", Duration::from_secs(20), || {
        let runs = node.get(&format!("{blocker_path}/runs")).body;
        runs.as_array().and_then(|r| r.first()).filter(|r| r["outcome"] == "running").map(|r| r["id"].clone())
    });
    let mut ids = create_many(&[node], long_path, vec![json!({"when": instant_in(-1_000), "sleepMs": 20_000})], 1);
    ids.extend(create_many(&[node], short_path, bodies(n, 300), 4));
    let cancel = node.post(&format!("/api/scheduler/fixtures/flaky/runs/{}/cancel", run.as_str().unwrap()), "");
    assert_eq!(cancel.status, 202, "{}", cancel.text);
    ids
}

/// Nodes on one database, sharing one start record.
struct Cluster {
    db: Arc<TestDb>,
    nodes: Vec<Server>,
    record: PathBuf,
    _dir: tempfile::TempDir,
}

fn node_options(db: &Arc<TestDb>, record: &std::path::Path, extra: &[&str]) -> ServerOptions {
    let mut o = ServerOptions::default().database(db.clone()).args(&["--poll-interval", "200ms"]);
    // A heartbeat of 500 ms, four workers and a queue of four, unless `extra` says otherwise.
    for (flag, default) in [("--heartbeat", "500ms"), ("--workers", "4"), ("--queue", "4")] {
        if !extra.contains(&flag) {
            o = o.args(&[flag, default]);
        }
    }
    o.args(extra).env("SLEEPY_RECORD_FILE", record.to_str().unwrap())
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

/// One run as the database has it.
#[derive(diesel::QueryableByName, Debug)]
struct RunRec {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    job_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    job_group: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    node: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    outcome: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    attempt: i32,
    /// When a node claimed it, milliseconds after the killed node's last heartbeat (when asked).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    claimed_after_ms: i64,
}

/// One job as the database has it.
#[derive(diesel::QueryableByName, Debug)]
struct JobRec {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    job_group: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    final_status: Option<String>,
}

/// Every run, with its claim instant relative to `node`'s last heartbeat (0 without a node).
fn all_runs(db: &TestDb, node: Option<&str>) -> Vec<RunRec> {
    use diesel::RunQueryDsl;
    let since = match node {
        Some(n) => format!("(SELECT heartbeat_at FROM nodes WHERE id = '{n}')"),
        None => "r.claimed_at".to_owned(),
    };
    diesel::sql_query(format!(
        "SELECT r.id::text AS id, r.job_id::text AS job_id, r.job_group, r.node, r.outcome, r.attempt,
                (extract(epoch FROM r.claimed_at - {since}) * 1000)::bigint AS claimed_after_ms
         FROM runs r"
    ))
    .load(&mut db.connect())
    .expect("runs")
}

fn all_jobs(db: &TestDb) -> Vec<JobRec> {
    use diesel::RunQueryDsl;
    diesel::sql_query("SELECT id::text AS id, job_group, final_status FROM jobs").load(&mut db.connect()).expect("jobs")
}

/// What the plugin's own record says: every start as (job, attempt) → run id, and the check
/// that no job started twice for the same attempt.
fn starts_by_attempt(record: &std::path::Path) -> HashMap<(String, u32), String> {
    let mut by_attempt = HashMap::new();
    for (job, run, attempt, _) in read_starts(record) {
        if let Some(other) = by_attempt.insert((job.clone(), attempt), run.clone()) {
            panic!("job {job} started twice for attempt {attempt} (runs {other} and {run})");
        }
    }
    by_attempt
}

/// The fault-test verdict on a finished burst, from the plugin's record and the database:
/// every job started (none lost), no job started twice for one attempt, every run the plugin
/// saw is recorded, abandoned runs executed and only on `dead` nodes, recovering jobs
/// (`sleepy`) completed once, non-recovering ones (`sleepy-once`) ran once and either completed
/// or were abandoned. Returns how many runs were abandoned.
///
/// One exception is inherent: a run's start is recorded just before its worker calls the job,
/// so a kill in between (a thread's wake-up) leaves a run recorded as begun that the job never
/// saw. At most `in_flight` such runs (the dead nodes' workers) are allowed, and reported.
fn assert_burst_outcome(c: &Cluster, jobs: usize, dead: &[String], in_flight: usize) -> usize {
    let starts = starts_by_attempt(&c.record);
    let started_runs: std::collections::HashSet<&String> = starts.values().collect();
    let started_jobs: std::collections::HashSet<&String> = starts.keys().map(|(j, _)| j).collect();
    let sleepy = |g: &str| g == "sleepy" || g == "sleepy-once";
    let rows: Vec<JobRec> = all_jobs(&c.db).into_iter().filter(|j| sleepy(&j.job_group)).collect();
    let runs: Vec<RunRec> = all_runs(&c.db, None).into_iter().filter(|r| sleepy(&r.job_group)).collect();
    assert_eq!(rows.len(), jobs);
    assert!(
        runs.iter().all(|r| r.outcome != "claimed" && r.outcome != "running"),
        "a run is still in progress: {:?}",
        runs.iter().find(|r| r.outcome == "claimed" || r.outcome == "running")
    );
    let mut by_job: HashMap<&str, Vec<&RunRec>> = HashMap::new();
    let mut unseen: Vec<&RunRec> = Vec::new();
    for r in &runs {
        by_job.entry(r.job_id.as_str()).or_default().push(r);
        if r.outcome == "abandoned" {
            assert!(dead.contains(&r.node), "run {} of live node {} was abandoned", r.id, r.node);
            if !started_runs.contains(&r.id) {
                unseen.push(r);
                continue;
            }
        }
        assert!(
            started_runs.contains(&r.id) == (r.outcome == "succeeded" || r.outcome == "abandoned"),
            "run {} ({}) and the plugin's record disagree",
            r.id,
            r.outcome
        );
    }
    eprintln!("abandoned runs the job never saw (killed between recording the start and the call): {}", unseen.len());
    assert!(unseen.len() <= in_flight, "{} abandoned runs never reached the job: {unseen:?}", unseen.len());
    let never_started: Vec<&str> = rows
        .iter()
        .map(|j| j.id.as_str())
        .filter(|id| !started_jobs.contains(&id.to_string()) && !unseen.iter().any(|r| r.job_id == *id))
        .collect();
    assert!(
        never_started.is_empty(),
        "{} jobs never started: {:?}",
        never_started.len(),
        &never_started[..5.min(never_started.len())]
    );
    let mut abandoned = 0;
    for j in &rows {
        let runs = by_job.get(j.id.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        let succeeded = runs.iter().filter(|r| r.outcome == "succeeded").count();
        let lost = runs.iter().filter(|r| r.outcome == "abandoned").count();
        abandoned += lost;
        if j.job_group == "sleepy" {
            assert_eq!(succeeded, 1, "recovering job {} succeeded {succeeded} times", j.id);
            assert_eq!(runs.len(), lost + 1, "recovering job {}: {runs:?}", j.id);
            assert_eq!(j.final_status.as_deref(), Some("completed"));
            let mut attempts: Vec<i32> = runs.iter().map(|r| r.attempt).collect();
            attempts.sort_unstable();
            assert_eq!(attempts, (1..=runs.len() as i32).collect::<Vec<_>>(), "each rerun is the next attempt");
        } else {
            assert_eq!(runs.len(), 1, "non-recovering job {} ran {} times: {runs:?}", j.id, runs.len());
            let expected = if succeeded == 1 { "completed" } else { "failed" };
            assert_eq!(j.final_status.as_deref(), Some(expected), "job {}: {runs:?}", j.id);
        }
    }
    c.assert_no_overlap();
    abandoned
}

/// The most a dead node's work waits, after its last heartbeat, before a survivor resolves it
/// (given back or abandoned): two heartbeat periods (2 x 500 ms) and one rescue pass (1 s),
/// plus 500 ms for a loaded test machine.
const RESOLVED_WITHIN_MS: i64 = 2_500;

#[test]
fn a_node_killed_mid_burst_loses_nothing_and_nothing_runs_twice() {
    let c = Cluster::start(TestDb::create(), 3, &[]);
    let servers: Vec<&Server> = c.nodes.iter().collect();
    // Half the burst is of a type that asks for recovery, half of one that does not.
    let created = std::thread::scope(|scope| {
        let a = scope.spawn(|| create_many(&servers, SLEEPY, bodies(1_500, 50), 3));
        let b = scope.spawn(|| create_many(&servers, SLEEPY_ONCE, bodies(1_500, 50), 3));
        a.join().unwrap().len() + b.join().unwrap().len()
    });
    assert_eq!(created, 3_000);

    // Kill a node in the middle of the burst.
    wait_until("a third of the burst to run", Duration::from_secs(120), || {
        (read_starts(&c.record).len() >= 1_000).then_some(())
    });
    let victim = c.nodes[0].node_id();
    c.nodes[0].sigkill();
    assert!(c.unfinished() > 500, "the burst was over before the kill");
    wait_until("every job to be resolved", Duration::from_secs(180), || (c.unfinished() == 0).then_some(()));

    // The victim runs four workers.
    let abandoned = assert_burst_outcome(&c, 3_000, std::slice::from_ref(&victim), 4);
    assert!(abandoned > 0, "the kill interrupted nothing");
    let resolved_after_ms = c.db.count(&format!(
        "SELECT (extract(epoch FROM max(r.finished_at) - n.heartbeat_at) * 1000)::bigint AS n
         FROM runs r JOIN nodes n ON n.id = r.node WHERE r.outcome = 'abandoned' AND n.id = '{victim}'
         GROUP BY n.heartbeat_at"
    ));
    assert!(resolved_after_ms <= RESOLVED_WITHIN_MS, "runs resolved {resolved_after_ms} ms after the last heartbeat");
}

#[test]
fn a_killed_nodes_claimed_runs_run_on_a_survivor_in_time() {
    let db = Arc::new(TestDb::create());
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("starts.log");
    // One worker and a queue of 16: it claims 17 runs, executes one and holds 16.
    let holder = Server::start_with(node_options(&db, &record, &["--workers", "1", "--queue", "16"]));
    let ids = one_claim_of(&holder, SLEEPY_ONCE, SLEEPY_ONCE, 16);
    wait_until("one run executing and 16 claimed", Duration::from_secs(30), || {
        let claimed = db.count("SELECT count(*) AS n FROM runs WHERE outcome = 'claimed'");
        let running = db.count("SELECT count(*) AS n FROM runs WHERE outcome = 'running'");
        (claimed == 16 && running == 1).then_some(())
    });
    let victim = holder.node_id();
    let survivors: Vec<Server> = (0..2).map(|_| Server::start_with(node_options(&db, &record, &[]))).collect();
    // A survivor judges only after a full dead-after period (1 s) of its own heartbeats.
    wait_until("the survivors to be settled", Duration::from_secs(20), || {
        let settled = db.count(&format!(
            "SELECT count(*) AS n FROM nodes WHERE id <> '{victim}' AND connected_since < now() - interval '1.2 s'"
        ));
        (settled == 2).then_some(())
    });
    assert_eq!(db.count("SELECT count(*) AS n FROM runs WHERE outcome = 'claimed'"), 16, "still held");
    holder.sigkill();
    let c = Cluster { db: db.clone(), nodes: survivors, record: record.clone(), _dir: dir };
    wait_until("every job to be resolved", Duration::from_secs(60), || (c.unfinished() == 0).then_some(()));

    // Its one worker was executing the long job (well past its start) when it was killed.
    assert_eq!(
        assert_burst_outcome(&c, 17, std::slice::from_ref(&victim), 0),
        1,
        "only the executing run is abandoned"
    );
    let runs = all_runs(&db, Some(&victim));
    let handed: Vec<&RunRec> = runs.iter().filter(|r| r.node != victim && r.job_group == "sleepy-once").collect();
    assert_eq!(handed.len(), 16, "each claimed run ran once, on a survivor: {runs:?}");
    for r in &handed {
        assert_eq!((r.outcome.as_str(), r.attempt), ("succeeded", 1), "no attempt spent: {r:?}");
        assert!(ids.contains(&r.job_id));
    }
    let first = handed.iter().map(|r| r.claimed_after_ms).min().unwrap();
    assert!(first <= RESOLVED_WITHIN_MS, "handed back {first} ms after the dead node's last heartbeat");
    let dead = runs.iter().find(|r| r.node == victim && r.job_group == "sleepy-once").expect("the executing run");
    assert_eq!(dead.outcome, "abandoned");
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
fn a_database_outage_abandons_nothing_and_every_job_runs_once() {
    let pg = PgServer::start();
    // The heartbeat of the setting this was first seen failing in (a node is dead after 2 s).
    let c = Cluster::start(pg.database(), 3, &["--heartbeat", "1s"]);
    let servers: Vec<&Server> = c.nodes.iter().collect();
    // A type that does not ask for recovery: a run wrongly abandoned would fail its job.
    create_many(&servers, SLEEPY_ONCE, bodies(3_000, 50), 4);
    wait_until("a fifth of the burst to run", Duration::from_secs(120), || {
        (read_starts(&c.record).len() >= 600).then_some(())
    });
    let down = std::time::Instant::now();
    pg.halt();
    for n in &c.nodes {
        n.wait_for_log("the job store is unreachable", Duration::from_secs(20)).expect("every node logs the outage");
    }
    // The outage lasts 6 seconds: longer than a node may stay silent (2 s).
    std::thread::sleep(Duration::from_secs(6).saturating_sub(down.elapsed()));
    pg.resume();
    wait_until("every job to finish", Duration::from_secs(180), || (c.unfinished() == 0).then_some(()));
    for n in &c.nodes {
        n.wait_for_log("heartbeat restored", Duration::from_secs(20)).expect("every node reconnects");
    }
    assert_eq!(assert_burst_outcome(&c, 3_000, &[], 0), 0, "no run was abandoned");
    for n in &c.nodes {
        assert!(!n.logs().contains("counted this node as dead"), "a live node was declared dead");
    }
}

#[test]
fn a_database_that_hangs_abandons_nothing_and_every_job_runs_once() {
    let pg = PgServer::start();
    let c = Cluster::start(pg.database(), 3, &["--heartbeat", "1s"]);
    let servers: Vec<&Server> = c.nodes.iter().collect();
    create_many(&servers, SLEEPY_ONCE, bodies(3_000, 50), 4);
    wait_until("a fifth of the burst to run", Duration::from_secs(120), || {
        (read_starts(&c.record).len() >= 600).then_some(())
    });
    // Every call to the database, heartbeats included, hangs for 6 seconds and then goes
    // through: nothing fails, so only the database clock can tell the nodes they were cut off.
    pg.freeze();
    std::thread::sleep(Duration::from_secs(6));
    pg.thaw();
    wait_until("every job to finish", Duration::from_secs(180), || (c.unfinished() == 0).then_some(()));
    assert_eq!(assert_burst_outcome(&c, 3_000, &[], 0), 0, "no run was abandoned");
    for n in &c.nodes {
        assert!(!n.logs().contains("counted this node as dead"), "a live node was declared dead");
    }
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
fn a_frozen_node_is_counted_dead_then_stops_its_runs_and_rejoins_as_a_new_node() {
    let db = Arc::new(TestDb::create());
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("starts.log");
    // The frozen node executes one job that asks for recovery and holds four claimed ones.
    let frozen = Server::start_with(node_options(&db, &record, &["--workers", "1", "--queue", "4"]));
    let mut short = one_claim_of(&frozen, SLEEPY, SLEEPY_ONCE, 4);
    let long = short.remove(0);
    wait_until("one run executing and 4 claimed", Duration::from_secs(30), || {
        let claimed = db.count("SELECT count(*) AS n FROM runs WHERE outcome = 'claimed'");
        let running = db.count("SELECT count(*) AS n FROM runs WHERE outcome = 'running'");
        (claimed == 4 && running == 1).then_some(())
    });
    let old_id = frozen.node_id();
    let other = Server::start_with(node_options(&db, &record, &[]));
    frozen.freeze();
    let long_path = format!("{SLEEPY}/{long}");
    // The other node declares it dead: the claimed runs run there once, the executing one is
    // abandoned and, its type asking for recovery, runs again there.
    let runs = wait_until("the long job to run again elsewhere", Duration::from_secs(30), || {
        let runs = other.get(&format!("{long_path}/runs")).body;
        let runs = runs.as_array().cloned().unwrap_or_default();
        (runs.len() == 2 && runs[0]["outcome"] == "running").then_some(runs)
    });
    assert_eq!(runs[1]["outcome"], "abandoned");
    assert_eq!(runs[1]["node"], old_id.as_str());
    assert_eq!(runs[0]["attempt"], 2);
    for id in &short {
        other.wait_job(&format!("{SLEEPY_ONCE}/{id}"), "completed", Duration::from_secs(20), |j| {
            j["status"] == "completed"
        });
    }

    // Thawed, it learns it was counted dead, stops the run it still had, and rejoins.
    frozen.thaw();
    frozen.wait_for_log("counted this node as dead", Duration::from_secs(20)).expect("it learns it was counted dead");
    frozen.wait_for_log("rejoined the cluster under a fresh identity", Duration::from_secs(20)).expect("it rejoins");
    frozen
        .wait_for_log("completions for runs no longer held were ignored", Duration::from_secs(20))
        .expect("its stopped run's completion is refused and logged");
    let new_id = frozen.node_id();
    assert_eq!(new_id, format!("{old_id}#2"));
    let nodes = other.get("/api/scheduler/nodes").body;
    let live = |id: &str| nodes.as_array().unwrap().iter().find(|n| n["id"] == id).map(|n| n["live"].clone());
    assert_eq!(live(&old_id), Some(json!(false)));
    assert_eq!(live(&new_id), Some(json!(true)));
    let after = other.get(&format!("{long_path}/runs")).body;
    assert_eq!(after[1]["outcome"], "abandoned", "the late completion changed nothing");

    // The plugin's own record: the long job started twice (one attempt each), every short
    // one once, and none of them on the frozen node after the freeze.
    let starts = starts_by_attempt(&record);
    assert_eq!(starts.keys().filter(|(j, _)| *j == long).count(), 2);
    for id in &short {
        assert_eq!(starts.keys().filter(|(j, _)| j == id).count(), 1, "short job {id} ran once");
    }
    // Under its new identity it takes work again.
    drop(other);
    let fresh = create_many(&[&frozen], SLEEPY_ONCE, bodies(1, 10), 1).remove(0);
    let job = frozen.wait_job(&format!("{SLEEPY_ONCE}/{fresh}"), "completed", Duration::from_secs(20), |j| {
        j["status"] == "completed"
    });
    assert_eq!(job["lastRun"]["node"], new_id.as_str());
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
        (db.count("SELECT count(*) AS n FROM runs WHERE outcome = 'running'") == 1).then_some(())
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
