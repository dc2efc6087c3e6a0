//! Cooperative cancellation: a flag a run can poll or wait on. One flag per worker, reset for
//! each run, so signalling a run allocates nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::model::RunId;
pub use crate::plugin::context::CancelFlag;

/// Each worker's cancellation flag and the run it is executing, so a cancel request for a run
/// reaches the worker running it. A request for a run no worker holds yet (it waits in the
/// queue) is parked and handed over when a worker takes the run.
pub struct CancelBoard {
    slots: Vec<(Mutex<Option<RunId>>, Arc<CancelFlag>)>,
    /// Requests for runs not yet taken by a worker, oldest first (at most [`PARKED_MAX`]).
    parked: Mutex<std::collections::VecDeque<RunId>>,
    /// How many are parked, so that taking a run costs no shared lock while none is.
    parked_len: AtomicUsize,
}

/// The most parked requests kept (a request for a run that never reaches a worker here, e.g.
/// one given back, is dropped eventually).
const PARKED_MAX: usize = 4096;

impl CancelBoard {
    /// A board for `workers` workers.
    pub fn new(workers: usize) -> CancelBoard {
        CancelBoard {
            slots: (0..workers).map(|_| (Mutex::new(None), Arc::new(CancelFlag::default()))).collect(),
            parked: Mutex::new(std::collections::VecDeque::new()),
            parked_len: AtomicUsize::new(0),
        }
    }

    /// Worker `i`'s flag.
    pub fn flag(&self, i: usize) -> &CancelFlag {
        &self.slots[i].1
    }

    /// Worker `i` takes `run` (its flag is set at once if a request for it was parked).
    pub fn begin(&self, i: usize, run: RunId) {
        let (current, flag) = &self.slots[i];
        flag.reset();
        *current.lock() = Some(run);
        // A request parked before the line above is found here; one parked after it finds
        // this worker when `cancel` looks again (see there).
        if self.parked_len.load(Ordering::SeqCst) > 0 {
            let mut parked = self.parked.lock();
            if let Some(at) = parked.iter().position(|r| *r == run) {
                parked.remove(at);
                self.parked_len.store(parked.len(), Ordering::SeqCst);
                flag.set();
            }
        }
    }

    /// Worker `i` is done with its run.
    pub fn end(&self, i: usize) {
        *self.slots[i].0.lock() = None;
    }

    /// Asks the worker running `run` to stop it; when no worker has it yet, parks the request
    /// for the worker that takes it. True when delivered now.
    pub fn cancel(&self, run: RunId) -> bool {
        if self.deliver(run) {
            return true;
        }
        let mut parked = self.parked.lock();
        if parked.len() >= PARKED_MAX {
            parked.pop_front();
        }
        parked.push_back(run);
        self.parked_len.store(parked.len(), Ordering::SeqCst);
        // A worker may have taken the run since the first look, and seen nothing parked then.
        if self.deliver(run) {
            parked.retain(|r| *r != run);
            self.parked_len.store(parked.len(), Ordering::SeqCst);
            return true;
        }
        false
    }

    /// Sets the flag of the worker that has `run`, if one does.
    fn deliver(&self, run: RunId) -> bool {
        for (current, flag) in &self.slots {
            if *current.lock() == Some(run) {
                flag.set();
                return true;
            }
        }
        false
    }

    /// Asks every running run to stop (shutdown deadline).
    pub fn cancel_all(&self) {
        for (current, flag) in &self.slots {
            if current.lock().is_some() {
                flag.set();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_wait_returns_early_when_the_flag_is_set() {
        let flag = Arc::new(CancelFlag::default());
        let f2 = flag.clone();
        let t = std::thread::spawn(move || f2.wait(Duration::from_secs(60)));
        flag.set();
        assert!(t.join().unwrap());
        flag.reset();
        assert!(!flag.wait(Duration::from_millis(1)));
    }

    #[test]
    fn a_request_for_a_run_no_worker_has_yet_reaches_the_worker_that_takes_it() {
        let board = CancelBoard::new(2);
        let (waiting, other) = (RunId::new(), RunId::new());
        assert!(!board.cancel(waiting), "parked");
        board.begin(0, other);
        assert!(!board.flag(0).is_set());
        board.begin(1, waiting);
        assert!(board.flag(1).is_set(), "handed over as the worker takes it");
        board.end(1);
        board.begin(1, RunId::new());
        assert!(!board.flag(1).is_set(), "once only");
        assert!(board.cancel(other), "delivered at once to the worker that has it");
        assert!(board.flag(0).is_set());
    }
}
