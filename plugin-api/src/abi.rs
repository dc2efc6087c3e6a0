//! The types that cross the library boundary, and nothing else.
//!
//! Versioning rule for everything in this file: the ABI version ([`ABI_VERSION`]) changes only
//! on a breaking change. Within one ABI version, new module fields and new trait methods are
//! appended *after* the `#[sabi(last_prefix_field)]` marker, never inserted or reordered, so a
//! newer host keeps loading plugins built against an older `scheduler-plugin-api`. Data that
//! describes a plugin (its manifest) travels as JSON text so it can grow without touching the ABI.

// abi_stable's derives name the prefix type `PluginModule_Ref` and nest impls in generated modules.
#![allow(non_camel_case_types, non_local_definitions)]

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, ROption, RResult, RStr, RString},
    StableAbi,
};

/// The plugin ABI version: host and plugin must agree on the major number, and the plugin's
/// minor number must be at least the host's (abi_stable's rule). It is deliberately not the
/// crate version: a host built against a newer `scheduler-plugin-api` keeps loading plugins
/// built against an older one as long as this constant is unchanged.
pub const ABI_VERSION: &str = "1.0.0";

/// The root module every plugin library exports (through [`crate::export_plugin!`]).
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModule_Ref)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// The plugin's manifest as JSON ([`crate::manifest::Manifest`]). No side effects.
    pub manifest: extern "C" fn() -> RString,

    /// Builds the plugin instance, handing it the host's services (logging).
    /// Called once per loaded library.
    ///
    /// Fields appended after this one must be read as optional by the host (ABI rule above).
    #[sabi(last_prefix_field)]
    pub instantiate:
        extern "C" fn(host: HostApi_TO<'static, RBox<()>>) -> RResult<Plugin_TO<'static, RBox<()>>, RString>,
}

impl RootModule for PluginModule_Ref {
    declare_root_module_statics! {PluginModule_Ref}
    const BASE_NAME: &'static str = "scheduler_plugin";
    const NAME: &'static str = "scheduler_plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(ABI_VERSION);
}

/// A loaded plugin, implemented on the plugin side by the export macro.
///
/// Job types and listeners are addressed by their index in the manifest's lists.
/// New methods go below the last one, never above (ABI rule above).
#[sabi_trait]
pub trait Plugin: Send + Sync {
    /// Checks a job's request payload (a JSON object) at submit time.
    /// `Err` carries a message for the API client that names the offending field.
    fn validate(&self, job_type: u32, payload_json: RStr<'_>) -> RResult<(), RString>;

    /// Runs one execution of a job. Never unwinds: panics come back as [`outcome::PANICKED`].
    fn run<'a>(&self, job_type: u32, ctx: RunContext_TO<'a, abi_stable::sabi_types::RRef<'a, ()>>) -> RunOutcome;

    /// Asks one veto listener whether this run may go ahead. Never unwinds.
    #[sabi(last_prefix_field)]
    fn veto<'a>(&self, listener: u32, ctx: RunContext_TO<'a, abi_stable::sabi_types::RRef<'a, ()>>) -> VetoOutcome;
}

/// What one run sees of the host, implemented by the host and valid for the duration of a call.
///
/// New methods go below the last one, never above (ABI rule above).
#[sabi_trait]
pub trait RunContext: Sync {
    /// The job's id (a UUID, hyphenated).
    fn job_id(&self) -> RStr<'_>;
    /// This run's id (a UUID, hyphenated).
    fn run_id(&self) -> RStr<'_>;
    /// The trace id stored with the run (32 hex digits, W3C trace-context form).
    fn trace_id(&self) -> RStr<'_>;
    /// 1 for the first attempt of a fire, 2 for its first retry, and so on.
    fn attempt(&self) -> u32;
    /// The instant the run was due, in milliseconds since the Unix epoch (UTC).
    fn scheduled_for_ms(&self) -> i64;
    /// The job's request payload: a JSON object (the POST body without the service's own keys).
    fn payload_json(&self) -> RStr<'_>;
    /// True once the host asked this run to stop (shutdown deadline, cancel request).
    fn is_cancelled(&self) -> bool;
    /// Blocks for at most `timeout_ms` or until the run is cancelled; returns true if cancelled.
    fn wait_cancelled(&self, timeout_ms: u64) -> bool;
    /// Schedules a new job of the same product and group at `when_ms` with this payload.
    /// Returns the new job's id, or a message saying why it was refused.
    #[sabi(last_prefix_field)]
    fn schedule(&self, when_ms: i64, payload_json: RStr<'_>) -> RResult<RString, RString>;
}

/// The host's services for the plugin as a whole, implemented by the host.
///
/// New methods go below the last one, never above (ABI rule above).
#[sabi_trait]
pub trait HostApi: Send + Sync {
    /// The most verbose level the host records (see [`level`]); records above it are dropped.
    fn max_level(&self) -> u8;
    /// Emits one log record. Called on the thread that produced it, so during a run the host
    /// attaches the record to that run's span.
    #[sabi(last_prefix_field)]
    fn log(&self, level: u8, target: RStr<'_>, message: RStr<'_>);
}

/// Log levels as they cross the boundary (the `log` crate's numbering).
pub mod level {
    /// Nothing is recorded.
    pub const OFF: u8 = 0;
    /// Errors.
    pub const ERROR: u8 = 1;
    /// Warnings.
    pub const WARN: u8 = 2;
    /// Information.
    pub const INFO: u8 = 3;
    /// Debugging detail.
    pub const DEBUG: u8 = 4;
    /// Tracing detail.
    pub const TRACE: u8 = 5;
}

/// The result of one run as it crosses the boundary.
///
/// `code` is one of the [`outcome`] constants; a host treats a code it does not know as a
/// permanent failure, so new codes can be added without changing this layout.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// One of the [`outcome`] constants.
    pub code: u32,
    /// Human-readable: the error for failures, the panic message for panics, empty on success.
    pub message: RString,
    /// Optional JSON output of a successful run.
    pub output_json: ROption<RString>,
    /// For retryable failures: how long the job asks the host to wait before retrying.
    pub retry_after_ms: ROption<u64>,
}

/// Run outcome codes.
pub mod outcome {
    /// The job did its work.
    pub const SUCCEEDED: u32 = 0;
    /// The job failed and may succeed if tried again.
    pub const RETRYABLE: u32 = 1;
    /// The job failed and trying again will not help.
    pub const PERMANENT: u32 = 2;
    /// The job stopped because the host asked it to.
    pub const CANCELLED: u32 = 3;
    /// The job panicked; `message` holds the panic message and location.
    pub const PANICKED: u32 = 4;
    /// The stored request could not be read as the job's request type (never retried).
    pub const INVALID_REQUEST: u32 = 5;
}

/// A veto listener's answer as it crosses the boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct VetoOutcome {
    /// One of the [`verdict`] constants.
    pub code: u32,
    /// Why the run was vetoed, or what went wrong in the listener.
    pub reason: RString,
}

/// Veto verdict codes. A host treats an unknown code as [`verdict::FAILED`].
pub mod verdict {
    /// The run may go ahead.
    pub const ALLOW: u32 = 0;
    /// The run must not go ahead.
    pub const VETO: u32 = 1;
    /// The listener failed or panicked; the host records it and lets the run go ahead.
    pub const FAILED: u32 = 2;
}
