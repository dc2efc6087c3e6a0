//! Reading a job request (the POST or PATCH body, already parsed as JSON) into a schedule,
//! policies and a payload.
//!
//! The service's own keys are listed in [`SERVICE_KEYS`]; every other key is payload for the
//! job type. A schedule is exactly one of `when` (one time), `cron` (with `timezone`),
//! `interval` (with an optional start: `when` or `initialDelay`), the reference service's
//! `jobType: "RECURRING"` with `repeatIntervalInDays`, or a `triggers` array of those.

use serde_json::{Map, Value};

use crate::clock::Ts;
use crate::error::CoreError;
use crate::model::JobId;
use crate::trigger::{parse_cron, Backoff, JobSpec, RetryPolicy, ScheduleError, ScheduleSpec, Trigger};
use crate::wire::fields::{Check, Checked, Data, Flag, FlagCheck, Name};
use crate::wire::values::{has_nul, instant_of, kind, MAX_INSTANT, MIN_INSTANT};
pub use crate::wire::MAX_TRIGGERS;
use crate::wire::{read, BackoffRequest, JobRequest, RescheduleRequest, ScheduleFields, ScheduleRequest};

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

/// Parses an instant: RFC 3339 / ISO 8601 with a UTC offset, e.g. `2017-09-21T23:58:16.797Z`,
/// from 1970 to 9999.
pub fn parse_instant(field: &str, v: &Value) -> Result<Ts, CoreError> {
    instant_of(v).map_err(|reason| invalid(field, reason))
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

/// The triggers one schedule makes: the top level of a body (`prefix` empty), or one entry of
/// `triggers` (`prefix` `triggers[i].`). `days` is the reference `RECURRING` form's
/// `repeatIntervalInDays` when that form is used.
fn trigger_of(
    f: ScheduleFields,
    entry: Option<(Option<Flag>, Option<Data>, Option<Name>)>,
    prefix: &str,
    now: Ts,
    recurring_form: Option<Option<u64>>,
    run_now: bool,
) -> Result<Trigger, CoreError> {
    let (cron, interval) = (f.cron.map(Checked::into_inner), f.interval.map(Checked::into_inner));
    let when = f.when.map(Checked::into_inner);
    if recurring_form.is_some() && (cron.is_some() || interval.is_some()) {
        return Err(invalid(
            at(prefix, if cron.is_some() { "cron" } else { "interval" }),
            "jobType RECURRING takes `when` and `repeatIntervalInDays`; use `cron` or `interval` without jobType",
        ));
    }
    if cron.is_some() && when.is_some() {
        return Err(invalid(at(prefix, "cron"), "give either `when` (one time) or `cron`, not both"));
    }
    if cron.is_some() && interval.is_some() {
        return Err(invalid(at(prefix, "interval"), "give either `cron` or `interval`, not both"));
    }
    if f.timezone.is_some() && cron.is_none() {
        return Err(invalid(at(prefix, "timezone"), "only applies to a `cron` schedule"));
    }
    if f.initial_delay.is_some() && interval.is_none() {
        return Err(invalid(at(prefix, "initialDelay"), "only applies to an `interval` schedule"));
    }
    let schedule = if let Some(days) = recurring_form {
        let start = when.ok_or_else(|| invalid(at(prefix, "when"), "is required with jobType RECURRING"))?;
        let days =
            days.ok_or_else(|| invalid("repeatIntervalInDays", "is required with jobType RECURRING (at least 1)"))?;
        ScheduleSpec::Interval { every_ms: days * 86_400_000, start }
    } else if let Some(expr) = cron {
        let timezone = f.timezone.map_or_else(|| "UTC".to_owned(), |z| z.into_inner().trim().to_owned());
        parse_cron(&expr, &timezone).map_err(|e| relabel(prefix, e))?;
        ScheduleSpec::Cron { expr: expr.trim().to_owned(), timezone }
    } else if let Some(every) = interval {
        if when.is_some() && f.initial_delay.is_some() {
            return Err(invalid(
                at(prefix, "initialDelay"),
                "give either `when` or `initialDelay` as the start, not both",
            ));
        }
        let start = match (when, f.initial_delay) {
            (Some(w), _) => w,
            (None, Some(d)) => {
                let start = now.plus_micros(i64::try_from(d.get().as_micros()).unwrap_or(i64::MAX));
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
        ScheduleSpec::Once { when: w }
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
    if let Some(n) = f.repeat_count {
        if !recurring {
            return Err(invalid(
                at(prefix, "repeatCount"),
                "only applies to a recurring schedule (`cron`, `interval` or jobType RECURRING)",
            ));
        }
        trigger.repeat_count = Some(n.get().get());
    }
    if let Some(u) = f.until {
        if !recurring {
            return Err(invalid(at(prefix, "until"), "only applies to a recurring schedule"));
        }
        let until = u.into_inner();
        let start = match &trigger.schedule {
            ScheduleSpec::Interval { start, .. } => *start,
            _ => now,
        };
        if until < start {
            return Err(invalid(at(prefix, "until"), format!("{until} is before the schedule starts ({start})")));
        }
        trigger.until = Some(until);
    }
    if let Some(m) = f.misfire {
        trigger.misfire = m.into_inner();
    }
    // `enabled`, `data` and `name` are settings of an entry of `triggers` only: at the top
    // level of a create body they are payload keys like any other.
    if let Some((enabled, data, name)) = entry {
        if let Some(e) = enabled {
            trigger.enabled = e.into_inner();
        }
        trigger.data = data.map(Checked::into_inner);
        trigger.name = name.map(Checked::into_inner);
    }
    Ok(trigger)
}

impl ScheduleRequest {
    /// The schedule's triggers; `now` is when intervals without a start start, and when a
    /// run-now job without `when` fires.
    pub fn into_triggers(self, now: Ts, run_now: bool) -> Result<Vec<Trigger>, CoreError> {
        let recurring_form = self.job_type.as_ref().is_some_and(|t| *t.get());
        let days = self.repeat_interval_in_days.map(Checked::into_inner);
        let Some(list) = self.triggers else {
            if !recurring_form && days.is_some() {
                return Err(invalid("repeatIntervalInDays", "is only valid with jobType RECURRING"));
            }
            let form = recurring_form.then_some(days);
            return Ok(vec![trigger_of(self.fields, None, "", now, form, run_now)?]);
        };
        let f = &self.fields;
        let top = [
            ("when", f.when.is_some()),
            ("cron", f.cron.is_some()),
            ("interval", f.interval.is_some()),
            ("timezone", f.timezone.is_some()),
            ("initialDelay", f.initial_delay.is_some()),
            ("until", f.until.is_some()),
            ("misfire", f.misfire.is_some()),
            ("repeatCount", f.repeat_count.is_some()),
        ];
        if let Some((k, _)) = top.iter().find(|(_, given)| *given) {
            return Err(invalid(*k, "give the schedule either at the top level or in `triggers`, not both"));
        }
        if recurring_form {
            return Err(invalid("jobType", "jobType RECURRING cannot be combined with `triggers`"));
        }
        list.into_iter()
            .enumerate()
            .map(|(i, t)| {
                let entry = Some((t.enabled, t.data, t.name));
                trigger_of(t.schedule, entry, &format!("triggers[{i}]."), now, None, false)
            })
            .collect()
    }
}

impl BackoffRequest {
    fn into_backoff(self) -> Backoff {
        let mut b = Backoff::default();
        if let Some(k) = self.kind {
            b.kind = k.into_inner();
        }
        if let Some(d) = self.delay {
            b.base_ms = d.into_inner();
        }
        if let Some(c) = self.cap {
            b.cap_ms = c.into_inner();
        }
        if let Some(f) = self.factor {
            b.factor = f.into_inner();
        }
        if let Some(j) = self.jitter {
            b.jitter = j.into_inner();
        }
        if b.cap_ms < b.base_ms {
            b.cap_ms = b.base_ms;
        }
        b
    }
}

impl JobRequest {
    /// The request, validated: its triggers and policies, its payload as text. `now` is when
    /// intervals without a start start and when a run-now job fires.
    pub fn into_create(self, now: Ts) -> Result<CreateRequest, CoreError> {
        let run_now = self.now.is_some_and(|n| n.into_inner());
        let triggers = self.schedule.into_triggers(now, run_now)?;
        let retry = match (self.attempts, self.backoff) {
            (None, None) => None,
            (attempts, backoff) => Some(RetryPolicy {
                attempts: attempts.map(Checked::into_inner),
                backoff: backoff.map(BackoffRequest::into_backoff).unwrap_or_default(),
            }),
        };
        if self.payload.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) {
            return Err(nul_refused());
        }
        let payload = serde_json::to_string(&self.payload).map_err(|e| invalid("body", e.to_string()))?;
        let spec = JobSpec {
            anchor: anchor(&triggers, now),
            triggers,
            overlap: self.overlap.map(Checked::into_inner).unwrap_or_default(),
            retry,
            priority: self.priority.map_or(0, Checked::into_inner),
        };
        Ok(CreateRequest {
            spec,
            payload,
            paused: self.is_paused.is_some_and(|p| p.into_inner()),
            run_now,
            id: self.id.map(Checked::into_inner),
        })
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
    object(body)?;
    read::<JobRequest>(body)?.into_create(now)
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
    let r = read::<RescheduleRequest>(body)?;
    let listed = r.schedule.triggers.is_some();
    let mut triggers = r.schedule.into_triggers(now, false)?;
    // In a PATCH (where no key is payload) a top-level `enabled` switches the schedule.
    if let Some(e) = r.enabled.filter(|e| !e.is_null()) {
        if listed {
            return Err(invalid("enabled", "give `enabled` in each entry of `triggers`"));
        }
        let on = FlagCheck::check(&e).map_err(|reason| invalid("enabled", reason))?;
        for t in &mut triggers {
            t.enabled = on;
        }
    }
    Ok(triggers)
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The anchor instant for new triggers (the `when` a rescheduled job shows).
pub fn anchor_of(triggers: &[Trigger], now: Ts) -> Ts {
    anchor(triggers, now)
}

#[cfg(test)]
mod tests;
