//! A named background thread that works in rounds and waits between them until it is stopped
//! (the cluster maintenance thread, the retention thread).

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// What a background thread waits on between rounds.
pub(crate) struct StopSignal {
    stopped: Mutex<bool>,
    cond: Condvar,
}

impl StopSignal {
    /// Waits until `deadline` unless stopped first; true when stopped.
    pub(crate) fn wait_until(&self, deadline: Instant) -> bool {
        let mut stopped = self.stopped.lock();
        if !*stopped {
            let _ = self.cond.wait_until(&mut stopped, deadline);
        }
        *stopped
    }

    /// Waits `d` unless stopped first; true when stopped.
    pub(crate) fn wait(&self, d: Duration) -> bool {
        self.wait_until(Instant::now() + d)
    }
}

/// The running thread; `stop` ends it.
pub(crate) struct Background {
    stop: Arc<StopSignal>,
    handle: Option<JoinHandle<()>>,
}

impl Background {
    /// Starts `work` on a thread called `name`; it should return once its signal says stopped.
    pub(crate) fn spawn(name: &str, work: impl FnOnce(&StopSignal) + Send + 'static) -> Background {
        let stop = Arc::new(StopSignal { stopped: Mutex::new(false), cond: Condvar::new() });
        let signal = stop.clone();
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || work(&signal))
            .unwrap_or_else(|e| panic!("spawn {name} thread: {e}"));
        Background { stop, handle: Some(handle) }
    }

    /// Signals the thread and waits for it to end.
    pub(crate) fn stop(mut self) {
        *self.stop.stopped.lock() = true;
        self.stop.cond.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
