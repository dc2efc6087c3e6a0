//! Reading a job request (the POST or PATCH body, already parsed as JSON) into a schedule and
//! a payload. The service's own keys are `when`, `jobType`, `repeatIntervalInDays`,
//! `repeatCount` and `isPaused`; every other key is payload for the job type.

use chrono::DateTime;
use serde_json::{Map, Value};

use crate::clock::Ts;
use crate::error::CoreError;
use crate::model::Schedule;

/// Keys the service reads itself; they never reach the job as payload.
pub const SERVICE_KEYS: [&str; 5] = ["when", "jobType", "repeatIntervalInDays", "repeatCount", "isPaused"];

/// A create request, read.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRequest {
    /// When the job fires.
    pub schedule: Schedule,
    /// The payload keys as a JSON object (text).
    pub payload: String,
    /// Create the job paused.
    pub paused: bool,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> CoreError {
    CoreError::InvalidField { field, reason: reason.into() }
}

fn object(body: &Value) -> Result<&Map<String, Value>, CoreError> {
    body.as_object()
        .ok_or_else(|| invalid("body", format!("must be a JSON object with a `when` key, not {}", kind(body))))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The earliest instant a job may name (1970-01-01T00:00:00Z), in seconds since the epoch.
const MIN_INSTANT: i64 = 0;
/// The latest (9999-12-31T23:59:59Z).
const MAX_INSTANT: i64 = 253_402_300_799;

/// Parses an instant: RFC 3339 / ISO 8601 with a UTC offset, e.g. `2017-09-21T23:58:16.797Z`,
/// from 1970 to 9999.
pub fn parse_instant(field: &'static str, v: &Value) -> Result<Ts, CoreError> {
    let s = v.as_str().ok_or_else(|| {
        invalid(
            field,
            format!("must be a string holding an ISO 8601 instant with an offset, e.g. \"2017-09-21T23:58:16.797Z\", not {}", kind(v)),
        )
    })?;
    match DateTime::parse_from_rfc3339(s.trim()) {
        Ok(d) => {
            let d = d.to_utc();
            if !(MIN_INSTANT..=MAX_INSTANT).contains(&d.timestamp()) {
                return Err(invalid(
                    field,
                    format!(
                        "\"{}\" is out of range: use an instant from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z",
                        s.chars().take(64).collect::<String>()
                    ),
                ));
            }
            Ok(Ts::from_datetime(d))
        }
        Err(e) => {
            let shown: String = s.chars().take(64).collect();
            let hint = if chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%.f").is_ok() {
                "it has no UTC offset: add `Z` or one like `+02:00`".to_owned()
            } else {
                format!("{e}")
            };
            Err(invalid(
                field,
                format!(
                    "\"{shown}\" is not an ISO 8601 instant with an offset (e.g. \"2017-09-21T23:58:16.797Z\"): {hint}"
                ),
            ))
        }
    }
}

fn job_type(map: &Map<String, Value>) -> Result<&'static str, CoreError> {
    match map.get("jobType") {
        None | Some(Value::Null) => Ok("ONE_TIME"),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("ONE_TIME") => Ok("ONE_TIME"),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("RECURRING") => Err(invalid(
            "jobType",
            "RECURRING jobs are not supported by this version of the scheduler yet; use ONE_TIME",
        )),
        Some(other) => Err(invalid("jobType", format!("must be \"ONE_TIME\" or \"RECURRING\", not {}", short(other)))),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 64 {
        format!("{}…", s.chars().take(64).collect::<String>())
    } else {
        s
    }
}

/// Reads a POST body.
pub fn parse_create(body: &Value) -> Result<CreateRequest, CoreError> {
    let map = object(body)?;
    job_type(map)?;
    for key in ["repeatIntervalInDays", "repeatCount"] {
        if map.contains_key(key) {
            return Err(invalid(
                if key == "repeatCount" { "repeatCount" } else { "repeatIntervalInDays" },
                "is only valid with jobType RECURRING",
            ));
        }
    }
    let when = map.get("when").ok_or_else(|| {
        invalid(
            "when",
            "is required: the ISO 8601 instant (with offset) at which the job runs, e.g. \"2017-09-21T23:58:16.797Z\"",
        )
    })?;
    let when = parse_instant("when", when)?;
    let paused = match map.get("isPaused") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(invalid("isPaused", format!("must be true or false, not {}", short(other)))),
    };
    let payload: Map<String, Value> =
        map.iter().filter(|(k, _)| !SERVICE_KEYS.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    if payload.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) {
        return Err(nul_refused());
    }
    let payload = serde_json::to_string(&payload).map_err(|e| invalid("body", e.to_string()))?;
    Ok(CreateRequest { schedule: Schedule::Once { when }, payload, paused })
}

/// Refuses payloads no store can keep: a NUL character (`\u0000`) in any string or key
/// (PostgreSQL's `jsonb` cannot hold one).
pub fn check_storable(payload: &Value) -> Result<(), CoreError> {
    if has_nul(payload) {
        Err(nul_refused())
    } else {
        Ok(())
    }
}

fn nul_refused() -> CoreError {
    invalid("body", "a payload string or key contains a NUL character (\\u0000), which the job store cannot keep")
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Checks an instant a job names (from a plugin or an import) is in the range the API accepts.
pub fn check_instant(field: &'static str, t: Ts) -> Result<(), CoreError> {
    let secs = t.0.div_euclid(1_000_000);
    if (MIN_INSTANT..=MAX_INSTANT).contains(&secs) {
        Ok(())
    } else {
        Err(invalid(field, "is out of range: use an instant from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z"))
    }
}

/// Reads a PATCH body: a new schedule; nothing else may change.
pub fn parse_reschedule(body: &Value) -> Result<Schedule, CoreError> {
    let map = object(body)?;
    job_type(map)?;
    if let Some(key) = map.keys().find(|k| !matches!(k.as_str(), "when" | "jobType")) {
        return Err(CoreError::InvalidField {
            field: "body",
            reason: format!(
                "`{}`: PATCH changes only the schedule (`when`); the payload and pause state are kept",
                key.chars().take(64).collect::<String>()
            ),
        });
    }
    let when = map
        .get("when")
        .ok_or_else(|| invalid("when", "is required: the new ISO 8601 instant (with offset) for the job"))?;
    Ok(Schedule::Once { when: parse_instant("when", when)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(e: CoreError) -> &'static str {
        match e {
            CoreError::InvalidField { field, .. } => field,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn the_reference_body_splits_into_schedule_and_payload() {
        let r =
            parse_create(&json!({"vmId": "79bfd10c-1529-42de-bd68-1a6e084ee13d", "when": "2017-09-21T23:58:16.797Z"}))
                .unwrap();
        assert_eq!(r.schedule.when().to_rfc3339(), "2017-09-21T23:58:16.797Z");
        assert_eq!(r.payload, r#"{"vmId":"79bfd10c-1529-42de-bd68-1a6e084ee13d"}"#);
        assert!(!r.paused);
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        let r = parse_create(&json!({"when": "2017-09-22T01:58:16.797+02:00"})).unwrap();
        assert_eq!(r.schedule.when().to_rfc3339(), "2017-09-21T23:58:16.797Z");
    }

    #[test]
    fn bad_bodies_name_the_field() {
        assert_eq!(field_of(parse_create(&json!([1])).unwrap_err()), "body");
        assert_eq!(field_of(parse_create(&json!({})).unwrap_err()), "when");
        assert_eq!(field_of(parse_create(&json!({"when": 5})).unwrap_err()), "when");
        assert_eq!(field_of(parse_create(&json!({"when": "tomorrow"})).unwrap_err()), "when");
        assert_eq!(field_of(parse_create(&json!({"when": "2017-09-21T23:58:16"})).unwrap_err()), "when");
        assert_eq!(
            field_of(parse_create(&json!({"when": "2017-09-21T23:58:16Z", "jobType": "RECURRING"})).unwrap_err()),
            "jobType"
        );
        assert_eq!(
            field_of(parse_create(&json!({"when": "2017-09-21T23:58:16Z", "jobType": 3})).unwrap_err()),
            "jobType"
        );
        assert_eq!(
            field_of(parse_create(&json!({"when": "2017-09-21T23:58:16Z", "repeatCount": 3})).unwrap_err()),
            "repeatCount"
        );
        assert_eq!(
            field_of(parse_create(&json!({"when": "2017-09-21T23:58:16Z", "isPaused": "yes"})).unwrap_err()),
            "isPaused"
        );
    }

    #[test]
    fn instants_outside_1970_to_9999_are_refused() {
        assert_eq!(field_of(parse_create(&json!({"when": "1969-12-31T23:59:59Z"})).unwrap_err()), "when");
        assert_eq!(field_of(parse_create(&json!({"when": "0000-01-01T00:00:00Z"})).unwrap_err()), "when");
        assert!(parse_create(&json!({"when": "1970-01-01T00:00:00Z"})).is_ok());
        assert!(parse_create(&json!({"when": "9999-12-31T23:59:59.999Z"})).is_ok());
        assert_eq!(field_of(parse_create(&json!({"when": "9999-12-31T23:59:59-01:00"})).unwrap_err()), "when");
    }

    #[test]
    fn a_nul_character_in_the_payload_is_refused() {
        let e = parse_create(&json!({"when": "2020-01-01T00:00:00Z", "name": "a\u{0}b"})).unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
        assert!(
            parse_create(&json!({"when": "2020-01-01T00:00:00Z", "name": "a\\u0000b"})).is_ok(),
            "an escaped backslash is fine"
        );
    }

    #[test]
    fn a_missing_offset_is_explained() {
        let e = parse_create(&json!({"when": "2017-09-21T23:58:16.797"})).unwrap_err();
        assert!(e.to_string().contains("no UTC offset"), "{e}");
    }

    #[test]
    fn patch_takes_only_the_schedule() {
        assert!(parse_reschedule(&json!({"when": "2017-09-21T22:16:36.797Z"})).is_ok());
        assert_eq!(field_of(parse_reschedule(&json!({})).unwrap_err()), "when");
        let e = parse_reschedule(&json!({"when": "2017-09-21T22:16:36.797Z", "vmId": "x"})).unwrap_err();
        assert!(e.to_string().contains("vmId"), "{e}");
    }
}
