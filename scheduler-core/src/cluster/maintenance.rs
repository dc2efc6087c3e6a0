//! The maintenance thread: heartbeat and rescue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ClusterConfig;
use crate::background::{Background, StopSignal};
use crate::scheduler::Shared;
use crate::store::{NodeInfo, Rescue, RescueDead};

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
    let mut node = node.clone();
    let base_id = node.id.clone();
    let mut rejoins: u32 = 0;
    let mut rescue = RescueDead {
        judge: node.id.clone(),
        dead_after: config.dead_after(),
        gap: config.heartbeat,
        groups: shared.registry.job_types().iter().map(|e| (e.group.clone(), e.options.requests_recovery)).collect(),
    };
    // Twice per period: a live node's heartbeats are never further apart than `gap` (one
    // period) unless something stopped it, which is what lets a judge trust its own view.
    let beat_every = config.heartbeat / 2;
    let retry_after = (config.heartbeat / 4).min(Duration::from_millis(250));
    let mut next_beat = Instant::now() + beat_every;
    let mut next_rescue = Instant::now();
    let mut beat_failures: u32 = 0;
    let mut registered = true;
    let mut next_cancel = Instant::now();
    loop {
        if Instant::now() >= next_beat {
            let result = if registered {
                shared.store.node_heartbeat(&node.id, rescue.gap)
            } else {
                shared.store.node_register(&node).map(|()| true)
            };
            // The next beat counts from the end of this call, which may have waited for the
            // store: beats never bunch up after an outage.
            next_beat = Instant::now() + beat_every;
            match result {
                Ok(true) => {
                    if beat_failures > 0 {
                        tracing::info!(node = %node.id, after_failures = beat_failures, "heartbeat restored");
                    }
                    if !registered {
                        tracing::info!(node = %node.id, "rejoined the cluster under a fresh identity");
                    }
                    beat_failures = 0;
                    registered = true;
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
                    // Runs begun under the old identity are the cluster's business now: stop
                    // them (their outcomes would be ignored) before new work is claimed.
                    if let Some(board) = shared.board.get() {
                        board.cancel_all();
                    }
                    node.id = fresh.clone();
                    rescue.judge = fresh.clone();
                    shared.set_node(fresh);
                    registered = false;
                    next_beat = Instant::now();
                }
                Err(e) => {
                    if let Some(m) = shared.metrics.as_deref() {
                        m.heartbeat_failures.inc();
                        m.store_error("heartbeat");
                    }
                    beat_failures += 1;
                    next_beat = Instant::now() + retry_after;
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
        let now = Instant::now();
        if now >= next_cancel {
            next_cancel = now + CANCEL_POLL;
            deliver_cancels(shared, &node.id);
        }
        if now >= next_rescue {
            next_rescue = now + config.rescue_every;
            // The store decides whether this node may judge (connected long enough, on its
            // clock); nothing to check here that an outage could make stale.
            if registered {
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
            // Work given back or to run again is due now: claim it here without waiting for
            // the poll.
            if rescued.iter().any(|r| r.result != Rescue::Abandoned) {
                shared.wake.due_at(shared.clock.now());
            }
            for r in rescued {
                if let Some(m) = shared.metrics.as_deref() {
                    m.recovered(r.result);
                }
                tracing::warn!(
                    run_id = %r.run_id,
                    job_id = %r.job_id,
                    dead_node = %r.node,
                    result = r.result.as_str(),
                    "resolved a run of a dead node: {}",
                    match r.result {
                        Rescue::HandedBack => "it had not started; its fire is due again",
                        Rescue::Rerun => "abandoned; the job runs again",
                        Rescue::Abandoned => "abandoned",
                    }
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
