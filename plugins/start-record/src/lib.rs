//! A plugin's own record of its runs: when the environment variable a plugin names holds a
//! file path, every run appends one line `jobId runId attempt unixMillis` to it. Tests and
//! benchmarks count these lines to prove no job ran twice and none was lost, independently of
//! what the scheduler reports.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use scheduler_plugin_api::JobContext;

/// An append-only record file, opened on first use from an environment variable.
pub struct StartRecord {
    var: &'static str,
    file: OnceLock<Option<File>>,
}

impl StartRecord {
    /// A record kept in the file named by the environment variable `var`, if set.
    pub const fn new(var: &'static str) -> StartRecord {
        StartRecord { var, file: OnceLock::new() }
    }

    /// Appends this run's line (one write, so lines from several processes stay whole).
    pub fn record(&self, ctx: &JobContext<'_>) {
        let file = self.file.get_or_init(|| {
            let path = std::env::var_os(self.var)?;
            OpenOptions::new().create(true).append(true).open(path).ok()
        });
        if let Some(mut f) = file.as_ref() {
            let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
            let line = format!("{} {} {} {}\n", ctx.job_id(), ctx.run_id(), ctx.attempt(), ms);
            let _ = f.write_all(line.as_bytes());
        }
    }
}
