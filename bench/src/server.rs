//! Workloads through the real server: W4 (creates/s) and W1/W2 driven over HTTP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use scheduler_core::{Clock, SystemClock, Ts};
use serde_json::Value;

use crate::http::Conn;
use crate::pg::BenchDb;
use crate::report::{line, noop_plugin_dir, percentiles, target_dir};
use crate::StoreKind;

const JOBS: &str = "/api/scheduler/bench/noop/jobs";

/// The real server, killed on drop.
pub struct ServerProc {
    child: Child,
    pub port: u16,
    _plugins: tempfile::TempDir,
    _db: Option<BenchDb>,
}

impl ServerProc {
    fn start(store: StoreKind) -> anyhow::Result<ServerProc> {
        let db = match store {
            StoreKind::Memory => None,
            StoreKind::Postgres => Some(BenchDb::create()?),
        };
        Self::start_on(db, &[])
    }

    /// The server on this database (or the memory store), with extra arguments.
    pub fn start_on(db: Option<BenchDb>, extra: &[&str]) -> anyhow::Result<ServerProc> {
        let plugins = noop_plugin_dir()?;
        let bin = target_dir().join("scheduler");
        anyhow::ensure!(bin.is_file(), "{} missing: run `cargo build --release --workspace`", bin.display());
        let mut cmd = Command::new(bin);
        cmd.args(extra);
        // Throughput workloads create more jobs than the default per-product quota allows.
        if !extra.contains(&"--max-pending-jobs") {
            cmd.args(["--max-pending-jobs", "0"]);
        }
        cmd.args(["--bind", "127.0.0.1:0", "--workers", "16", "--plugins"]).arg(plugins.path());
        if let Some(db) = &db {
            cmd.args(["--jobstore", "postgres", "--database-url", &db.url, "--db-pool-size", "32", "--queue", "128"]);
        }
        let mut child = cmd
            .env("RUST_LOG", std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let port = loop {
            let l = lines.next().context("server exited before listening")??;
            if let Some(rest) = l.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                break addr.rsplit(':').next().and_then(|p| p.parse().ok()).context("port")?;
            }
        };
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Ok(ServerProc { child, port, _plugins: plugins, _db: db })
    }

    fn peak_rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<f64>().ok())
            })
            .unwrap_or(0.0)
            / 1024.0
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?)
}

fn body(when: Ts) -> Vec<u8> {
    format!(r#"{{"when":"{}","n":1}}"#, when.to_rfc3339()).into_bytes()
}

fn label(w: &str, store: StoreKind) -> String {
    match store {
        StoreKind::Memory => w.to_owned(),
        StoreKind::Postgres => format!("{w}-pg"),
    }
}

pub fn w4(secs: u64, conns: usize, store: StoreKind) -> anyhow::Result<()> {
    let name = label("W4", store);
    let server = ServerProc::start(store)?;
    let (lat, errors) = create_load(&server, secs, conns)?;
    let n = lat.len();
    line(
        &name,
        format!(
            "{:.0} creates/s over HTTP ({n} in {secs} s, {conns} connections, {errors} errors)",
            n as f64 / secs as f64
        ),
    );
    line(&name, format!("request latency {}", percentiles(lat)));
    line(&name, format!("server peak RSS {:.1} MiB", server.peak_rss_mib()));
    Ok(())
}

/// Creates jobs due in an hour over `conns` keep-alive connections for `secs` seconds: the
/// latency of each 201 in µs, and how many requests got anything else.
fn create_load(server: &ServerProc, secs: u64, conns: usize) -> anyhow::Result<(Vec<i64>, usize)> {
    let rt = runtime()?;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let errors = Arc::new(AtomicUsize::new(0));
    let when = SystemClock.now().plus_micros(3_600_000_000);
    let lat: Vec<Vec<i64>> = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (port, errors, b) = (server.port, errors.clone(), body(when));
            tasks.push(tokio::spawn(async move {
                let mut c = Conn::connect(port).await.expect("connect");
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match c.request("POST", JOBS, Some(&b)).await {
                        Ok((201, _)) => lat.push(t.elapsed().as_micros() as i64),
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.push(t.await.expect("task"));
        }
        all
    });
    let errors = errors.load(Ordering::Relaxed);
    Ok((lat.into_iter().flatten().collect(), errors))
}

/// The per-product quota's cost on creates: W4 with a quota too high to reach against W4
/// without one, alternating servers, `rounds` times; medians and their ratio.
pub fn limits(secs: u64, conns: usize, rounds: usize, store: StoreKind) -> anyhow::Result<()> {
    let name = label("limits", store);
    let rate = |quota: &str| -> anyhow::Result<f64> {
        let db = match store {
            StoreKind::Memory => None,
            StoreKind::Postgres => Some(BenchDb::create()?),
        };
        let server = ServerProc::start_on(db, &["--max-pending-jobs", quota])?;
        let (lat, errors) = create_load(&server, secs, conns)?;
        anyhow::ensure!(errors == 0, "{errors} creates failed with quota {quota}");
        Ok(lat.len() as f64 / secs as f64)
    };
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        on.push(rate("100000000")?);
        off.push(rate("0")?);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (m_on, m_off) = (median(&mut on), median(&mut off));
    line(
        &name,
        format!(
            "W4 {secs} s x {conns} connections: quota on {m_on:.0} creates/s, off {m_off:.0} creates/s \
             (medians of {rounds}); on/off = {:.3}",
            m_on / m_off
        ),
    );
    line(&name, format!("runs on: {on:.0?}; off: {off:.0?}"));
    Ok(())
}

/// Creates jobs due at `due(i)` over `conns` connections; returns their ids in order.
async fn create_all(
    port: u16,
    n: usize,
    conns: usize,
    due: Arc<dyn Fn(usize) -> Ts + Send + Sync>,
) -> anyhow::Result<Vec<String>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (next, due) = (next.clone(), due.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::connect(port).await?;
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let (status, b) = c.request("POST", JOBS, Some(&body(due(i)))).await?;
                anyhow::ensure!(status == 201, "create answered {status}");
                let v: Value = serde_json::from_slice(&b)?;
                out.push((i, v["id"].as_str().context("id")?.to_owned()));
            }
            anyhow::Ok(out)
        }));
    }
    let mut ids = vec![String::new(); n];
    for t in tasks {
        for (i, id) in t.await?? {
            ids[i] = id;
        }
    }
    Ok(ids)
}

/// (scheduledFor, startedAt) of each job's single run, read over HTTP.
async fn read_starts(port: u16, ids: Arc<Vec<String>>, conns: usize) -> anyhow::Result<Vec<(Ts, Ts)>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (next, ids) = (next.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::connect(port).await?;
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ids.len() {
                    break;
                }
                let (status, b) = c.request("GET", &format!("{JOBS}/{}/runs", ids[i]), None).await?;
                anyhow::ensure!(status == 200, "runs answered {status}");
                let v: Value = serde_json::from_slice(&b)?;
                let runs = v.as_array().context("array")?;
                anyhow::ensure!(runs.len() == 1, "job {} ran {} times", ids[i], runs.len());
                let ts = |k: &str| -> anyhow::Result<Ts> {
                    let s = runs[0][k].as_str().context("instant")?;
                    Ok(Ts::from_datetime(chrono_parse(s)?))
                };
                out.push((ts("scheduledFor")?, ts("startedAt")?));
            }
            anyhow::Ok(out)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

fn chrono_parse(s: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    Ok(chrono::DateTime::parse_from_rfc3339(s)?.to_utc())
}

/// Waits until the group's list of unfinished jobs is empty.
async fn wait_drained(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut c = Conn::connect(port).await?;
    loop {
        let (_, b) = c.request("GET", &format!("{JOBS}?limit=1"), None).await?;
        if b == b"[]" {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "jobs still pending after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn w1(n: usize, store: StoreKind) -> anyhow::Result<()> {
    let name = format!("{} {n}", label("W1-srv", store));
    let server = ServerProc::start(store)?;
    let rt = runtime()?;
    // Creating over HTTP takes a while: T0 leaves room for it (stated in the output).
    let lead_ms = 5_000 + (n as i64) / if store == StoreKind::Postgres { 6 } else { 10 };
    let t0 = SystemClock.now().plus_micros(lead_ms * 1000);
    let t = Instant::now();
    let ids = rt.block_on(create_all(server.port, n, 32, Arc::new(move |_| t0)))?;
    let took = t.elapsed();
    line(&name, format!("insert over HTTP {:.0} jobs/s; T0 = start + {lead_ms} ms", n as f64 / took.as_secs_f64()));
    anyhow::ensure!(SystemClock.now() < t0, "creating took longer than the lead before T0");
    rt.block_on(wait_drained(server.port, Duration::from_secs(300)))?;
    let st = rt.block_on(read_starts(server.port, Arc::new(ids), 16))?;
    let t0_ms = Ts::from_millis(t0.as_millis());
    let last = st.iter().map(|(_, s)| *s).max().unwrap_or(t0_ms);
    let span = last.micros_since(t0_ms).max(1000) as f64 / 1e6;
    line(
        &name,
        format!(
            "drain {:.0} fires/s (last start {:.0} ms after T0; instants at API precision, 1 ms)",
            n as f64 / span,
            span * 1000.0
        ),
    );
    line(
        &name,
        format!("lateness (start - T0) {}", percentiles(st.iter().map(|(_, s)| s.micros_since(t0_ms)).collect())),
    );
    line(&name, format!("server peak RSS {:.1} MiB", server.peak_rss_mib()));
    Ok(())
}

pub fn w2(n: usize, secs: u64, store: StoreKind) -> anyhow::Result<()> {
    let name = format!("{} {n}/{secs}s", label("W2-srv", store));
    let server = ServerProc::start(store)?;
    let rt = runtime()?;
    let begin = SystemClock.now().plus_micros(3_000_000);
    let step = (secs * 1_000_000) as f64 / n as f64;
    let ids =
        rt.block_on(create_all(server.port, n, 32, Arc::new(move |i| begin.plus_micros((i as f64 * step) as i64))))?;
    rt.block_on(wait_drained(server.port, Duration::from_secs(secs + 120)))?;
    let st = rt.block_on(read_starts(server.port, Arc::new(ids), 16))?;
    line(
        &name,
        format!(
            "lateness (start - due) {} (API instants, 1 ms precision)",
            percentiles(st.iter().map(|(d, s)| s.micros_since(*d)).collect())
        ),
    );
    Ok(())
}
