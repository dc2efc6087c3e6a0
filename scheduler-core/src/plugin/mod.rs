//! Plugins: loading `cdylib` files (loader), the table of what they registered (registry) and
//! the host side of the boundary (host: logging; context: what a run sees).

pub mod context;
pub mod host;
pub mod loader;
pub mod registry;
mod trust;

pub use loader::{load_plugins, LoadError, LoadReport, Refusal};
pub use registry::{JobTypeEntry, ListenerEntry, LoadedPlugin, Registry};
