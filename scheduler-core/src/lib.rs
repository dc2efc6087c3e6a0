//! The scheduler's engine, independent of any transport: it loads plugins, keeps jobs and runs
//! in a [`store::Store`], fires each run when it is due on a bounded worker pool, and records
//! how it ended.
//!
//! It depends on `scheduler-plugin-api` and on nothing that speaks HTTP: the web crate is one
//! caller among others (tests, benchmarks).
//!
//! - [`plugin`]: loading plugin libraries and the registry of what they registered.
//! - [`store`]: the store seam, with the in-memory store.
//! - [`engine`]: the dispatcher, the workers and the recorder.
//! - [`scheduler::Scheduler`]: the operations callers use.

pub mod audit;
mod background;
pub mod clock;
pub mod cluster;
pub mod engine;
pub mod error;
pub mod json;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod plugin;
pub mod request;
pub mod retention;
pub mod run_span;
pub mod scheduler;
pub mod schedules_file;
pub mod stats;
pub mod store;
pub mod trigger;
pub mod wire;

pub use clock::{Clock, ManualClock, SystemClock, Ts};
pub use error::CoreError;
pub use scheduler::{Created, EngineStats, Scheduler, SchedulerConfig};
