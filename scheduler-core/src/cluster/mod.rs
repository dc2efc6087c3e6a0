//! Living with other nodes on one store: this node's heartbeat (its own thread), and
//! delivering cancel requests and resolving the runs of nodes that died (the maintenance
//! thread). Both stop after the engine, heartbeats last, so a stopping node's runs are never
//! declared dead while they still execute.

mod heartbeat;
mod maintenance;

use std::time::Duration;

pub(crate) use heartbeat::Heartbeat;
pub(crate) use maintenance::Maintenance;

/// Liveness settings. Defaults: a heartbeat period of 2 s (written twice per period); a node is
/// dead after 2 periods (4 s without a heartbeat); runs of dead nodes are looked for every
/// second. A killed node's runs are therefore resolved at most 2 heartbeat periods + 1 s after
/// its last heartbeat.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The heartbeat period: a node writes its heartbeat twice per period, and a heartbeat
    /// more than one period after the previous one restarts its connected time.
    pub heartbeat: Duration,
    /// A node whose heartbeat is older than this many periods is dead.
    pub dead_after_periods: u32,
    /// How often this node looks for runs of dead nodes.
    pub rescue_every: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self { heartbeat: Duration::from_secs(2), dead_after_periods: 2, rescue_every: Duration::from_secs(1) }
    }
}

impl ClusterConfig {
    /// How long a silent node is still counted as live.
    pub fn dead_after(&self) -> Duration {
        self.heartbeat * self.dead_after_periods.max(1)
    }
}
