//! What one run sees of the host, built on the worker's stack for the duration of a call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use abi_stable::std_types::{RErr, ROk, RResult, RStr, RString};
use parking_lot::{Condvar, Mutex};
use scheduler_plugin_api::abi::RunContext;

use crate::model::{JobId, RunId, TraceId};

/// Schedules a follow-up job for a run (`ctx.schedule` in the plugin API).
pub trait FollowUp: Sync {
    /// Creates a job of the running job's product and group; returns its id.
    fn schedule(&self, when_ms: i64, payload_json: &str) -> Result<String, String>;
}

/// The host's implementation of the plugin API's `RunContext`.
pub struct HostRunContext<'a> {
    job_id: [u8; 36],
    run_id: [u8; 36],
    trace_id: [u8; 32],
    attempt: u32,
    scheduled_for_ms: i64,
    payload: &'a str,
    cancel: &'a CancelFlag,
    follow_up: &'a dyn FollowUp,
}

impl<'a> HostRunContext<'a> {
    /// A context for one call into a plugin.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        job_id: JobId,
        run_id: RunId,
        trace_id: TraceId,
        attempt: u32,
        scheduled_for_ms: i64,
        payload: &'a str,
        cancel: &'a CancelFlag,
        follow_up: &'a dyn FollowUp,
    ) -> Self {
        let mut ctx = Self {
            job_id: [0; 36],
            run_id: [0; 36],
            trace_id: [0; 32],
            attempt,
            scheduled_for_ms,
            payload,
            cancel,
            follow_up,
        };
        job_id.0.hyphenated().encode_lower(&mut ctx.job_id);
        run_id.0.hyphenated().encode_lower(&mut ctx.run_id);
        trace_id.encode(&mut ctx.trace_id);
        ctx
    }
}

fn ascii(bytes: &[u8]) -> RStr<'_> {
    // Only ASCII hex digits and hyphens are ever written to these buffers.
    RStr::from_str(std::str::from_utf8(bytes).unwrap_or_default())
}

impl RunContext for HostRunContext<'_> {
    fn job_id(&self) -> RStr<'_> {
        ascii(&self.job_id)
    }
    fn run_id(&self) -> RStr<'_> {
        ascii(&self.run_id)
    }
    fn trace_id(&self) -> RStr<'_> {
        ascii(&self.trace_id)
    }
    fn attempt(&self) -> u32 {
        self.attempt
    }
    fn scheduled_for_ms(&self) -> i64 {
        self.scheduled_for_ms
    }
    fn payload_json(&self) -> RStr<'_> {
        RStr::from_str(self.payload)
    }
    fn is_cancelled(&self) -> bool {
        self.cancel.is_set()
    }
    fn wait_cancelled(&self, timeout_ms: u64) -> bool {
        self.cancel.wait(std::time::Duration::from_millis(timeout_ms))
    }
    fn schedule(&self, when_ms: i64, payload_json: RStr<'_>) -> RResult<RString, RString> {
        match self.follow_up.schedule(when_ms, payload_json.as_str()) {
            Ok(id) => ROk(RString::from(id)),
            Err(e) => RErr(RString::from(e)),
        }
    }
}

/// A cancellation signal for the run a worker is executing.
#[derive(Default)]
pub struct CancelFlag {
    set: AtomicBool,
    lock: Mutex<()>,
    cond: Condvar,
}

impl CancelFlag {
    /// True once the run was asked to stop.
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    /// Asks the run to stop and wakes it if it is waiting.
    pub fn set(&self) {
        self.set.store(true, Ordering::Release);
        let _g = self.lock.lock();
        self.cond.notify_all();
    }

    /// Clears the flag for the next run.
    pub fn reset(&self) {
        self.set.store(false, Ordering::Release);
    }

    /// Waits up to `timeout` for the flag; returns true if it is set.
    pub fn wait(&self, timeout: Duration) -> bool {
        if self.is_set() {
            return true;
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut g = self.lock.lock();
        while !self.is_set() {
            match deadline {
                Some(d) => {
                    if self.cond.wait_until(&mut g, d).timed_out() {
                        return self.is_set();
                    }
                }
                None => self.cond.wait(&mut g),
            }
        }
        true
    }
}
