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

mod http;
mod inproc;
mod report;
mod server;

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
    },
    /// W2 in process: N jobs due uniformly over S seconds.
    W2 {
        #[arg(long, default_value_t = 10_000)]
        n: usize,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value_t = 2)]
        workers: usize,
    },
    /// W3 in process: N pending jobs due in an hour.
    W3 {
        #[arg(long, default_value_t = 1_000_000)]
        n: usize,
    },
    /// W4: creates per second over HTTP against the real server.
    W4 {
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value_t = 32)]
        conns: usize,
    },
    /// W1 through the real server: jobs created over HTTP, starts read back over HTTP.
    W1Server {
        #[arg(long, default_value_t = 100_000)]
        n: usize,
    },
    /// W2 through the real server.
    W2Server {
        #[arg(long, default_value_t = 10_000)]
        n: usize,
        #[arg(long, default_value_t = 10)]
        secs: u64,
    },
    /// Every workload above, each in its own process.
    All,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::W1 { n, workers } => inproc::w1(n, workers),
        Cmd::W2 { n, secs, workers } => inproc::w2(n, secs, workers),
        Cmd::W3 { n } => inproc::w3(n),
        Cmd::W4 { secs, conns } => server::w4(secs, conns),
        Cmd::W1Server { n } => server::w1(n),
        Cmd::W2Server { n, secs } => server::w2(n, secs),
        Cmd::All => {
            let me = std::env::current_exe()?;
            for args in [
                &["w1", "--n", "10000"][..],
                &["w1", "--n", "100000"],
                &["w2"],
                &["w3"],
                &["w4"],
                &["w1-server", "--n", "10000"],
                &["w1-server", "--n", "100000"],
                &["w2-server"],
            ] {
                let status = std::process::Command::new(&me).args(args).status()?;
                anyhow::ensure!(status.success(), "bench {} failed", args.join(" "));
            }
            Ok(())
        }
    }
}
