//! The retention thread: prunes old finished history in small batches, pausing between them, so
//! no statement holds locks for long. With a shared store only one node prunes at a time.

use std::sync::Arc;
use std::time::Duration;

use crate::background::{Background, StopSignal};
use crate::store::{Pruned, Retention, Store};

/// Retention settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    /// What is kept, and the batch size.
    pub keep: Retention,
    /// How often a pruning pass starts.
    pub every: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        RetentionConfig {
            keep: Retention {
                succeeded: Some(Duration::from_secs(7 * DAY)),
                failed: Some(Duration::from_secs(90 * DAY)),
                stats: Some(Duration::from_secs(400 * DAY)),
                batch: 1_000,
            },
            every: Duration::from_secs(60),
        }
    }
}

/// The pause between two batches of one pass.
const PAUSE: Duration = Duration::from_millis(20);

/// The running retention thread.
pub(crate) struct Pruner(Background);

impl Pruner {
    pub(crate) fn start(store: Arc<dyn Store>, config: RetentionConfig) -> Pruner {
        Pruner(Background::spawn("sched-retention", move |stop| run(&*store, &config, stop)))
    }

    pub(crate) fn stop(self) {
        self.0.stop();
    }
}

fn run(store: &dyn Store, config: &RetentionConfig, stop: &StopSignal) {
    loop {
        let mut total = Pruned::default();
        loop {
            match store.prune(&config.keep) {
                Ok(p) => {
                    total.runs += p.runs;
                    total.jobs += p.jobs;
                    total.stats += p.stats;
                    if p.busy || !p.more(config.keep.batch) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pruning old history failed; trying again next pass");
                    break;
                }
            }
            if stop.wait(PAUSE) {
                return;
            }
        }
        if total != Pruned::default() {
            tracing::info!(runs = total.runs, jobs = total.jobs, stats = total.stats, "pruned old history");
        }
        if stop.wait(config.every) {
            return;
        }
    }
}
