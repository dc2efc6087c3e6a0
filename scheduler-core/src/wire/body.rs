//! The request bodies: which keys the service reads, each with the type of its value. Every
//! other key of a create body is payload for the job type.
//!
//! The bodies are read by hand-written visitors rather than `#[serde(flatten)]`: flatten
//! buffers the body and loses the path of a wrong value (`triggers[1].cron`), and the payload's
//! keys are "every key not listed here". Each visitor lists its keys once; a unit test holds
//! the key lists (`SERVICE_KEYS`, ...) to them.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::fields::*;
use super::values::MAX_TRIGGERS;

/// The schedule keys of a body, or of one entry of `triggers`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleFields {
    /// One time: an ISO 8601 instant with an offset (a past one runs at once); with `interval`,
    /// its first fire.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime, example = "2017-09-21T23:58:16.797Z"))]
    pub when: Option<Instant>,
    /// A cron pattern (5 fields, or 6/7 with seconds and year).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "0 0 5 * * *"))]
    pub cron: Option<CronText>,
    /// The IANA time zone of `cron` (default UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "Europe/Prague"))]
    pub timezone: Option<Zone>,
    /// A period between fires: seconds, text (`2 minutes`) or ISO 8601 (`PT5M`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "PT5M"))]
    pub interval: Option<Period>,
    /// The delay before an interval's first fire (when `when` is not given).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "1m"))]
    pub initial_delay: Option<Delay>,
    /// A recurring schedule fires at most this many times.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>, minimum = 1))]
    pub repeat_count: Option<Count>,
    /// A recurring schedule fires no later than this.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub until: Option<Instant>,
    /// What missed fires do: `fireOnce`, `skip` or `fireAll`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "fireOnce"))]
    pub misfire: Option<Misfire>,
}

/// One entry of `triggers`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerRequest {
    /// Its schedule.
    #[serde(flatten)]
    pub schedule: ScheduleFields,
    /// A disabled trigger does not fire.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    pub enabled: Option<Flag>,
    /// Keys merged into the payload of the runs it fires.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub data: Option<Data>,
    /// A name for operators.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 200))]
    pub name: Option<Name>,
}

/// A retry policy's backoff.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BackoffRequest {
    /// `fixed` or `exponential`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "exponential"))]
    pub kind: Option<BackoffType>,
    /// The first wait (`base` is read too).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>, example = 1000))]
    pub delay: Option<Millis>,
    /// Exponential growth per attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>, minimum = 1, maximum = 100))]
    pub factor: Option<Factor>,
    /// The longest wait (`max` is read too).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    pub cap: Option<Millis>,
    /// Randomise each wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    pub jitter: Option<Flag>,
}

/// The schedule of a body: the top-level schedule keys, the reference `RECURRING` form, or
/// `triggers`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleRequest {
    /// The top-level schedule keys.
    #[serde(flatten)]
    pub fields: ScheduleFields,
    /// `ONE_TIME` (default) or `RECURRING` (with `when` and `repeatIntervalInDays`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "ONE_TIME"))]
    pub job_type: Option<JobType>,
    /// Days between fires of the `RECURRING` form.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>, minimum = 1, maximum = 36500))]
    pub repeat_interval_in_days: Option<Days>,
    /// Several schedules (1 to 32).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triggers: Option<Vec<TriggerRequest>>,
}

/// The body of a create request (`POST …/jobs`, a declared job, and every other entry point).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", schema(example = json!({"when": "2030-01-01T00:00:00Z", "vmId": "79bfd10c-1529-42de-bd68-1a6e084ee13d"})))]
pub struct JobRequest {
    /// Its schedule.
    #[serde(flatten)]
    pub schedule: ScheduleRequest,
    /// Create it paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    pub is_paused: Option<Flag>,
    /// Run it at once as well.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    pub now: Option<Flag>,
    /// A client-chosen id, which makes the create idempotent.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub id: Option<ClientId>,
    /// What a fire does while the previous run still runs: `skip` (default), `queue` or `allow`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "skip"))]
    pub overlap: Option<Overlap>,
    /// Higher runs first when more are due than workers are free: -100 to 100, or `low`,
    /// `normal`, `medium`, `high`, `critical`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i32>, minimum = -100, maximum = 100))]
    pub priority: Option<Priority>,
    /// Attempts per fire.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>, minimum = 1, maximum = 100))]
    pub attempts: Option<Attempts>,
    /// The wait before each retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffRequest>,
    /// Every other key: the payload the job receives (e.g. `vmId`).
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: Map<String, Value>,
}

/// The body of a reschedule request (`PATCH …/jobs/{id}`): a new schedule, and `enabled`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", schema(example = json!({"when": "2031-01-01T00:00:00Z"})))]
pub struct RescheduleRequest {
    /// The new schedule.
    #[serde(flatten)]
    pub schedule: ScheduleRequest,
    /// Switches every top-level schedule on or off (`true` or `false`; checked after the
    /// schedule, whose errors come first).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    pub enabled: Option<Value>,
}

/// Reads the value of `key` into the schedule keys, if it is one of them; `false` if not.
fn schedule_key<'de, A: MapAccess<'de>>(key: &str, f: &mut ScheduleFields, map: &mut A) -> Result<bool, A::Error> {
    match key {
        "when" => f.when = map.next_value()?,
        "cron" => f.cron = map.next_value()?,
        "timezone" => f.timezone = map.next_value()?,
        "interval" => f.interval = map.next_value()?,
        "initialDelay" => f.initial_delay = map.next_value()?,
        "repeatCount" => f.repeat_count = map.next_value()?,
        "until" => f.until = map.next_value()?,
        "misfire" => f.misfire = map.next_value()?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// As [`schedule_key`], with the keys of a whole schedule.
fn schedule_request_key<'de, A: MapAccess<'de>>(
    key: &str,
    s: &mut ScheduleRequest,
    map: &mut A,
) -> Result<bool, A::Error> {
    match key {
        "jobType" => s.job_type = map.next_value()?,
        "repeatIntervalInDays" => s.repeat_interval_in_days = map.next_value()?,
        "triggers" => s.triggers = map.next_value::<Option<Triggers>>()?.map(|t| t.0),
        _ => return schedule_key(key, &mut s.fields, map),
    }
    Ok(true)
}

/// A value that is always wrong where it stands (a key that is not allowed there); reading it
/// names the key in the error's path.
struct Refuse(String);

impl<'de> DeserializeSeed<'de> for Refuse {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        de::IgnoredAny::deserialize(d)?;
        Err(de::Error::custom(self.0))
    }
}

/// A visitor's answer to the kinds of value it does not take: "`what`, not an array".
macro_rules! refuse {
    ($what:expr; $($kind:ident),*) => { $(refuse!(@ $kind, $what);)* };
    (@bool, $what:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(E::custom(format!("{}, not a boolean", $what)))
        }
    };
    (@number, $what:expr) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(E::custom(format!("{}, not a number", $what)))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(E::custom(format!("{}, not a number", $what)))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(E::custom(format!("{}, not a number", $what)))
        }
    };
    (@string, $what:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err(E::custom(format!("{}, not a string", $what)))
        }
    };
    (@null, $what:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Err(E::custom(format!("{}, not null", $what)))
        }
    };
    (@array, $what:expr) => {
        fn visit_seq<S: SeqAccess<'de>>(self, _: S) -> Result<Self::Value, S::Error> {
            Err(de::Error::custom(format!("{}, not an array", $what)))
        }
    };
    (@object, $what:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(de::Error::custom(format!("{}, not an object", $what)))
        }
    };
}

/// What a visitor of an object says of anything else.
macro_rules! object_only {
    ($what:expr) => {
        refuse!($what; bool, number, string, null, array);
    };
}

struct JobVisitor;

impl<'de> Visitor<'de> for JobVisitor {
    type Value = JobRequest;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with a `when` key")
    }

    object_only!("must be a JSON object with a `when` key");

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JobRequest, A::Error> {
        let mut r = JobRequest::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "isPaused" => r.is_paused = map.next_value()?,
                "now" => r.now = map.next_value()?,
                "id" => r.id = map.next_value()?,
                "overlap" => r.overlap = map.next_value()?,
                "priority" => r.priority = map.next_value()?,
                "attempts" => r.attempts = map.next_value()?,
                "backoff" => r.backoff = map.next_value()?,
                k if schedule_request_key(k, &mut r.schedule, &mut map)? => {}
                _ => {
                    let v: Value = map.next_value()?;
                    r.payload.insert(key, v);
                }
            }
        }
        Ok(r)
    }
}

impl<'de> Deserialize<'de> for JobRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JobVisitor)
    }
}

struct RescheduleVisitor;

impl<'de> Visitor<'de> for RescheduleVisitor {
    type Value = RescheduleRequest;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with a schedule")
    }

    object_only!("must be a JSON object with a `when` key");

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RescheduleRequest, A::Error> {
        let mut r = RescheduleRequest::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "enabled" => r.enabled = map.next_value()?,
                k if schedule_request_key(k, &mut r.schedule, &mut map)? => {}
                other => {
                    let shown: String = other.chars().take(64).collect();
                    map.next_value_seed(Refuse(format!(
                        "`{shown}`: PATCH changes only the schedule (`when`, `cron`, `interval`, `triggers`, ...); the \
                         payload and pause state are kept"
                    )))?;
                }
            }
        }
        Ok(r)
    }
}

impl<'de> Deserialize<'de> for RescheduleRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RescheduleVisitor)
    }
}

/// The keys an entry of `triggers` takes.
pub const TRIGGER_KEYS: [&str; 11] = [
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

struct TriggerVisitor;

impl<'de> Visitor<'de> for TriggerVisitor {
    type Value = TriggerRequest;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a schedule object")
    }

    object_only!("must be an object");

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TriggerRequest, A::Error> {
        let mut t = TriggerRequest::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "enabled" => t.enabled = map.next_value()?,
                "data" => t.data = map.next_value()?,
                "name" => t.name = map.next_value()?,
                k if schedule_key(k, &mut t.schedule, &mut map)? => {}
                _ => map
                    .next_value_seed(Refuse(format!("is not a trigger key (those are {})", TRIGGER_KEYS.join(", "))))?,
            }
        }
        Ok(t)
    }
}

impl<'de> Deserialize<'de> for TriggerRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TriggerVisitor)
    }
}

/// `triggers`: an array of 1 to [`MAX_TRIGGERS`] schedules.
struct Triggers(Vec<TriggerRequest>);

struct TriggersVisitor;

impl<'de> Visitor<'de> for TriggersVisitor {
    type Value = Triggers;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of schedules")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Triggers, S::Error> {
        let mut out = Vec::new();
        while let Some(t) = seq.next_element::<TriggerRequest>()? {
            out.push(t);
        }
        if out.is_empty() || out.len() > MAX_TRIGGERS {
            return Err(de::Error::custom(format!("must hold 1 to {MAX_TRIGGERS} schedules, not {}", out.len())));
        }
        Ok(Triggers(out))
    }

    refuse!("must be an array of schedules"; bool, number, string, object);
}

impl<'de> Deserialize<'de> for Triggers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TriggersVisitor)
    }
}

struct BackoffVisitor;

impl<'de> Visitor<'de> for BackoffVisitor {
    type Value = BackoffRequest;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a backoff object")
    }

    object_only!(r#"must be an object like {"type": "exponential", "delay": 1000}"#);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BackoffRequest, A::Error> {
        let mut b = BackoffRequest::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" => b.kind = map.next_value()?,
                "delay" | "base" => b.delay = map.next_value()?,
                "cap" | "max" => b.cap = map.next_value()?,
                "factor" => b.factor = map.next_value()?,
                "jitter" => b.jitter = map.next_value()?,
                _ => map.next_value_seed(Refuse("is not a backoff key (type, delay, factor, cap, jitter)".into()))?,
            }
        }
        Ok(b)
    }
}

impl<'de> Deserialize<'de> for BackoffRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BackoffVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::request::{RESCHEDULE_KEYS, SERVICE_KEYS};
    use crate::wire::read;

    /// A valid value for every key the service reads.
    fn every_key() -> Value {
        json!({
            "when": "2030-01-01T00:00:00Z", "jobType": "ONE_TIME", "repeatIntervalInDays": 1, "repeatCount": 2,
            "isPaused": false, "cron": "* * * * *", "timezone": "UTC", "interval": "PT1M", "initialDelay": "1m",
            "until": "2031-01-01T00:00:00Z", "misfire": "skip", "triggers": [{"when": "2030-01-01T00:00:00Z"}],
            "overlap": "queue", "attempts": 3, "backoff": {"type": "fixed"}, "priority": 5, "now": false,
            "id": "79bfd10c-1529-42de-bd68-1a6e084ee13d"
        })
    }

    fn keys_of(v: &impl Serialize) -> Vec<String> {
        let mut k: Vec<String> = serde_json::to_value(v).unwrap().as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    fn sorted(keys: &[&str]) -> Vec<String> {
        let mut k: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        k.sort();
        k
    }

    #[test]
    fn the_key_lists_are_the_keys_the_bodies_read() {
        let body = every_key();
        let job: JobRequest = read(&body).unwrap();
        assert!(job.payload.is_empty(), "read as payload: {:?}", job.payload);
        assert_eq!(keys_of(&job), sorted(&SERVICE_KEYS));

        let reschedule: Map<String, Value> = body
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| RESCHEDULE_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut reschedule = Value::Object(reschedule);
        reschedule["enabled"] = json!(true);
        let r: RescheduleRequest = read(&reschedule).unwrap();
        assert_eq!(keys_of(&r), sorted(&RESCHEDULE_KEYS));
        for k in SERVICE_KEYS.iter().filter(|k| !RESCHEDULE_KEYS.contains(k)) {
            assert!(read::<RescheduleRequest>(&json!({ *k: body[*k].clone() })).is_err(), "{k} taken by PATCH");
        }

        let trigger = json!({
            "when": "2030-01-01T00:00:00Z", "cron": "* * * * *", "timezone": "UTC", "interval": "PT1M",
            "initialDelay": "1m", "repeatCount": 2, "until": "2031-01-01T00:00:00Z", "misfire": "skip",
            "enabled": true, "data": {"a": 1}, "name": "n"
        });
        let t: TriggerRequest = read(&trigger).unwrap();
        assert_eq!(keys_of(&t), sorted(&TRIGGER_KEYS));
        assert!(read::<TriggerRequest>(&json!({"vmId": 1})).is_err());
    }

    #[test]
    fn every_other_key_is_payload() {
        let r: JobRequest = read(&json!({"when": "2030-01-01T00:00:00Z", "vmId": "x", "n": [1, {"a": null}]})).unwrap();
        assert_eq!(Value::Object(r.payload), json!({"vmId": "x", "n": [1, {"a": null}]}));
    }

    #[test]
    fn a_wrong_value_is_named_by_its_path_with_long_keys_cut() {
        let field = |v: Value| match read::<JobRequest>(&v) {
            Err(crate::CoreError::InvalidField { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(json!({"triggers": [{"when": "2030-01-01T00:00:00Z"}, {"cron": 5}]})), "triggers[1].cron");
        assert_eq!(field(json!({"backoff": {"delay": "soon"}})), "backoff.delay");
        assert_eq!(field(json!("text")), "body");
        let long = "k".repeat(500);
        assert_eq!(field(json!({"triggers": [{ long.as_str(): 1 }]})), format!("triggers[0].{}", "k".repeat(64)));
    }
}
