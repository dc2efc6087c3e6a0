//! The engine: a dispatcher thread that claims due runs, a bounded pool of worker threads that
//! execute them, and a recorder thread that writes their outcomes in batches.
//!
//! ```text
//!   store ──claim (≤ free slots)──▶ dispatcher ──queue──▶ workers ──outcomes──▶ recorder ──batch──▶ store
//!             ▲                         │  sleeps until the next due instant,
//!             └── API inserts ──wake────┘  or until woken (earlier job, freed slot, shutdown)
//! ```
//!
//! Runs never execute on the HTTP threads. The number of claimed-but-unfinished runs never
//! exceeds the pool's capacity (workers plus a small queue), so a claim never takes work this
//! node cannot start soon.

pub mod cancel;
pub mod wake;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use crate::execution;
use crate::scheduler::Shared;
use crate::store::{ClaimDue, Claimed, RunFinish};
use cancel::CancelFlag;

/// Settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Worker threads: the most runs executing at once on this node.
    pub workers: usize,
    /// Claimed runs waiting for a worker, at most.
    pub queue: usize,
    /// For stores other nodes write to: look at the store at least this often even when
    /// nothing is known to be due.
    pub poll_interval: Option<Duration>,
    /// Most completions written in one store call.
    pub finish_batch: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            workers: 16,
            queue: 16,
            poll_interval: None,
            finish_batch: 512,
        }
    }
}

/// The running engine's threads.
pub struct Engine {
    dispatcher: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    recorder: Option<JoinHandle<()>>,
    state: Arc<EngineState>,
}

/// What the engine's threads share besides the scheduler itself.
pub(crate) struct EngineState {
    capacity: usize,
    in_flight: AtomicUsize,
    want_slots: AtomicBool,
    claiming: AtomicBool,
    cancels: Vec<Arc<CancelFlag>>,
    queue_rx: Receiver<Claimed>,
}

impl Engine {
    /// Starts the engine's threads.
    pub(crate) fn start(shared: Arc<Shared>, config: &EngineConfig) -> Engine {
        let workers = config.workers.max(1);
        let capacity = workers + config.queue;
        let (queue_tx, queue_rx) = bounded::<Claimed>(capacity);
        let (done_tx, done_rx) = unbounded::<RunFinish>();
        let state = Arc::new(EngineState {
            capacity,
            in_flight: AtomicUsize::new(0),
            want_slots: AtomicBool::new(false),
            claiming: AtomicBool::new(true),
            cancels: (0..workers)
                .map(|_| Arc::new(CancelFlag::default()))
                .collect(),
            queue_rx: queue_rx.clone(),
        });

        let worker_handles = (0..workers)
            .map(|i| {
                let (shared, state, rx, tx) = (
                    shared.clone(),
                    state.clone(),
                    queue_rx.clone(),
                    done_tx.clone(),
                );
                let cancel = state.cancels[i].clone();
                std::thread::Builder::new()
                    .name(format!("sched-worker-{i}"))
                    .spawn(move || worker_loop(&shared, &state, &rx, &tx, &cancel))
                    .expect("spawn worker thread")
            })
            .collect();
        drop(done_tx);

        let recorder = {
            let (shared, batch) = (shared.clone(), config.finish_batch.max(1));
            std::thread::Builder::new()
                .name("sched-recorder".into())
                .spawn(move || recorder_loop(&shared, &done_rx, batch))
                .expect("spawn recorder thread")
        };

        let dispatcher = {
            let (shared, state, poll) = (shared, state.clone(), config.poll_interval);
            std::thread::Builder::new()
                .name("sched-dispatcher".into())
                .spawn(move || dispatcher_loop(&shared, &state, queue_tx, poll))
                .expect("spawn dispatcher thread")
        };

        Engine {
            dispatcher: Some(dispatcher),
            workers: worker_handles,
            recorder: Some(recorder),
            state,
        }
    }

    /// Stops claiming, gives back queued runs, lets running ones finish until `grace` is over,
    /// then asks them to stop and waits up to `cancel_grace` more. Returns how many runs were
    /// still executing when it gave up waiting.
    pub(crate) fn shutdown(
        mut self,
        shared: &Shared,
        grace: Duration,
        cancel_grace: Duration,
    ) -> usize {
        self.state.claiming.store(false, Ordering::SeqCst);
        shared.wake.notify();
        if let Some(d) = self.dispatcher.take() {
            let _ = d.join();
        }
        // Runs claimed but not started go back to the store for this or another node.
        let queued: Vec<Claimed> = self.state.queue_rx.try_iter().collect();
        if !queued.is_empty() {
            self.state
                .in_flight
                .fetch_sub(queued.len(), Ordering::SeqCst);
            release(shared, &queued);
        }
        let deadline = Instant::now() + grace;
        while self.state.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let running = self.state.in_flight.load(Ordering::SeqCst);
        if running > 0 {
            tracing::warn!(
                running,
                "shutdown grace period over: asking running jobs to stop"
            );
            for c in &self.state.cancels {
                c.set();
            }
            let deadline = Instant::now() + cancel_grace;
            while self.state.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let left = self.state.in_flight.load(Ordering::SeqCst);
        if left == 0 {
            for w in self.workers.drain(..) {
                let _ = w.join();
            }
            if let Some(r) = self.recorder.take() {
                let _ = r.join();
            }
        } else {
            tracing::error!(
                running = left,
                "jobs ignored cancellation; exiting without them (their runs stay `running` until recovered)"
            );
        }
        left
    }
}

fn release(shared: &Shared, runs: &[Claimed]) {
    if let Err(e) = shared.store.runs_release(runs) {
        tracing::error!(error = %e, count = runs.len(), "could not give back unstarted runs");
    }
}

fn dispatcher_loop(
    shared: &Shared,
    state: &EngineState,
    queue: Sender<Claimed>,
    poll: Option<Duration>,
) {
    let mut failures: u32 = 0;
    while state.claiming.load(Ordering::SeqCst) {
        let free = state
            .capacity
            .saturating_sub(state.in_flight.load(Ordering::SeqCst));
        if free == 0 {
            state.want_slots.store(true, Ordering::SeqCst);
            // Re-check after announcing, so a slot freed in between is not missed.
            if state.capacity > state.in_flight.load(Ordering::SeqCst) {
                state.want_slots.store(false, Ordering::SeqCst);
                continue;
            }
            shared.wake.sleep(shared.clock.now(), None);
            continue;
        }
        let now = shared.clock.now();
        let claim = shared.store.runs_claim_due(&ClaimDue {
            now,
            limit: free,
            node: shared.node.clone(),
        });
        let sleep_until = match claim {
            Ok(claim) => {
                if failures > 0 {
                    tracing::info!(after_failures = failures, "job store reachable again");
                    failures = 0;
                }
                let n = claim.runs.len();
                if n > 0 {
                    state.in_flight.fetch_add(n, Ordering::SeqCst);
                    for run in claim.runs {
                        if let Err(e) = queue.send(run) {
                            // Only when every worker is gone: give the run back.
                            release(shared, std::slice::from_ref(&e.0));
                            state.in_flight.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                }
                if n == free {
                    continue;
                }
                let poll_deadline =
                    poll.map(|p| now.plus_micros(i64::try_from(p.as_micros()).unwrap_or(i64::MAX)));
                match (claim.next_due, poll_deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_power_of_two() {
                    tracing::error!(error = %e, failures, "claiming due runs failed; retrying");
                }
                let backoff_ms = (50u64 << failures.min(6)).min(2_000);
                Some(now.plus_micros(i64::try_from(backoff_ms * 1000).unwrap_or(i64::MAX)))
            }
        };
        shared.wake.sleep(shared.clock.now(), sleep_until);
    }
}

fn worker_loop(
    shared: &Shared,
    state: &EngineState,
    queue: &Receiver<Claimed>,
    done: &Sender<RunFinish>,
    cancel: &CancelFlag,
) {
    // The queue disconnects when the dispatcher exits; runs still in it are handed back.
    while let Ok(run) = queue.recv() {
        if !state.claiming.load(Ordering::SeqCst) {
            // Shutting down: do not start new work; hand it back.
            release(shared, std::slice::from_ref(&run));
            slot_freed(shared, state);
            continue;
        }
        cancel.reset();
        let finish = execution::execute(shared, &run, cancel);
        let _ = done.send(finish);
        slot_freed(shared, state);
    }
}

fn slot_freed(shared: &Shared, state: &EngineState) {
    let before = state.in_flight.fetch_sub(1, Ordering::SeqCst);
    // Wake a dispatcher waiting for slots once a quarter of the capacity is free, so claims
    // come in batches rather than one per finished run.
    let free = state.capacity + 1 - before;
    if state.want_slots.load(Ordering::SeqCst)
        && (free >= state.capacity.div_ceil(4) || before == 1)
    {
        state.want_slots.store(false, Ordering::SeqCst);
        shared.wake.notify();
    }
}

fn recorder_loop(shared: &Shared, done: &Receiver<RunFinish>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    while let Ok(first) = done.recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match done.try_recv() {
                Ok(f) => batch.push(f),
                Err(_) => break,
            }
        }
        let mut attempt: u32 = 0;
        loop {
            match shared.store.runs_finish(&batch) {
                Ok(()) => break,
                Err(e) => {
                    attempt += 1;
                    if attempt == 1 || attempt.is_power_of_two() {
                        tracing::error!(error = %e, runs = batch.len(), attempt, "recording finished runs failed; retrying");
                    }
                    std::thread::sleep(Duration::from_millis((50u64 << attempt.min(6)).min(2_000)));
                }
            }
        }
        batch.clear();
    }
}
