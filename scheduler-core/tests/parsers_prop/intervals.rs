//! Intervals and delays (`interval`, `initialDelay`, `backoff`): JSON numbers, readable text
//! and ISO 8601 durations, read directly and in bodies.

use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::select;
use scheduler_core::request::{check_instant, parse_create};
use scheduler_core::trigger::{parse_delay, parse_interval, ScheduleSpec};
use scheduler_core::Ts;
use serde_json::{json, Value};

use crate::common::*;

// ---------------------------------------------------------------------------------------------
// Strategies: intervals and delays
// ---------------------------------------------------------------------------------------------

/// humantime's units and their lengths in nanoseconds (months and years are humantime's
/// 30.44 and 365.25 days).
const HUMAN_UNITS: [(&str, u128); 30] = [
    ("ns", 1),
    ("nsec", 1),
    ("nanos", 1),
    ("us", 1_000),
    ("usec", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("msec", 1_000_000),
    ("millis", 1_000_000),
    ("s", NANOS),
    ("sec", NANOS),
    ("secs", NANOS),
    ("second", NANOS),
    ("seconds", NANOS),
    ("m", 60 * NANOS),
    ("min", 60 * NANOS),
    ("mins", 60 * NANOS),
    ("minutes", 60 * NANOS),
    ("h", 3_600 * NANOS),
    ("hr", 3_600 * NANOS),
    ("hours", 3_600 * NANOS),
    ("d", 86_400 * NANOS),
    ("day", 86_400 * NANOS),
    ("days", 86_400 * NANOS),
    ("w", 604_800 * NANOS),
    ("week", 604_800 * NANOS),
    ("weeks", 604_800 * NANOS),
    ("M", 2_630_016 * NANOS),
    ("months", 2_630_016 * NANOS),
    ("y", 31_557_600 * NANOS),
];

/// Readable text like `1h 30m` or `2 minutes 5s`, with its exact length in nanoseconds.
#[derive(Debug, Clone)]
pub(crate) struct HumanText {
    pub(crate) text: String,
    nanos: u128,
}

pub(crate) fn human_text(max_value: u64) -> impl Strategy<Value = HumanText> {
    let part = (
        prop_oneof![0..=max_value, 1u64..=120, select(vec![0u64, 1, 59, 60, 999, 1_000, 999_999_999, 1_000_000_000])],
        0usize..HUMAN_UNITS.len(),
        any::<bool>(),
    );
    (prop::collection::vec(part, 1..5), select(vec!["", " ", "  "])).prop_map(|(parts, sep)| {
        let mut nanos = 0u128;
        let text = parts
            .iter()
            .map(|&(n, u, spaced)| {
                let (unit, len) = HUMAN_UNITS[u];
                nanos += u128::from(n) * len;
                format!("{n}{}{unit}", if spaced { " " } else { "" })
            })
            .collect::<Vec<_>>()
            .join(sep);
        HumanText { text, nanos }
    })
}

/// An ISO 8601 duration (`P1W2DT3H4M5.25S`), with its exact length in nanoseconds, or with a
/// calendar unit (years, months) the parser must refuse.
#[derive(Debug, Clone)]
pub(crate) struct IsoText {
    pub(crate) text: String,
    nanos: u128,
    calendar: bool,
}

pub(crate) fn iso_text() -> impl Strategy<Value = IsoText> {
    let part = |max: u64| prop::option::weighted(0.5, 0..=max);
    let frac = prop::option::weighted(0.3, (1usize..=9, 0u64..1_000_000_000));
    (
        (part(600), part(5_000), part(100_000), part(100_000), part(1_000_000)),
        frac,
        (any::<bool>(), any::<bool>(), prop::option::weighted(0.1, select(vec!["1Y", "2M", "1Y2M"]))),
    )
        .prop_filter_map(
            "a duration with at least one part",
            |((w, d, h, m, s), frac, (lower, comma, calendar))| {
                if [w, d, h, m, s].iter().all(Option::is_none) {
                    return None;
                }
                let mut text = "P".to_owned();
                if let Some(c) = calendar {
                    text.push_str(c);
                }
                let mut nanos = 0u128;
                for (v, unit, len) in [(w, 'W', 604_800u128), (d, 'D', 86_400)] {
                    if let Some(v) = v {
                        text.push_str(&format!("{v}{unit}"));
                        nanos += u128::from(v) * len * NANOS;
                    }
                }
                if h.is_some() || m.is_some() || s.is_some() {
                    text.push('T');
                }
                for (v, unit, len) in [(h, 'H', 3_600u128), (m, 'M', 60)] {
                    if let Some(v) = v {
                        text.push_str(&format!("{v}{unit}"));
                        nanos += u128::from(v) * len * NANOS;
                    }
                }
                if let Some(v) = s {
                    text.push_str(&v.to_string());
                    nanos += u128::from(v) * NANOS;
                    if let Some((digits, f)) = frac {
                        let f = f % 10u64.pow(digits as u32);
                        text.push_str(&format!("{}{f:0digits$}", if comma { ',' } else { '.' }));
                        nanos += u128::from(f) * 10u128.pow(9 - digits as u32);
                    }
                    text.push('S');
                }
                if lower {
                    text = text.to_lowercase();
                }
                Some(IsoText { text, nanos, calendar: calendar.is_some() })
            },
        )
}

/// Interval text of every kind, for the never-panics properties.
fn interval_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9PTWDHMSpt.,:+\\- ]{0,20}",
        "[0-9]{1,30}",
        " *[+\\-]?[0-9]{0,25}(\\.[0-9]{0,12})?([eE][+\\-]?[0-9]{1,4})? *[a-zµ]{0,8}",
        human_text(u64::MAX).prop_map(|h| h.text),
        iso_text().prop_map(|i| i.text),
    ]
}

fn nanos_of(d: Duration) -> u128 {
    d.as_nanos()
}

// ---------------------------------------------------------------------------------------------
// Intervals and delays: `interval`, `initialDelay`, `backoff`
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(1_000))]

    /// Any JSON (numbers huge, negative, fractional, tiny; any text) as an interval or delay:
    /// no panic, a duration or a refusal naming the field, directly and in a body.
    #[test]
    fn any_value_as_an_interval_or_delay_parses_or_names_the_field(
        v in prop_oneof![json_number(), interval_text().prop_map(Value::String), json_value()],
    ) {
        for field in ["interval", "initialDelay"] {
            if let Err(e) = parse_interval(field, &v) {
                prop_assert_eq!(e.field, field);
            }
            if let Err(e) = parse_delay(field, &v) {
                prop_assert_eq!(e.field, field);
            }
        }
        if v.is_null() {
            return Ok(());
        }
        let cases = [
            (json!({"interval": v.clone()}), "interval"),
            (json!({"interval": 60, "initialDelay": v.clone()}), "initialDelay"),
            (json!({"triggers": [{"interval": v.clone()}]}), "triggers[0].interval"),
            (json!({"when": "2030-01-01T00:00:00Z", "backoff": {"delay": v.clone()}}), "backoff.delay"),
            (json!({"when": "2030-01-01T00:00:00Z", "backoff": {"cap": v.clone()}}), "backoff.cap"),
        ];
        for (body, field) in cases {
            if let Err(e) = parse_create(&body, NOW) {
                prop_assert_eq!(field_of(e)?, field, "{}", body);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(1_000))]

    /// JSON numbers are seconds: whole numbers exactly (up to 2^53, where f64 is exact),
    /// fractions to the nanosecond (within f64 precision); zero and negatives are refused as
    /// intervals (zero is a valid delay); too large for a `Duration` is refused.
    #[test]
    fn numbers_are_seconds(
        whole in prop_oneof![Just(0u64), Just(1), Just(MAX_INTERVAL_SECS), Just(MAX_INTERVAL_SECS + 1), 0u64..=MAX_INTERVAL_SECS * 2, 0u64..=1u64 << 53],
        frac in prop_oneof![Just(0.0f64), Just(-0.0), -1e7f64..1e7, 0.0f64..2.0, -1e30f64..1e30],
    ) {
        let d = parse_interval("interval", &json!(whole));
        if whole == 0 {
            prop_assert!(d.is_err());
            prop_assert_eq!(parse_delay("initialDelay", &json!(0)).ok(), Some(Duration::ZERO));
        } else {
            prop_assert_eq!(d.ok(), Some(Duration::from_secs(whole)));
        }
        match parse_interval("interval", &json!(frac)) {
            Ok(d) => {
                prop_assert!(frac > 0.0);
                let err = (d.as_secs_f64() - frac).abs();
                prop_assert!(err <= 1e-9 + frac * f64::EPSILON, "{frac} read as {d:?}");
            }
            Err(e) => {
                prop_assert_eq!(e.field, "interval");
                prop_assert!(frac <= 0.0 || frac >= u64::MAX as f64, "{frac} refused: {e}");
            }
        }
        if frac < 0.0 {
            prop_assert!(parse_delay("initialDelay", &json!(frac)).is_err());
        }
        // In a body: accepted exactly within 1 s to 10 years.
        match parse_create(&json!({"interval": whole}), NOW) {
            Ok(r) => {
                prop_assert!((1..=MAX_INTERVAL_SECS).contains(&whole), "{whole} s accepted");
                prop_assert_eq!(&r.spec.triggers[0].schedule, &ScheduleSpec::Interval { every_ms: whole * 1_000, start: NOW });
            }
            Err(e) => {
                prop_assert!(!(1..=MAX_INTERVAL_SECS).contains(&whole), "{whole} s refused: {e:?}");
                prop_assert_eq!(field_of(e)?, "interval");
            }
        }
    }

    /// Readable text (`1h 30m`, `2 minutes 5s`, `90 s`) reads as exactly its length; whole
    /// seconds as text too. In a body, accepted exactly within 1 s to 10 years, kept in
    /// milliseconds (truncated).
    #[test]
    fn readable_intervals_round_trip(
        h in human_text(1_000_000),
        secs in prop_oneof![Just(0u64), 0u64..=MAX_INTERVAL_SECS * 2],
        pad in "[ \t]{0,2}",
    ) {
        let got = parse_interval("interval", &json!(h.text));
        if h.text.len() > 64 {
            prop_assert!(got.is_err(), "{:?} is longer than 64 characters", h.text);
            return Ok(());
        }
        prop_assert_eq!(got.as_ref().ok().map(|d| nanos_of(*d)), Some(h.nanos), "{:?}", h.text);
        let d = got.unwrap();
        let in_range = h.nanos >= NANOS && h.nanos <= u128::from(MAX_INTERVAL_SECS) * NANOS;
        match parse_create(&json!({"interval": h.text}), NOW) {
            Ok(r) => {
                prop_assert!(in_range, "{:?} accepted", h.text);
                prop_assert_eq!(&r.spec.triggers[0].schedule, &ScheduleSpec::Interval { every_ms: d.as_millis() as u64, start: NOW });
            }
            Err(e) => {
                prop_assert!(!in_range, "{:?} refused: {:?}", h.text, e);
                prop_assert_eq!(field_of(e)?, "interval");
            }
        }
        let text = format!("{pad}{secs}{pad}");
        let got = parse_interval("interval", &json!(text));
        prop_assert_eq!(got.ok(), (secs > 0).then(|| Duration::from_secs(secs)), "{:?}", text);
        prop_assert_eq!(parse_delay("initialDelay", &json!(text)).ok(), Some(Duration::from_secs(secs)), "{:?}", text);
    }

    /// ISO 8601 durations (weeks, days, hours, minutes, fractional seconds with `.` or `,`, any
    /// case) read as their length to the microsecond (they are summed in f64); years and months
    /// are refused.
    #[test]
    fn iso_8601_intervals_round_trip(iso in iso_text()) {
        let got = parse_interval("interval", &json!(iso.text));
        if iso.calendar {
            prop_assert_eq!(got.unwrap_err().field, "interval");
            return Ok(());
        }
        if iso.text.len() > 64 {
            prop_assert!(got.is_err());
            return Ok(());
        }
        prop_assert!(got.is_ok(), "{:?}: {:?}", iso.text, got);
        let got = nanos_of(got.unwrap());
        prop_assert!(got.abs_diff(iso.nanos) <= 1_000, "{:?} read as {got} ns, not {} ns", iso.text, iso.nanos);
    }

    /// An initial delay up to ten years starts the interval exactly that much after now (to the
    /// microsecond).
    #[test]
    fn initial_delays_shift_the_start(
        h in human_text(1_000),
        secs in prop_oneof![Just(0u64), 0u64..=MAX_INTERVAL_SECS],
        now in server_now(),
    ) {
        let mut delays = vec![(json!(secs), u128::from(secs) * NANOS), (json!(secs.to_string()), u128::from(secs) * NANOS)];
        if h.text.len() <= 64 && h.nanos <= u128::from(MAX_INTERVAL_SECS) * NANOS {
            delays.push((json!(h.text), h.nanos));
        }
        for (delay, nanos) in delays {
            let r = parse_create(&json!({"interval": 60, "initialDelay": delay}), now);
            let want = ScheduleSpec::Interval { every_ms: 60_000, start: Ts(now.0 + (nanos / 1_000) as i64) };
            prop_assert_eq!(r.ok().map(|r| r.spec.triggers[0].schedule.clone()), Some(want), "{}", delay);
        }
    }

    /// Backoff delays and caps: whole numbers are milliseconds, text is a duration; the cap is
    /// never below the delay; anything wrong is refused naming `backoff.<key>` or `attempts`.
    #[test]
    fn backoff_is_read_or_names_its_key(
        delay in prop_oneof![(0u64..10_000_000).prop_map(Value::from), human_text(1_000).prop_map(|h| Value::String(h.text)), json_value()],
        cap in prop::option::of(prop_oneof![(0u64..10_000_000).prop_map(Value::from), json_value()]),
        extra in prop::option::of((prop_oneof![select(vec!["type", "factor", "jitter", "base", "max"]).prop_map(str::to_owned), json_string()], json_value())),
        attempts in prop::option::of(prop_oneof![(1u64..=100).prop_map(Value::from), json_value()]),
    ) {
        let mut b = obj(vec![("delay", delay.clone())]);
        if let Some(c) = &cap {
            b.insert("cap".into(), c.clone());
        }
        if let Some((k, v)) = &extra {
            b.insert(k.clone(), v.clone());
        }
        let mut body = obj(vec![("when", json!("2030-01-01T00:00:00Z")), ("backoff", Value::Object(b))]);
        if let Some(a) = &attempts {
            body.insert("attempts".into(), a.clone());
        }
        match parse_create(&Value::Object(body.clone()), NOW) {
            Ok(r) => {
                let retry = r.spec.retry.expect("a backoff gives a retry policy");
                prop_assert!(retry.backoff.cap_ms >= retry.backoff.base_ms);
                let overridden = extra.as_ref().is_some_and(|(k, _)| k == "base");
                if let (Some(ms), false) = (delay.as_u64(), overridden) {
                    prop_assert_eq!(retry.backoff.base_ms, ms);
                }
            }
            Err(e) => {
                let f = field_of(e)?;
                prop_assert!(f == "attempts" || f.starts_with("backoff"), "{} blamed for {:?}", f, body);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(200))]

    /// Readable text at the largest `Duration` (`u64::MAX` seconds, give or take, plus
    /// sub-second parts that may add up to a whole second), as `interval`, `initialDelay` or
    /// `backoff.delay`: nothing panics; a text whose length exceeds the largest `Duration` is
    /// refused as out of range, naming the field; any other is read exactly or refused naming
    /// the field. In a body such a text is always refused, naming its field.
    #[test]
    fn interval_text_at_the_largest_duration_never_panics(
        below in 0u64..3,
        sub in select(vec![
            ("1000000000ns", NANOS),
            ("500ms 500ms", NANOS),
            ("999999999ns 1ns", NANOS),
            ("1000ms", NANOS),
            ("1000000us", NANOS),
            ("1s", NANOS),
            ("1ns", 1),
            ("999ms", 999_000_000),
        ]),
    ) {
        let (sub, sub_nanos) = sub;
        let text = format!("{}s {sub}", u64::MAX - below);
        let total = u128::from(u64::MAX - below) * NANOS + sub_nanos;
        let fits = total <= Duration::MAX.as_nanos();
        for field in ["interval", "initialDelay"] {
            let r = std::panic::catch_unwind(|| parse_interval(field, &json!(text)));
            prop_assert!(r.is_ok(), "parse_interval panicked on {:?}", text);
            match r.unwrap() {
                Ok(d) => {
                    prop_assert!(fits, "{:?} read as {:?}, past the largest Duration", text, d);
                    prop_assert_eq!(d.as_nanos(), total, "{:?}", text);
                }
                Err(e) => {
                    prop_assert_eq!(e.field, field);
                    prop_assert!(fits || e.reason.contains("out of range"), "{:?} refused for another reason: {}", text, e.reason);
                }
            }
        }
        let cases = [
            (json!({"interval": text}), "interval"),
            (json!({"interval": 60, "initialDelay": text}), "initialDelay"),
            (json!({"triggers": [{"interval": 60, "initialDelay": text}]}), "triggers[0].initialDelay"),
            (json!({"when": "2030-01-01T00:00:00Z", "backoff": {"delay": text}}), "backoff.delay"),
        ];
        for (body, field) in cases {
            let r = std::panic::catch_unwind(|| parse_create(&body, NOW));
            prop_assert!(r.is_ok(), "parse_create panicked on {}", body);
            prop_assert_eq!(field_of(r.unwrap().unwrap_err())?, field, "{}", body);
        }
    }

    /// An interval job starts `initialDelay` after now (to the microsecond) only while that
    /// start is in range: a delay of any length that starts it past 9999-12-31T23:59:59Z is
    /// refused as out of range, naming `initialDelay` (`triggers[i].initialDelay` in an entry),
    /// so every instant an accepted create names is in range.
    #[test]
    fn every_instant_an_accepted_create_names_is_in_range(
        delay in prop_oneof![human_text(1_000).prop_map(|h| Value::String(h.text)), (0u64..=1u64 << 40).prop_map(Value::from), iso_text().prop_map(|i| Value::String(i.text))],
        now in server_now(),
    ) {
        let start = parse_delay("initialDelay", &delay)
            .map(|d| now.plus_micros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)))
            .ok();
        let cases = [
            (json!({"interval": 60, "initialDelay": delay}), "initialDelay"),
            (json!({"triggers": [{"interval": 60}, {"interval": 60, "initialDelay": delay}]}), "triggers[1].initialDelay"),
        ];
        for (body, field) in cases {
            let r = parse_create(&body, now);
            match start {
                Some(start) if check_instant(field, start).is_ok() => {
                    let r = r.map_err(|e| TestCaseError::fail(format!("{body} from {now:?} refused: {e}")))?;
                    let t = r.spec.triggers.last().unwrap();
                    prop_assert_eq!(&t.schedule, &ScheduleSpec::Interval { every_ms: 60_000, start });
                    prop_assert!(check_instant("when", r.spec.anchor).is_ok());
                }
                Some(start) => {
                    let e = r.unwrap_err();
                    let msg = e.to_string();
                    prop_assert_eq!(field_of(e)?, field, "{} from {:?} would start at {:?}", body, now, start);
                    prop_assert!(msg.contains("out of range"), "{}", msg);
                }
                None => prop_assert_eq!(field_of(r.unwrap_err())?, field, "{}", body),
            }
        }
    }
}
