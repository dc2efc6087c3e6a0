//! The plugin's self-description, sent to the host as JSON.
//!
//! Growing it is not an ABI change: the host ignores fields it does not know and fills fields a
//! plugin does not send with their defaults. Every field added later must have a default.

use serde::{Deserialize, Serialize};

/// Everything the host needs to know about a plugin before it instantiates it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The plugin's name (its package name by default).
    pub name: String,
    /// The plugin's own version (its package version by default).
    pub version: String,
    /// The `scheduler-plugin-api` crate version the plugin was built against (diagnostic).
    #[serde(default)]
    pub api_version: String,
    /// The compiler that built the plugin (diagnostic: a different one is not an error).
    #[serde(default)]
    pub rustc: String,
    /// Job types, addressed by index in calls to the plugin.
    #[serde(default)]
    pub job_types: Vec<JobTypeInfo>,
    /// Veto listeners, addressed by index in calls to the plugin.
    #[serde(default)]
    pub listeners: Vec<ListenerInfo>,
}

/// One job type: the work done for jobs created under its product and group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobTypeInfo {
    /// Display name, e.g. `Vps4BackupJob`.
    pub name: String,
    /// The product it serves, e.g. `vps4`.
    pub product: String,
    /// The job group within the product, e.g. `backups`.
    pub job_group: String,
    /// Behaviour the host applies to jobs of this type.
    #[serde(default)]
    pub options: JobOptions,
}

/// Per-job-type behaviour. Every field has a default, so plugins set only what they need.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct JobOptions {
    /// Re-run an execution that was interrupted because its node died (Quartz's
    /// `requestsRecovery`). When false, such runs are recorded as `abandoned`.
    pub requests_recovery: bool,
    /// Several runs of one job may overlap (only honoured where a job's overlap policy asks).
    pub allow_concurrent: bool,
    /// Default number of attempts per fire (1 = no retries); a job may override it.
    pub max_attempts: Option<u32>,
    /// Default first retry delay in milliseconds.
    pub retry_base_ms: Option<u64>,
    /// How long a run may take before the host asks it to stop, in milliseconds.
    pub timeout_ms: Option<u64>,
}

/// One veto listener, asked before each run of jobs in its product and group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListenerInfo {
    /// Display name, e.g. `Vps4BackupTriggerListener`.
    pub name: String,
    /// The product whose runs it is asked about.
    pub product: String,
    /// The job group whose runs it is asked about.
    pub job_group: String,
}

impl Manifest {
    /// Parses a manifest as the host receives it.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}
