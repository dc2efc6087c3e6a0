//! What the loaded plugins registered: one job type per product and group, and the group's
//! veto listeners. Fixed for the life of the process (libraries are never unloaded).

use std::path::PathBuf;
use std::sync::Arc;

use abi_stable::std_types::RBox;
use hashbrown::{Equivalent, HashMap};
use scheduler_plugin_api::abi::Plugin_TO;
use scheduler_plugin_api::manifest::JobOptions;

use crate::model::GroupKey;

/// One loaded plugin library.
pub struct LoadedPlugin {
    /// The plugin's name.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// The `scheduler-plugin-api` version it was built against.
    pub api_version: String,
    /// The compiler that built it.
    pub rustc: String,
    /// The file it was loaded from.
    pub file: PathBuf,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    pub(crate) instance: Plugin_TO<'static, RBox<()>>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("file", &self.file)
            .finish()
    }
}

/// A registered job type.
#[derive(Debug, Clone)]
pub struct JobTypeEntry {
    /// Its product and group.
    pub group: GroupKey,
    /// Its display name.
    pub name: String,
    pub options: JobOptions,
    /// The plugin that registered it.
    pub plugin: Arc<LoadedPlugin>,
    pub(crate) index: u32,
    /// The group's veto listeners, asked in this order.
    pub listeners: Vec<ListenerEntry>,
}

/// A registered veto listener.
#[derive(Debug, Clone)]
pub struct ListenerEntry {
    /// Its display name.
    pub name: String,
    /// The plugin that registered it.
    pub plugin: Arc<LoadedPlugin>,
    pub(crate) index: u32,
}

/// Everything the loaded plugins registered.
#[derive(Debug, Default)]
pub struct Registry {
    plugins: Vec<Arc<LoadedPlugin>>,
    groups: HashMap<GroupKey, Arc<JobTypeEntry>>,
    /// Listeners registered for groups that no plugin has a job type for (yet).
    orphan_listeners: Vec<(GroupKey, ListenerEntry)>,
}

impl Equivalent<GroupKey> for (&str, &str) {
    fn equivalent(&self, key: &GroupKey) -> bool {
        self.0 == key.product() && self.1 == key.job_group()
    }
}

impl Registry {
    /// The job type of a product and group.
    pub fn lookup(&self, product: &str, job_group: &str) -> Option<&Arc<JobTypeEntry>> {
        self.groups.get(&(product, job_group))
    }

    /// The job type of a group key.
    pub fn get(&self, key: &GroupKey) -> Option<&Arc<JobTypeEntry>> {
        self.groups.get(key)
    }

    /// All registered job types, ordered by product and group.
    pub fn job_types(&self) -> Vec<Arc<JobTypeEntry>> {
        let mut v: Vec<_> = self.groups.values().cloned().collect();
        v.sort_by(|a, b| a.group.cmp(&b.group));
        v
    }

    /// All loaded plugins, in load order.
    pub fn plugins(&self) -> &[Arc<LoadedPlugin>] {
        &self.plugins
    }

    /// The plugin that already registered a job type for `key`, if any.
    pub(crate) fn owner_of(&self, key: &GroupKey) -> Option<&Arc<LoadedPlugin>> {
        self.groups.get(key).map(|e| &e.plugin)
    }

    /// A loaded plugin with this name, if any.
    pub(crate) fn plugin_named(&self, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.plugins.iter().find(|p| p.name == name)
    }

    pub(crate) fn add_plugin(&mut self, plugin: Arc<LoadedPlugin>) {
        self.plugins.push(plugin);
    }

    pub(crate) fn add_job_type(&mut self, mut entry: JobTypeEntry) {
        let (mine, rest): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.orphan_listeners).into_iter().partition(|(g, _)| *g == entry.group);
        self.orphan_listeners = rest;
        entry.listeners.extend(mine.into_iter().map(|(_, l)| l));
        self.groups.insert(entry.group.clone(), Arc::new(entry));
    }

    pub(crate) fn add_listener(&mut self, group: GroupKey, listener: ListenerEntry) {
        match self.groups.get_mut(&group) {
            Some(entry) => Arc::make_mut(entry).listeners.push(listener),
            None => self.orphan_listeners.push((group, listener)),
        }
    }

    /// Listeners for groups no plugin has a job type for.
    pub fn orphan_listeners(&self) -> impl Iterator<Item = (&GroupKey, &ListenerEntry)> {
        self.orphan_listeners.iter().map(|(g, l)| (g, l))
    }
}
