//! Veto trigger listeners: asked just before each run whether it may go ahead.

use abi_stable::sabi_types::RRef;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use crate::abi::RunContext_TO;
use crate::job::short_type_name;

/// A listener's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The run goes ahead.
    Allow,
    /// The run is recorded as `vetoed` with this reason and does not run.
    Veto(String),
}

/// A veto trigger listener for one product and job group.
///
/// A vetoed fire counts as used (a one-time job ends `vetoed`). A listener that panics is
/// recorded and treated as [`Verdict::Allow`]: a listener can never leave a job blocked.
pub trait VetoListener: Send + Sync + 'static {
    /// The product whose runs this listener is asked about.
    const PRODUCT: &'static str;
    /// The job group whose runs this listener is asked about.
    const GROUP: &'static str;

    /// The name shown to operators; the type's own name by default.
    fn name() -> &'static str {
        short_type_name::<Self>()
    }

    /// Decides whether the run described by `ctx` may go ahead.
    fn veto(&self, ctx: &VetoContext<'_>) -> Verdict;
}

/// The run a listener is asked about.
pub struct VetoContext<'a> {
    raw: RunContext_TO<'a, RRef<'a, ()>>,
}

impl<'a> VetoContext<'a> {
    pub(crate) fn new(raw: RunContext_TO<'a, RRef<'a, ()>>) -> Self {
        Self { raw }
    }

    /// The job's id.
    pub fn job_id(&self) -> &str {
        self.raw.job_id().as_str()
    }

    /// The id the run will have.
    pub fn run_id(&self) -> &str {
        self.raw.run_id().as_str()
    }

    /// The run's trace id.
    pub fn trace_id(&self) -> &str {
        self.raw.trace_id().as_str()
    }

    /// The attempt the run would be.
    pub fn attempt(&self) -> u32 {
        self.raw.attempt()
    }

    /// The instant the run was due.
    pub fn scheduled_for(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.raw.scheduled_for_ms()).unwrap_or_default()
    }

    /// The job's raw request payload (a JSON object).
    pub fn payload_json(&self) -> &str {
        self.raw.payload_json().as_str()
    }

    /// The job's request payload read as `T`.
    pub fn request<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.payload_json())
    }
}
