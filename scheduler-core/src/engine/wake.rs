//! How the dispatcher sleeps: until the next due instant, or until someone tells it that
//! something changed (an earlier job, a freed worker slot, shutdown).
//!
//! Protocol: the dispatcher publishes the instant it intends to sleep until (`MAX` while it is
//! awake and deciding). A producer whose news is earlier than that instant raises `notified`
//! and signals the condition variable; the dispatcher checks `notified` under the lock before
//! it sleeps, so no news is lost between its last look at the store and its sleep.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::clock::{Clock, Ts};

/// The dispatcher's wake-up channel.
pub struct Wake {
    sleeping_until: AtomicI64,
    notified: AtomicBool,
    lock: Mutex<()>,
    cond: Condvar,
}

impl Default for Wake {
    fn default() -> Self {
        Self {
            sleeping_until: AtomicI64::new(i64::MAX),
            notified: AtomicBool::new(false),
            lock: Mutex::new(()),
            cond: Condvar::new(),
        }
    }
}

impl Wake {
    /// Something became due at `due`: wake the dispatcher if it would sleep past it.
    pub fn due_at(&self, due: Ts) {
        if due.0 < self.sleeping_until.load(Ordering::SeqCst) {
            self.notify();
        }
    }

    /// Wakes the dispatcher now.
    pub fn notify(&self) {
        if !self.notified.swap(true, Ordering::SeqCst) {
            let _g = self.lock.lock();
            self.cond.notify_one();
        }
    }

    /// Sleeps until `clock` shows `until` (`None` for no deadline) or a notification, whichever
    /// is first.
    pub fn sleep(&self, clock: &dyn Clock, until: Option<Ts>) {
        let until_ts = until.unwrap_or(Ts::MAX);
        self.sleeping_until.store(until_ts.0, Ordering::SeqCst);
        if !self.notified.swap(false, Ordering::SeqCst) {
            let mut g = self.lock.lock();
            if !self.notified.swap(false, Ordering::SeqCst) {
                match until {
                    Some(t) => {
                        let wait = clock.real_wait(clock.now(), t);
                        if !wait.is_zero() {
                            let _ = self.cond.wait_until(&mut g, Instant::now() + wait);
                        }
                    }
                    None => self.cond.wait(&mut g),
                }
                self.notified.store(false, Ordering::SeqCst);
            }
        }
        self.sleeping_until.store(i64::MAX, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_notification_before_the_sleep_is_not_lost() {
        let w = Wake::default();
        w.notify();
        let start = Instant::now();
        w.sleep(&SystemClock, None);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn an_earlier_due_instant_wakes_a_sleeper() {
        let w = Arc::new(Wake::default());
        let w2 = w.clone();
        let t = std::thread::spawn(move || {
            let now = SystemClock.now();
            w2.sleep(&SystemClock, Some(now.plus_micros(60_000_000)));
        });
        // Wait (bounded) until the sleeper has published its deadline, then send earlier news.
        let deadline = Instant::now() + Duration::from_secs(5);
        while w.sleeping_until.load(Ordering::SeqCst) == i64::MAX && Instant::now() < deadline {
            std::thread::yield_now();
        }
        w.due_at(SystemClock.now());
        t.join().unwrap();
    }
}
