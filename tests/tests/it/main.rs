//! One test binary: API end-to-end tests against the real server, plugin loading with real
//! libraries, lifecycle (shutdown, logs), and the store conformance suite.

mod api;
mod lifecycle;
mod plugins;
mod store_conformance;
