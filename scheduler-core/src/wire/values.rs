//! What every entry point reads a value with: the request read with the path of a wrong
//! value, an instant, and how a wrong value is described.

use chrono::DateTime;
use serde_json::Value;

use crate::clock::Ts;
use crate::error::CoreError;

/// The most triggers one job may have.
pub const MAX_TRIGGERS: usize = 32;

/// What kind of JSON value `v` is ("a string"), for errors.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `v` as JSON text, cut to 64 characters, for errors.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 64 {
        format!("{}…", s.chars().take(64).collect::<String>())
    } else {
        s
    }
}

/// The earliest instant a job may name (1970-01-01T00:00:00Z), in seconds since the epoch.
pub const MIN_INSTANT: i64 = 0;

/// The latest (9999-12-31T23:59:59Z).
pub const MAX_INSTANT: i64 = 253_402_300_799;

/// An RFC 3339 / ISO 8601 instant with a UTC offset, e.g. `2017-09-21T23:58:16.797Z`, from 1970
/// to 9999; or what is wrong with it (without naming the key).
pub fn instant_of(v: &Value) -> Result<Ts, String> {
    let s = v.as_str().ok_or_else(|| {
        format!(
            "must be a string holding an ISO 8601 instant with an offset, e.g. \"2017-09-21T23:58:16.797Z\", not {}",
            kind(v)
        )
    })?;
    let shown: String = s.chars().take(64).collect();
    match DateTime::parse_from_rfc3339(s.trim()) {
        Ok(d) => {
            let d = d.to_utc();
            // On the instant itself: a leap second (`23:59:60`) reads as the next second.
            if !(MIN_INSTANT..=MAX_INSTANT).contains(&Ts::from_datetime(d).0.div_euclid(1_000_000)) {
                return Err(format!(
                    "\"{shown}\" is out of range: use an instant from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
                ));
            }
            Ok(Ts::from_datetime(d))
        }
        Err(e) => {
            let hint = if chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%.f").is_ok() {
                "it has no UTC offset: add `Z` or one like `+02:00`".to_owned()
            } else {
                format!("{e}")
            };
            Err(format!(
                "\"{shown}\" is not an ISO 8601 instant with an offset (e.g. \"2017-09-21T23:58:16.797Z\"): {hint}"
            ))
        }
    }
}

/// Reads a request of type `T` from a JSON value; a wrong value is an error naming its path
/// (`triggers[1].cron`, or `body` for the body itself).
pub fn read<'a, T: serde::Deserialize<'a>>(body: &'a Value) -> Result<T, CoreError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        // The path as `triggers[1].cron`, each key cut to 64 characters (a key a client made
        // up is echoed, and a hostile one may be long).
        let mut field = String::new();
        for segment in e.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => field.push_str(&format!("[{index}]")),
                serde_path_to_error::Segment::Map { key } => {
                    if !field.is_empty() {
                        field.push('.');
                    }
                    field.extend(key.chars().take(64));
                }
                serde_path_to_error::Segment::Enum { variant } => field.push_str(variant),
                serde_path_to_error::Segment::Unknown => field.push('?'),
            }
        }
        if field.is_empty() {
            field.push_str("body");
        }
        CoreError::InvalidField { field, reason: e.inner().to_string() }
    })
}

/// Whether a string or key anywhere in `v` holds a NUL character.
pub fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}
