//! The engine: a bounded pool of worker threads that claim due runs, execute them and record
//! how they ended; for stores that do I/O, a recorder thread writes outcomes in batches (a store
//! that only takes a lock is written by the worker directly: no extra hop).
//!
//! Claiming follows the leader/followers pattern. At most one idle worker is the *leader*: it
//! claims due runs, sized to the idle workers plus a small queue, keeps one for itself and hands
//! the rest to the queue, which the other workers drain. When nothing is due, the leader sleeps
//! until the next due instant or until it is woken (an earlier job, shutdown) while the other
//! idle workers wait for work. There is no dispatcher thread: under load, the worker that just
//! finished a run claims the next batch itself, so a run is never handed between threads that
//! must wake each other.
//!
//! ```text
//!   store ──claim (≤ idle workers + queue)──▶ leader ──queue──▶ followers
//!     ▲                                        │ executes one run itself
//!     └────────── outcomes (direct or via the recorder) ◀───────┘
//! ```
//!
//! Runs never execute on the HTTP threads. Claimed-but-unfinished runs never exceed the pool's
//! capacity (workers plus queue), so a claim never takes work this node cannot start soon.

pub mod cancel;
pub(crate) mod create;
mod execution;
pub(crate) mod runtime;
pub(crate) mod start;
pub mod wake;

pub use create::Created;
pub use runtime::{Counters, EngineStats};

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::{Condvar, Mutex};

use crate::clock::Ts;
use crate::metrics::Metrics;
use crate::model::RunId;
use crate::store::{ClaimDue, Claimed, RunFinish};
use cancel::CancelBoard;
use runtime::Runtime;
use start::{Start, StartGate};

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
    /// Most completions written in one store call (stores that do I/O).
    pub finish_batch: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self { workers: 16, queue: 16, poll_interval: None, finish_batch: 512 }
    }
}

/// The running engine's threads.
pub struct Engine {
    workers: Vec<JoinHandle<()>>,
    recorder: Option<JoinHandle<()>>,
    pool: Arc<Pool>,
}

/// What the workers share.
struct Pool {
    state: Mutex<PoolState>,
    /// Signalled when runs are queued or the pool stops.
    work: Condvar,
    queue_cap: usize,
    poll: Option<Duration>,
    /// Runs being executed right now.
    executing: AtomicUsize,
    board: Arc<CancelBoard>,
    /// Records each run's start before its worker begins it.
    starts: StartGate,
}

struct PoolState {
    queue: VecDeque<Claimed>,
    /// Workers waiting for queued runs (not counting the leader).
    idle: usize,
    has_leader: bool,
    stopping: bool,
    /// Consecutive failed claims, for backoff and logging.
    failures: u32,
}

impl Engine {
    /// Runs executing now.
    pub(crate) fn executing(&self) -> usize {
        self.pool.executing.load(Ordering::Relaxed)
    }

    /// Starts the engine's threads.
    pub(crate) fn start(rt: Arc<Runtime>, config: &EngineConfig) -> Engine {
        let workers = config.workers.max(1);
        let (done_tx, recorder) = if rt.store.blocking() {
            let (tx, rx) = unbounded::<Record>();
            let (rt, batch) = (rt.clone(), config.finish_batch.max(1));
            let handle = std::thread::Builder::new()
                .name("sched-recorder".into())
                .spawn(move || recorder_loop(&rt, &rx, batch))
                .expect("spawn recorder thread");
            (Some(tx), Some(handle))
        } else {
            (None, None)
        };
        let pool = Arc::new(Pool {
            state: Mutex::new(PoolState {
                queue: VecDeque::with_capacity(workers + config.queue),
                idle: 0,
                has_leader: false,
                stopping: false,
                failures: 0,
            }),
            work: Condvar::new(),
            queue_cap: config.queue,
            poll: config.poll_interval,
            executing: AtomicUsize::new(0),
            board: Arc::new(CancelBoard::new(workers)),
            starts: StartGate::default(),
        });
        let _ = rt.board.set(pool.board.clone());
        let handles = (0..workers)
            .map(|i| {
                let (rt, pool, done) = (rt.clone(), pool.clone(), done_tx.clone());
                std::thread::Builder::new()
                    .name(format!("sched-worker-{i}"))
                    .spawn(move || worker_loop(&rt, &pool, done.as_ref(), i))
                    .expect("spawn worker thread")
            })
            .collect();
        Engine { workers: handles, recorder, pool }
    }

    /// Stops claiming, gives back queued runs, lets running ones finish until `grace` is over,
    /// then asks them to stop and waits up to `cancel_grace` more. Returns how many runs were
    /// still executing when it gave up waiting.
    pub(crate) fn shutdown(mut self, rt: &Runtime, grace: Duration, cancel_grace: Duration) -> usize {
        let queued: Vec<Claimed> = {
            let mut st = self.pool.state.lock();
            st.stopping = true;
            st.queue.drain(..).collect()
        };
        self.pool.work.notify_all();
        rt.wake.notify();
        if !queued.is_empty() {
            // Runs claimed but not started go back to the store for this or another node.
            release(rt, &queued);
        }
        let finished = |deadline: Instant| {
            while self.workers.iter().any(|w| !w.is_finished()) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        finished(Instant::now() + grace);
        let running = self.pool.executing.load(Ordering::SeqCst);
        if running > 0 {
            tracing::warn!(running, "shutdown grace period over: asking running jobs to stop");
            self.pool.board.cancel_all();
            finished(Instant::now() + cancel_grace);
        }
        let left = self.pool.executing.load(Ordering::SeqCst);
        if left == 0 {
            for w in self.workers.drain(..) {
                let _ = w.join();
            }
            // The workers held the only senders: the recorder drains what is left and ends.
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

fn release(rt: &Runtime, runs: &[Claimed]) {
    if let Err(e) = rt.store.runs_release(runs) {
        tracing::error!(error = %e, count = runs.len(), "could not give back unstarted runs");
    }
}

/// What a worker does next.
enum Next {
    Run(Claimed),
    Lead { idle: usize },
    Stop,
}

/// What workers hand the recorder: a run's record to write, in the order they happened.
enum Record {
    /// A run began (its record reads `claimed` until this or its finish is written).
    Started(RunId, Ts),
    /// A run ended.
    Finished(RunFinish),
}

fn worker_loop(rt: &Runtime, pool: &Pool, done: Option<&Sender<Record>>, index: usize) {
    let cancel = pool.board.flag(index);
    let mut metrics = rt.metrics.as_deref().map(Metrics::local);
    loop {
        let next = {
            let mut st = pool.state.lock();
            loop {
                if st.stopping {
                    break Next::Stop;
                }
                if let Some(run) = st.queue.pop_front() {
                    break Next::Run(run);
                }
                // About to lead (and perhaps sleep) or wait: publish what this worker recorded.
                if let Some(m) = metrics.as_mut().filter(|m| m.dirty()) {
                    m.flush();
                }
                if !st.has_leader {
                    st.has_leader = true;
                    break Next::Lead { idle: st.idle };
                }
                st.idle += 1;
                pool.work.wait(&mut st);
                st.idle -= 1;
            }
        };
        let run = match next {
            Next::Stop => return,
            Next::Run(run) => run,
            Next::Lead { idle } => match lead(rt, pool, idle) {
                Some(run) => run,
                None => continue,
            },
        };
        // Counted and on the board from here: a shutdown waits for it, and a cancel that
        // arrives while its start is being recorded reaches it.
        pool.executing.fetch_add(1, Ordering::SeqCst);
        pool.board.begin(index, run.run_id);
        let begun = pool.starts.start(rt, &run);
        let started_at = match begun {
            Start::Go { at } => at,
            Start::Lost | Start::GiveBack => {
                if begun == Start::Lost {
                    tracing::warn!(
                        run_id = %run.run_id,
                        job_id = %run.job_id,
                        "the cluster gave this claimed run back before it began (this node was counted as dead); \
                         not begun here"
                    );
                } else {
                    release(rt, std::slice::from_ref(&run));
                }
                pool.board.end(index);
                pool.executing.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
        };
        if let Some(recorder) = done {
            let _ = recorder.send(Record::Started(run.run_id, started_at));
        }
        let finish = if cancel.is_set() {
            // Asked to stop before it began: by a client while it waited (the board parked the
            // request), or by this node's shutdown deadline (then the job runs again elsewhere).
            execution::cancelled_before_start(rt, &run, started_at, rt.is_stopping())
        } else {
            execution::execute(rt, &run, started_at, cancel)
        };
        pool.board.end(index);
        if let Some(m) = metrics.as_mut() {
            m.run(&run, &finish);
        }
        match done {
            Some(recorder) => {
                let _ = recorder.send(Record::Finished(finish));
            }
            None => record(rt, std::slice::from_ref(&finish)),
        }
        pool.executing.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Claims as leader: returns a run for this worker, having queued the rest for the others,
/// or `None` after a sleep (nothing due) or when stopping. Always gives up the leadership.
fn lead(rt: &Runtime, pool: &Pool, idle: usize) -> Option<Claimed> {
    let limit = 1 + idle + pool.queue_cap;
    let now = rt.clock.now();
    let claim = rt.store.runs_claim_due(&ClaimDue {
        now,
        limit,
        node: rt.node(),
        groups: rt.groups.clone(),
        max_running: rt.max_running.clone(),
    });
    let mut st = pool.state.lock();
    let sleep_until = match claim {
        Ok(claim) => {
            if let (Some(m), false) = (rt.metrics.as_deref(), claim.events.is_empty()) {
                m.fire_events(&claim.events);
            }
            if st.failures > 0 {
                tracing::info!(after_failures = st.failures, "job store reachable again");
                st.failures = 0;
            }
            let mut runs = claim.runs.into_iter();
            if let Some(first) = runs.next() {
                rt.counters.claimed.fetch_add(1 + runs.len() as u64, Ordering::Relaxed);
                st.has_leader = false;
                if st.stopping {
                    let back: Vec<Claimed> = std::iter::once(first).chain(runs).collect();
                    drop(st);
                    release(rt, &back);
                    return None;
                }
                let queued = runs.len();
                st.queue.extend(runs);
                let wake = queued.min(st.idle);
                drop(st);
                // Wake one follower per queued run; if runs remain beyond the sleepers, a new
                // leader is needed too, and one of the woken followers becomes it.
                for _ in 0..wake.max(usize::from(queued > 0 || idle > 0)) {
                    pool.work.notify_one();
                }
                return Some(first);
            }
            let poll_deadline = pool.poll.map(|p| now.plus_micros(i64::try_from(p.as_micros()).unwrap_or(i64::MAX)));
            // The store judged "due" by its own clock: wait as long as it says, on ours.
            let next_due = claim.next_due.map(|d| now.plus_micros(d.micros_since(claim.store_now).max(0)));
            match (next_due, poll_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        Err(e) => {
            st.failures += 1;
            let failures = st.failures;
            if failures == 1 || failures.is_power_of_two() {
                tracing::error!(error = %e, failures, "claiming due runs failed; retrying");
            }
            let backoff_ms = (50u64 << failures.min(6)).min(2_000);
            Some(now.plus_micros(i64::try_from(backoff_ms * 1000).unwrap_or(i64::MAX)))
        }
    };
    let stopping = st.stopping;
    drop(st);
    if !stopping {
        rt.wake.sleep(rt.clock.as_ref(), sleep_until);
    }
    pool.state.lock().has_leader = false;
    None
}

/// How long the recorder waits for more completions when it has fewer than [`GATHER_MIN`]:
/// each write (and its commit) then carries many.
const GATHER: Duration = Duration::from_millis(2);
const GATHER_MIN: usize = 64;

/// How long a begun run's record may trail its start. Most runs end sooner, and their finish
/// then writes the whole record at once: the start's own write is skipped.
const START_RECORD_DELAY: Duration = Duration::from_millis(100);

/// Batches the workers' records into few store calls (stores that do I/O). A begun run's record
/// waits up to [`START_RECORD_DELAY`] for its finish, which carries it.
fn recorder_loop(rt: &Runtime, records: &Receiver<Record>, max_batch: usize) {
    // Begun runs whose record is not written yet, oldest first.
    let mut pending: VecDeque<(RunId, Ts, Instant)> = VecDeque::new();
    let mut finished: Vec<RunFinish> = Vec::with_capacity(max_batch);
    loop {
        let first = match pending.front() {
            Some(&(_, _, since)) => {
                match records.recv_timeout((since + START_RECORD_DELAY).saturating_duration_since(Instant::now())) {
                    Ok(r) => Some(r),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                }
            }
            None => match records.recv() {
                Ok(r) => Some(r),
                Err(_) => break,
            },
        };
        let mut next = first;
        let gather_until = Instant::now() + GATHER;
        while let Some(r) = next {
            match r {
                Record::Started(id, at) => pending.push_back((id, at, Instant::now())),
                Record::Finished(f) => finished.push(f),
            }
            next = if finished.len() >= max_batch {
                None
            } else if let Ok(r) = records.try_recv() {
                Some(r)
            } else if !finished.is_empty() && finished.len() < GATHER_MIN {
                // A small batch waits a moment for more: one write for many.
                records.recv_timeout(gather_until.saturating_duration_since(Instant::now())).ok()
            } else {
                None
            };
        }
        if !finished.is_empty() {
            let done: std::collections::HashSet<RunId> = finished.iter().map(|f| f.run_id).collect();
            pending.retain(|(id, ..)| !done.contains(id));
            record(rt, &finished);
            finished.clear();
        }
        let now = Instant::now();
        let due = pending.iter().take_while(|(.., since)| *since + START_RECORD_DELAY <= now).count();
        if due > 0 {
            let starts: Vec<(RunId, Ts)> = pending.drain(..due).map(|(id, at, _)| (id, at)).collect();
            record_starts(rt, &starts);
        }
    }
    // Stopping: runs left executing get their records now.
    let starts: Vec<(RunId, Ts)> = pending.into_iter().map(|(id, at, _)| (id, at)).collect();
    record_starts(rt, &starts);
}

/// Writes begun runs' records; bookkeeping only (the start itself is recorded), so a failure
/// is logged and the records are left to their finishes.
fn record_starts(rt: &Runtime, started: &[(RunId, Ts)]) {
    if started.is_empty() {
        return;
    }
    if let Err(e) = rt.store.runs_started(started) {
        tracing::warn!(error = %e, runs = started.len(), "writing begun runs' records failed; their finishes will");
    }
}

/// Writes completions to the store, retrying until it accepts them: an outcome is never
/// dropped because the store was briefly unreachable.
fn record(rt: &Runtime, batch: &[RunFinish]) {
    let mut attempt: u32 = 0;
    loop {
        match rt.store.runs_finish(batch) {
            Ok(next) => {
                if let Some(t) = next {
                    rt.wake.due_at(t);
                }
                // A group with a limit of runs in progress has room again: its waiting jobs
                // may start (the store counted them out of the claims until now).
                if batch.iter().any(|f| f.limited) {
                    rt.wake.due_at(rt.clock.now());
                }
                rt.counters.recorded.fetch_add(batch.len() as u64, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                attempt += 1;
                if attempt == 1 || attempt.is_power_of_two() {
                    tracing::error!(error = %e, runs = batch.len(), attempt, "recording finished runs failed; retrying");
                }
                std::thread::sleep(Duration::from_millis((50u64 << attempt.min(6)).min(2_000)));
            }
        }
    }
}
