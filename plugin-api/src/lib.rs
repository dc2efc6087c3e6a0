#![doc = include_str!("../README.md")]
//!
//! ## Crate map
//! - [`abi`]: the types that cross the library boundary and the ABI version.
//! - [`manifest`]: the plugin's self-description (JSON across the boundary).
//! - [`job`], [`listener`], [`error`]: what plugin authors implement and return.
//! - [`export_plugin!`]: the one macro a plugin calls.
//!
//! This crate depends on no async runtime, database or host type: it is the one interface other
//! teams compile against.

pub mod abi;
pub mod error;
pub mod export;
pub mod job;
pub mod listener;
mod log;
pub mod manifest;
pub mod testing;

pub use abi::ABI_VERSION;
pub use error::{JobError, ResultExt};
pub use job::{Job, JobContext, JobOutput, JobResult};
pub use listener::{Verdict, VetoContext, VetoListener};
pub use manifest::JobOptions;

/// Everything a plugin usually needs: `use scheduler_plugin_api::prelude::*;`.
pub mod prelude {
    pub use crate::error::{JobError, ResultExt};
    pub use crate::export_plugin;
    pub use crate::job::{Job, JobContext, JobOutput, JobResult};
    pub use crate::listener::{Verdict, VetoContext, VetoListener};
    pub use crate::manifest::JobOptions;
    pub use serde::{Deserialize, Serialize};
}

#[doc(hidden)]
pub mod __private {
    pub use abi_stable;
}
