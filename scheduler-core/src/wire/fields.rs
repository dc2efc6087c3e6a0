//! The values of a request's keys, each checked as it is read: an instant, a period, a count, a
//! policy name. A wrong value is an error naming what the key takes; the key itself is named by
//! the path the request is read under (`triggers[1].interval`).

use std::marker::PhantomData;
use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

use serde::de::{Deserialize, Deserializer, Error as _};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::values::{has_nul, instant_of, kind, short};
use crate::clock::Ts;
use crate::model::JobId;
use crate::trigger::{check_range, parse_delay, parse_interval, BackoffKind, MisfirePolicy, OverlapPolicy};

/// How one kind of value is read from the JSON a client sent.
pub trait Check {
    /// What it becomes.
    type Out;
    /// Reads it, or says what the key takes.
    fn check(v: &Value) -> Result<Self::Out, String>;
}

/// A value of a request key, read by `C`. Written back as the JSON it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked<C: Check> {
    value: C::Out,
    written: Value,
    check: PhantomData<C>,
}

impl<C: Check> Checked<C> {
    /// The value.
    pub fn get(&self) -> &C::Out {
        &self.value
    }

    /// The value, owned.
    pub fn into_inner(self) -> C::Out {
        self.value
    }
}

impl<'de, C: Check> Deserialize<'de> for Checked<C> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let written = Value::deserialize(d)?;
        let value = C::check(&written).map_err(D::Error::custom)?;
        Ok(Checked { value, written, check: PhantomData })
    }
}

impl<C: Check> Serialize for Checked<C> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.written.serialize(s)
    }
}

/// Defines a [`Check`] from a function of the value.
macro_rules! check {
    ($(#[$doc:meta])* $name:ident -> $out:ty, |$v:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name;

        impl Check for $name {
            type Out = $out;
            fn check($v: &Value) -> Result<$out, String> {
                $body
            }
        }
    };
}

fn whole(v: &Value, max: u64) -> Result<u64, String> {
    match v.as_u64() {
        Some(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from 1 to {max}, not {}", short(v))),
    }
}

fn named<T: Copy>(v: &Value, names: &[(&str, T)]) -> Result<T, String> {
    let s = v.as_str().unwrap_or_default();
    names.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)).map(|(_, p)| *p).ok_or_else(|| {
        format!(
            "must be one of {}, not {}",
            names.iter().map(|(n, _)| format!("\"{n}\"")).collect::<Vec<_>>().join(", "),
            short(v)
        )
    })
}

fn flag(v: &Value) -> Result<bool, String> {
    v.as_bool().ok_or_else(|| format!("must be true or false, not {}", short(v)))
}

fn text(v: &Value) -> Result<String, String> {
    v.as_str().map(str::to_owned).ok_or_else(|| format!("must be a string, not {}", kind(v)))
}

/// Milliseconds, as a bare number, or text with a unit (`"1s"`, `"PT1S"`): seed 001's
/// `backoff.delay`.
fn millis(v: &Value) -> Result<u64, String> {
    let d = match v {
        Value::Number(n) => match n.as_u64() {
            Some(ms) => Duration::from_millis(ms),
            None => return Err(format!("must be a whole number of milliseconds, not {n}")),
        },
        _ => parse_delay("backoff", v).map_err(|e| e.reason)?,
    };
    u64::try_from(d.as_millis()).map_err(|_| "is too long".to_owned())
}

check!(
    /// An ISO 8601 instant with an offset, from 1970 to 9999.
    InstantCheck -> Ts, |v| instant_of(v)
);
check!(
    /// A cron pattern (checked with its time zone, once both are read).
    CronCheck -> String, |v| text(v)
);
check!(
    /// An IANA time zone name (checked with the pattern).
    ZoneCheck -> String, |v| text(v)
);
check!(
    /// A period: seconds, readable text (`"2 minutes"`) or ISO 8601 (`"PT5M"`), one second to
    /// ten years.
    PeriodCheck -> Duration, |v| parse_interval("interval", v).and_then(|d| check_range("interval", d)).map_err(|e| e.reason)
);
check!(
    /// A delay: as a period, or zero.
    DelayCheck -> Duration, |v| parse_delay("initialDelay", v).map_err(|e| e.reason)
);
check!(
    /// How many fires, at least one.
    CountCheck -> NonZeroU64, |v| whole(v, u64::MAX).map(|n| NonZeroU64::new(n).expect("at least 1"))
);
check!(
    /// Days between fires of the reference `RECURRING` form: 1 to 36,500.
    DaysCheck -> u64, |v| whole(v, 36_500)
);
check!(
    /// Attempts per fire: 1 to 100.
    AttemptsCheck -> NonZeroU32, |v| whole(v, 100).map(|n| NonZeroU32::new(n as u32).expect("at least 1"))
);
check!(
    /// `true` or `false`.
    FlagCheck -> bool, |v| flag(v)
);
check!(
    /// `ONE_TIME` or `RECURRING` (any case): whether the reference recurring form is used.
    JobTypeCheck -> bool, |v| match v {
        Value::String(s) if s.eq_ignore_ascii_case("ONE_TIME") => Ok(false),
        Value::String(s) if s.eq_ignore_ascii_case("RECURRING") => Ok(true),
        other => Err(format!("must be \"ONE_TIME\" or \"RECURRING\", not {}", short(other))),
    }
);
check!(
    /// A misfire policy name.
    MisfireCheck -> MisfirePolicy, |v| named(
        v,
        &[("fireOnce", MisfirePolicy::FireOnce), ("skip", MisfirePolicy::Skip), ("fireAll", MisfirePolicy::FireAll)],
    )
);
check!(
    /// An overlap policy name.
    OverlapCheck -> OverlapPolicy, |v| named(
        v,
        &[("skip", OverlapPolicy::Skip), ("queue", OverlapPolicy::Queue), ("allow", OverlapPolicy::Allow)],
    )
);
check!(
    /// A priority: -100 to 100, or a name (`low` -10, `normal` 0, `medium` 5, `high` 10,
    /// `critical` 20).
    PriorityCheck -> i16, |v| match v.as_i64() {
        Some(n) => i16::try_from(n)
            .ok()
            .filter(|n| (-100..=100).contains(n))
            .ok_or_else(|| format!("must be from -100 to 100, not {n}")),
        None => named(v, &[("low", -10), ("normal", 0), ("medium", 5), ("high", 10), ("critical", 20)]),
    }
);
check!(
    /// A client-chosen job id (a UUID), which also makes the create idempotent.
    JobIdCheck -> JobId, |v| v.as_str().and_then(|s| s.parse::<JobId>().ok()).ok_or_else(|| {
        format!("must be a UUID (the job's id, which makes the create idempotent), not {}", short(v))
    })
);
check!(
    /// A trigger's name: a string of at most 200 bytes, without NUL.
    NameCheck -> String, |v| v
        .as_str()
        .filter(|n| n.len() <= 200 && !n.contains('\0'))
        .map(str::to_owned)
        .ok_or_else(|| "must be a string of at most 200 bytes, without NUL".to_owned())
);
check!(
    /// A trigger's data: a JSON object, merged into the payload of the runs it fires.
    DataCheck -> Map<String, Value>, |v| match v {
        Value::Object(_) if has_nul(v) => {
            Err("contains a NUL character (\\u0000), which the job store cannot keep".to_owned())
        }
        Value::Object(m) => Ok(m.clone()),
        other => Err(format!("must be a JSON object, not {}", kind(other))),
    }
);
check!(
    /// `fixed` or `exponential`.
    BackoffKindCheck -> BackoffKind, |v| named(v, &[("fixed", BackoffKind::Fixed), ("exponential", BackoffKind::Exponential)])
);
check!(
    /// A wait in milliseconds (a bare number) or text with a unit.
    MillisCheck -> u64, |v| millis(v)
);
check!(
    /// Growth per attempt: 1 to 100.
    FactorCheck -> f64, |v| v
        .as_f64()
        .filter(|f| (1.0..=100.0).contains(f))
        .ok_or_else(|| format!("must be a number from 1 to 100, not {}", short(v)))
);

/// An instant.
pub type Instant = Checked<InstantCheck>;
/// A cron pattern.
pub type CronText = Checked<CronCheck>;
/// A time zone name.
pub type Zone = Checked<ZoneCheck>;
/// A period.
pub type Period = Checked<PeriodCheck>;
/// A delay.
pub type Delay = Checked<DelayCheck>;
/// A count of fires.
pub type Count = Checked<CountCheck>;
/// Days between fires.
pub type Days = Checked<DaysCheck>;
/// Attempts per fire.
pub type Attempts = Checked<AttemptsCheck>;
/// A boolean.
pub type Flag = Checked<FlagCheck>;
/// The reference `jobType`.
pub type JobType = Checked<JobTypeCheck>;
/// A misfire policy.
pub type Misfire = Checked<MisfireCheck>;
/// An overlap policy.
pub type Overlap = Checked<OverlapCheck>;
/// A priority.
pub type Priority = Checked<PriorityCheck>;
/// A client-chosen job id.
pub type ClientId = Checked<JobIdCheck>;
/// A trigger's name.
pub type Name = Checked<NameCheck>;
/// A trigger's data.
pub type Data = Checked<DataCheck>;
/// A backoff kind.
pub type BackoffType = Checked<BackoffKindCheck>;
/// A wait in milliseconds.
pub type Millis = Checked<MillisCheck>;
/// A backoff factor.
pub type Factor = Checked<FactorCheck>;
