//! Cooperative cancellation: a flag a run can poll or wait on. One flag per worker, reset for
//! each run, so signalling a run allocates nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::model::RunId;

/// A cancellation signal for the run a worker is executing.
#[derive(Default)]
pub struct CancelFlag {
    set: AtomicBool,
    lock: Mutex<()>,
    cond: Condvar,
}

impl CancelFlag {
    /// True once the run was asked to stop.
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    /// Asks the run to stop and wakes it if it is waiting.
    pub fn set(&self) {
        self.set.store(true, Ordering::Release);
        let _g = self.lock.lock();
        self.cond.notify_all();
    }

    /// Clears the flag for the next run.
    pub fn reset(&self) {
        self.set.store(false, Ordering::Release);
    }

    /// Waits up to `timeout` for the flag; returns true if it is set.
    pub fn wait(&self, timeout: Duration) -> bool {
        if self.is_set() {
            return true;
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut g = self.lock.lock();
        while !self.is_set() {
            match deadline {
                Some(d) => {
                    if self.cond.wait_until(&mut g, d).timed_out() {
                        return self.is_set();
                    }
                }
                None => self.cond.wait(&mut g),
            }
        }
        true
    }
}

/// Each worker's cancellation flag and the run it is executing, so a cancel request for a run
/// reaches the worker running it.
pub struct CancelBoard {
    slots: Vec<(Mutex<Option<RunId>>, Arc<CancelFlag>)>,
}

impl CancelBoard {
    /// A board for `workers` workers.
    pub fn new(workers: usize) -> CancelBoard {
        CancelBoard { slots: (0..workers).map(|_| (Mutex::new(None), Arc::new(CancelFlag::default()))).collect() }
    }

    /// Worker `i`'s flag.
    pub fn flag(&self, i: usize) -> &CancelFlag {
        &self.slots[i].1
    }

    /// Worker `i` starts `run`.
    pub fn begin(&self, i: usize, run: RunId) {
        let (current, flag) = &self.slots[i];
        flag.reset();
        *current.lock() = Some(run);
    }

    /// Worker `i` is done with its run.
    pub fn end(&self, i: usize) {
        *self.slots[i].0.lock() = None;
    }

    /// Asks the worker running `run` to stop it; false when no worker here runs it.
    pub fn cancel(&self, run: RunId) -> bool {
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
}
