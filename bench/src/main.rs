//! `bench`: the scheduler's benchmarks. Each workload runs in a fresh process (so peak RSS is
//! its own) and prints its figures; `bench all` runs them all. Build with `--release`.
//!
//! - W1 burst: N one-time jobs all due at T0 = now + 5 s: insert rate, drain rate
//!   (N / time from T0 to the last start), lateness (start − T0) p50/p99/max, peak RSS.
//! - W2 spread: N jobs due uniformly over S seconds: lateness (start − due) p50/p99/max.
//! - W3 capacity: N pending jobs due in an hour: insert rate and RSS per pending job.
//! - W4 REST: job creations per second over HTTP on loopback against the real server.
//!
//! In-process workloads drive the engine API with the `noop` plugin; `-server` variants drive
//! the real `scheduler` binary over HTTP.

mod cluster;
mod history;
mod http;
mod inproc;
mod pg;
mod recurring;
mod report;
mod server;

/// Which store a workload runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// The in-memory store.
    Memory,
    /// PostgreSQL (a fresh database on BENCH_DATABASE_URL or TEST_DATABASE_URL).
    Postgres,
}

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bench", about = "Scheduler benchmarks (build with --release)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// W1 in process: a burst of N jobs due at the same instant.
    W1 {
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Claimed runs queued for workers (the claim batch is up to idle workers + this).
        #[arg(long, default_value_t = 64)]
        queue: usize,
        #[arg(long, value_enum, default_value_t = StoreKind::Memory)]
        store: StoreKind,
    },
    /// W2 in process: N jobs due uniformly over S seconds.
    W2 {
        #[arg(long, default_value_t = 10_000)]
        n: usize,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value_t = 2)]
        workers: usize,
        #[arg(long, value_enum, default_value_t = StoreKind::Memory)]
        store: StoreKind,
    },
    /// W3 in process: N pending jobs due in an hour.
    W3 {
        #[arg(long, default_value_t = 1_000_000)]
        n: usize,
        #[arg(long, value_enum, default_value_t = StoreKind::Memory)]
        store: StoreKind,
    },
    /// The per-product quota's cost: W4 with a quota (never reached) against W4 without.
    Limits {
        #[arg(long, default_value_t = 5)]
        secs: u64,
        #[arg(long, default_value_t = 32)]
        conns: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        #[arg(long, value_enum, default_value_t = StoreKind::Memory)]
        store: StoreKind,
    },
    /// W4: creates per second over HTTP against the real server.
    W4 {
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value_t = 32)]
        conns: usize,
        #[arg(long, value_enum, default_value_t = StoreKind::Memory)]
        store: StoreKind,
    },
    /// W1 through the real server: jobs created over HTTP, starts read back over HTTP.
    W1Server {
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        #[arg(long, value_enum, default_value_t = StoreKind::Memory)]
        store: StoreKind,
    },
    /// W2 through the real server.
    W2Server {
        #[arg(long, default_value_t = 10_000)]
        n: usize,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, value_enum, default_value_t = StoreKind::Memory)]
        store: StoreKind,
    },
    /// W5: W1 on several server processes sharing one PostgreSQL database.
    W5 {
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        #[arg(long, default_value_t = 3)]
        nodes: usize,
    },
    /// R1 in process: N interval jobs every second for S seconds (N fires/s).
    R1 {
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        #[arg(long, default_value_t = 30)]
        secs: u64,
        #[arg(long, default_value_t = 2)]
        workers: usize,
        #[arg(long, default_value_t = 64)]
        queue: usize,
        #[arg(long, value_enum, default_value_t = StoreKind::Memory)]
        store: StoreKind,
    },
    /// R2 in process: N jobs on the cron `* * * * * *` for S seconds.
    R2 {
        #[arg(long, default_value_t = 10_000)]
        n: usize,
        #[arg(long, default_value_t = 30)]
        secs: u64,
        #[arg(long, default_value_t = 2)]
        workers: usize,
        #[arg(long, default_value_t = 64)]
        queue: usize,
        #[arg(long, value_enum, default_value_t = StoreKind::Memory)]
        store: StoreKind,
    },
    /// H1: history pages over HTTP on a PostgreSQL history of N runs.
    H1 {
        #[arg(long, default_value_t = 10_000_000)]
        runs: i64,
        #[arg(long, default_value_t = 200)]
        samples: usize,
    },
    /// The cost of metrics and statistics: W1 with both on and both off, alternating, in one run.
    Overhead {
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        #[arg(long, value_enum, default_value_t = StoreKind::Memory)]
        store: StoreKind,
    },
    /// Next-fire computation for typical cron patterns.
    NextFire {
        #[arg(long, default_value_t = 200_000)]
        iterations: usize,
    },
    /// Every workload above, each in its own process.
    All,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::W1 { n, workers, queue, store } => inproc::w1(n, workers, queue, store),
        Cmd::W2 { n, secs, workers, store } => inproc::w2(n, secs, workers, store),
        Cmd::W3 { n, store } => inproc::w3(n, store),
        Cmd::W4 { secs, conns, store } => server::w4(secs, conns, store),
        Cmd::Limits { secs, conns, rounds, store } => server::limits(secs, conns, rounds, store),
        Cmd::W1Server { n, store } => server::w1(n, store),
        Cmd::W2Server { n, secs, store } => server::w2(n, secs, store),
        Cmd::W5 { n, nodes } => cluster::w5(n, nodes),
        Cmd::R1 { n, secs, workers, queue, store } => recurring::r1(n, secs, workers, queue, store),
        Cmd::R2 { n, secs, workers, queue, store } => recurring::r2(n, secs, workers, queue, store),
        Cmd::NextFire { iterations } => recurring::next_fire(iterations),
        Cmd::H1 { runs, samples } => history::h1(runs, samples),
        Cmd::Overhead { n, rounds, store } => overhead(n, rounds, store),
        Cmd::All => {
            let me = std::env::current_exe()?;
            let pg = std::env::var_os("BENCH_DATABASE_URL").is_some();
            let mut runs: Vec<&[&str]> = vec![
                &["w1", "--n", "10000"],
                &["w1", "--n", "100000"],
                &["w2"],
                &["w3"],
                &["w4"],
                &["w1-server", "--n", "10000"],
                &["w1-server", "--n", "100000"],
                &["w2-server"],
                &["r1"],
                &["r2"],
                &["next-fire"],
            ];
            if pg {
                runs.extend([
                    &["w1", "--n", "10000", "--store", "postgres", "--workers", "8", "--queue", "128"][..],
                    &["w1", "--n", "100000", "--store", "postgres", "--workers", "8", "--queue", "128"],
                    &["w2", "--store", "postgres", "--workers", "8"],
                    &["w3", "--store", "postgres"],
                    &["w4", "--store", "postgres"],
                    &["w1-server", "--n", "10000", "--store", "postgres"],
                    &["w1-server", "--n", "100000", "--store", "postgres"],
                    &["w2-server", "--store", "postgres"],
                    &["w5", "--nodes", "1"],
                    &["w5", "--nodes", "2"],
                    &["w5", "--nodes", "3"],
                    &["r1", "--n", "5000", "--store", "postgres", "--workers", "8", "--queue", "128"],
                ]);
            } else {
                eprintln!("BENCH_DATABASE_URL is not set: skipping the PostgreSQL workloads");
            }
            for args in runs {
                let status = std::process::Command::new(&me).args(args).status()?;
                anyhow::ensure!(status.success(), "bench {} failed", args.join(" "));
            }
            Ok(())
        }
    }
}

/// Runs W1 `rounds` times with metrics and statistics on and as often with both off,
/// alternating, each in its own process; prints both medians and their ratio.
fn overhead(n: usize, rounds: usize, store: StoreKind) -> anyhow::Result<()> {
    let me = std::env::current_exe()?;
    let n_text = n.to_string();
    let mut args = vec!["w1", "--n", n_text.as_str()];
    if store == StoreKind::Postgres {
        args.extend(["--store", "postgres", "--workers", "8", "--queue", "128"]);
    }
    // 0: everything on; 1: metrics and statistics off; 2: also without the history indexes.
    let drain = |level: u8| -> anyhow::Result<f64> {
        let mut cmd = std::process::Command::new(&me);
        cmd.args(&args);
        if level >= 1 {
            cmd.env("BENCH_NO_METRICS", "1").env("BENCH_NO_STATS", "1");
        }
        if level >= 2 {
            cmd.env("BENCH_NO_HISTORY_INDEXES", "1");
        }
        let out = cmd.output()?;
        anyhow::ensure!(out.status.success(), "w1 failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.split("drain ").nth(1))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no drain figure in {text}"))
    };
    let (mut on, mut off, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        on.push(drain(0)?);
        off.push(drain(1)?);
        if store == StoreKind::Postgres {
            bare.push(drain(2)?);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (m_on, m_off) = (median(&mut on), median(&mut off));
    report::line(
        "overhead",
        format!(
            "W1 {n} {store:?}: metrics+stats on {m_on:.0} fires/s, off {m_off:.0} fires/s (medians of {rounds}); \
             on/off = {:.3}",
            m_on / m_off
        ),
    );
    report::line("overhead", format!("runs on: {on:.0?}"));
    report::line("overhead", format!("runs off: {off:.0?}"));
    if !bare.is_empty() {
        let m_bare = median(&mut bare);
        report::line(
            "overhead",
            format!(
                "W1 {n} {store:?}: also without the history indexes {m_bare:.0} fires/s; on/bare = {:.3}",
                m_on / m_bare
            ),
        );
        report::line("overhead", format!("runs bare: {bare:.0?}"));
    }
    Ok(())
}
