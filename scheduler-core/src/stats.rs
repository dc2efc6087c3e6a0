//! Run statistics: hourly counts by outcome and histograms of lateness (start − due) and
//! duration (end − start) per product/group, kept by the stores as runs finish, and the
//! summaries (counts and percentiles) computed from them.
//!
//! Histogram bucket `i` holds values in `(2^((i-1)/4), 2^(i/4)]` microseconds, bucket 0
//! everything up to 1 µs: a percentile is reported as the upper bound of its bucket, at most
//! about 19 % above the true value.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::clock::Ts;
use crate::model::{GroupKey, Run, RunOutcome};

/// Measure: the number of runs (bucket 0).
pub const RUNS: u8 = 0;
/// Measure: lateness, start − due.
pub const LATENESS: u8 = 1;
/// Measure: duration, end − start.
pub const DURATION: u8 = 2;

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

/// The histogram bucket of a duration in microseconds.
pub fn bucket(micros: i64) -> u16 {
    if micros <= 1 {
        0
    } else {
        ((4.0 * (micros as f64).log2()).ceil() as i64).clamp(0, 32_000) as u16
    }
}

/// The largest value bucket `b` holds, in microseconds.
pub fn bucket_upper(b: u16) -> f64 {
    2f64.powf(f64::from(b) / 4.0)
}

/// The start of the UTC hour an instant lies in.
pub fn hour_of(t: Ts) -> Ts {
    Ts(t.0.div_euclid(HOUR) * HOUR)
}

/// The start of the UTC day an instant lies in.
pub fn day_of(t: Ts) -> Ts {
    Ts(t.0.div_euclid(DAY) * DAY)
}

/// A statistics question: a window, optionally one product/group, per day or as a whole.
#[derive(Debug, Clone)]
pub struct StatsQuery {
    /// From this instant (rounded down to its hour).
    pub from: Ts,
    /// Before this instant (none: up to now).
    pub to: Option<Ts>,
    /// Only this product.
    pub product: Option<String>,
    /// Only this job group.
    pub job_group: Option<String>,
    /// One period per UTC day instead of one for the whole window.
    pub by_day: bool,
}

/// One aggregated histogram cell: a period (the window's start, or a day), a group, an outcome,
/// a measure and a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatRow {
    /// The period's start.
    pub period: Ts,
    /// The product/group.
    pub group: GroupKey,
    /// The runs' outcome.
    pub outcome: RunOutcome,
    /// [`RUNS`], [`LATENESS`] or [`DURATION`].
    pub measure: u8,
    /// The histogram bucket (0 for [`RUNS`]).
    pub bucket: u16,
    /// How many.
    pub count: u64,
}

/// Percentiles of a measure, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// The largest.
    pub max: f64,
}

/// Counts and percentiles of one product/group over one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// The period's start (a day, or the window's start).
    pub period: Ts,
    pub product: String,
    pub job_group: String,
    /// Runs by outcome.
    pub runs: BTreeMap<&'static str, u64>,
    /// Every run counted.
    pub total: u64,
    /// Start − due of the runs that started.
    pub lateness_ms: Option<Percentiles>,
    /// End − start of the runs that ran.
    pub duration_ms: Option<Percentiles>,
}

fn from_histogram(hist: &BTreeMap<u16, u64>) -> Option<Percentiles> {
    let total: u64 = hist.values().sum();
    if total == 0 {
        return None;
    }
    let at = |q: f64| {
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, n) in hist {
            seen += n;
            if seen >= rank {
                return bucket_upper(*b) / 1000.0;
            }
        }
        hist.keys().last().map_or(0.0, |b| bucket_upper(*b) / 1000.0)
    };
    Some(Percentiles { p50: at(0.50), p90: at(0.90), p99: at(0.99), max: at(1.0) })
}

/// Summaries of aggregated rows, one per period and group, in period then group order.
pub fn summarize(rows: &[StatRow]) -> Vec<Summary> {
    /// Runs by outcome, lateness histogram, duration histogram.
    type Cells = (BTreeMap<&'static str, u64>, BTreeMap<u16, u64>, BTreeMap<u16, u64>);
    let mut acc: BTreeMap<(Ts, GroupKey), Cells> = BTreeMap::new();
    for r in rows {
        let e = acc.entry((r.period, r.group.clone())).or_default();
        match r.measure {
            RUNS => *e.0.entry(r.outcome.as_str()).or_default() += r.count,
            LATENESS => *e.1.entry(r.bucket).or_default() += r.count,
            _ => *e.2.entry(r.bucket).or_default() += r.count,
        }
    }
    acc.into_iter()
        .map(|((period, group), (runs, late, dur))| Summary {
            period,
            product: group.product().to_owned(),
            job_group: group.job_group().to_owned(),
            total: runs.values().sum(),
            runs,
            lateness_ms: from_histogram(&late),
            duration_ms: from_histogram(&dur),
        })
        .collect()
}

fn exact(mut micros: Vec<i64>) -> Option<Percentiles> {
    if micros.is_empty() {
        return None;
    }
    micros.sort_unstable();
    let at = |q: f64| {
        let rank = ((micros.len() as f64) * q).ceil().max(1.0) as usize;
        micros[rank.min(micros.len()) - 1] as f64 / 1000.0
    };
    Some(Percentiles { p50: at(0.50), p90: at(0.90), p99: at(0.99), max: at(1.0) })
}

/// A summary of some runs (one job's), with exact percentiles.
pub fn summarize_runs(period: Ts, group: &GroupKey, runs: &[Run]) -> Summary {
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut late, mut dur) = (Vec::new(), Vec::new());
    for r in runs.iter().filter(|r| !r.outcome.in_progress()) {
        *counts.entry(r.outcome.as_str()).or_default() += 1;
        if let Some(s) = r.started_at {
            late.push(s.micros_since(r.scheduled_for).max(0));
            if let Some(f) = r.finished_at {
                dur.push(f.micros_since(s).max(0));
            }
        }
    }
    Summary {
        period,
        product: group.product().to_owned(),
        job_group: group.job_group().to_owned(),
        total: counts.values().sum(),
        runs: counts,
        lateness_ms: exact(late),
        duration_ms: exact(dur),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_a_quarter_doubling_wide_and_bound_their_values() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 0);
        assert_eq!(bucket(2), 4);
        for v in [3_i64, 17, 999, 1_000, 1_001, 123_456, 3_600_000_000] {
            let b = bucket(v);
            assert!(bucket_upper(b) >= v as f64 && bucket_upper(b - 1) < v as f64, "{v} in bucket {b}");
        }
    }

    #[test]
    fn percentiles_come_from_the_histogram_as_bucket_bounds() {
        let g = GroupKey::new("p", "g").unwrap();
        let mut rows = vec![StatRow {
            period: Ts(0),
            group: g.clone(),
            outcome: RunOutcome::Succeeded,
            measure: RUNS,
            bucket: 0,
            count: 100,
        }];
        // 99 runs 1 ms late, one 100 ms late.
        for (v, n) in [(1_000_i64, 99), (100_000, 1)] {
            rows.push(StatRow {
                period: Ts(0),
                group: g.clone(),
                outcome: RunOutcome::Succeeded,
                measure: LATENESS,
                bucket: bucket(v),
                count: n,
            });
        }
        let s = &summarize(&rows)[0];
        assert_eq!((s.total, s.runs["succeeded"]), (100, 100));
        let late = s.lateness_ms.as_ref().unwrap();
        assert!((1.0..1.2).contains(&late.p99), "{late:?}");
        assert!((100.0..120.0).contains(&late.max), "{late:?}");
        assert!(s.duration_ms.is_none());
    }
}
