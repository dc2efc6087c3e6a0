//! Property tests for every parser the REST API feeds, through the crate's public API only:
//! instants (`when`, `until`), cron patterns and their time zones, intervals and delays
//! (`interval`, `initialDelay`, `backoff`), and whole create / reschedule bodies (schedule keys
//! mixed with payload keys).
//!
//! Bounded and reproducible: each property sets its case count explicitly, the random seed is
//! fixed (so every run tries the same cases and a failure repeats as it was reported), and
//! failures are not persisted to files in the source tree (proptest prints the shrunk input).
//! To explore further: `PROPTEST_RNG_SEED=<n>` picks other cases, `PROPTEST_CASES=<n>` runs more.
//!
//! Every property runs on the whole of its input space, edge cases included: top-level
//! `enabled`, `name` and `data` are payload keys in a create body; duration text past the
//! largest `Duration` is refused; a leap second cannot take an instant past
//! 9999-12-31T23:59:59Z; a trigger `name` holding a NUL is refused; an `initialDelay` that
//! starts past 9999 is refused naming it; and cron computes no fire from instants beyond
//! ±190,000 years.

mod bodies;
mod common;
mod cron;
mod instants;
mod intervals;
