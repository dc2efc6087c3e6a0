//! Does nothing, as fast as possible: the plugin the benchmarks fire.
//!
//! Product `bench`, group `noop`; any payload is accepted. When the environment variable
//! `NOOP_RECORD_FILE` names a file, every run appends one line `jobId runId attempt unixMillis`
//! to it: the plugin's own record of starts, which cluster tests and benchmarks count to prove
//! that no job ran twice and none was lost.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use scheduler_plugin_api::prelude::*;

/// Accepts any request and does nothing with it.
#[derive(Default)]
pub struct NoopJob;

impl Job for NoopJob {
    const PRODUCT: &'static str = "bench";
    const GROUP: &'static str = "noop";
    type Request = serde::de::IgnoredAny;

    fn options() -> JobOptions {
        JobOptions {
            requests_recovery: std::env::var_os("NOOP_REQUESTS_RECOVERY").is_some(),
            ..JobOptions::default()
        }
    }

    fn execute(&self, _request: Self::Request, ctx: &JobContext<'_>) -> JobResult {
        record(ctx);
        Ok(JobOutput::none())
    }
}

fn record(ctx: &JobContext<'_>) {
    static FILE: OnceLock<Option<File>> = OnceLock::new();
    let file = FILE.get_or_init(|| {
        let path = std::env::var_os("NOOP_RECORD_FILE")?;
        OpenOptions::new().create(true).append(true).open(path).ok()
    });
    if let Some(mut f) = file.as_ref() {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        // One write per line: O_APPEND keeps lines from several processes whole.
        let line = format!(
            "{} {} {} {}\n",
            ctx.job_id(),
            ctx.run_id(),
            ctx.attempt(),
            ms
        );
        let _ = f.write_all(line.as_bytes());
    }
}

export_plugin! {
    jobs: [NoopJob],
}
