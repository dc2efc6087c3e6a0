//! A job's schedule as a whole (its triggers and policies), its progress, and the one function
//! that decides what a due fire does. Both stores call [`plan`] when they claim a job, so a
//! schedule behaves the same on either.

use serde::{Deserialize, Serialize};

use super::policy::FIRE_ALL_LIMIT;
use super::{Compiled, MisfirePolicy, OverlapPolicy, RetryPolicy, ScheduleError, ScheduleSpec, Trigger, TriggerState};
use crate::clock::Ts;

/// Everything about when and how a job runs, besides its payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// One or more triggers; the job fires when any enabled one does.
    pub triggers: Vec<Trigger>,
    /// What a fire does while the previous run still runs.
    #[serde(default)]
    pub overlap: OverlapPolicy,
    /// Retries of failed runs (the job type's defaults when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Higher runs first when more are due than workers are free.
    #[serde(default)]
    pub priority: i16,
    /// The instant shown as the job's `when`: its first fire when created.
    pub anchor: Ts,
}

impl JobSpec {
    /// A one-time job at `when`, with default policies.
    pub fn once(when: Ts) -> JobSpec {
        JobSpec {
            triggers: vec![Trigger::new(ScheduleSpec::Once { when })],
            overlap: OverlapPolicy::default(),
            retry: None,
            priority: 0,
            anchor: when,
        }
    }

    /// True for a single one-time trigger with default policies (the compact case).
    pub fn is_plain_once(&self) -> bool {
        self.triggers.len() == 1
            && matches!(self.triggers[0].schedule, ScheduleSpec::Once { .. })
            && self.triggers[0] == Trigger::new(self.triggers[0].schedule.clone())
            && self.overlap == OverlapPolicy::default()
            && self.retry.is_none()
            && self.priority == 0
    }

    /// The reference service's `jobType`.
    pub fn job_type(&self) -> &'static str {
        if self.triggers.iter().any(Trigger::is_recurring) {
            "RECURRING"
        } else {
            "ONE_TIME"
        }
    }

    /// Compiles every trigger.
    pub fn compile(&self) -> Result<Vec<Compiled>, ScheduleError> {
        self.triggers.iter().map(Compiled::new).collect()
    }

    /// The state of a job created at `now` with this spec.
    pub fn initial_state(&self, compiled: &[Compiled], now: Ts) -> JobState {
        JobState {
            triggers: compiled
                .iter()
                .map(|c| TriggerState { next: if c.trigger().enabled { c.first(now) } else { None }, fired: 0 })
                .collect(),
            extra: None,
        }
    }
}

/// A job's progress, kept by the store beside its spec.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobState {
    /// One entry per trigger, in order.
    pub triggers: Vec<TriggerState>,
    /// A fire outside the schedule: a retry or a run-now request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<ExtraFire>,
}

/// A fire outside the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtraFire {
    /// When it is due.
    pub at: Ts,
    /// The attempt it will be (1 for run-now).
    pub attempt: u32,
    /// The trigger of the fire it retries, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<u32>,
    /// True for a run-now request.
    #[serde(default)]
    pub manual: bool,
}

impl JobState {
    /// The earliest pending fire, if any.
    pub fn next_due(&self) -> Option<Ts> {
        let sched = self.triggers.iter().filter_map(|t| t.next).min();
        match (self.extra.map(|e| e.at), sched) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// What a due fire does.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Run, skip, or nothing (no trigger left to fire).
    pub fire: Fire,
    /// What a policy did to this fire, if anything (for metrics).
    pub event: Option<FireEvent>,
}

/// What a due fire does.
#[derive(Clone, Debug, PartialEq)]
pub enum Fire {
    /// A run starts.
    Run(PlannedRun),
    /// The fire due at `at` is recorded as skipped, with the reason.
    Skip {
        /// When the (first) skipped fire was due.
        at: Ts,
        /// Why, for the skipped run's note.
        reason: String,
    },
    /// Nothing is due: every trigger has ended or is disabled.
    Nothing,
}

impl Plan {
    /// The run the fire starts, if it runs.
    pub fn run(&self) -> Option<&PlannedRun> {
        match &self.fire {
            Fire::Run(r) => Some(r),
            _ => None,
        }
    }

    /// The skipped fire's instant and reason, if it is skipped.
    pub fn skipped(&self) -> Option<(Ts, &str)> {
        match &self.fire {
            Fire::Skip { at, reason } => Some((*at, reason)),
            _ => None,
        }
    }

    fn skip(at: Ts, reason: String, event: FireEvent) -> Plan {
        Plan { fire: Fire::Skip { at, reason }, event: Some(event) }
    }
}

/// What a misfire or overlap policy did to a fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FireEvent {
    /// Fires that came due during the previous run were skipped (overlap policy `skip`).
    OverlapSkipped,
    /// Missed fires were skipped (misfire policy `skip`, or `fireAll` beyond its limit).
    MisfireSkipped,
    /// A missed fire runs late, as a catch-up (misfire policies `fireOnce` and `fireAll`).
    MisfireCaughtUp,
}

/// A run a fire starts.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedRun {
    /// The instant it was due.
    pub scheduled_for: Ts,
    pub attempt: u32,
    /// The trigger that fired it (none for run-now).
    pub trigger: Option<u32>,
    /// Why it runs as it does (a catch-up for missed fires), when that needs saying.
    pub note: Option<String>,
}

/// When the job's previous run started and ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastRun {
    /// When it started.
    pub started: Ts,
    /// When it ended.
    pub finished: Ts,
}

/// How late a recurring fire may start before it counts as missed.
pub const MISFIRE_THRESHOLD_MICROS: i64 = 60_000_000;

/// The most fires counted when describing missed ones.
const COUNT_CAP: u64 = 1_000_000;

/// Decides what the job's earliest due fire does and advances `state` past it. `now` is the
/// store's clock; `last` is the job's previous run.
pub fn plan(spec: &JobSpec, compiled: &[Compiled], state: &mut JobState, now: Ts, last: Option<LastRun>) -> Plan {
    let sched = state.triggers.iter().enumerate().filter_map(|(i, t)| t.next.map(|n| (n, i))).min();
    if let Some(extra) = state.extra {
        if sched.is_none_or(|(n, _)| extra.at <= n) {
            state.extra = None;
            return Plan {
                fire: Fire::Run(PlannedRun {
                    scheduled_for: extra.at,
                    attempt: extra.attempt,
                    trigger: extra.trigger,
                    note: extra.manual.then(|| "run now, requested through the API".to_owned()),
                }),
                event: None,
            };
        }
    }
    let Some((due, i)) = sched else {
        return Plan { fire: Fire::Nothing, event: None };
    };
    let (c, st) = (&compiled[i], &mut state.triggers[i]);
    let trigger = Some(i as u32);
    let run =
        |note, event| Plan { fire: Fire::Run(PlannedRun { scheduled_for: due, attempt: 1, trigger, note }), event };
    if !c.trigger().is_recurring() {
        st.fired += 1;
        st.next = None;
        return run(None, None);
    }
    // A fire that came due while the previous run was running (not one that was merely due
    // before it started, e.g. while the job was paused: that is late, not overlapping).
    if spec.overlap == OverlapPolicy::Skip {
        if let Some(lf) = last.filter(|l| l.started <= due && due < l.finished).map(|l| l.finished) {
            let n = 1 + c.count_between(due, lf, COUNT_CAP);
            st.fired += n;
            st.next = c.next_after(lf, st.fired);
            return Plan::skip(
                due,
                format!(
                    "{n} fire(s) from {due} came due while the previous run was still running (overlap policy skip)"
                ),
                FireEvent::OverlapSkipped,
            );
        }
    }
    if now.micros_since(due) <= MISFIRE_THRESHOLD_MICROS {
        st.fired += 1;
        st.next = c.next_after(due, st.fired);
        return run(None, None);
    }
    // Missed fires: `due` and every later one up to now.
    let missed = 1 + c.count_between(due, now, COUNT_CAP);
    match c.trigger().misfire {
        MisfirePolicy::FireOnce => {
            st.fired += missed;
            st.next = c.next_after(now, st.fired);
            run(
                (missed > 1).then(|| {
                    format!("one catch-up run for {missed} fires missed since {due} (misfire policy fireOnce)")
                }),
                Some(FireEvent::MisfireCaughtUp),
            )
        }
        MisfirePolicy::Skip => {
            st.fired += missed;
            st.next = c.next_after(now, st.fired);
            Plan::skip(
                due,
                format!("{missed} missed fire(s) from {due} skipped (misfire policy skip)"),
                FireEvent::MisfireSkipped,
            )
        }
        MisfirePolicy::FireAll if missed > FIRE_ALL_LIMIT => {
            // Skip the oldest, so that at most FIRE_ALL_LIMIT missed fires run.
            let skip = missed - FIRE_ALL_LIMIT;
            let mut t = due;
            for _ in 0..skip {
                match c.next_after(t, st.fired) {
                    Some(n) => t = n,
                    None => break,
                }
            }
            st.fired += skip;
            st.next = Some(t);
            Plan::skip(
                due,
                format!("{skip} of {missed} missed fire(s) from {due} skipped: fireAll runs at most {FIRE_ALL_LIMIT}"),
                FireEvent::MisfireSkipped,
            )
        }
        MisfirePolicy::FireAll => {
            st.fired += 1;
            st.next = c.next_after(due, st.fired);
            run(Some(format!("missed fire from {due} (misfire policy fireAll)")), Some(FireEvent::MisfireCaughtUp))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn every_second(misfire: MisfirePolicy, overlap: OverlapPolicy) -> (JobSpec, Vec<Compiled>, JobState) {
        let mut t = Trigger::new(ScheduleSpec::Interval { every_ms: 1_000, start: Ts(0) });
        t.misfire = misfire;
        let spec = JobSpec { triggers: vec![t], overlap, retry: None, priority: 0, anchor: Ts(0) };
        let c = spec.compile().unwrap();
        let st = spec.initial_state(&c, Ts(0));
        (spec, c, st)
    }

    #[test]
    fn an_on_time_fire_runs_and_the_next_follows_the_schedule() {
        let (spec, c, mut st) = every_second(MisfirePolicy::FireOnce, OverlapPolicy::Skip);
        let p = plan(&spec, &c, &mut st, Ts(S / 10), None);
        assert_eq!(p.run().unwrap().scheduled_for, Ts(0));
        assert_eq!(st.next_due(), Some(Ts(S)));
    }

    #[test]
    fn fire_once_coalesces_missed_fires_into_one_catch_up_run() {
        let (spec, c, mut st) = every_second(MisfirePolicy::FireOnce, OverlapPolicy::Skip);
        let p = plan(&spec, &c, &mut st, Ts(3_600 * S + S / 2), None);
        let run = p.run().unwrap().clone();
        assert_eq!(run.scheduled_for, Ts(0));
        assert!(run.note.unwrap().contains("3601 fires missed"));
        assert_eq!(st.next_due(), Some(Ts(3_601 * S)));
        assert_eq!(st.triggers[0].fired, 3_601);
    }

    #[test]
    fn skip_records_the_missed_fires_and_resumes_on_the_schedule() {
        let (spec, c, mut st) = every_second(MisfirePolicy::Skip, OverlapPolicy::Skip);
        let p = plan(&spec, &c, &mut st, Ts(120 * S), None);
        assert!(p.run().is_none());
        let (at, why) = p.skipped().unwrap();
        assert_eq!(at, Ts(0));
        assert!(why.contains("121 missed"), "{why}");
        assert_eq!(st.next_due(), Some(Ts(121 * S)));
    }

    #[test]
    fn fire_all_runs_each_missed_fire_up_to_its_limit() {
        let (spec, c, mut st) = every_second(MisfirePolicy::FireAll, OverlapPolicy::Skip);
        let now = Ts(5 * 60 * S);
        let p = plan(&spec, &c, &mut st, now, None);
        assert!(p.run().is_none(), "first the oldest beyond the limit are skipped");
        assert!(p.skipped().unwrap().1.contains("201 of 301"));
        let mut runs = 0;
        while st.next_due().is_some_and(|d| d <= now) {
            assert!(plan(&spec, &c, &mut st, now, None).run().is_some());
            runs += 1;
        }
        assert_eq!(runs, 100);
    }

    #[test]
    fn overlap_skip_records_fires_that_came_due_during_the_previous_run() {
        let (spec, c, mut st) = every_second(MisfirePolicy::FireOnce, OverlapPolicy::Skip);
        plan(&spec, &c, &mut st, Ts(0), None);
        // The run took 3.5 s: the fires at 1 s, 2 s and 3 s came due during it.
        let p = plan(&spec, &c, &mut st, Ts(3_500_000), Some(LastRun { started: Ts(0), finished: Ts(3_500_000) }));
        assert!(p.run().is_none());
        assert!(p.skipped().unwrap().1.contains("3 fire(s)"));
        assert_eq!(st.next_due(), Some(Ts(4 * S)));
    }

    #[test]
    fn a_fire_due_before_the_previous_run_started_is_late_not_overlapping() {
        let (spec, c, mut st) = every_second(MisfirePolicy::FireOnce, OverlapPolicy::Skip);
        plan(&spec, &c, &mut st, Ts(0), None);
        // Paused from 0.5 s to 2.2 s: the fire at 0 s ran at 2.2 s; the fire at 1 s was due
        // before that run started.
        let last = LastRun { started: Ts(2_200_000), finished: Ts(2_300_000) };
        let p = plan(&spec, &c, &mut st, Ts(2_300_000), Some(last));
        assert_eq!(p.run().unwrap().scheduled_for, Ts(S));
    }

    #[test]
    fn overlap_queue_runs_the_fire_after_the_previous_run() {
        let (spec, c, mut st) = every_second(MisfirePolicy::FireOnce, OverlapPolicy::Queue);
        plan(&spec, &c, &mut st, Ts(0), None);
        let p = plan(&spec, &c, &mut st, Ts(3_500_000), Some(LastRun { started: Ts(0), finished: Ts(3_500_000) }));
        assert_eq!(p.run().unwrap().scheduled_for, Ts(S));
    }

    #[test]
    fn a_retry_or_run_now_fires_before_a_later_scheduled_fire() {
        let (spec, c, mut st) = every_second(MisfirePolicy::FireOnce, OverlapPolicy::Skip);
        plan(&spec, &c, &mut st, Ts(0), None);
        st.extra = Some(ExtraFire { at: Ts(S / 2), attempt: 2, trigger: Some(0), manual: false });
        let p = plan(&spec, &c, &mut st, Ts(S / 2), None).run().unwrap().clone();
        assert_eq!((p.scheduled_for, p.attempt), (Ts(S / 2), 2));
        assert_eq!(st.next_due(), Some(Ts(S)));
    }
}
