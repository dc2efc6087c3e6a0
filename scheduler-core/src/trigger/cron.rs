//! Cron patterns in a time zone, through `croner` (5, 6 or 7 fields; seconds and years
//! optional; names like `MON-FRI` and `@daily`).

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

use super::fast_cron::FastCron;
use super::ScheduleError;
use crate::clock::Ts;

/// Parses a pattern and an IANA zone, checking the pattern fires at least once.
pub fn parse_cron(expr: &str, timezone: &str) -> Result<(Cron, Tz), ScheduleError> {
    let tz = Tz::from_str(timezone.trim()).map_err(|_| ScheduleError {
        field: "timezone",
        reason: format!(
            "`{}` is not an IANA time zone name (like `UTC`, `Europe/Prague` or `America/New_York`)",
            clip(timezone)
        ),
    })?;
    if expr.len() > 200 {
        return Err(ScheduleError { field: "cron", reason: "the pattern is longer than 200 characters".into() });
    }
    let cron = Cron::from_str(expr).map_err(|e| ScheduleError {
        field: "cron",
        reason: format!(
            "`{}` is not a valid cron pattern ({e}); use 5 fields (minute hour day month weekday), \
             6 with seconds first, or 7 with a year last",
            clip(expr)
        ),
    })?;
    let now = Utc::now().with_timezone(&tz);
    if cron.find_next_occurrence(&now, false).is_err() {
        return Err(ScheduleError { field: "cron", reason: format!("`{}` never fires", clip(expr)) });
    }
    Ok((cron, tz))
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

fn to_zone(t: Ts, tz: &Tz) -> Option<DateTime<Tz>> {
    let secs = t.0.div_euclid(1_000_000);
    Some(Utc.timestamp_opt(secs, 0).single()?.with_timezone(tz))
}

fn from_zone(d: DateTime<Tz>) -> Ts {
    Ts::from_datetime(d.with_timezone(&Utc))
}

/// A parsed pattern in its zone, with its fast form when it has one.
#[derive(Debug)]
pub(super) struct CronSchedule {
    cron: Cron,
    tz: Tz,
    fast: Option<FastCron>,
}

impl CronSchedule {
    pub(super) fn new(cron: Cron, tz: Tz) -> CronSchedule {
        let fast = FastCron::new(&cron, &tz);
        CronSchedule { cron, tz, fast }
    }

    /// The first fire strictly after `t`. Fires fall on whole seconds, so the search starts
    /// from the second after the one `t` lies in.
    pub(super) fn after(&self, t: Ts) -> Option<Ts> {
        if let Some(next) = self.fast.as_ref().and_then(|f| f.after(&self.tz, t)) {
            return Some(next);
        }
        after_slow(&self.cron, &self.tz, t)
    }

    /// The first fire at or after `t`.
    pub(super) fn at_or_after(&self, t: Ts) -> Option<Ts> {
        let whole = t.0.rem_euclid(1_000_000) == 0;
        self.after(if whole { Ts(t.0.checked_sub(1_000_000)?) } else { t })
    }
}

/// `croner`'s answer: the first fire strictly after `t`'s second.
pub(super) fn after_slow(cron: &Cron, tz: &Tz, t: Ts) -> Option<Ts> {
    let from = to_zone(t, tz)?;
    cron.find_next_occurrence(&from, false).ok().map(from_zone)
}
