//! The plugin side of the boundary: the export macro and the code it calls.
//!
//! Everything a plugin exports goes through these functions, so every entry point catches
//! panics and turns them into values: a panic never unwinds into the host.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};

use abi_stable::{
    sabi_trait::TD_Opaque,
    sabi_types::RRef,
    std_types::{RBox, RErr, ROk, RResult, RStr, RString},
};
use serde::de::DeserializeOwned;

use crate::abi::{outcome, verdict, HostApi_TO, Plugin, Plugin_TO, RunContext_TO, RunOutcome, VetoOutcome};
use crate::error::success;
use crate::job::{Job, JobContext};
use crate::listener::{Verdict, VetoContext, VetoListener};
use crate::manifest::{JobTypeInfo, ListenerInfo, Manifest};

/// The symbol abi_stable 0.11 looks up in a library (its mangled "root module loader" name);
/// a unit test checks it against abi_stable's own constant.
#[doc(hidden)]
pub const ROOT_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// Exports a plugin: the job types and veto listeners a library registers.
///
/// Each listed type implements `Default` and [`Job`] or [`VetoListener`]. The plugin's name and
/// version are its package's unless given.
///
/// ```ignore
/// scheduler_plugin_api::export_plugin! {
///     jobs: [Vps4BackupJob],
///     listeners: [Vps4BackupTriggerListener],
/// }
/// ```
///
/// A plugin must be built with `panic = "unwind"` (the default): the macro refuses to compile
/// otherwise, because with `panic = "abort"` a panic in a job would take the host down.
#[macro_export]
macro_rules! export_plugin {
    (
        $(name: $name:expr,)?
        $(version: $version:expr,)?
        jobs: [$($job:ty),* $(,)?]
        $(, listeners: [$($listener:ty),* $(,)?])?
        $(,)?
    ) => {
        #[cfg(panic = "abort")]
        compile_error!(
            "scheduler plugins must be built with panic = \"unwind\": with panic = \"abort\" a \
             panicking job would take the whole scheduler down instead of failing its run"
        );

        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
        pub static __scheduler_plugin_header: $crate::__private::abi_stable::library::LibHeader = {
            fn parts() -> $crate::export::PluginParts {
                #[allow(unused_mut)]
                let mut name: &'static str = env!("CARGO_PKG_NAME");
                #[allow(unused_mut)]
                let mut version: &'static str = env!("CARGO_PKG_VERSION");
                $( name = $name; )?
                $( version = $version; )?
                let parts = $crate::export::PluginParts::new(name, version);
                $( let parts = parts.job::<$job>(); )*
                $($( let parts = parts.listener::<$listener>(); )*)?
                parts
            }
            extern "C" fn manifest() -> $crate::__private::abi_stable::std_types::RString {
                $crate::export::manifest_entry(parts)
            }
            extern "C" fn instantiate(
                host: $crate::abi::HostApi_TO<'static, $crate::__private::abi_stable::std_types::RBox<()>>,
            ) -> $crate::__private::abi_stable::std_types::RResult<
                $crate::abi::Plugin_TO<'static, $crate::__private::abi_stable::std_types::RBox<()>>,
                $crate::__private::abi_stable::std_types::RString,
            > {
                $crate::export::instantiate_entry(host, parts)
            }
            fn root() -> $crate::abi::PluginModule_Ref {
                use $crate::__private::abi_stable::prefix_type::PrefixTypeTrait;
                $crate::abi::PluginModule { manifest, instantiate }.leak_into_prefix()
            }
            extern "C" fn erased() -> $crate::__private::abi_stable::library::RootModuleResult {
                $crate::__private::abi_stable::library::__call_root_module_loader(root)
            }
            // SAFETY: `erased` returns the module built by `root`, a `PluginModule_Ref`, which is
            // exactly what the abi_stable `#[export_root_module]` attribute generates.
            unsafe {
                $crate::__private::abi_stable::library::LibHeader::from_constructor::<$crate::abi::PluginModule_Ref>(
                    erased,
                    $crate::__private::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

type JobCtor = fn() -> Box<dyn DynJob>;
type ListenerCtor = fn() -> Box<dyn DynListener>;

/// What the export macro collects: descriptions and constructors, in manifest order.
#[doc(hidden)]
pub struct PluginParts {
    name: &'static str,
    version: &'static str,
    jobs: Vec<(JobTypeInfo, JobCtor)>,
    listeners: Vec<(ListenerInfo, ListenerCtor)>,
}

impl PluginParts {
    pub fn new(name: &'static str, version: &'static str) -> Self {
        Self { name, version, jobs: Vec::new(), listeners: Vec::new() }
    }

    pub fn job<J: Job + Default>(mut self) -> Self {
        let info = JobTypeInfo {
            name: J::name().to_owned(),
            product: J::PRODUCT.to_owned(),
            job_group: J::GROUP.to_owned(),
            options: J::options(),
        };
        self.jobs.push((info, || Box::new(JobBox(J::default()))));
        self
    }

    pub fn listener<L: VetoListener + Default>(mut self) -> Self {
        let info =
            ListenerInfo { name: L::name().to_owned(), product: L::PRODUCT.to_owned(), job_group: L::GROUP.to_owned() };
        self.listeners.push((info, || Box::new(ListenerBox(L::default()))));
        self
    }

    /// The manifest these parts describe.
    pub fn manifest(&self) -> Manifest {
        Manifest {
            name: self.name.to_owned(),
            version: self.version.to_owned(),
            api_version: env!("CARGO_PKG_VERSION").to_owned(),
            rustc: env!("SCHEDULER_PLUGIN_API_RUSTC").to_owned(),
            job_types: self.jobs.iter().map(|(i, _)| i.clone()).collect(),
            listeners: self.listeners.iter().map(|(i, _)| i.clone()).collect(),
        }
    }

    /// Builds the plugin instance that the host calls into.
    pub fn instantiate(&self) -> PluginInstance {
        PluginInstance {
            jobs: self.jobs.iter().map(|(_, ctor)| ctor()).collect(),
            listeners: self.listeners.iter().map(|(_, ctor)| ctor()).collect(),
        }
    }
}

#[doc(hidden)]
pub fn manifest_entry(parts: fn() -> PluginParts) -> RString {
    // A manifest that cannot be built (a panicking `name()` or `options()`) is reported as
    // invalid JSON, which the host refuses with a message naming the file.
    match catch(|| serde_json::to_string(&parts().manifest())) {
        Ok(Ok(json)) => RString::from(json),
        Ok(Err(e)) => RString::from(format!("manifest error: {e}")),
        Err(msg) => RString::from(format!("manifest panicked: {msg}")),
    }
}

#[doc(hidden)]
pub fn instantiate_entry(
    host: HostApi_TO<'static, RBox<()>>,
    parts: fn() -> PluginParts,
) -> RResult<Plugin_TO<'static, RBox<()>>, RString> {
    crate::log::install(host);
    match catch(|| parts().instantiate()) {
        Ok(instance) => ROk(Plugin_TO::from_value(instance, TD_Opaque)),
        Err(msg) => RErr(RString::from(format!("plugin failed to start: {msg}"))),
    }
}

/// The plugin instance behind the host's `Plugin_TO`.
#[doc(hidden)]
pub struct PluginInstance {
    jobs: Vec<Box<dyn DynJob>>,
    listeners: Vec<Box<dyn DynListener>>,
}

impl Plugin for PluginInstance {
    fn validate(&self, job_type: u32, payload_json: RStr<'_>) -> RResult<(), RString> {
        let Some(job) = self.jobs.get(job_type as usize) else {
            return RErr(RString::from(format!("no job type #{job_type} in this plugin")));
        };
        match catch(|| job.validate(payload_json.as_str())) {
            Ok(Ok(())) => ROk(()),
            Ok(Err(msg)) => RErr(RString::from(msg)),
            Err(panic) => RErr(RString::from(format!("the job type's validation panicked: {panic}"))),
        }
    }

    fn run<'a>(&self, job_type: u32, ctx: RunContext_TO<'a, RRef<'a, ()>>) -> RunOutcome {
        let Some(job) = self.jobs.get(job_type as usize) else {
            return failure(outcome::PERMANENT, format!("no job type #{job_type} in this plugin"));
        };
        let ctx = JobContext::new(ctx);
        match catch(|| job.run(&ctx)) {
            Ok(outcome) => outcome,
            Err(panic) => failure(outcome::PANICKED, panic),
        }
    }

    fn veto<'a>(&self, listener: u32, ctx: RunContext_TO<'a, RRef<'a, ()>>) -> VetoOutcome {
        let Some(l) = self.listeners.get(listener as usize) else {
            return VetoOutcome {
                code: verdict::FAILED,
                reason: RString::from(format!("no listener #{listener} in this plugin")),
            };
        };
        let ctx = VetoContext::new(ctx);
        match catch(|| l.veto(&ctx)) {
            Ok(Verdict::Allow) => VetoOutcome { code: verdict::ALLOW, reason: RString::new() },
            Ok(Verdict::Veto(reason)) => VetoOutcome { code: verdict::VETO, reason: RString::from(reason) },
            Err(panic) => {
                VetoOutcome { code: verdict::FAILED, reason: RString::from(format!("listener panicked: {panic}")) }
            }
        }
    }
}

fn failure(code: u32, message: String) -> RunOutcome {
    RunOutcome {
        code,
        message: RString::from(message),
        output_json: abi_stable::std_types::RNone,
        retry_after_ms: abi_stable::std_types::RNone,
    }
}

/// A job type with its request type erased, so a plugin can hold several.
trait DynJob: Send + Sync {
    fn validate(&self, payload: &str) -> Result<(), String>;
    fn run(&self, ctx: &JobContext<'_>) -> RunOutcome;
}

struct JobBox<J>(J);

impl<J: Job> DynJob for JobBox<J> {
    fn validate(&self, payload: &str) -> Result<(), String> {
        let request: J::Request = parse_request(payload)?;
        self.0.check(&request)
    }

    fn run(&self, ctx: &JobContext<'_>) -> RunOutcome {
        let request: J::Request = match parse_request(ctx.payload_json()) {
            Ok(r) => r,
            Err(msg) => return failure(outcome::INVALID_REQUEST, msg),
        };
        match self.0.execute(request, ctx) {
            Ok(output) => success(output.json),
            Err(e) => e.into_outcome(),
        }
    }
}

trait DynListener: Send + Sync {
    fn veto(&self, ctx: &VetoContext<'_>) -> Verdict;
}

struct ListenerBox<L>(L);

impl<L: VetoListener> DynListener for ListenerBox<L> {
    fn veto(&self, ctx: &VetoContext<'_>) -> Verdict {
        self.0.veto(ctx)
    }
}

/// Reads a payload as the job's request type; the error names the offending field.
pub(crate) fn parse_request<T: DeserializeOwned>(payload: &str) -> Result<T, String> {
    let de = &mut serde_json::Deserializer::from_str(payload);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde_json appends "at line 1 column N": noise for a one-line API body.
        let msg = strip_position(&inner.to_string());
        if path == "." || path.is_empty() {
            msg
        } else {
            format!("{path}: {msg}")
        }
    })
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

thread_local! {
    /// The message and location of the last panic on this thread, set by the panic hook.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`, turning a panic into its message (with location when the hook saw it).
fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    LAST_PANIC.with(|p| p.borrow_mut().take());
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| payload_message(payload.as_ref()))
    })
}

pub(crate) fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Installed once per library: records the panic for [`catch`] instead of printing to stderr.
pub(crate) fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        let msg = payload_message(info.payload());
        let full = match info.location() {
            Some(l) => format!("{msg} (at {}:{})", l.file(), l.line()),
            None => msg,
        };
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(full));
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_symbol_matches_abi_stable() {
        assert_eq!(ROOT_SYMBOL, abi_stable::library::ROOT_MODULE_LOADER_NAME);
        assert_eq!(ROOT_SYMBOL, abi_stable_shared::mangled_root_module_loader_name());
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        vm_id: u32,
        inner: Option<Inner>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        depth: u8,
    }

    #[test]
    fn request_errors_name_the_field() {
        let e = parse_request::<Req>(r#"{"vmId":"x"}"#).unwrap_err();
        assert!(e.starts_with("vmId: invalid type: string \"x\""), "{e}");
        let e = parse_request::<Req>(r#"{}"#).unwrap_err();
        assert_eq!(e, "missing field `vmId`");
        let e = parse_request::<Req>(r#"{"vmId":1,"inner":{"depth":300}}"#).unwrap_err();
        assert!(e.starts_with("inner.depth: invalid value"), "{e}");
        let e = parse_request::<Req>(r#"{"vmId":1,"other":1}"#).unwrap_err();
        assert!(e.contains("unknown field `other`"), "{e}");
    }

    #[test]
    fn panics_become_messages() {
        install_panic_hook();
        let msg = catch(|| panic!("boom {}", 7)).unwrap_err();
        assert!(msg.starts_with("boom 7 (at "), "{msg}");
        assert!(msg.contains("export.rs:"), "{msg}");
        assert_eq!(catch(|| 5).unwrap(), 5);
        let _ = panic::take_hook();
    }
}
