//! What every handler shares, and how handlers call the scheduler without blocking the HTTP
//! threads on a store that does I/O.

use std::sync::Arc;

use actix_web::web;
use scheduler_core::plugin::Refusal;
use scheduler_core::{CoreError, Scheduler};

use crate::problem::Problem;

/// Shared by all handlers.
pub struct AppState {
    /// The running scheduler.
    pub scheduler: Arc<Scheduler>,
    /// Plugin files refused at start.
    pub refused: Vec<Refusal>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// The schedules file (`--schedules`), re-applied by `PUT /api/scheduler`.
    pub schedules: Option<std::path::PathBuf>,
}

impl AppState {
    /// Runs `f` against the scheduler: inline when the store only takes a lock (memory), on
    /// actix's blocking pool when it waits on I/O (PostgreSQL).
    pub async fn call<T, F>(&self, f: F) -> Result<T, Problem>
    where
        F: FnOnce(&Scheduler) -> Result<T, CoreError> + Send + 'static,
        T: Send + 'static,
    {
        if self.scheduler.store_blocking() {
            let s = self.scheduler.clone();
            match web::block(move || f(&s)).await {
                Ok(r) => r.map_err(Problem::from),
                Err(e) => {
                    Err(Problem::from(CoreError::Store(scheduler_core::store::StoreError::Internal(e.to_string()))))
                }
            }
        } else {
            f(&self.scheduler).map_err(Problem::from)
        }
    }
}
