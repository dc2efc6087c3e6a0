//! The host's services to a plugin as a whole: its log records become `tracing` events.

use abi_stable::std_types::RStr;
use scheduler_plugin_api::abi::{level, HostApi};
use tracing::level_filters::LevelFilter;

/// Receives one plugin's log records. Records arrive on the thread that produced them, so a
/// record written during a run lands inside that run's span.
pub struct PluginLog {
    /// The plugin's name, attached to every record.
    pub plugin: String,
}

impl HostApi for PluginLog {
    fn max_level(&self) -> u8 {
        match LevelFilter::current() {
            LevelFilter::OFF => level::OFF,
            LevelFilter::ERROR => level::ERROR,
            LevelFilter::WARN => level::WARN,
            LevelFilter::INFO => level::INFO,
            LevelFilter::DEBUG => level::DEBUG,
            _ => level::TRACE,
        }
    }

    fn log(&self, lvl: u8, target: RStr<'_>, message: RStr<'_>) {
        let (plugin, target, message) = (self.plugin.as_str(), target.as_str(), message.as_str());
        match lvl {
            level::ERROR => {
                tracing::error!(target: "plugin", plugin, plugin_target = target, "{message}")
            }
            level::WARN => {
                tracing::warn!(target: "plugin", plugin, plugin_target = target, "{message}")
            }
            level::INFO => {
                tracing::info!(target: "plugin", plugin, plugin_target = target, "{message}")
            }
            level::DEBUG => {
                tracing::debug!(target: "plugin", plugin, plugin_target = target, "{message}")
            }
            _ => tracing::trace!(target: "plugin", plugin, plugin_target = target, "{message}"),
        }
    }
}
