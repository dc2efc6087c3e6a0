//! Reading a job request (the POST or PATCH body, already parsed as JSON) into a schedule,
//! policies and a payload.
//!
//! The service's own keys are listed in [`SERVICE_KEYS`]; every other key is payload for the
//! job type. A schedule is exactly one of `when` (one time), `cron` (with `timezone`),
//! `interval` (with an optional start: `when` or `initialDelay`), the reference service's
//! `jobType: "RECURRING"` with `repeatIntervalInDays`, or a `triggers` array of those.

use std::time::Duration;

use chrono::DateTime;
use serde_json::{Map, Value};

use crate::clock::Ts;
use crate::error::CoreError;
use crate::model::JobId;
use crate::trigger::{
    check_range, parse_cron, parse_delay, parse_interval, Backoff, BackoffKind, JobSpec, MisfirePolicy, OverlapPolicy,
    RetryPolicy, ScheduleError, ScheduleSpec, Trigger,
};

/// Keys the service reads itself; they never reach the job as payload.
pub const SERVICE_KEYS: [&str; 18] = [
    "when",
    "jobType",
    "repeatIntervalInDays",
    "repeatCount",
    "isPaused",
    "cron",
    "timezone",
    "interval",
    "initialDelay",
    "until",
    "misfire",
    "triggers",
    "overlap",
    "attempts",
    "backoff",
    "priority",
    "now",
    "id",
];

/// Keys a reschedule (PATCH) body may hold: the schedule's, and `enabled`.
pub const RESCHEDULE_KEYS: [&str; 12] = [
    "when",
    "jobType",
    "repeatIntervalInDays",
    "repeatCount",
    "cron",
    "timezone",
    "interval",
    "initialDelay",
    "until",
    "misfire",
    "triggers",
    "enabled",
];

/// Keys of one entry of `triggers`.
const TRIGGER_KEYS: [&str; 11] = [
    "when",
    "cron",
    "timezone",
    "interval",
    "initialDelay",
    "repeatCount",
    "until",
    "misfire",
    "enabled",
    "data",
    "name",
];

/// The most triggers one job may have.
pub const MAX_TRIGGERS: usize = 32;

/// A create request, read.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRequest {
    /// Triggers and policies.
    pub spec: JobSpec,
    /// The payload keys as a JSON object (text).
    pub payload: String,
    /// Create the job paused.
    pub paused: bool,
    /// Run it at once as well (`now: true`).
    pub run_now: bool,
    /// A client-chosen id (`id`), which also makes the create idempotent.
    pub id: Option<JobId>,
}

impl CreateRequest {
    /// A plain one-time job (used by bulk imports and benchmarks).
    pub fn once(when: Ts, payload: impl Into<String>) -> CreateRequest {
        CreateRequest { spec: JobSpec::once(when), payload: payload.into(), paused: false, run_now: false, id: None }
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> CoreError {
    CoreError::InvalidField { field: field.into(), reason: reason.into() }
}

impl From<ScheduleError> for CoreError {
    fn from(e: ScheduleError) -> CoreError {
        invalid(e.field, e.reason)
    }
}

/// Prefixes nested field names: `triggers[1].cron`.
fn at(prefix: &str, field: &str) -> String {
    format!("{prefix}{field}")
}

fn relabel(prefix: &str, e: ScheduleError) -> CoreError {
    invalid(at(prefix, e.field), e.reason)
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

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 64 {
        format!("{}…", s.chars().take(64).collect::<String>())
    } else {
        s
    }
}

/// The earliest instant a job may name (1970-01-01T00:00:00Z), in seconds since the epoch.
const MIN_INSTANT: i64 = 0;
/// The latest (9999-12-31T23:59:59Z).
const MAX_INSTANT: i64 = 253_402_300_799;

/// Parses an instant: RFC 3339 / ISO 8601 with a UTC offset, e.g. `2017-09-21T23:58:16.797Z`,
/// from 1970 to 9999.
pub fn parse_instant(field: &str, v: &Value) -> Result<Ts, CoreError> {
    let s = v.as_str().ok_or_else(|| {
        invalid(
            field,
            format!(
                "must be a string holding an ISO 8601 instant with an offset, e.g. \"2017-09-21T23:58:16.797Z\", not {}",
                kind(v)
            ),
        )
    })?;
    let shown: String = s.chars().take(64).collect();
    match DateTime::parse_from_rfc3339(s.trim()) {
        Ok(d) => {
            let d = d.to_utc();
            // On the instant itself: a leap second (`23:59:60`) reads as the next second.
            if !(MIN_INSTANT..=MAX_INSTANT).contains(&Ts::from_datetime(d).0.div_euclid(1_000_000)) {
                return Err(invalid(
                    field,
                    format!(
                        "\"{shown}\" is out of range: use an instant from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
                    ),
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
            Err(invalid(
                field,
                format!(
                    "\"{shown}\" is not an ISO 8601 instant with an offset (e.g. \"2017-09-21T23:58:16.797Z\"): {hint}"
                ),
            ))
        }
    }
}

/// Checks an instant a job names (from a plugin or an import) is in the range the API accepts.
pub fn check_instant(field: &str, t: Ts) -> Result<(), CoreError> {
    let secs = t.0.div_euclid(1_000_000);
    if (MIN_INSTANT..=MAX_INSTANT).contains(&secs) {
        Ok(())
    } else {
        Err(invalid(field, "is out of range: use an instant from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z"))
    }
}

fn job_type(map: &Map<String, Value>) -> Result<bool, CoreError> {
    match map.get("jobType") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("ONE_TIME") => Ok(false),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("RECURRING") => Ok(true),
        Some(other) => Err(invalid("jobType", format!("must be \"ONE_TIME\" or \"RECURRING\", not {}", short(other)))),
    }
}

fn positive_int(field: &str, v: &Value, max: u64) -> Result<u64, CoreError> {
    match v.as_u64() {
        Some(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(invalid(field, format!("must be a whole number from 1 to {max}, not {}", short(v)))),
    }
}

fn policy<T>(field: &str, v: &Value, names: &[(&str, T)]) -> Result<T, CoreError>
where
    T: Copy,
{
    let s = v.as_str().unwrap_or_default();
    names.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)).map(|(_, p)| *p).ok_or_else(|| {
        invalid(
            field,
            format!(
                "must be one of {}, not {}",
                names.iter().map(|(n, _)| format!("\"{n}\"")).collect::<Vec<_>>().join(", "),
                short(v)
            ),
        )
    })
}

fn duration_ms(field: &str, v: &Value) -> Result<u64, CoreError> {
    // Bare numbers are milliseconds here (seed 001's `backoff.delay`); text may carry a unit.
    let d = match v {
        Value::Number(n) => match n.as_u64() {
            Some(ms) => Duration::from_millis(ms),
            None => return Err(invalid(field, format!("must be a whole number of milliseconds, not {n}"))),
        },
        _ => parse_delay("backoff", v).map_err(|e| invalid(field, e.reason))?,
    };
    u64::try_from(d.as_millis()).map_err(|_| invalid(field, "is too long"))
}

/// Reads one trigger from `map` (the body itself, or one entry of `triggers`).
fn parse_trigger(
    map: &Map<String, Value>,
    prefix: &str,
    now: Ts,
    recurring_form: bool,
    run_now: bool,
) -> Result<Trigger, CoreError> {
    let get = |k: &str| map.get(k).filter(|v| !v.is_null());
    let (when, cron, interval) = (get("when"), get("cron"), get("interval"));
    if recurring_form {
        if cron.is_some() || interval.is_some() {
            return Err(invalid(
                at(prefix, if cron.is_some() { "cron" } else { "interval" }),
                "jobType RECURRING takes `when` and `repeatIntervalInDays`; use `cron` or `interval` without jobType",
            ));
        }
    } else if map.contains_key("repeatIntervalInDays") {
        return Err(invalid("repeatIntervalInDays", "is only valid with jobType RECURRING"));
    }
    if cron.is_some() && when.is_some() {
        return Err(invalid(at(prefix, "cron"), "give either `when` (one time) or `cron`, not both"));
    }
    if cron.is_some() && interval.is_some() {
        return Err(invalid(at(prefix, "interval"), "give either `cron` or `interval`, not both"));
    }
    if get("timezone").is_some() && cron.is_none() {
        return Err(invalid(at(prefix, "timezone"), "only applies to a `cron` schedule"));
    }
    if get("initialDelay").is_some() && interval.is_none() {
        return Err(invalid(at(prefix, "initialDelay"), "only applies to an `interval` schedule"));
    }
    let schedule = if recurring_form {
        let start = parse_instant(
            &at(prefix, "when"),
            when.ok_or_else(|| invalid(at(prefix, "when"), "is required with jobType RECURRING"))?,
        )?;
        let days = positive_int(
            "repeatIntervalInDays",
            map.get("repeatIntervalInDays")
                .ok_or_else(|| invalid("repeatIntervalInDays", "is required with jobType RECURRING (at least 1)"))?,
            36_500,
        )?;
        ScheduleSpec::Interval { every_ms: days * 86_400_000, start }
    } else if let Some(expr) = cron {
        let expr = expr
            .as_str()
            .ok_or_else(|| invalid(at(prefix, "cron"), format!("must be a string, not {}", kind(expr))))?;
        let timezone = match get("timezone") {
            Some(Value::String(tz)) => tz.trim().to_owned(),
            Some(other) => {
                return Err(invalid(at(prefix, "timezone"), format!("must be a string, not {}", kind(other))))
            }
            None => "UTC".to_owned(),
        };
        parse_cron(expr, &timezone).map_err(|e| relabel(prefix, e))?;
        ScheduleSpec::Cron { expr: expr.trim().to_owned(), timezone }
    } else if let Some(every) = interval {
        let every = parse_interval("interval", every)
            .and_then(|d| check_range("interval", d))
            .map_err(|e| relabel(prefix, e))?;
        if when.is_some() && get("initialDelay").is_some() {
            return Err(invalid(
                at(prefix, "initialDelay"),
                "give either `when` or `initialDelay` as the start, not both",
            ));
        }
        let start = match (when, get("initialDelay")) {
            (Some(w), _) => parse_instant(&at(prefix, "when"), w)?,
            (None, Some(d)) => {
                let d = parse_delay("initialDelay", d).map_err(|e| relabel(prefix, e))?;
                let start = now.plus_micros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
                check_instant(&at(prefix, "initialDelay"), start)?;
                start
            }
            (None, None) => now,
        };
        ScheduleSpec::Interval { every_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX), start }
    } else if let Some(w) = when {
        if run_now {
            return Err(invalid("now", "give either `now: true` or a one-time `when`, not both"));
        }
        ScheduleSpec::Once { when: parse_instant(&at(prefix, "when"), w)? }
    } else if run_now {
        ScheduleSpec::Once { when: now }
    } else {
        return Err(invalid(
            at(prefix, "when"),
            "is required: the ISO 8601 instant (with offset) at which the job runs, e.g. \"2017-09-21T23:58:16.797Z\" \
             (or give `cron` or `interval` for a recurring job)",
        ));
    };
    let mut trigger = Trigger::new(schedule);
    let recurring = trigger.is_recurring();
    if let Some(n) = get("repeatCount") {
        if !recurring {
            return Err(invalid(
                at(prefix, "repeatCount"),
                "only applies to a recurring schedule (`cron`, `interval` or jobType RECURRING)",
            ));
        }
        trigger.repeat_count = Some(positive_int(&at(prefix, "repeatCount"), n, u64::MAX)?);
    }
    if let Some(u) = get("until") {
        if !recurring {
            return Err(invalid(at(prefix, "until"), "only applies to a recurring schedule"));
        }
        let until = parse_instant(&at(prefix, "until"), u)?;
        let start = match &trigger.schedule {
            ScheduleSpec::Interval { start, .. } => *start,
            _ => now,
        };
        if until < start {
            return Err(invalid(at(prefix, "until"), format!("{until} is before the schedule starts ({start})")));
        }
        trigger.until = Some(until);
    }
    if let Some(m) = get("misfire") {
        trigger.misfire = policy(
            &at(prefix, "misfire"),
            m,
            &[
                ("fireOnce", MisfirePolicy::FireOnce),
                ("skip", MisfirePolicy::Skip),
                ("fireAll", MisfirePolicy::FireAll),
            ],
        )?;
    }
    // `enabled`, `data` and `name` are settings of an entry of `triggers` only: at the top
    // level they are payload keys like any other.
    if prefix.is_empty() {
        return Ok(trigger);
    }
    if let Some(e) = get("enabled") {
        trigger.enabled = e
            .as_bool()
            .ok_or_else(|| invalid(at(prefix, "enabled"), format!("must be true or false, not {}", short(e))))?;
    }
    if let Some(d) = get("data") {
        let data = d
            .as_object()
            .ok_or_else(|| invalid(at(prefix, "data"), format!("must be a JSON object, not {}", kind(d))))?;
        if has_nul(d) {
            return Err(invalid(
                at(prefix, "data"),
                "contains a NUL character (\\u0000), which the job store cannot keep",
            ));
        }
        trigger.data = Some(data.clone());
    }
    if let Some(n) = get("name") {
        let n = n
            .as_str()
            .filter(|n| n.len() <= 200 && !n.contains('\0'))
            .ok_or_else(|| invalid(at(prefix, "name"), "must be a string of at most 200 bytes, without NUL"))?;
        trigger.name = Some(n.to_owned());
    }
    Ok(trigger)
}

fn parse_triggers(map: &Map<String, Value>, now: Ts, run_now: bool) -> Result<Vec<Trigger>, CoreError> {
    let recurring_form = job_type(map)?;
    let Some(list) = map.get("triggers").filter(|v| !v.is_null()) else {
        return Ok(vec![parse_trigger(map, "", now, recurring_form, run_now)?]);
    };
    if let Some(k) = ["when", "cron", "interval", "timezone", "initialDelay", "until", "misfire", "repeatCount"]
        .into_iter()
        .find(|k| map.contains_key(*k))
    {
        return Err(invalid(k, "give the schedule either at the top level or in `triggers`, not both"));
    }
    if recurring_form {
        return Err(invalid("jobType", "jobType RECURRING cannot be combined with `triggers`"));
    }
    let list = list
        .as_array()
        .ok_or_else(|| invalid("triggers", format!("must be an array of schedules, not {}", kind(list))))?;
    if list.is_empty() || list.len() > MAX_TRIGGERS {
        return Err(invalid("triggers", format!("must hold 1 to {MAX_TRIGGERS} schedules, not {}", list.len())));
    }
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            let prefix = format!("triggers[{i}].");
            let m = t
                .as_object()
                .ok_or_else(|| invalid(format!("triggers[{i}]"), format!("must be an object, not {}", kind(t))))?;
            if let Some(k) = m.keys().find(|k| !TRIGGER_KEYS.contains(&k.as_str())) {
                return Err(invalid(
                    format!("{prefix}{}", clip(k)),
                    format!("is not a trigger key (those are {})", TRIGGER_KEYS.join(", ")),
                ));
            }
            parse_trigger(m, &prefix, now, false, false)
        })
        .collect()
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

fn parse_retry(map: &Map<String, Value>) -> Result<Option<RetryPolicy>, CoreError> {
    let attempts = map.get("attempts").filter(|v| !v.is_null());
    let backoff = map.get("backoff").filter(|v| !v.is_null());
    if attempts.is_none() && backoff.is_none() {
        return Ok(None);
    }
    let attempts = match attempts {
        Some(a) => std::num::NonZeroU32::new(positive_int("attempts", a, 100)? as u32),
        None => None, // the job type's default, as the node running the fire knows it
    };
    let mut b = Backoff::default();
    if let Some(v) = backoff {
        let o = v.as_object().ok_or_else(|| {
            invalid(
                "backoff",
                format!("must be an object like {{\"type\": \"exponential\", \"delay\": 1000}}, not {}", kind(v)),
            )
        })?;
        for (k, v) in o {
            match k.as_str() {
                "type" => {
                    b.kind = policy(
                        "backoff.type",
                        v,
                        &[("fixed", BackoffKind::Fixed), ("exponential", BackoffKind::Exponential)],
                    )?
                }
                "delay" | "base" => b.base_ms = duration_ms(&format!("backoff.{k}"), v)?,
                "cap" | "max" => b.cap_ms = duration_ms(&format!("backoff.{k}"), v)?,
                "factor" => {
                    b.factor = v.as_f64().filter(|f| (1.0..=100.0).contains(f)).ok_or_else(|| {
                        invalid("backoff.factor", format!("must be a number from 1 to 100, not {}", short(v)))
                    })?
                }
                "jitter" => {
                    b.jitter = v
                        .as_bool()
                        .ok_or_else(|| invalid("backoff.jitter", format!("must be true or false, not {}", short(v))))?
                }
                other => {
                    return Err(invalid(
                        format!("backoff.{}", clip(other)),
                        "is not a backoff key (type, delay, factor, cap, jitter)",
                    ))
                }
            }
        }
        if b.cap_ms < b.base_ms {
            b.cap_ms = b.base_ms;
        }
    }
    Ok(Some(RetryPolicy { attempts, backoff: b }))
}

fn parse_priority(v: &Value) -> Result<i16, CoreError> {
    if let Some(n) = v.as_i64() {
        return i16::try_from(n)
            .ok()
            .filter(|n| (-100..=100).contains(n))
            .ok_or_else(|| invalid("priority", format!("must be from -100 to 100, not {n}")));
    }
    policy("priority", v, &[("low", -10), ("normal", 0), ("medium", 5), ("high", 10), ("critical", 20)])
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn nul_refused() -> CoreError {
    invalid("body", "a payload string or key contains a NUL character (\\u0000), which the job store cannot keep")
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

/// Reads a POST body; `now` is the instant intervals and run-now start from.
pub fn parse_create(body: &Value, now: Ts) -> Result<CreateRequest, CoreError> {
    let map = object(body)?;
    let run_now = match map.get("now") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(invalid("now", format!("must be true or false, not {}", short(other)))),
    };
    let triggers = parse_triggers(map, now, run_now)?;
    let paused = match map.get("isPaused") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(invalid("isPaused", format!("must be true or false, not {}", short(other)))),
    };
    let overlap = match map.get("overlap").filter(|v| !v.is_null()) {
        Some(v) => policy(
            "overlap",
            v,
            &[("skip", OverlapPolicy::Skip), ("queue", OverlapPolicy::Queue), ("allow", OverlapPolicy::Allow)],
        )?,
        None => OverlapPolicy::default(),
    };
    let priority = match map.get("priority").filter(|v| !v.is_null()) {
        Some(v) => parse_priority(v)?,
        None => 0,
    };
    let id = match map.get("id").filter(|v| !v.is_null()) {
        Some(v) => Some(v.as_str().and_then(|s| s.parse::<JobId>().ok()).ok_or_else(|| {
            invalid("id", format!("must be a UUID (the job's id, which makes the create idempotent), not {}", short(v)))
        })?),
        None => None,
    };
    let retry = parse_retry(map)?;
    let payload: Map<String, Value> =
        map.iter().filter(|(k, _)| !SERVICE_KEYS.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    if payload.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) {
        return Err(nul_refused());
    }
    let payload = serde_json::to_string(&payload).map_err(|e| invalid("body", e.to_string()))?;
    let spec = JobSpec { anchor: anchor(&triggers, now), triggers, overlap, retry, priority };
    Ok(CreateRequest { spec, payload, paused, run_now, id })
}

/// The instant shown as `when`: the first trigger's instant or start (for cron, the first fire).
fn anchor(triggers: &[Trigger], now: Ts) -> Ts {
    match triggers.first().map(|t| &t.schedule) {
        Some(ScheduleSpec::Once { when }) => *when,
        Some(ScheduleSpec::Interval { start, .. }) => *start,
        Some(ScheduleSpec::Cron { .. }) => {
            crate::trigger::Compiled::new(&triggers[0]).ok().and_then(|c| c.first(now)).unwrap_or(now)
        }
        None => now,
    }
}

/// Reads a PATCH body: new triggers (any schedule form) for the job; its payload, pause state
/// and policies are kept.
pub fn parse_reschedule(body: &Value, now: Ts) -> Result<Vec<Trigger>, CoreError> {
    let map = object(body)?;
    if let Some(key) = map.keys().find(|k| !RESCHEDULE_KEYS.contains(&k.as_str())) {
        return Err(invalid(
            "body",
            format!("`{}`: PATCH changes only the schedule (`when`, `cron`, `interval`, `triggers`, ...); the payload and pause state are kept", clip(key)),
        ));
    }
    let mut triggers = parse_triggers(map, now, false)?;
    // In a PATCH (where no key is payload) a top-level `enabled` switches the schedule.
    if let Some(e) = map.get("enabled").filter(|v| !v.is_null()) {
        if map.get("triggers").is_some_and(|t| !t.is_null()) {
            return Err(invalid("enabled", "give `enabled` in each entry of `triggers`"));
        }
        let on = e.as_bool().ok_or_else(|| invalid("enabled", format!("must be true or false, not {}", short(e))))?;
        for t in &mut triggers {
            t.enabled = on;
        }
    }
    Ok(triggers)
}

/// The anchor instant for new triggers (the `when` a rescheduled job shows).
pub fn anchor_of(triggers: &[Trigger], now: Ts) -> Ts {
    anchor(triggers, now)
}

#[cfg(test)]
mod tests;
