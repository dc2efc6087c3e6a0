//! Request rate per caller: a token bucket (GCRA) per token or certificate subject name.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};

/// The limiter shared by every HTTP worker.
pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl RateLimit {
    /// One request's allowance coming back every `every` (none: no limit), with bursts of
    /// `burst` (at least 1).
    pub fn new(every: Option<Duration>, burst: u32) -> Option<RateLimit> {
        let burst = NonZeroU32::new(burst)?;
        let quota = Quota::with_period(every?.max(Duration::from_nanos(1)))?.allow_burst(burst);
        Some(RateLimit { limiter: DefaultKeyedRateLimiter::keyed(quota) })
    }

    /// Takes one request from `who`'s bucket, or says how long until one is free.
    pub fn check(&self, who: &str) -> Result<(), Duration> {
        self.limiter
            .check_key(&who.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_per_caller() {
        let rate = RateLimit::new(Some(Duration::from_secs(1)), 3).unwrap();
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
        assert!(RateLimit::new(None, 10).is_none());
        assert!(RateLimit::new(Some(Duration::from_millis(10)), 0).is_none());
    }
}
