//! Time as the engine sees it: microseconds since the Unix epoch, from an injectable clock.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};

/// An instant in UTC, in microseconds since the Unix epoch (PostgreSQL's `timestamptz`
/// precision). The API shows milliseconds; lateness is measured in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Ts(pub i64);

impl Ts {
    /// The earliest representable instant.
    pub const MIN: Ts = Ts(i64::MIN);
    /// The latest representable instant.
    pub const MAX: Ts = Ts(i64::MAX);

    /// From milliseconds since the epoch.
    pub fn from_millis(ms: i64) -> Ts {
        Ts(ms.saturating_mul(1000))
    }

    /// Milliseconds since the epoch (rounded toward negative infinity).
    pub fn as_millis(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// From a chrono instant.
    pub fn from_datetime(d: DateTime<Utc>) -> Ts {
        Ts(d.timestamp_micros())
    }

    /// As a chrono instant.
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0).unwrap_or_default()
    }

    /// This instant plus `micros`, saturating.
    pub fn plus_micros(self, micros: i64) -> Ts {
        Ts(self.0.saturating_add(micros))
    }

    /// `self - earlier` in microseconds.
    pub fn micros_since(self, earlier: Ts) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// RFC 3339 in UTC with a `Z` and millisecond precision, as the API writes instants.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime().to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// The engine's source of "now". Tests inject their own; everything else uses [`SystemClock`].
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Ts;

    /// How long to wait, in real time, for this clock to go from `now` to `until`. A clock that
    /// does not follow real time answers a short tick, so that a sleeper looks at it again soon.
    fn real_wait(&self, now: Ts, until: Ts) -> Duration {
        Duration::from_micros(u64::try_from(until.micros_since(now)).unwrap_or(0))
    }
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Ts {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Ts(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }
}

/// A clock that moves only when told: tests make hours pass in no time.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing `at`.
    pub fn at(at: Ts) -> ManualClock {
        ManualClock(AtomicI64::new(at.0))
    }

    /// Moves the clock to `at` (backwards too: clocks do that).
    pub fn set(&self, at: Ts) {
        self.0.store(at.0, Ordering::SeqCst);
    }

    /// Moves the clock on by `d`.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX), Ordering::SeqCst);
    }
}

/// How often a sleeper looks at a [`ManualClock`] again.
const MANUAL_TICK: Duration = Duration::from_millis(1);

impl Clock for ManualClock {
    fn now(&self) -> Ts {
        Ts(self.0.load(Ordering::SeqCst))
    }

    fn real_wait(&self, now: Ts, until: Ts) -> Duration {
        if until > now {
            MANUAL_TICK
        } else {
            Duration::ZERO
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_print_in_utc_with_milliseconds() {
        let t = Ts::from_datetime("2017-09-21T23:58:16.797123Z".parse().unwrap());
        assert_eq!(t.to_rfc3339(), "2017-09-21T23:58:16.797Z");
        assert_eq!(t.as_millis(), 1_506_038_296_797);
        assert_eq!(Ts(-1).as_millis(), -1);
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::at(Ts(1_000));
        assert_eq!(c.now(), Ts(1_000));
        c.advance(Duration::from_secs(3_600));
        assert_eq!(c.now(), Ts(3_600_001_000));
        c.set(Ts(5));
        assert_eq!(c.now(), Ts(5));
    }
}
