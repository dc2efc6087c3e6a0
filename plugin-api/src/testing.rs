//! Running a job or listener in a plain unit test, without a host.
//!
//! ```
//! use scheduler_plugin_api::{prelude::*, testing::TestRun};
//!
//! #[derive(Default)]
//! struct Hello;
//! impl Job for Hello {
//!     const PRODUCT: &'static str = "demo";
//!     const GROUP: &'static str = "hello";
//!     type Request = serde_json::Value;
//!     fn execute(&self, request: Self::Request, _ctx: &JobContext<'_>) -> JobResult {
//!         Ok(JobOutput::json(&request))
//!     }
//! }
//!
//! let run = TestRun::new(r#"{"name":"x"}"#);
//! assert!(run.validate(&Hello).is_ok());
//! assert!(run.execute(&Hello).is_ok());
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RErr, ROk, RResult, RStr, RString},
};
use chrono::{DateTime, Utc};

use crate::abi::{RunContext, RunContext_TO};
use crate::export::parse_request;
use crate::job::{Job, JobContext, JobResult};
use crate::listener::{Verdict, VetoContext, VetoListener};

/// A run as a unit test sets it up: ids, attempt, due instant, payload, cancellation.
pub struct TestRun {
    job_id: String,
    run_id: String,
    trace_id: String,
    attempt: u32,
    scheduled_for_ms: i64,
    payload: String,
    cancelled: AtomicBool,
    scheduled: Mutex<Vec<(i64, String)>>,
}

impl TestRun {
    /// A first attempt due now, with this payload (a JSON object).
    pub fn new(payload_json: &str) -> Self {
        Self {
            job_id: "00000000-0000-4000-8000-000000000001".to_owned(),
            run_id: "00000000-0000-4000-8000-000000000002".to_owned(),
            trace_id: "0123456789abcdef0123456789abcdef".to_owned(),
            attempt: 1,
            scheduled_for_ms: Utc::now().timestamp_millis(),
            payload: payload_json.to_owned(),
            cancelled: AtomicBool::new(false),
            scheduled: Mutex::new(Vec::new()),
        }
    }

    /// Sets the attempt number.
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// Marks the run as cancelled before it starts.
    pub fn cancelled(self) -> Self {
        self.cancelled.store(true, Ordering::SeqCst);
        self
    }

    /// Checks the payload as the host does at submit time.
    pub fn validate<J: Job>(&self, job: &J) -> Result<(), String> {
        let request: J::Request = parse_request(&self.payload)?;
        job.check(&request)
    }

    /// Runs the job once.
    pub fn execute<J: Job>(&self, job: &J) -> JobResult {
        let request: J::Request = parse_request(&self.payload).map_err(crate::error::JobError::permanent)?;
        let ctx = JobContext::new(RunContext_TO::from_ptr(self, TD_Opaque));
        job.execute(request, &ctx)
    }

    /// Asks the listener about this run.
    pub fn veto<L: VetoListener>(&self, listener: &L) -> Verdict {
        let ctx = VetoContext::new(RunContext_TO::from_ptr(self, TD_Opaque));
        listener.veto(&ctx)
    }

    /// The jobs the run scheduled through its context: due instant and payload.
    pub fn scheduled(&self) -> Vec<(DateTime<Utc>, String)> {
        self.scheduled
            .lock()
            .map(|v| {
                v.iter().map(|(ms, p)| (DateTime::from_timestamp_millis(*ms).unwrap_or_default(), p.clone())).collect()
            })
            .unwrap_or_default()
    }
}

impl RunContext for TestRun {
    fn job_id(&self) -> RStr<'_> {
        RStr::from_str(&self.job_id)
    }
    fn run_id(&self) -> RStr<'_> {
        RStr::from_str(&self.run_id)
    }
    fn trace_id(&self) -> RStr<'_> {
        RStr::from_str(&self.trace_id)
    }
    fn attempt(&self) -> u32 {
        self.attempt
    }
    fn scheduled_for_ms(&self) -> i64 {
        self.scheduled_for_ms
    }
    fn payload_json(&self) -> RStr<'_> {
        RStr::from_str(&self.payload)
    }
    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
    fn wait_cancelled(&self, _timeout_ms: u64) -> bool {
        // A unit test does not wait: the run is either cancelled already or the wait is over.
        self.is_cancelled()
    }
    fn schedule(&self, when_ms: i64, payload_json: RStr<'_>) -> RResult<RString, RString> {
        match self.scheduled.lock() {
            Ok(mut v) => {
                v.push((when_ms, payload_json.as_str().to_owned()));
                ROk(RString::from(format!("00000000-0000-4000-8000-{:012}", v.len())))
            }
            Err(_) => RErr(RString::from("test run state poisoned")),
        }
    }
}
