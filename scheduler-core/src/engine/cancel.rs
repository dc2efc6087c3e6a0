//! Cooperative cancellation: a flag a run can poll or wait on. One flag per worker, reset for
//! each run, so signalling a run allocates nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
