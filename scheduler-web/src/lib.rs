//! The scheduler service: configuration, the REST API over `scheduler-core`, and start-up.
//! HTTP statuses are chosen in [`problem`] alone.

pub mod auth;
pub mod config;
pub mod dto;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod shutdown;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tls;
