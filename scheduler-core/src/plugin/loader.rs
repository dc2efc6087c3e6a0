//! Loads every plugin library in a directory, refusing the bad ones with a reason that names
//! the file.
//!
//! Each file is its own library, loaded once: the loader uses abi_stable's
//! `lib_header_from_path(..).init_root_module()` per file, never `RootModule::load_from*`,
//! which caches one module per interface type and would hand back the first plugin for every
//! file. Libraries are never unloaded (abi_stable leaks them on purpose), so a refused file
//! stays mapped but is never called again.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::sabi_trait::TD_Opaque;
use scheduler_plugin_api::abi::{HostApi_TO, PluginModule_Ref, ABI_VERSION};
use scheduler_plugin_api::manifest::Manifest;
use sha2::{Digest, Sha256};

use super::host::PluginLog;
use super::registry::{JobTypeEntry, ListenerEntry, LoadedPlugin, Registry};
use crate::model::GroupKey;

/// A file the loader would not load, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub file: PathBuf,
    /// Why, in words an operator can act on.
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plugin {} refused: {}", self.file.display(), self.reason)
    }
}

/// What loading a directory produced.
#[derive(Debug)]
pub struct LoadReport {
    /// What the accepted plugins registered.
    pub registry: Registry,
    /// The files that were refused.
    pub refused: Vec<Refusal>,
}

/// The plugin directory could not be used at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// It could not be read.
    #[error("cannot read the plugin directory {}", dir.display())]
    Unreadable {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another user could change what is in it (see `trust`).
    #[error("plugin directory refused: {0}")]
    Untrusted(String),
}

/// Loads every `.so` file (the platform's library suffix) in `dir`, in name order.
pub fn load_plugins(dir: &Path) -> Result<LoadReport, LoadError> {
    if let Some(why) = super::trust::untrusted(dir, "the plugin directory") {
        return Err(LoadError::Untrusted(why));
    }
    let err = |source| LoadError::Unreadable { dir: dir.to_owned(), source };
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(err)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.') && n.ends_with(std::env::consts::DLL_SUFFIX))
        })
        .collect();
    files.sort();

    let mut registry = Registry::default();
    let mut refused = Vec::new();
    let mut seen = HashSet::new();
    for file in files {
        let canonical = fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
        if !seen.insert(canonical.clone()) {
            tracing::info!(file = %file.display(), same_as = %canonical.display(), "plugin file already loaded under another name; skipped");
            continue;
        }
        if !canonical.is_file() {
            continue;
        }
        match load_one(&file, &mut registry) {
            Ok(plugin) => tracing::info!(
                file = %file.display(),
                plugin = %plugin.name,
                version = %plugin.version,
                sha256 = %plugin.sha256,
                api = %plugin.api_version,
                "plugin loaded"
            ),
            Err(reason) => {
                let refusal = Refusal { file, reason };
                tracing::error!("{refusal}");
                refused.push(refusal);
            }
        }
    }
    for (group, listener) in registry.orphan_listeners() {
        tracing::warn!(
            plugin = %listener.plugin.name,
            listener = %listener.name,
            %group,
            "veto listener registered for a product/group no plugin has a job type for; it will not be asked"
        );
    }
    Ok(LoadReport { registry, refused })
}

fn load_one(file: &Path, registry: &mut Registry) -> Result<Arc<LoadedPlugin>, String> {
    // The file a link points to, and the directory holding it, must be as safe as the file.
    let target = fs::canonicalize(file).map_err(|e| format!("cannot resolve the file: {e}"))?;
    for (path, what) in [(target.as_path(), "the file"), (target.parent().unwrap_or(Path::new("/")), "its directory")] {
        if let Some(why) = super::trust::untrusted(path, what) {
            return Err(why);
        }
    }
    let sha256 = file_sha256(file).map_err(|e| format!("cannot read the file: {e}"))?;
    let header = lib_header_from_path(file).map_err(describe)?;
    let module = header.init_root_module::<PluginModule_Ref>().map_err(describe)?;

    let manifest_json = (module.manifest())();
    let manifest = Manifest::from_json(manifest_json.as_str())
        .map_err(|e| format!("its manifest is not valid ({e}): {}", clip(manifest_json.as_str())))?;
    let groups = check_manifest(&manifest, registry)?;

    let host = HostApi_TO::from_value(PluginLog { plugin: manifest.name.clone() }, TD_Opaque);
    let instance = (module.instantiate())(host).into_result().map_err(|e| format!("it failed to start: {e}"))?;

    let plugin = Arc::new(LoadedPlugin {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        api_version: manifest.api_version.clone(),
        rustc: manifest.rustc.clone(),
        file: file.to_owned(),
        sha256,
        instance,
    });
    registry.add_plugin(plugin.clone());
    for (index, (jt, group)) in manifest.job_types.iter().zip(groups.job_types).enumerate() {
        registry.add_job_type(JobTypeEntry {
            group,
            name: jt.name.clone(),
            options: jt.options.clone(),
            plugin: plugin.clone(),
            index: index as u32,
            listeners: Vec::new(),
        });
    }
    for (index, (l, group)) in manifest.listeners.iter().zip(groups.listeners).enumerate() {
        registry
            .add_listener(group, ListenerEntry { name: l.name.clone(), plugin: plugin.clone(), index: index as u32 });
    }
    Ok(plugin)
}

struct ManifestGroups {
    job_types: Vec<GroupKey>,
    listeners: Vec<GroupKey>,
}

/// Checks names and that nothing collides with what is already registered.
fn check_manifest(m: &Manifest, registry: &Registry) -> Result<ManifestGroups, String> {
    if m.name.trim().is_empty() {
        return Err("its manifest has an empty plugin name".into());
    }
    if let Some(other) = registry.plugin_named(&m.name) {
        return Err(format!("a plugin named `{}` is already loaded from {}", m.name, other.file.display()));
    }
    if m.job_types.is_empty() && m.listeners.is_empty() {
        return Err("it registers no job type and no listener".into());
    }
    let mut job_types = Vec::with_capacity(m.job_types.len());
    for jt in &m.job_types {
        let group = GroupKey::new(&jt.product, &jt.job_group)
            .map_err(|e| format!("job type `{}` has an invalid name: {e}", jt.name))?;
        if let Some(owner) = registry.owner_of(&group) {
            return Err(format!(
                "it registers a job type for {group}, which plugin `{}` from {} already registers",
                owner.name,
                owner.file.display()
            ));
        }
        if job_types.contains(&group) {
            return Err(format!("it registers two job types for {group}"));
        }
        job_types.push(group);
    }
    let mut listeners = Vec::with_capacity(m.listeners.len());
    for l in &m.listeners {
        let group = GroupKey::new(&l.product, &l.job_group)
            .map_err(|e| format!("listener `{}` has an invalid name: {e}", l.name))?;
        listeners.push(group);
    }
    Ok(ManifestGroups { job_types, listeners })
}

/// Operator-facing text for a library that could not be loaded.
fn describe(e: LibraryError) -> String {
    match e {
        LibraryError::OpenError { err, .. } => format!("it cannot be opened as a shared library: {err}"),
        LibraryError::GetSymbolError { .. } => "it is not a scheduler plugin: it exports no plugin root module \
             (build it with scheduler-plugin-api's export_plugin! macro)"
            .into(),
        LibraryError::InvalidAbiHeader(_) => {
            "it was built with an abi_stable version this host cannot load (rebuild it against this scheduler-plugin-api)".into()
        }
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => format!(
            "it was built for plugin ABI {actual_version}, but this host loads plugin ABI {expected_version}-compatible plugins"
        ),
        LibraryError::AbiInstability(diff) => {
            tracing::debug!(%diff, "plugin interface layout mismatch");
            format!(
                "its plugin interface does not match this host's (plugin ABI {ABI_VERSION}): it was built against an \
                 incompatible scheduler-plugin-api; rebuild it (run with RUST_LOG=debug for the layout difference)"
            )
        }
        LibraryError::RootModule { err, .. } => format!("its root module failed to initialise: {err}"),
        other => format!("it could not be loaded: {other}"),
    }
}

fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}
