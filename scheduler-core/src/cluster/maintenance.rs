//! The maintenance thread: cancel requests for this node's runs, and the rescue of dead
//! nodes' runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ClusterConfig;
use crate::background::{Background, StopSignal};
use crate::engine::runtime::Runtime;
use crate::store::{Rescue, RescueDead};

/// The running maintenance thread.
pub(crate) struct Maintenance(Background);

impl Maintenance {
    /// Starts delivering cancel requests and rescuing dead nodes' runs.
    pub(crate) fn start(rt: Arc<Runtime>, config: ClusterConfig) -> Maintenance {
        Maintenance(Background::spawn("sched-maintenance", move |stop| run(&rt, &config, stop)))
    }

    /// Stops the thread.
    pub(crate) fn stop(self) {
        self.0.stop();
    }
}

fn run(rt: &Runtime, config: &ClusterConfig, stop: &StopSignal) {
    let groups: Vec<_> =
        rt.registry.job_types().iter().map(|e| (e.group.clone(), e.options.requests_recovery)).collect();
    let mut next_rescue = Instant::now();
    let mut next_cancel = Instant::now();
    loop {
        let now = Instant::now();
        // The identity changes when the node rejoins (see `heartbeat.rs`).
        let node = rt.node();
        if now >= next_cancel {
            next_cancel = now + CANCEL_POLL;
            deliver_cancels(rt, &node);
        }
        if now >= next_rescue {
            next_rescue = now + config.rescue_every;
            // The store decides whether this node may judge (connected long enough, on its
            // clock, in the same statement): nothing to check here that an outage could make
            // stale.
            let rescue = RescueDead {
                judge: node,
                dead_after: config.dead_after(),
                gap: config.heartbeat,
                groups: groups.clone(),
            };
            rescue_dead(rt, &rescue);
        }
        if stop.wait_until(next_rescue.min(next_cancel)) {
            return;
        }
    }
}

/// How often this node looks for cancel requests of runs it executes (made through any node).
const CANCEL_POLL: Duration = Duration::from_millis(250);

fn deliver_cancels(rt: &Runtime, node: &str) {
    match rt.store.runs_cancel_requested(node) {
        Ok(runs) => {
            if let Some(board) = rt.board.get() {
                for run in runs {
                    if board.cancel(run) {
                        tracing::info!(run_id = %run, "cancellation requested through the API delivered to the run");
                    } else {
                        tracing::info!(run_id = %run, "cancellation requested for a run waiting for a worker; it ends when taken");
                    }
                }
            }
        }
        Err(e) => tracing::debug!(error = %e, "looking for cancel requests failed"),
    }
}

fn rescue_dead(rt: &Runtime, rescue: &RescueDead) {
    match rt.store.runs_rescue(rescue) {
        Ok(rescued) => {
            // Work given back or to run again is due now: claim it here without waiting for
            // the poll.
            if rescued.iter().any(|r| matches!(r.result, Rescue::HandedBack | Rescue::Rerun)) {
                rt.wake.due_at(rt.clock.now());
            }
            for r in rescued {
                if let Some(m) = rt.metrics.as_deref() {
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
                        Rescue::Cancelled => "it had not started and was asked to stop; cancelled",
                    }
                );
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, "looking for runs of dead nodes failed")
        }
    }
}
