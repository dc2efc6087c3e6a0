//! Intervals as clients write them: seconds (`300`), readable text (`"2 minutes"`, `"1h30m"`)
//! or ISO 8601 durations (`"PT5M"`, `"P1DT2H"`).

use std::time::Duration;

use serde_json::Value;

use super::ScheduleError;

/// The shortest interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The longest interval accepted (ten years).
pub const MAX_INTERVAL: Duration = Duration::from_secs(3_650 * 86_400);

fn bad(field: &'static str, reason: impl Into<String>) -> ScheduleError {
    ScheduleError { field, reason: reason.into() }
}

/// Parses an interval or delay given as a JSON number of seconds or a string.
pub fn parse_interval(field: &'static str, v: &Value) -> Result<Duration, ScheduleError> {
    let d = match v {
        Value::Number(n) => {
            let secs = n.as_f64().filter(|s| s.is_finite()).ok_or_else(|| bad(field, "must be a number of seconds"))?;
            if secs <= 0.0 {
                return Err(bad(field, format!("must be positive, not {n}")));
            }
            Duration::try_from_secs_f64(secs).map_err(|_| bad(field, format!("{n} seconds is out of range")))?
        }
        Value::String(s) => parse_text(field, s.trim())?,
        other => {
            return Err(bad(
                field,
                format!("must be seconds (300), readable text (\"2 minutes\") or ISO 8601 (\"PT5M\"), not {other}"),
            ))
        }
    };
    Ok(d)
}

/// Parses a delay that may be zero (an initial delay).
pub fn parse_delay(field: &'static str, v: &Value) -> Result<Duration, ScheduleError> {
    match v {
        Value::Number(n) if n.as_f64() == Some(0.0) => Ok(Duration::ZERO),
        Value::String(s) if s.trim() == "0" => Ok(Duration::ZERO),
        _ => parse_interval(field, v),
    }
}

/// Checks an interval is within the accepted range.
pub fn check_range(field: &'static str, d: Duration) -> Result<Duration, ScheduleError> {
    if d < MIN_INTERVAL {
        Err(bad(field, format!("{d:?} is shorter than the minimum of one second")))
    } else if d > MAX_INTERVAL {
        Err(bad(field, format!("{d:?} is longer than the maximum of ten years")))
    } else {
        Ok(d)
    }
}

fn parse_text(field: &'static str, s: &str) -> Result<Duration, ScheduleError> {
    if s.is_empty() {
        return Err(bad(field, "is empty"));
    }
    if s.len() > 64 {
        return Err(bad(field, "is longer than 64 characters"));
    }
    if let Ok(secs) = s.parse::<u64>() {
        if secs == 0 {
            return Err(bad(field, "must be positive, not 0"));
        }
        return Ok(Duration::from_secs(secs));
    }
    if s.starts_with(['P', 'p']) {
        return parse_iso8601(s)
            .ok_or_else(|| bad(field, format!("`{s}` is not an ISO 8601 duration (like PT5M, PT1H30M or P1DT2H)")));
    }
    if s.starts_with('-') {
        return Err(bad(field, format!("must be positive, not `{s}`")));
    }
    // humantime panics (in `Duration::new`) when nanoseconds carry into seconds already near
    // their maximum: refuse any text whose numbers, all read as years, could come near it.
    if !within_humantime_range(s) {
        return Err(bad(field, format!("`{s}` is out of range")));
    }
    humantime::parse_duration(s).map_err(|e| {
        bad(
            field,
            format!("`{s}` is not an interval ({e}); use seconds (300), text (\"2 minutes\", \"1h30m\") or ISO 8601 (\"PT5M\")"),
        )
    })
}

/// Whether the numbers in `s`, each taken in humantime's longest unit (a year of 365.25
/// days), add up to less than 2^62 seconds: then no sum humantime makes can overflow.
fn within_humantime_range(s: &str) -> bool {
    const YEAR_SECS: u128 = 31_557_600;
    let mut total: u128 = 0;
    for run in s.split(|c: char| !c.is_ascii_digit()).filter(|r| !r.is_empty()) {
        // 64 characters at most, so a run has at most 64 digits: u128 holds 38. Longer is out.
        let Ok(n) = run.parse::<u128>() else { return false };
        total = match n.checked_mul(YEAR_SECS).and_then(|y| total.checked_add(y)) {
            Some(t) => t,
            None => return false,
        };
    }
    total < 1 << 62
}

/// ISO 8601 durations with days, weeks, hours, minutes and (fractional) seconds. Years and
/// months are refused: their length depends on the calendar.
fn parse_iso8601(s: &str) -> Option<Duration> {
    let s = s.to_ascii_uppercase();
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total = 0f64;
    let mut any = false;
    for (part, units) in [
        (date, &[('W', 604_800.0), ('D', 86_400.0)][..]),
        (time.unwrap_or(""), &[('H', 3_600.0), ('M', 60.0), ('S', 1.0)][..]),
    ] {
        let mut num = String::new();
        let mut next_unit = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' || c == ',' {
                num.push(if c == ',' { '.' } else { c });
                continue;
            }
            let idx = units.iter().position(|(u, _)| *u == c)?;
            if idx < next_unit || num.is_empty() {
                return None;
            }
            let value: f64 = num.parse().ok()?;
            total += value * units[idx].1;
            any = true;
            next_unit = idx + 1;
            num.clear();
        }
        if !num.is_empty() {
            return None;
        }
    }
    if time == Some("") || !any || !total.is_finite() {
        return None;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(v: Value) -> u64 {
        parse_interval("interval", &v).unwrap().as_secs()
    }

    #[test]
    fn every_written_form_is_read() {
        assert_eq!(ok(json!(300)), 300);
        assert_eq!(ok(json!("300")), 300);
        assert_eq!(ok(json!("2 minutes")), 120);
        assert_eq!(ok(json!("1h30m")), 5_400);
        assert_eq!(ok(json!("PT5M")), 300);
        assert_eq!(ok(json!("PT1H30M")), 5_400);
        assert_eq!(ok(json!("P1DT2H")), 93_600);
        assert_eq!(ok(json!("P2W")), 1_209_600);
        assert_eq!(ok(json!("pt90s")), 90);
        assert_eq!(parse_interval("interval", &json!("PT0.5S")).unwrap(), Duration::from_millis(500));
    }

    #[test]
    fn bad_intervals_name_the_field() {
        for v in [
            json!(0),
            json!(-5),
            json!("0"),
            json!("-5 minutes"),
            json!("P"),
            json!("PT"),
            json!("P1Y"),
            json!("P1M2D"),
            json!("PTM"),
            json!("soon"),
            json!(true),
            json!(null),
            json!([1]),
            json!(""),
        ] {
            let e = parse_interval("interval", &v).unwrap_err();
            assert_eq!(e.field, "interval", "{v}");
        }
    }

    #[test]
    fn the_range_is_checked() {
        assert!(check_range("interval", Duration::from_millis(500)).is_err());
        assert!(check_range("interval", Duration::from_secs(1)).is_ok());
        assert!(check_range("interval", MAX_INTERVAL + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn a_text_at_the_largest_duration_is_refused_not_panicked_on() {
        let e = parse_interval("interval", &serde_json::json!("18446744073709551615s 1000000000ns")).unwrap_err();
        assert!(e.reason.contains("out of range"), "{}", e.reason);
    }
}
