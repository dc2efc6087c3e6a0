//! The heartbeat thread: this node's heartbeat, twice per period, on a thread (and, for
//! PostgreSQL, a connection) of its own, so nothing else this node does can delay it; and
//! rejoining under a fresh identity when the cluster counted this node as dead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ClusterConfig;
use crate::background::{Background, StopSignal};
use crate::engine::runtime::Runtime;
use crate::store::NodeInfo;

/// The running heartbeat thread.
pub(crate) struct Heartbeat(Background);

impl Heartbeat {
    /// Starts heartbeating as `node` (already registered).
    pub(crate) fn start(rt: Arc<Runtime>, node: NodeInfo, config: ClusterConfig) -> Heartbeat {
        Heartbeat(Background::spawn("sched-heartbeat", move |stop| run(&rt, node, &config, stop)))
    }

    /// Stops the thread (the last thing a stopping node does before recording its stop).
    pub(crate) fn stop(self) {
        self.0.stop();
    }
}

fn run(rt: &Runtime, mut node: NodeInfo, config: &ClusterConfig, stop: &StopSignal) {
    let base_id = node.id.clone();
    // Twice per period: a live node's heartbeats are never further apart than one period (the
    // gap the store tolerates before it restarts the node's connected time) unless something
    // stopped it, which is what lets a judge trust its own view (see `RescueDead`).
    let beat_every = config.heartbeat / 2;
    let retry_after = (config.heartbeat / 4).min(Duration::from_millis(250));
    let mut failures: u32 = 0;
    let mut rejoins: u32 = 0;
    // A fresh identity waiting to be registered (after the cluster counted this node dead).
    let mut joining = false;
    let mut next_beat = Instant::now() + beat_every;
    loop {
        if stop.wait_until(next_beat) {
            return;
        }
        let result = if joining {
            rt.store.node_register(&node).map(|()| true)
        } else {
            rt.store.node_heartbeat(&node.id, config.heartbeat)
        };
        // The next beat counts from the end of this call, which may have waited for the store:
        // beats never bunch up after an outage.
        next_beat = Instant::now() + beat_every;
        match result {
            Ok(true) => {
                if failures > 0 {
                    tracing::info!(node = %node.id, after_failures = failures, "heartbeat restored");
                }
                failures = 0;
                if joining {
                    // Only now may this node claim and start again, under the new identity.
                    rt.set_node(node.id.clone());
                    joining = false;
                    tracing::info!(node = %node.id, "rejoined the cluster under a fresh identity");
                }
            }
            Ok(false) => {
                rejoins += 1;
                let fresh: Arc<str> = Arc::from(format!("{base_id}#{}", rejoins + 1));
                tracing::error!(
                    node = %node.id,
                    rejoin_as = %fresh,
                    "the cluster counted this node as dead (its heartbeat lapsed): its claimed runs were given \
                     back and its executing runs resolved by other nodes, whose completions will be ignored; \
                     asking those runs to stop and rejoining under a fresh identity"
                );
                // Runs begun under the old identity are the cluster's business now: stop them
                // (their outcomes would be ignored). The old identity can claim and start
                // nothing more (the store refuses a node it counts as stopped).
                if let Some(board) = rt.board.get() {
                    board.cancel_all();
                }
                node.id = fresh;
                joining = true;
                next_beat = Instant::now();
            }
            Err(e) => {
                if let Some(m) = rt.metrics.as_deref() {
                    m.heartbeat_failures.inc();
                }
                failures += 1;
                next_beat = Instant::now() + retry_after;
                if failures == 1 || failures.is_power_of_two() {
                    tracing::error!(
                        node = %node.id,
                        error = %e,
                        failures,
                        "heartbeat failed: the job store is unreachable; runs in progress go on and \
                         their outcomes are kept until the store is back"
                    );
                }
            }
        }
    }
}
