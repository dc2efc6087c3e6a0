//! A fast path for the next fire of plain cron patterns, on the pattern `croner` parsed.
//!
//! `croner` walks the wall clock field by field and resolves every candidate in the zone, about
//! a microsecond per fire. Most patterns in use are plain sets of seconds, minutes, hours, days,
//! months and weekdays; for those the next matching wall time is a few bit scans. The result is
//! used only where no daylight-saving transition can be involved: in UTC, or when the answer is
//! a single valid wall time and the zone's offset is the same at the start, at the answer and
//! at every third day between them (within 62 days). In the time zone database no zone changes
//! its offset twice within six days from 2000 to 2045 (the closest pair: America/Boa_Vista,
//! October 2000, 6.96 days), so probes three days apart see any transition in between.
//! Everything else — `L`, `W`, `#`, restricted years, answers across a transition — is left to
//! `croner`, so the documented DST rules are `croner`'s in every case. A test compares the two
//! on many patterns, zones and instants around transitions.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike};
use chrono_tz::Tz;
use croner::Cron;

use crate::clock::Ts;

/// `croner`'s bit for a plain (unmodified) value.
const PLAIN: u8 = 1;

/// Seconds between offset probes (see the module's note).
const PROBE_STEP: i64 = 3 * 86_400;

/// The longest span checked by probing; longer ones go to `croner`.
const MAX_PROBED_SPAN: i64 = 62 * 86_400;

/// The most days searched before giving up to `croner` (a 29 February pattern waits years).
const MAX_DAYS: u32 = 800;

/// A plain cron pattern as bit sets.
#[derive(Clone, Debug)]
pub(super) struct FastCron {
    seconds: u64,
    minutes: u64,
    hours: u32,
    /// Bits 1-31.
    days: u32,
    /// Bits 1-12.
    months: u16,
    /// Bits 0-6, Sunday 0.
    weekdays: u8,
    dom_wildcard: bool,
    dow_wildcard: bool,
    dom_and_dow: bool,
    utc: bool,
}

fn bits(values: Vec<u16>) -> u64 {
    values.into_iter().filter(|v| *v < 64).fold(0, |m, v| m | (1 << v))
}

/// The lowest set bit at or above `from`.
fn next_bit(mask: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let m = mask & (!0u64 << from);
    (m != 0).then(|| m.trailing_zeros())
}

impl FastCron {
    /// The fast form of a pattern, when it has one.
    pub(super) fn new(cron: &Cron, tz: &Tz) -> Option<FastCron> {
        let p = &cron.pattern;
        let parts = [&p.seconds, &p.minutes, &p.hours, &p.days, &p.months, &p.days_of_week];
        if parts.iter().any(|c| c.has_modifiers()) || !p.years.from_wildcard {
            return None;
        }
        let weekdays = p.days_of_week.get_set_values(PLAIN).into_iter().fold(0u8, |m, d| m | (1 << (d % 7)));
        Some(FastCron {
            seconds: bits(p.seconds.get_set_values(PLAIN)),
            minutes: bits(p.minutes.get_set_values(PLAIN)),
            hours: bits(p.hours.get_set_values(PLAIN)) as u32,
            days: bits(p.days.get_set_values(PLAIN)) as u32,
            months: bits(p.months.get_set_values(PLAIN)) as u16,
            weekdays,
            dom_wildcard: p.is_dom_wildcard(),
            dow_wildcard: p.is_dow_wildcard(),
            dom_and_dow: p.matches_dom_and_dow(),
            utc: *tz == Tz::UTC,
        })
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let dom = self.days & (1 << date.day()) != 0;
        let dow = self.weekdays & (1 << date.weekday().num_days_from_sunday()) != 0;
        match (self.dom_wildcard, self.dow_wildcard) {
            (true, _) => dow,
            (_, true) => dom,
            _ if self.dom_and_dow => dom && dow,
            _ => dom || dow,
        }
    }

    /// The first matching time of day at or after `h:m:s`.
    fn time_from(&self, mut h: u32, mut m: u32, mut s: u32) -> Option<(u32, u32, u32)> {
        loop {
            if s >= 60 {
                s = 0;
                m += 1;
            }
            if m >= 60 {
                m = 0;
                h += 1;
            }
            let hh = next_bit(u64::from(self.hours), h).filter(|h| *h < 24)?;
            if hh > h {
                (h, m, s) = (hh, 0, 0);
            }
            let Some(mm) = next_bit(self.minutes, m).filter(|m| *m < 60) else {
                (h, m, s) = (h + 1, 0, 0);
                continue;
            };
            if mm > m {
                (m, s) = (mm, 0);
            }
            let Some(ss) = next_bit(self.seconds, s).filter(|s| *s < 60) else {
                (m, s) = (m + 1, 0);
                continue;
            };
            return Some((h, m, ss));
        }
    }

    /// The first matching wall time strictly after `from`'s second.
    fn next_local(&self, from: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut date = from.date();
        let (mut h, mut m, mut s) = (from.hour(), from.minute(), from.second() + 1);
        for _ in 0..MAX_DAYS {
            if self.months & (1 << date.month()) == 0 {
                let (y, mo) = if date.month() == 12 { (date.year() + 1, 1) } else { (date.year(), date.month() + 1) };
                date = NaiveDate::from_ymd_opt(y, mo, 1)?;
                (h, m, s) = (0, 0, 0);
                continue;
            }
            if self.day_matches(date) {
                if let Some((hh, mm, ss)) = self.time_from(h, m, s) {
                    return date.and_hms_opt(hh, mm, ss);
                }
            }
            date = date.succ_opt()?;
            (h, m, s) = (0, 0, 0);
        }
        None
    }

    /// The first fire strictly after `t`'s second, or `None` when the fast path cannot be sure
    /// (the caller then asks `croner`).
    pub(super) fn after(&self, tz: &Tz, t: Ts) -> Option<Ts> {
        let secs = t.0.div_euclid(1_000_000);
        let utc = DateTime::from_timestamp(secs, 0)?.naive_utc();
        if self.utc {
            let next = self.next_local(utc)?;
            return Some(Ts(next.and_utc().timestamp() * 1_000_000));
        }
        let offset = tz.offset_from_utc_datetime(&utc).fix();
        let next = self.next_local(utc + Duration::seconds(i64::from(offset.local_minus_utc())))?;
        let LocalResult::Single(at) = tz.offset_from_local_datetime(&next) else { return None };
        let at = at.fix();
        let instant = next.and_utc().timestamp() - i64::from(at.local_minus_utc());
        if at != offset || instant - secs > MAX_PROBED_SPAN {
            return None;
        }
        let mut probe = secs + PROBE_STEP;
        while probe < instant {
            let p = DateTime::from_timestamp(probe, 0)?.naive_utc();
            if tz.offset_from_utc_datetime(&p).fix() != offset {
                return None;
            }
            probe += PROBE_STEP;
        }
        Some(Ts(instant * 1_000_000))
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    /// The fast path agrees with `croner` wherever it answers, on patterns of every kind, in
    /// zones with whole-hour, half-hour and no transitions, from instants around transitions
    /// and at random.
    #[test]
    fn the_fast_path_agrees_with_croner() {
        let patterns = [
            "0 0 5 * * *",
            "0 30 2 * * *",
            "30 1 * * *",
            "*/15 * * * *",
            "0 0 * * * *",
            "* * * * * *",
            "*/7 * * * * *",
            "0 0 9 * * MON-FRI",
            "0 0 0 1 * *",
            "0 15 2 * * *",
            "45 1 * * *",
            "0 0 12 13 * FRI",
            "0 0 0 29 2 *",
            "5,10,50 3-5 * * *",
            "0 0 0 * * SUN",
            "0 0 0 L * *",
        ];
        let zones = ["UTC", "America/New_York", "Europe/Prague", "Australia/Lord_Howe", "Asia/Kolkata"];
        let anchors = [
            "2026-03-08T06:30:00Z",
            "2026-11-01T05:20:00Z",
            "2026-03-29T00:40:00Z",
            "2026-10-25T00:10:00Z",
            "2026-04-04T14:50:00Z",
            "2026-10-03T15:20:00Z",
            "2027-02-27T23:59:59Z",
        ];
        let mut rng = fastrand::Rng::with_seed(7);
        let mut checked = 0;
        for expr in patterns {
            let cron = Cron::from_str(expr).unwrap();
            for zone in zones {
                let tz = Tz::from_str(zone).unwrap();
                let Some(fast) = FastCron::new(&cron, &tz) else { continue };
                let mut starts: Vec<i64> = anchors
                    .iter()
                    .map(|a| DateTime::parse_from_rfc3339(a).unwrap().timestamp())
                    .flat_map(|a| (-8..8).map(move |k| a + k * 1_337))
                    .collect();
                starts.extend((0..200).map(|_| rng.i64(1_767_225_600..1_830_297_600)));
                for s in starts {
                    let t = Ts(s * 1_000_000 + rng.i64(0..1_000_000));
                    let Some(got) = fast.after(&tz, t) else { continue };
                    let want = super::super::cron::after_slow(&cron, &tz, t);
                    assert_eq!(Some(got), want, "{expr} in {zone} after {t}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 10_000, "the fast path answered only {checked} times");
    }
}
