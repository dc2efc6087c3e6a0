//! Request rate per caller: a token bucket (GCRA) per token or certificate subject name.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// The limiter shared by every HTTP worker.
pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl RateLimit {
    /// `per_second` requests a second on average with bursts of `burst`; `None` when either is
    /// zero (no limit).
    pub fn new(per_second: u32, burst: u32) -> Option<RateLimit> {
        let (rate, burst) = (NonZeroU32::new(per_second)?, NonZeroU32::new(burst)?);
        Some(RateLimit {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            clock: DefaultClock::default(),
        })
    }

    /// Takes one request from `who`'s bucket, or says how long until one is free.
    pub fn check(&self, who: &str) -> Result<(), Duration> {
        self.limiter.check_key(&who.to_owned()).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_per_caller() {
        let rate = RateLimit::new(1, 3).unwrap();
        for _ in 0..3 {
            assert!(rate.check("ci").is_ok());
        }
        let wait = rate.check("ci").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        // Another caller has its own bucket.
        assert!(rate.check("ops").is_ok());
    }

    #[test]
    fn zero_means_no_limit() {
        assert!(RateLimit::new(0, 10).is_none());
        assert!(RateLimit::new(10, 0).is_none());
    }
}
