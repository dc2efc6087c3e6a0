//! The maintenance thread: heartbeat and rescue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ClusterConfig;
use crate::background::{Background, StopSignal};
use crate::scheduler::Shared;
use crate::store::{NodeInfo, RescueDead};

/// The running maintenance thread.
pub(crate) struct Maintenance(Background);

impl Maintenance {
    /// Starts heartbeating as `node` (already registered) and rescuing dead nodes' runs.
    pub(crate) fn start(shared: Arc<Shared>, node: NodeInfo, config: ClusterConfig) -> Maintenance {
        Maintenance(Background::spawn("sched-maintenance", move |stop| run(&shared, &node, &config, stop)))
    }

    /// Stops the thread (heartbeats end here: call after the engine stopped).
    pub(crate) fn stop(self) {
        self.0.stop();
    }
}

fn run(shared: &Shared, node: &NodeInfo, config: &ClusterConfig, stop: &StopSignal) {
    let rescue = RescueDead {
        dead_after: config.dead_after(),
        groups: shared.registry.job_types().iter().map(|e| (e.group.clone(), e.options.requests_recovery)).collect(),
    };
    let mut next_beat = Instant::now() + config.heartbeat;
    let mut next_rescue = Instant::now();
    let mut beat_failures: u32 = 0;
    // Since when this node has reached the store without interruption. After an outage every
    // node's heartbeat is stale, so a node judges others only once it has itself been connected
    // for a full dead-after period, in which every live node has heartbeated again.
    let mut connected_since = Some(Instant::now());
    let mut next_cancel = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next_beat {
            next_beat = now + config.heartbeat;
            match shared.store.node_heartbeat(&node.id) {
                Ok(true) => {
                    if beat_failures > 0 {
                        tracing::info!(node = %node.id, after_failures = beat_failures, "heartbeat restored");
                    }
                    beat_failures = 0;
                    connected_since.get_or_insert(now);
                }
                Ok(false) => {
                    tracing::error!(
                        node = %node.id,
                        "the cluster counted this node as dead (its heartbeat lapsed); its runs in progress were \
                         resolved by other nodes and their completions will be ignored; registering again"
                    );
                    if let Err(e) = shared.store.node_register(node) {
                        tracing::error!(error = %e, "registering again failed");
                    }
                }
                Err(e) => {
                    if let Some(m) = shared.metrics.as_deref() {
                        m.heartbeat_failures.inc();
                        m.store_error("heartbeat");
                    }
                    beat_failures += 1;
                    connected_since = None;
                    if beat_failures == 1 || beat_failures.is_power_of_two() {
                        tracing::error!(
                            node = %node.id,
                            error = %e,
                            failures = beat_failures,
                            "heartbeat failed: the job store is unreachable; runs in progress go on and \
                             their outcomes are kept until the store is back"
                        );
                    }
                }
            }
        }
        if now >= next_cancel {
            next_cancel = now + CANCEL_POLL;
            deliver_cancels(shared, &node.id);
        }
        if now >= next_rescue {
            next_rescue = now + config.rescue_every;
            let settled = connected_since.is_some_and(|t| now.duration_since(t) >= config.dead_after());
            if settled {
                rescue_dead(shared, &rescue);
            }
        }
        if stop.wait_until(next_beat.min(next_rescue).min(next_cancel)) {
            return;
        }
    }
}

/// How often this node looks for cancel requests of runs it executes (made through any node).
const CANCEL_POLL: Duration = Duration::from_millis(250);

fn deliver_cancels(shared: &Shared, node: &str) {
    match shared.store.runs_cancel_requested(node) {
        Ok(runs) => {
            if let Some(board) = shared.board.get() {
                for run in runs {
                    if board.cancel(run) {
                        tracing::info!(run_id = %run, "cancellation requested through the API delivered to the run");
                    }
                }
            }
        }
        Err(e) => tracing::debug!(error = %e, "looking for cancel requests failed"),
    }
}

fn rescue_dead(shared: &Shared, rescue: &RescueDead) {
    match shared.store.runs_rescue(rescue) {
        Ok(rescued) => {
            for r in rescued {
                if let Some(m) = shared.metrics.as_deref() {
                    m.recovered(r.rerun);
                }
                tracing::warn!(
                    run_id = %r.run_id,
                    job_id = %r.job_id,
                    dead_node = %r.node,
                    rerun = r.rerun,
                    "resolved a run of a dead node: {}",
                    if r.rerun { "the job runs again" } else { "abandoned" }
                );
            }
        }
        Err(e) => {
            if let Some(m) = shared.metrics.as_deref() {
                m.store_error("rescue");
            }
            tracing::debug!(error = %e, "looking for runs of dead nodes failed")
        }
    }
}
