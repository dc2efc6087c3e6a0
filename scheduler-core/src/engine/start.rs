//! Recording that a run begins, before any plugin code sees it.
//!
//! A claimed run is only `claimed` in the store: if its node dies before a worker takes it, the
//! cluster gives it back (the fire is due again, no attempt spent). The worker that takes it
//! first records the start, and calls the job only once the store has it, so a node's death
//! leaves every run either given back (never seen by the job) or begun (the job may have run,
//! and the abandoned/recovery rule applies). The record also fences a node the cluster declared
//! dead: its claims were given back, so its workers find them `Lost` and never begin. (The
//! run's own record, `running` with its start, is bookkeeping the recorder writes afterwards;
//! see `Store::runs_started`.)
//!
//! For a store that does I/O the starts of concurrent workers are written together: the first
//! worker to arrive writes every pending start in one call while the others wait for its
//! answer (no extra thread, and one round trip per batch instead of per run). This write is
//! the price of exactness: a run is never called before the store knows it began.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::clock::Ts;
use crate::engine::runtime::Runtime;
use crate::model::RunId;
use crate::store::{Begun, Claimed, RunStart};

/// What a worker does with a run it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Begin it (started at `at`).
    Go {
        /// The recorded start.
        at: Ts,
    },
    /// The claim is gone (the node was declared dead and the run given back): drop it.
    Lost,
    /// The node is stopping and the start could not be recorded: give the run back.
    GiveBack,
}

/// Batches the start records of concurrent workers.
#[derive(Default)]
pub(crate) struct StartGate {
    state: Mutex<GateState>,
    answered: Condvar,
}

#[derive(Default)]
struct GateState {
    pending: Vec<RunStart>,
    writing: bool,
    answers: HashMap<RunId, Start>,
}

impl StartGate {
    /// Records that this worker begins `run`; returns once the store has it (or it cannot).
    /// A node that is stopping gives the run back instead.
    pub(crate) fn start(&self, rt: &Runtime, run: &Claimed) -> Start {
        if rt.is_stopping() {
            return Start::GiveBack;
        }
        let me = RunStart { token: run.token, run_id: run.run_id, node: run.node.clone() };
        if !rt.store.blocking() {
            return write(rt, &[me]).pop().unwrap_or(Start::Lost);
        }
        let mut st = self.state.lock();
        st.pending.push(me);
        loop {
            if let Some(answer) = st.answers.remove(&run.run_id) {
                return answer;
            }
            if st.writing {
                self.answered.wait(&mut st);
                continue;
            }
            st.writing = true;
            let batch = std::mem::take(&mut st.pending);
            let answers = parking_lot::MutexGuard::unlocked(&mut st, || write(rt, &batch));
            st.writing = false;
            st.answers.extend(batch.iter().map(|r| r.run_id).zip(answers));
            self.answered.notify_all();
        }
    }
}

/// Writes one batch of starts, retrying while the store is unreachable (the runs wait: they
/// are late, not lost) unless the node is stopping. One answer per run, in order. Every try
/// names the same instant, so a retry after a lost answer finds the runs begun by the try
/// that did commit (the store recognises them by it).
fn write(rt: &Runtime, batch: &[RunStart]) -> Vec<Start> {
    let mut failures: u32 = 0;
    let at = rt.clock.now();
    loop {
        match rt.store.runs_start(batch, at) {
            Ok(begun) => {
                if failures > 0 {
                    tracing::info!(after_failures = failures, "recording run starts works again");
                }
                return begun
                    .into_iter()
                    .map(|b| match b {
                        Begun::Go => Start::Go { at },
                        Begun::Lost => Start::Lost,
                    })
                    .collect();
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_power_of_two() {
                    tracing::error!(
                        error = %e,
                        runs = batch.len(),
                        failures,
                        "recording run starts failed; the runs wait until the store is back"
                    );
                }
                if rt.is_stopping() {
                    return vec![Start::GiveBack; batch.len()];
                }
                std::thread::sleep(Duration::from_millis((25u64 << failures.min(6)).min(1_000)));
            }
        }
    }
}
