//! Figures: percentiles, memory, printing.

use std::path::PathBuf;

/// Latency summary in milliseconds.
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// p50/p99/max of microsecond samples, in milliseconds.
pub fn percentiles(mut micros: Vec<i64>) -> Percentiles {
    micros.sort_unstable();
    let at = |q: f64| {
        if micros.is_empty() {
            return 0.0;
        }
        let i = ((micros.len() as f64 - 1.0) * q).round() as usize;
        micros[i] as f64 / 1000.0
    };
    Percentiles { p50: at(0.50), p99: at(0.99), max: at(1.0) }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms", self.p50, self.p99, self.max)
    }
}

/// A field of /proc/self/status in KiB (VmRSS, VmHWM).
pub fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time this process's threads have used so far, in nanoseconds (the sum of each thread's
/// `/proc/self/task/*/schedstat`): unlike wall time, it does not grow when another tenant of the
/// machine takes the cores, so it compares two builds more steadily.
pub fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The directory holding this binary (target/release), where the plugins and server are.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.parent().expect("target dir").to_path_buf()
}

/// A temporary plugin directory holding the built `noop` plugin.
pub fn noop_plugin_dir() -> anyhow::Result<tempfile::TempDir> {
    let src = target_dir().join("libnoop.so");
    anyhow::ensure!(src.is_file(), "{} missing: run `cargo build --release --workspace`", src.display());
    let dir = tempfile::tempdir()?;
    std::fs::copy(&src, dir.path().join("libnoop.so"))?;
    Ok(dir)
}

/// Prints one result line, prefixed with the workload.
pub fn line(workload: &str, text: impl std::fmt::Display) {
    println!("{workload:<12} {text}");
}
