//! W5: W1 on 1, 2 or 3 server processes sharing one PostgreSQL database.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use scheduler_core::model::{GroupKey, JobId, JobSpec, JobState};
use scheduler_core::store::postgres::{PgConfig, PgStore};
use scheduler_core::store::{JobStore, NewJob};
use scheduler_core::trigger::TriggerState;
use scheduler_core::{Clock, SystemClock};

use crate::pg::{self, BenchDb};
use crate::report::{line, noop_plugin_dir, percentiles, target_dir};

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_node(db: &BenchDb, plugins: &std::path::Path, record: &std::path::Path) -> anyhow::Result<Node> {
    let mut child = Command::new(target_dir().join("scheduler"))
        .args(["--bind", "127.0.0.1:0", "--jobstore", "postgres", "--database-url", &db.url])
        .args(["--workers", "8", "--queue", "128", "--db-pool-size", "16", "--plugins"])
        .arg(plugins)
        .env("RUST_LOG", std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "info".into()))
        .env("NOOP_RECORD_FILE", record)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    loop {
        let l = lines.next().context("node exited before listening")??;
        if l.contains("listening on http://") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    Ok(Node(child))
}

pub fn w5(n: usize, nodes: usize) -> anyhow::Result<()> {
    let name = format!("W5 {nodes} node{}", if nodes == 1 { "" } else { "s" });
    let db = BenchDb::create()?;
    let store =
        PgStore::connect(&PgConfig { url: db.url.clone(), pool_size: 2, connect_timeout: Duration::from_secs(10) })?;
    store.migrate()?;
    let plugins = noop_plugin_dir()?;
    let record = tempfile::NamedTempFile::new()?;
    let t0 = SystemClock.now().plus_micros(10_000_000);
    let group = GroupKey::new("bench", "noop")?;
    let now = SystemClock.now();
    let spec = Arc::new(JobSpec::once(t0));
    let jobs: Vec<NewJob> = (0..n)
        .map(|_| NewJob {
            id: JobId::new(),
            group: group.clone(),
            spec: spec.clone(),
            state: JobState { triggers: vec![TriggerState { next: Some(t0), fired: 0 }], extra: None },
            payload: Arc::from("{}"),
            paused: false,
            now,
            idempotency: None,
        })
        .collect();
    store.jobs_insert_many(jobs)?;
    let _nodes: Vec<Node> =
        (0..nodes).map(|_| start_node(&db, plugins.path(), record.path())).collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(SystemClock.now() < t0, "nodes took longer than 10 s to start");
    let mut conn = db.conn()?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done = pg::count(&mut conn, "SELECT count(*) AS n FROM runs WHERE outcome NOT IN ('claimed', 'running')")?;
        if done >= n as i64 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "only {done} of {n} runs finished");
        std::thread::sleep(Duration::from_millis(50));
    }
    let starts = pg::run_starts(&mut conn)?;
    let t0_us = t0.0;
    let last = starts.iter().map(|(_, s)| *s).max().unwrap_or(t0_us);
    let span = (last - t0_us).max(1) as f64 / 1e6;
    line(
        &name,
        format!("drain {:.0} fires/s (last start {:.0} ms after T0), {n} jobs", n as f64 / span, span * 1000.0),
    );
    line(&name, format!("lateness (start - T0) {}", percentiles(starts.iter().map(|(_, s)| s - t0_us).collect())));
    let lines = std::fs::read_to_string(record.path())?;
    let mut seen = HashSet::new();
    let mut dups = 0;
    for l in lines.lines() {
        if !seen.insert(l.split_whitespace().next().unwrap_or_default().to_owned()) {
            dups += 1;
        }
    }
    let per_node = pg::runs_per_node(&mut conn)?;
    line(
        &name,
        format!(
            "plugin record: {} starts, {dups} duplicates, {} lost; runs per node {per_node:?}",
            lines.lines().count(),
            n - seen.len()
        ),
    );
    anyhow::ensure!(dups == 0 && seen.len() == n, "a job ran other than exactly once");
    Ok(())
}
