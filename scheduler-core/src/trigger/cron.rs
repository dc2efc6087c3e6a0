//! Cron patterns in a time zone, through `croner` (5, 6 or 7 fields; seconds and years
//! optional; names like `MON-FRI` and `@daily`).

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

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

/// The first fire strictly after `t`. Fires fall on whole seconds, so the search starts from
/// the second `t` lies in.
pub(super) fn after(cron: &Cron, tz: &Tz, t: Ts) -> Option<Ts> {
    let from = to_zone(t, tz)?;
    cron.find_next_occurrence(&from, false).ok().map(from_zone)
}

/// The first fire at or after `t`.
pub(super) fn at_or_after(cron: &Cron, tz: &Tz, t: Ts) -> Option<Ts> {
    let whole = t.0.rem_euclid(1_000_000) == 0;
    let from = to_zone(t, tz)?;
    cron.find_next_occurrence(&from, whole).ok().map(from_zone)
}
