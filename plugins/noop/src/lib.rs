//! Does nothing, as fast as possible: the plugin the benchmarks fire.
//!
//! Product `bench`, group `noop`; any payload is accepted. When the environment variable
//! `NOOP_RECORD_FILE` names a file, every run appends one line `jobId runId attempt unixMillis`
//! to it: the plugin's own record of starts, which cluster tests and benchmarks count to prove
//! that no job ran twice and none was lost.

use scheduler_plugin_api::prelude::*;
use start_record::StartRecord;

static STARTS: StartRecord = StartRecord::new("NOOP_RECORD_FILE");

/// Accepts any request and does nothing with it.
#[derive(Default)]
pub struct NoopJob;

impl Job for NoopJob {
    const PRODUCT: &'static str = "bench";
    const GROUP: &'static str = "noop";
    type Request = serde::de::IgnoredAny;

    fn options() -> JobOptions {
        JobOptions { requests_recovery: std::env::var_os("NOOP_REQUESTS_RECOVERY").is_some(), ..JobOptions::default() }
    }

    fn execute(&self, _request: Self::Request, ctx: &JobContext<'_>) -> JobResult {
        STARTS.record(ctx);
        Ok(JobOutput::none())
    }
}

export_plugin! {
    jobs: [NoopJob],
}
