//! Per-trigger and per-job policies: misfires, overlapping runs, retries.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What happens to fires of a recurring trigger missed while nothing could run them (the
/// service was down, or every worker busy) by more than the misfire threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MisfirePolicy {
    /// One catch-up run for all missed fires, then back on the schedule (the default).
    #[default]
    FireOnce,
    /// No catch-up: the missed fires are recorded as skipped; the next fire is the next one due.
    Skip,
    /// Every missed fire runs, oldest first, up to [`FIRE_ALL_LIMIT`]; older ones are skipped.
    FireAll,
}

/// The most missed fires `fireAll` runs after an outage.
pub const FIRE_ALL_LIMIT: u64 = 100;

/// What happens to a fire that comes due while the job's previous run is still running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OverlapPolicy {
    /// The fire is recorded as skipped (the default).
    #[default]
    Skip,
    /// The fire runs as soon as the current run ends (one waits; more are coalesced).
    Queue,
    /// The fire runs at once, beside the current run (only for job types that allow it).
    Allow,
}

/// How a failed run is retried.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Attempts per fire, the first included (1 = no retries); none: the job type's default,
    /// as the node running the fire knows it.
    #[serde(default, with = "default_or_n")]
    pub attempts: Option<std::num::NonZeroU32>,
    /// The wait before each retry.
    pub backoff: Backoff,
}

/// How long to wait before a retry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    /// Fixed or exponential.
    #[serde(rename = "type")]
    pub kind: BackoffKind,
    /// The first wait, in milliseconds.
    pub base_ms: u64,
    /// Exponential growth per attempt.
    pub factor: f64,
    /// The longest wait, in milliseconds.
    pub cap_ms: u64,
    /// Randomise each wait between half and all of it, so retries of many jobs spread out.
    pub jitter: bool,
}

/// Backoff kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BackoffKind {
    /// Every retry waits `base`.
    Fixed,
    /// Retry n waits `base * factor^(n-1)`, up to `cap`.
    Exponential,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { kind: BackoffKind::Exponential, base_ms: 1_000, factor: 2.0, cap_ms: 3_600_000, jitter: true }
    }
}

impl Backoff {
    /// The wait after the `failed_attempt`-th attempt failed (1-based). `unit` is a random
    /// number in `[0, 1)` used for jitter.
    pub fn delay(&self, failed_attempt: u32, unit: f64) -> Duration {
        let base = self.base_ms as f64;
        let raw = match self.kind {
            BackoffKind::Fixed => base,
            BackoffKind::Exponential => {
                base * self.factor.max(1.0).powi(failed_attempt.saturating_sub(1).min(1_000) as i32)
            }
        };
        let capped = raw.min(self.cap_ms.max(self.base_ms) as f64);
        let ms = if self.jitter { capped / 2.0 + capped / 2.0 * unit.clamp(0.0, 1.0) } else { capped };
        Duration::from_millis(ms as u64)
    }
}

/// The stored form of "attempts": a number, 0 for the job type's default. Nodes of versions
/// before the default was resolved at run time read a number there, so both versions can share
/// a database during a rolling upgrade (an older node runs such a fire without retries).
mod default_or_n {
    use std::num::NonZeroU32;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<NonZeroU32>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(v.map_or(0, NonZeroU32::get))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NonZeroU32>, D::Error> {
        Ok(NonZeroU32::new(u32::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_backoff_grows_to_its_cap() {
        let b = Backoff { kind: BackoffKind::Exponential, base_ms: 100, factor: 2.0, cap_ms: 1_000, jitter: false };
        let waits: Vec<u64> = (1..=6).map(|a| b.delay(a, 0.5).as_millis() as u64).collect();
        assert_eq!(waits, vec![100, 200, 400, 800, 1_000, 1_000]);
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_wait() {
        let b = Backoff {
            jitter: true,
            ..Backoff { kind: BackoffKind::Fixed, base_ms: 1_000, factor: 1.0, cap_ms: 1_000, jitter: true }
        };
        assert_eq!(b.delay(3, 0.0), Duration::from_millis(500));
        assert_eq!(b.delay(3, 0.999_999), Duration::from_millis(999));
    }

    #[test]
    fn the_default_is_stored_as_zero_attempts_as_earlier_versions_read_it() {
        let default = RetryPolicy { attempts: None, backoff: Backoff::default() };
        let stored = serde_json::to_value(&default).unwrap();
        assert_eq!(stored["attempts"], 0);
        assert_eq!(serde_json::from_value::<RetryPolicy>(stored).unwrap(), default);
        let three = RetryPolicy { attempts: std::num::NonZeroU32::new(3), ..default.clone() };
        let stored = serde_json::to_value(&three).unwrap();
        assert_eq!(stored["attempts"], 3);
        assert_eq!(serde_json::from_value::<RetryPolicy>(stored).unwrap(), three);
        // Written by the earlier bulk path (0) or without the key: the default.
        let mut old = serde_json::to_value(&default).unwrap();
        old.as_object_mut().unwrap().remove("attempts");
        assert_eq!(serde_json::from_value::<RetryPolicy>(old).unwrap().attempts, None);
    }
}
