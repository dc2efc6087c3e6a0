//! Schedules as data, and the pure functions that say when they fire next.
//!
//! A job has one or more triggers. Each trigger is a schedule (`once`, `cron`, `interval`) with
//! its own limits (`repeatCount`, `until`), data merged into the payload of the runs it fires,
//! an `enabled` flag and a misfire policy. The job's next fire is the earliest next fire of its
//! enabled triggers.
//!
//! Time zones and daylight saving time (cron schedules; intervals follow absolute time):
//! - a wall time skipped by a spring-forward fires once, at the first valid instant after the
//!   gap (02:30 on a day that jumps from 02:00 to 03:00 fires at 03:00);
//! - a wall time repeated by a fall-back fires once, at its first occurrence, for fixed-time
//!   fields (`30 2 * * *`); wildcard and step fields (`*/15 * * * *`, `* * * * * *`) follow
//!   absolute time and fire in both occurrences of the repeated hour.
//!
//! These are the rules of the Open Cron Pattern Specification, implemented by `croner`.

mod cron;
mod fast_cron;
mod interval;
pub mod policy;
mod spec;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use cron::parse_cron;
pub use interval::{check_range, parse_delay, parse_interval};
pub use policy::{Backoff, BackoffKind, MisfirePolicy, OverlapPolicy, RetryPolicy};
pub use spec::{
    plan, ExtraFire, Fire, FireEvent, JobSpec, JobState, LastRun, Plan, PlannedRun, MISFIRE_THRESHOLD_MICROS,
};

use crate::clock::Ts;

/// When a trigger fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ScheduleSpec {
    /// Once, at an instant.
    #[serde(rename_all = "camelCase")]
    Once {
        /// The instant.
        when: Ts,
    },
    /// On a cron pattern (5, 6 or 7 fields) in an IANA time zone.
    #[serde(rename_all = "camelCase")]
    Cron {
        /// The pattern as given.
        expr: String,
        /// The IANA zone its wall times are in.
        timezone: String,
    },
    /// Every `every_ms`, from `start` (absolute time).
    #[serde(rename_all = "camelCase")]
    Interval {
        /// The period in milliseconds (at least one second).
        every_ms: u64,
        /// The first fire.
        start: Ts,
    },
}

/// One trigger of a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// When it fires.
    pub schedule: ScheduleSpec,
    /// Disabled triggers do not fire.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// What happens to fires missed while nothing could run them.
    #[serde(default)]
    pub misfire: MisfirePolicy,
    /// Fire at most this many times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_count: Option<u64>,
    /// Fire no later than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Ts>,
    /// Keys merged into the payload of the runs this trigger fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    /// A name for operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

fn enabled() -> bool {
    true
}

impl Trigger {
    /// A plain trigger for a schedule.
    pub fn new(schedule: ScheduleSpec) -> Trigger {
        Trigger {
            schedule,
            enabled: true,
            misfire: MisfirePolicy::default(),
            repeat_count: None,
            until: None,
            data: None,
            name: None,
        }
    }

    /// True for schedules that fire more than once.
    pub fn is_recurring(&self) -> bool {
        !matches!(self.schedule, ScheduleSpec::Once { .. })
    }
}

/// A trigger's progress, kept by the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerState {
    /// Its next fire; `None` once it will not fire again (or while disabled).
    pub next: Option<Ts>,
    /// How many of its fires have come due (run, coalesced or skipped).
    pub fired: u64,
}

/// A trigger with its schedule compiled for fast next-fire computation.
#[derive(Clone, Debug)]
pub struct Compiled {
    trigger: Trigger,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Once(Ts),
    Cron(Arc<cron::CronSchedule>),
    Interval { every: i64, start: Ts },
}

/// A schedule that cannot be used, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ScheduleError {
    /// The request field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl Compiled {
    /// Compiles a trigger (parsing its cron pattern and zone).
    pub fn new(trigger: &Trigger) -> Result<Compiled, ScheduleError> {
        let kind = match &trigger.schedule {
            ScheduleSpec::Once { when } => Kind::Once(*when),
            ScheduleSpec::Cron { expr, timezone } => {
                let (cron, tz) = parse_cron(expr, timezone)?;
                Kind::Cron(Arc::new(cron::CronSchedule::new(cron, tz)))
            }
            ScheduleSpec::Interval { every_ms, start } => Kind::Interval {
                every: i64::try_from(*every_ms).unwrap_or(i64::MAX).saturating_mul(1000).max(1),
                start: *start,
            },
        };
        Ok(Compiled { trigger: trigger.clone(), kind })
    }

    /// The trigger it was compiled from.
    pub fn trigger(&self) -> &Trigger {
        &self.trigger
    }

    /// The first fire at or after `t` by the schedule alone (no limits).
    fn raw_at_or_after(&self, t: Ts) -> Option<Ts> {
        match &self.kind {
            Kind::Once(when) => (*when >= t).then_some(*when),
            Kind::Interval { every, start } => {
                if t <= *start {
                    Some(*start)
                } else {
                    let k = (t.0 - start.0 + every - 1) / every;
                    Some(Ts(start.0.checked_add(k.checked_mul(*every)?)?))
                }
            }
            Kind::Cron(c) => c.at_or_after(within_calendar(t)?),
        }
    }

    /// The first fire strictly after `t` by the schedule alone.
    fn raw_after(&self, t: Ts) -> Option<Ts> {
        match &self.kind {
            // Instants are microseconds; cron fires on whole seconds.
            Kind::Cron(c) => c.after(within_calendar(t)?),
            _ => self.raw_at_or_after(Ts(t.0.checked_add(1)?)),
        }
    }

    fn within_limits(&self, next: Ts, fired: u64) -> Option<Ts> {
        if self.trigger.repeat_count.is_some_and(|n| fired >= n) {
            return None;
        }
        if self.trigger.until.is_some_and(|u| next > u) {
            return None;
        }
        Some(next)
    }

    /// The trigger's first fire, for a job created at `now`. A one-time trigger fires at its
    /// instant even when it is past (it is overdue); recurring schedules start at their start.
    pub fn first(&self, now: Ts) -> Option<Ts> {
        let first = match &self.kind {
            Kind::Once(when) => Some(*when),
            Kind::Interval { start, .. } => Some(*start),
            Kind::Cron(..) => self.raw_at_or_after(now),
        }?;
        self.within_limits(first, 0)
    }

    /// The fire after `t` for a trigger that has fired `fired` times.
    pub fn next_after(&self, t: Ts, fired: u64) -> Option<Ts> {
        if matches!(self.kind, Kind::Once(_)) {
            return None;
        }
        self.within_limits(self.raw_after(t)?, fired)
    }

    /// How many fires lie in `(from, to]`, counting at most `cap`.
    pub fn count_between(&self, from: Ts, to: Ts, cap: u64) -> u64 {
        match &self.kind {
            Kind::Once(_) => 0,
            Kind::Interval { every, start } => {
                let first = self.raw_after(from).unwrap_or(Ts::MAX).max(*start);
                if first > to {
                    0
                } else {
                    (((to.0 - first.0) / every) as u64 + 1).min(cap)
                }
            }
            Kind::Cron(..) => {
                let mut n = 0;
                let mut t = from;
                while n < cap {
                    match self.raw_after(t) {
                        Some(next) if next <= to => {
                            n += 1;
                            t = next;
                        }
                        _ => break,
                    }
                }
                n
            }
        }
    }

    /// The next `count` fires after `t` for a trigger that has fired `fired` times (preview).
    pub fn upcoming(&self, from_next: Option<Ts>, fired: u64, count: usize) -> Vec<Ts> {
        let mut out = Vec::with_capacity(count.min(1000));
        let mut next = from_next;
        let mut fired = fired;
        while let Some(t) = next {
            if out.len() >= count {
                break;
            }
            out.push(t);
            fired += 1;
            next = self.next_after(t, fired);
        }
        out
    }
}

/// A run's payload: the job's payload with a trigger's data keys merged over it.
pub fn merge_data(payload: &str, data: &Map<String, Value>) -> String {
    let mut map: Map<String, Value> = serde_json::from_str(payload).unwrap_or_default();
    for (k, v) in data {
        map.insert(k.clone(), v.clone());
    }
    serde_json::to_string(&map).unwrap_or_else(|_| payload.to_owned())
}

/// `t` when cron can compute from it: within ±190,000 years of 1970, well inside the calendar
/// chrono can represent (±262,143 years), which `Ts` exceeds. Nothing fires past that.
fn within_calendar(t: Ts) -> Option<Ts> {
    const LIMIT: i64 = 6_000_000_000_000_000_000; // µs, about 190,000 years
    (-LIMIT..=LIMIT).contains(&t.0).then_some(t)
}

#[cfg(test)]
mod tests;
