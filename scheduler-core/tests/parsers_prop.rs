//! Property tests for every parser the REST API feeds, through the crate's public API only:
//! instants (`when`, `until`), cron patterns and their time zones, intervals and delays
//! (`interval`, `initialDelay`, `backoff`), and whole create / reschedule bodies (schedule keys
//! mixed with payload keys).
//!
//! Bounded and reproducible: each property sets its case count explicitly, the random seed is
//! fixed (so every run tries the same cases and a failure repeats as it was reported), and
//! failures are not persisted to files in the source tree (proptest prints the shrunk input).
//! To explore further: `PROPTEST_RNG_SEED=<n>` picks other cases, `PROPTEST_CASES=<n>` runs more.
//!
//! Every property runs on the whole of its input space, edge cases included: top-level
//! `enabled`, `name` and `data` are payload keys in a create body; duration text past the
//! largest `Duration` is refused; a leap second cannot take an instant past
//! 9999-12-31T23:59:59Z; a trigger `name` holding a NUL is refused; an `initialDelay` that
//! starts past 9999 is refused naming it; and cron computes no fire from instants beyond
//! ±190,000 years.

use std::time::Duration;

use chrono::{DateTime, Datelike, Offset, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::RngSeed;
use scheduler_core::request::{
    check_instant, parse_create, parse_instant, parse_reschedule, RESCHEDULE_KEYS, SERVICE_KEYS,
};
use scheduler_core::trigger::{parse_cron, parse_delay, parse_interval, Compiled, ScheduleSpec, Trigger};
use scheduler_core::{CoreError, Ts};
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------------------------
// Configuration and shared helpers
// ---------------------------------------------------------------------------------------------

/// The earliest instant the API accepts (1970-01-01T00:00:00Z), in seconds.
const MIN_SECS: i64 = 0;
/// The latest (9999-12-31T23:59:59Z), in seconds.
const MAX_SECS: i64 = 253_402_300_799;
/// The longest interval accepted (ten years, `MAX_INTERVAL` in `trigger/interval.rs`).
const MAX_INTERVAL_SECS: u64 = 3_650 * 86_400;
/// A fixed "now" (2026-09-21).
const NOW: Ts = Ts(1_790_000_000_000_000);
const NANOS: u128 = 1_000_000_000;

/// Settings of an entry of `triggers` that, at the top level of a create body, are payload
/// keys like any other (see `top_level_trigger_keys_are_payload`).
const ENTRY_ONLY_KEYS: [&str; 3] = ["enabled", "name", "data"];

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x5c4e_d01e_2026),
        max_shrink_iters: 4_096,
        max_shrink_time: 20_000,
        ..ProptestConfig::default()
    }
}

/// The field an error names; anything but `InvalidField` fails the property.
fn field_of(e: CoreError) -> Result<String, TestCaseError> {
    match e {
        CoreError::InvalidField { field, .. } => Ok(field),
        other => Err(TestCaseError::fail(format!("expected CoreError::InvalidField, got {other:?}"))),
    }
}

/// The top-level key a field name is about: `triggers[1].cron` -> `triggers`, `backoff.type`
/// -> `backoff`.
fn root_of(field: &str) -> &str {
    field.split(['.', '[']).next().unwrap_or(field)
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn obj(pairs: Vec<(&str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn secs_ts(secs: i64) -> Ts {
    Ts(secs * 1_000_000)
}

// ---------------------------------------------------------------------------------------------
// Strategies: JSON values
// ---------------------------------------------------------------------------------------------

/// Numbers as JSON can hold them: any i64 / u64 / finite f64, and number text of any size
/// (huge, tiny, fractional, with exponents) read the way the web layer reads a body.
fn json_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN and infinities become null, as serde_json does
        (-1e12f64..1e12).prop_map(Value::from),
        prop::sample::select(vec![
            0.0,
            -0.0,
            1e-300,
            5e-324,
            0.5,
            0.999_999_999_9,
            1.0,
            86_400.5,
            f64::MAX,
            -f64::MAX,
            u64::MAX as f64,
            i64::MAX as f64,
            1.8e19,
            3.2e8,
        ])
        .prop_map(Value::from),
        "-?[0-9]{1,40}(\\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?"
            .prop_map(|s| serde_json::from_str::<Value>(&s).unwrap_or(Value::Null)),
    ]
}

/// Text of any kind; a NUL character (`\u0000`) only now and then (one in about 40 strings),
/// so that bodies holding several strings are not all refused for it.
fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => any::<String>().prop_map(|s| s.replace('\0', "")),
        10 => "\\PC{0,24}",
        10 => "[a-zA-Z0-9 :./+\\-]{0,24}",
        5 => Just(String::new()),
        1 => "[a-z]{0,3}\u{0}[a-z]{0,3}",
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number(),
        json_string().prop_map(Value::String),
    ]
}

/// Arbitrary JSON, nested (arrays and objects with unicode keys) up to a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(json_string(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// Strategies: instants
// ---------------------------------------------------------------------------------------------

fn seconds_format() -> impl Strategy<Value = SecondsFormat> {
    select(vec![
        SecondsFormat::Secs,
        SecondsFormat::Millis,
        SecondsFormat::Micros,
        SecondsFormat::Nanos,
        SecondsFormat::AutoSi,
    ])
}

/// Offsets RFC 3339 can write (whole minutes, up to ±23:59), UTC often.
fn offset_minutes() -> impl Strategy<Value = i32> {
    prop_oneof![Just(0), -1_439i32..=1_439, select(vec![60, -60, 330, -570, 345, 840, -720])]
}

/// Nanoseconds truncated to what `format` writes.
fn written_nanos(nanos: u32, format: SecondsFormat) -> u32 {
    match format {
        SecondsFormat::Secs => 0,
        SecondsFormat::Millis => nanos / 1_000_000 * 1_000_000,
        SecondsFormat::Micros => nanos / 1_000 * 1_000,
        _ => nanos,
    }
}

/// An instant written as RFC 3339 with an offset and a precision, in one of the spellings the
/// standard allows (`Z` or `+00:00`, upper or lower case `T`/`Z`, surrounding whitespace).
#[derive(Debug, Clone)]
struct WrittenInstant {
    text: String,
    /// The instant, or `None` when its local year cannot be written in four digits.
    utc: Option<DateTime<Utc>>,
    /// Nanoseconds of the written second.
    written_nanos: u32,
}

fn write_instant(secs: i64, nanos: u32, offset_min: i32, format: SecondsFormat, spelling: u8) -> WrittenInstant {
    let utc = DateTime::<Utc>::from_timestamp(secs, nanos).expect("in chrono's range");
    let offset = chrono::FixedOffset::east_opt(offset_min * 60).expect("a valid offset");
    let local = utc.with_timezone(&offset);
    let mut text = local.to_rfc3339_opts(format, spelling & 1 == 0);
    if spelling & 2 != 0 {
        text = text.replace('T', "t").replace('Z', "z");
    }
    if spelling & 4 != 0 {
        text = format!(" \t{text}\n ");
    }
    let representable = (0..=9999).contains(&local.year());
    WrittenInstant { text, utc: representable.then_some(utc), written_nanos: written_nanos(nanos, format) }
}

/// Seconds in the accepted range, with its edges often.
fn secs_in_range() -> impl Strategy<Value = i64> {
    prop_oneof![
        MIN_SECS..=MAX_SECS,
        MIN_SECS..MIN_SECS + 3 * 86_400,
        MAX_SECS - 3 * 86_400..=MAX_SECS,
        1_500_000_000i64..2_500_000_000,
    ]
}

/// Seconds across and around the accepted range: years 0000 to 9999 and the edges.
fn secs_around_range() -> impl Strategy<Value = i64> {
    // 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
    const YEAR_0: i64 = -62_167_219_200;
    prop_oneof![
        YEAR_0 + 86_400..=MAX_SECS - 86_400,
        MIN_SECS - 2 * 86_400..MIN_SECS + 2 * 86_400,
        MAX_SECS - 2 * 86_400..MAX_SECS + 2 * 86_400,
        select(vec![MIN_SECS - 1, MIN_SECS, MAX_SECS, MAX_SECS + 1]),
    ]
}

fn nanos() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), 0u32..1_000_000_000, (0u32..1_000).prop_map(|ms| ms * 1_000_000), Just(999_999_999)]
}

/// Timestamp-like text with every part possibly out of range or malformed: years of any
/// width and sign, month 0-13, second 60 (a leap second), offsets past ±23:59, odd separators.
#[derive(Debug, Clone)]
struct GarbledInstant {
    text: String,
    year: i64,
}

fn garbled_instant() -> impl Strategy<Value = GarbledInstant> {
    let year = prop_oneof![
        select(vec![0i64, 1, 1969, 1970, 2017, 9998, 9999, 10_000, 99_999, -1]),
        0i64..=99_999,
        -9_999i64..0,
    ];
    let date = (year, 0u32..=13, 0u32..=32, prop::bool::weighted(0.8));
    let time = (
        0u32..=25,
        0u32..=61,
        prop_oneof![0u32..=59, Just(60), Just(61)],
        prop_oneof![Just(String::new()), "\\.[0-9]{0,14}", ",[0-9]{1,3}"],
    );
    let offset = prop_oneof![
        select(vec![
            "Z", "z", "", "+00:00", "-00:00", "+01:00", "-01:00", "+23:59", "-23:59", "+24:00", "+99:99", "+0100",
            "+01"
        ])
        .prop_map(str::to_owned),
        (any::<bool>(), 0u32..=30, 0u32..=70)
            .prop_map(|(neg, h, m)| format!("{}{h:02}:{m:02}", if neg { '-' } else { '+' })),
    ];
    (date, time, offset, select(vec!["T", "t", " ", "_", ""])).prop_map(
        |((year, mo, d, pad), (h, mi, s, frac), off, sep)| {
            let y = if pad {
                if year < 0 {
                    format!("-{:04}", -year)
                } else {
                    format!("{year:04}")
                }
            } else {
                year.to_string()
            };
            GarbledInstant { text: format!("{y}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{off}"), year }
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Strategies: cron patterns and zones
// ---------------------------------------------------------------------------------------------

/// A generated cron pattern, with the smallest day of the month it may fire on.
#[derive(Debug, Clone)]
struct CronExpr {
    text: String,
    /// `None` when the day of the month is a wildcard.
    min_dom: Option<u32>,
}

/// One numeric field in every standard form: `*`, `*/n`, `a`, `a-b`, `a-b/n`, `a,b,c`.
/// Returns the text and the smallest value it names (`None` for wildcards).
fn numeric_field(lo: u32, hi: u32) -> BoxedStrategy<(String, Option<u32>)> {
    let span = (hi - lo).max(1);
    prop_oneof![
        2 => Just(("*".to_owned(), None)),
        1 => (1..=span).prop_map(|n| (format!("*/{n}"), None)),
        2 => (lo..=hi).prop_map(|a| (a.to_string(), Some(a))),
        1 => (lo..=hi, lo..=hi).prop_map(|(a, b)| (format!("{}-{}", a.min(b), a.max(b)), Some(a.min(b)))),
        1 => (lo..=hi, lo..=hi, 1..=span)
            .prop_map(|(a, b, n)| (format!("{}-{}/{n}", a.min(b), a.max(b)), Some(a.min(b)))),
        1 => prop::collection::btree_set(lo..=hi, 1..4).prop_map(|s| {
            let min = s.iter().next().copied();
            (s.iter().map(u32::to_string).collect::<Vec<_>>().join(","), min)
        }),
    ]
    .boxed()
}

fn month_field() -> BoxedStrategy<String> {
    const NAMES: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
    prop_oneof![
        4 => numeric_field(1, 12).prop_map(|(t, _)| t),
        1 => (0usize..12).prop_map(|i| NAMES[i].to_owned()),
        1 => (0usize..12, 0usize..12).prop_map(|(a, b)| format!("{}-{}", NAMES[a.min(b)], NAMES[a.max(b)].to_lowercase())),
    ]
    .boxed()
}

fn weekday_field() -> BoxedStrategy<String> {
    prop_oneof![
        4 => numeric_field(0, 7).prop_map(|(t, _)| t),
        1 => select(vec!["MON-FRI", "SAT,SUN", "SAT-SUN", "sun", "Tue", "?", "5L", "1#2", "FRI#3"]).prop_map(str::to_owned),
    ]
    .boxed()
}

fn dom_field() -> BoxedStrategy<(String, Option<u32>)> {
    prop_oneof![
        6 => numeric_field(1, 31),
        1 => Just(("?".to_owned(), None)),
        // `L` (last day) and `15W` (nearest weekday) fire every month.
        1 => select(vec!["L", "15W", "1W", "LW"]).prop_map(|s| (s.to_owned(), Some(1))),
    ]
    .boxed()
}

/// Valid 5- and 6-field patterns (seconds first in the 6-field form), with names, `?`, `L`,
/// `W`, `#`, nicknames and odd whitespace.
fn cron_expr() -> impl Strategy<Value = CronExpr> {
    let fields = (
        prop::option::of(numeric_field(0, 59)),
        numeric_field(0, 59),
        numeric_field(0, 23),
        dom_field(),
        month_field(),
        weekday_field(),
    );
    let spaced = (fields, select(vec![" ", "  ", "\t", " \t "]), any::<bool>()).prop_map(
        |((sec, min, hour, (dom, min_dom), month, dow), sep, pad)| {
            let mut parts: Vec<String> = sec.into_iter().map(|(s, _)| s).collect();
            parts.extend([min.0, hour.0, dom, month, dow]);
            let text = parts.join(sep);
            CronExpr { text: if pad { format!(" {text} ") } else { text }, min_dom }
        },
    );
    prop_oneof![
        9 => spaced,
        1 => select(vec!["@daily", "@hourly", "@weekly", "@monthly", "@yearly", "@annually", "@DAILY"])
            .prop_map(|s| CronExpr { text: s.to_owned(), min_dom: Some(1) }),
    ]
}

/// Text that looks like cron: token soup (mostly refused), and valid patterns as they are, in
/// lower case, or with one field replaced by a token, dropped or added (some still valid).
fn cronish_text() -> impl Strategy<Value = String> {
    let token = || {
        prop_oneof![
            "[0-9*/,?LW#\\-]{1,6}",
            "[0-9]{1,12}",
            "[A-Za-z]{1,4}",
            "@[a-zA-Z]{0,9}",
            select(vec![
                "*", "*/0", "*/99999", "0/5", "/5", "5-", "-5", "5-1", "L-2", "5#9", "0#1", "32W", "0W", "LW", "L",
                "7L", "?", "MON-SUN", "SUN-MON", "JAN-DEC", "DEC-JAN", "60", "24", "0", "31", "13",
            ])
            .prop_map(str::to_owned),
        ]
    };
    let soup = prop::collection::vec(token(), 0..9).prop_map(|t| t.join(" "));
    let mutated = (cron_expr(), any::<Index>(), token(), 0u8..5).prop_map(|(c, at, tok, how)| {
        let mut fields: Vec<String> = c.text.split_whitespace().map(str::to_owned).collect();
        let i = at.index(fields.len());
        match how {
            0 => fields[i] = tok,
            1 => {
                fields.remove(i);
            }
            2 => fields.insert(i, tok),
            3 => return c.text.to_lowercase(),
            _ => return c.text,
        }
        fields.join(" ")
    });
    prop_oneof![soup, mutated]
}

/// Any IANA zone; often one with daylight saving time or another odd rule: half-hour shifts
/// (Lord Howe), changes at midnight (Havana, Santiago), negative DST (Dublin), a two-hour
/// shift (Troll), Ramadan changes (Casablanca), 45-minute offsets (Chatham).
fn zone() -> impl Strategy<Value = Tz> {
    prop_oneof![
        1 => select(chrono_tz::TZ_VARIANTS.to_vec()),
        1 => select(vec![
            Tz::America__New_York,
            Tz::Europe__Prague,
            Tz::Europe__London,
            Tz::Europe__Dublin,
            Tz::Australia__Lord_Howe,
            Tz::Australia__Sydney,
            Tz::America__Havana,
            Tz::America__Santiago,
            Tz::America__Sao_Paulo,
            Tz::Antarctica__Troll,
            Tz::Africa__Casablanca,
            Tz::Pacific__Chatham,
            Tz::Asia__Tehran,
            Tz::UTC,
        ]),
    ]
}

fn is_zone_name(s: &str) -> bool {
    chrono_tz::TZ_VARIANTS.iter().any(|z| z.name() == s)
}

/// Zone strings that are mostly not IANA names: arbitrary text, and real names bent a little.
fn bogus_zone() -> impl Strategy<Value = String> {
    let bent = (zone(), 0u8..8).prop_map(|(z, how)| {
        let n = z.name();
        match how {
            0 => n.to_lowercase(),
            1 => n.to_uppercase(),
            2 => format!("{n}x"),
            3 => format!("/{n}"),
            4 => n.replace('/', "-"),
            5 => n[..n.len() - 1].to_owned(),
            6 => format!("{n}\u{0}"),
            _ => format!(" {n}\t"),
        }
    });
    prop_oneof![
        any::<String>(),
        "[A-Za-z_/+\\-0-9]{0,20}",
        bent,
        select(vec!["", " ", "UTC+1", "GMT+25", "Etc/GMT+15", "Mars/Base", "Local", "localtime", "Z", "+01:00"])
            .prop_map(str::to_owned),
    ]
}

/// The offset of `tz` at `secs`, in seconds.
fn offset_at(tz: &Tz, secs: i64) -> i32 {
    let utc = DateTime::<Utc>::from_timestamp(secs, 0).expect("in range").naive_utc();
    tz.offset_from_utc_datetime(&utc).fix().local_minus_utc()
}

/// The instants (seconds) at which `tz` changes its offset during `year`.
fn transitions(tz: &Tz, year: i32) -> Vec<i64> {
    let start = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).unwrap().timestamp();
    let end = Utc.with_ymd_and_hms(year + 1, 1, 1, 0, 0, 0).unwrap().timestamp();
    let mut out = Vec::new();
    let (mut t, mut before) = (start, offset_at(tz, start));
    while t < end {
        // Daily probes: no zone changes its offset twice within a day.
        let next = t + 86_400;
        let after = offset_at(tz, next);
        if after != before {
            let (mut lo, mut hi) = (t, next); // offset(lo) == before, offset(hi) != before
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset_at(tz, mid) == before {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            out.push(hi);
            before = after;
        }
        t = next;
    }
    out
}

/// A "now" for cron fire computations: uniform over 1970-9999, in 1970-2100, or within hours
/// or days of one of the zone's offset changes (daylight saving time) in a year.
#[derive(Debug, Clone)]
enum NowSpec {
    Secs(i64, u32),
    NearTransition { year: i32, pick: Index, delta: i64, micros: u32 },
}

fn now_spec() -> impl Strategy<Value = NowSpec> {
    prop_oneof![
        1 => (MIN_SECS..=MAX_SECS, 0u32..1_000_000).prop_map(|(s, m)| NowSpec::Secs(s, m)),
        2 => (0i64..4_102_444_800, prop_oneof![Just(0u32), 0u32..1_000_000]).prop_map(|(s, m)| NowSpec::Secs(s, m)),
        5 => (1_970i32..2_060, any::<Index>(), prop_oneof![-10_800i64..10_800, -3 * 86_400i64..3 * 86_400], prop_oneof![Just(0u32), 0u32..1_000_000])
            .prop_map(|(year, pick, delta, micros)| NowSpec::NearTransition { year, pick, delta, micros }),
    ]
}

fn resolve_now(spec: &NowSpec, tz: &Tz) -> Ts {
    match spec {
        NowSpec::Secs(s, m) => Ts(s * 1_000_000 + i64::from(*m)),
        NowSpec::NearTransition { year, pick, delta, micros } => {
            let ts = transitions(tz, *year);
            let base = if ts.is_empty() {
                Utc.with_ymd_and_hms(*year, 6, 1, 0, 0, 0).unwrap().timestamp()
            } else {
                ts[pick.index(ts.len())]
            };
            Ts((base + delta) * 1_000_000 + i64::from(*micros))
        }
    }
}

/// croner searches no further than the year 5000 (`croner::YEAR_UPPER_LIMIT`) and matches no
/// year past it, where the fast path goes on: fires are checked against croner before
/// 4999-01-01 only.
const CRONER_HORIZON: Ts = Ts(95_586_048_000 * 1_000_000);

/// How far from 1970 cron computes fires (about 190,000 years, in microseconds): well inside
/// chrono's calendar (±262,143 years), which `Ts` goes past. From beyond it nothing fires.
const CRON_CALENDAR_MICROS: i64 = 6_000_000_000_000_000_000;

/// croner's own answer: the first fire strictly after `t`'s second.
fn croner_after(cron: &croner::Cron, tz: &Tz, t: Ts) -> Option<Ts> {
    let from = DateTime::<Utc>::from_timestamp(t.0.div_euclid(1_000_000), 0)?.with_timezone(tz);
    cron.find_next_occurrence(&from, false).ok().map(|d| Ts::from_datetime(d.with_timezone(&Utc)))
}

fn cron_trigger(expr: &str, zone: &str) -> Trigger {
    Trigger::new(ScheduleSpec::Cron { expr: expr.trim().to_owned(), timezone: zone.to_owned() })
}

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
struct HumanText {
    text: String,
    nanos: u128,
}

fn human_text(max_value: u64) -> impl Strategy<Value = HumanText> {
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
struct IsoText {
    text: String,
    nanos: u128,
    calendar: bool,
}

fn iso_text() -> impl Strategy<Value = IsoText> {
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
// Strategies: request bodies
// ---------------------------------------------------------------------------------------------

fn instant_text() -> impl Strategy<Value = String> {
    (1_000_000_000i64..4_000_000_000, nanos(), offset_minutes(), seconds_format())
        .prop_map(|(s, n, o, f)| write_instant(s, n, o, f, 0).text)
}

fn interval_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (1u64..=100_000).prop_map(Value::from),
        (1.0f64..1e6).prop_map(Value::from),
        human_text(100).prop_map(|h| Value::String(h.text)),
        iso_text().prop_map(|i| Value::String(i.text)),
        json_value(),
    ]
}

fn delay_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..=1_000_000).prop_map(Value::from),
        Just(json!("0")),
        human_text(1_000).prop_map(|h| Value::String(h.text)),
        iso_text().prop_map(|i| Value::String(i.text)),
    ]
}

/// One trigger entry of `triggers` (mostly valid, sometimes not).
fn trigger_entry() -> impl Strategy<Value = Value> {
    let schedule = prop_oneof![
        instant_text().prop_map(|w| obj(vec![("when", json!(w))])),
        (cron_expr(), prop::option::of(zone())).prop_map(|(c, z)| {
            let mut m = obj(vec![("cron", json!(c.text))]);
            if let Some(z) = z {
                m.insert("timezone".into(), json!(z.name()));
            }
            m
        }),
        (interval_value(), prop::option::of(delay_value())).prop_map(|(i, d)| {
            let mut m = obj(vec![("interval", i)]);
            if let Some(d) = d {
                m.insert("initialDelay".into(), d);
            }
            m
        }),
    ];
    let extras = prop::collection::btree_map(
        prop_oneof![
            select(vec!["repeatCount", "until", "misfire", "enabled", "data", "name", "when", "vmId"])
                .prop_map(str::to_owned),
            json_string(),
        ],
        prop_oneof![json_value(), Just(json!({"slot": "morning"})), Just(json!(false)), Just(json!("evening"))],
        0..3,
    );
    (schedule, prop::option::weighted(0.3, extras)).prop_map(|(mut m, extras)| {
        m.extend(extras.unwrap_or_default());
        Value::Object(m)
    })
}

/// The schedule part of a body: every form the API takes, mostly valid.
fn schedule_part() -> impl Strategy<Value = Map<String, Value>> {
    prop_oneof![
        3 => instant_text().prop_map(|w| obj(vec![("when", json!(w))])),
        2 => (cron_expr(), prop::option::of(zone())).prop_map(|(c, z)| {
            let mut m = obj(vec![("cron", json!(c.text))]);
            if let Some(z) = z {
                m.insert("timezone".into(), json!(z.name()));
            }
            m
        }),
        3 => (
            interval_value(),
            prop_oneof![Just(None), instant_text().prop_map(|w| Some(("when", json!(w)))), delay_value().prop_map(|d| Some(("initialDelay", d)))],
            prop::option::of(instant_text()),
            prop::option::of(1u64..=10),
        )
            .prop_map(|(i, start, until, count)| {
                let mut m = obj(vec![("interval", i)]);
                if let Some((k, v)) = start {
                    m.insert(k.into(), v);
                }
                if let Some(u) = until {
                    m.insert("until".into(), json!(u));
                }
                if let Some(c) = count {
                    m.insert("repeatCount".into(), json!(c));
                }
                m
            }),
        1 => Just(obj(vec![("now", json!(true))])),
        1 => (instant_text(), 1u64..=36_500, select(vec!["RECURRING", "recurring"])).prop_map(|(w, days, t)| {
            obj(vec![("when", json!(w)), ("jobType", json!(t)), ("repeatIntervalInDays", json!(days))])
        }),
        2 => prop::collection::vec(trigger_entry(), 0..4).prop_map(|t| obj(vec![("triggers", Value::Array(t))])),
        1 => Just(Map::new()),
    ]
}

/// Policies with valid values, to reach the accepting paths.
fn policies() -> impl Strategy<Value = Map<String, Value>> {
    let entry = prop_oneof![
        select(vec!["skip", "queue", "allow", "QUEUE"]).prop_map(|v| ("overlap", json!(v))),
        prop_oneof![
            (-100i64..=100).prop_map(Value::from),
            select(vec!["low", "normal", "high", "critical"]).prop_map(Value::from)
        ]
        .prop_map(|v| ("priority", v)),
        (1u64..=100).prop_map(|v| ("attempts", json!(v))),
        (
            select(vec!["fixed", "exponential"]),
            0u64..100_000,
            prop::option::of(0u64..1_000_000),
            1.0f64..=100.0,
            any::<bool>()
        )
            .prop_map(|(t, d, c, f, j)| {
                let mut b =
                    obj(vec![("type", json!(t)), ("delay", json!(d)), ("factor", json!(f)), ("jitter", json!(j))]);
                if let Some(c) = c {
                    b.insert("cap".into(), json!(c));
                }
                ("backoff", Value::Object(b))
            }),
        any::<bool>().prop_map(|v| ("isPaused", json!(v))),
        select(vec!["fireOnce", "skip", "fireAll"]).prop_map(|v| ("misfire", json!(v))),
        Just(("id", json!("0190b1a2-3c4d-7e5f-8a9b-0c1d2e3f4a5b"))),
    ];
    prop::collection::vec(entry, 0..4).prop_map(|e| e.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Service keys with arbitrary values (mostly wrong).
fn service_noise() -> impl Strategy<Value = Map<String, Value>> {
    prop_oneof![
        3 => Just(Map::new()),
        1 => prop::collection::btree_map(select(SERVICE_KEYS.to_vec()).prop_map(str::to_owned), json_value(), 1..3)
            .prop_map(|m| m.into_iter().collect()),
    ]
}

/// Payload keys: unicode, near misses of service keys (`When`, `timeZone`, `cron `), plain
/// names, and the trigger-entry settings `enabled`, `name` and `data`; never a service key.
fn payload_key() -> impl Strategy<Value = String> {
    let near_miss = (select(SERVICE_KEYS.to_vec()), 0u8..4).prop_map(|(k, how)| match how {
        0 => k.to_uppercase(),
        1 => format!("{k} "),
        2 => format!("{}{}", k[..1].to_uppercase(), &k[1..]),
        _ => format!("_{k}"),
    });
    prop_oneof![
        6 => any::<String>(),
        6 => "\\PC{1,12}",
        6 => "[a-zA-Z_]{1,12}",
        6 => near_miss,
        3 => Just("vmId".to_owned()),
        3 => select(ENTRY_ONLY_KEYS.to_vec()).prop_map(str::to_owned),
    ]
    .prop_filter("not a service key", |k| !SERVICE_KEYS.contains(&k.as_str()))
}

fn payload() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(payload_key(), json_value(), 0..8).prop_map(|m| m.into_iter().collect())
}

/// A "now" a server could see (1970 to 2200).
fn server_now() -> impl Strategy<Value = Ts> {
    prop_oneof![Just(NOW), (0i64..7_258_118_400_000_000).prop_map(Ts)]
}

// ---------------------------------------------------------------------------------------------
// Instants: `when`, `until`
// ---------------------------------------------------------------------------------------------

/// What a property asserts about any text given as an instant: no panic; either an instant
/// the API accepts (in range) or `InvalidField` naming the field.
fn check_any_instant_text(text: &str) -> Result<(), TestCaseError> {
    for field in ["when", "until", "triggers[3].until"] {
        match parse_instant(field, &json!(text)) {
            Ok(t) => prop_assert!(check_instant(field, t).is_ok(), "{text:?} parsed to {t:?}, outside the range"),
            Err(e) => prop_assert_eq!(field_of(e)?, field),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1_000))]

    /// Any text as an instant: no panic, an in-range instant or a refusal naming the field.
    #[test]
    fn any_text_as_an_instant_parses_or_names_the_field(
        text in prop_oneof![any::<String>(), "[0-9T:Zz+\\-., ]{0,40}", garbled_instant().prop_map(|g| g.text)],
    ) {
        check_any_instant_text(&text)?;
    }
}

proptest! {
    #![proptest_config(config(1_000))]

    /// Any JSON that is not a string is refused, naming the field, directly and in a body
    /// (`when` of a one-time job, `until` of an interval job and of a trigger entry). `null`
    /// means absent.
    #[test]
    fn non_string_instants_are_refused_naming_the_field(v in json_value().prop_filter("not a string", |v| !v.is_string())) {
        for field in ["when", "until"] {
            prop_assert_eq!(field_of(parse_instant(field, &v).unwrap_err())?, field);
        }
        let cases = [
            (json!({"when": v.clone()}), "when"),
            (json!({"interval": 60, "until": v.clone()}), "until"),
            (json!({"triggers": [{"interval": 60}, {"cron": "* * * * *", "until": v.clone()}]}), "triggers[1].until"),
            (json!({"when": v.clone(), "jobType": "RECURRING", "repeatIntervalInDays": 1}), "when"),
        ];
        for (body, field) in cases {
            let r = parse_create(&body, NOW);
            if v.is_null() && field != "when" {
                prop_assert!(r.is_ok(), "{body}: {r:?}");
            } else {
                prop_assert_eq!(field_of(r.unwrap_err())?, field, "{}", body);
            }
        }
    }

    /// Timestamp-like text with any part out of range: years before 1969 or after 9999 (of any
    /// width or sign) are always refused, naming the field, and nothing panics.
    #[test]
    fn out_of_range_years_are_refused(g in garbled_instant()) {
        check_any_instant_text(&g.text)?;
        if !(1969..=9999).contains(&g.year) {
            for field in ["when", "until"] {
                prop_assert_eq!(field_of(parse_instant(field, &json!(g.text)).unwrap_err())?, field, "{}", g.text);
            }
        }
    }

    /// RFC 3339 text written from any instant of 1970-9999 (any offset, any precision, `Z` or
    /// `+00:00`, upper or lower case, surrounding whitespace) reads back as the same instant to
    /// the microsecond, the precision `Ts` keeps (finer digits are truncated). An instant whose
    /// local year cannot be written in four digits is refused, not mangled.
    #[test]
    fn rfc3339_round_trips_to_the_microsecond(
        secs in secs_in_range(),
        nanos in nanos(),
        offset in offset_minutes(),
        format in seconds_format(),
        spelling in 0u8..8,
    ) {
        let w = write_instant(secs, nanos, offset, format, spelling);
        for field in ["when", "until"] {
            let got = parse_instant(field, &json!(w.text));
            match w.utc {
                Some(_) => {
                    let want = Ts(secs * 1_000_000 + i64::from(w.written_nanos / 1_000));
                    prop_assert_eq!(got.ok(), Some(want), "{:?}", w.text);
                }
                None => prop_assert_eq!(field_of(got.unwrap_err())?, field, "{:?}", w.text),
            }
        }
        if w.utc.is_some() {
            let t = Ts(secs * 1_000_000 + i64::from(w.written_nanos / 1_000));
            // The API writes instants with milliseconds; what it writes reads back to them.
            prop_assert_eq!(parse_instant("when", &json!(t.to_rfc3339())).ok(), Some(Ts::from_millis(t.as_millis())));
            // A one-time job is anchored at exactly that instant.
            let r = parse_create(&json!({"when": w.text, "vmId": "x"}), NOW).map(|r| r.spec.anchor);
            prop_assert_eq!(r.ok(), Some(t));
        }
    }

    /// Accepted exactly from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z, judged on
    /// the instant (not the local date): `1969-12-31T23:00:00-01:00` is in, `9999-12-31T23:30:00-01:00`
    /// is out.
    #[test]
    fn instants_are_accepted_exactly_from_1970_to_9999(
        secs in secs_around_range(),
        nanos in nanos(),
        offset in offset_minutes(),
        format in seconds_format(),
        spelling in 0u8..8,
    ) {
        let w = write_instant(secs, nanos, offset, format, spelling);
        let in_range = (MIN_SECS..=MAX_SECS).contains(&secs) && w.utc.is_some();
        for field in ["when", "until"] {
            let r = parse_instant(field, &json!(w.text));
            prop_assert_eq!(r.is_ok(), in_range, "{:?}: {:?}", w.text, r);
            match r {
                Ok(t) => prop_assert!(check_instant(field, t).is_ok()),
                Err(e) => prop_assert_eq!(field_of(e)?, field),
            }
        }
        // In a body: a trigger's `until` is refused naming the nested field.
        let body = json!({"triggers": [{"interval": 60, "when": "1970-01-01T00:00:00Z", "until": w.text}]});
        match parse_create(&body, NOW) {
            Ok(r) => {
                prop_assert!(in_range);
                prop_assert_eq!(r.spec.triggers[0].until, Some(Ts(secs * 1_000_000 + i64::from(w.written_nanos / 1_000))));
            }
            Err(e) => {
                prop_assert!(!in_range);
                prop_assert_eq!(field_of(e)?, "triggers[0].until");
            }
        }
    }

    /// `until` before the schedule's start is refused naming `until`; at or after it, it is
    /// kept as given.
    #[test]
    fn until_before_the_start_is_refused(start in secs_in_range(), until in secs_in_range(), m in 0i64..1_000_000) {
        let (start_t, until_t) = (secs_ts(start), Ts(until * 1_000_000 + m));
        let body = json!({"interval": "PT1M", "when": start_t.to_rfc3339(), "until": DateTime::<Utc>::from_timestamp_micros(until_t.0).unwrap().to_rfc3339_opts(SecondsFormat::Micros, true)});
        match parse_create(&body, NOW) {
            Ok(r) => {
                prop_assert!(until_t >= start_t);
                prop_assert_eq!(r.spec.triggers[0].until, Some(until_t));
            }
            Err(e) => {
                prop_assert!(until_t < start_t, "{}", body);
                prop_assert_eq!(field_of(e)?, "until");
            }
        }
    }
}

proptest! {
    #![proptest_config(config(200))]

    /// A leap second (`23:59:60` local time, any fraction, any offset) reads as one second
    /// after `23:59:59` plus the fraction, to the microsecond, and the range is judged on that
    /// instant: one that lands past 9999-12-31T23:59:59Z (`9999-12-31T23:59:60Z`, `+00:00`, or
    /// at an offset west of UTC) is refused as out of range, naming the field, directly and as
    /// a body's `until`; one that lands within the range is accepted as that instant.
    #[test]
    fn leap_seconds_never_take_an_instant_past_9999(
        day in prop_oneof![Just(31u32), 1u32..=31],
        frac in prop_oneof![Just(String::new()), "\\.[0-9]{1,9}"],
        offset_h in prop_oneof![Just(None), Just(Some(0i64)), (-23i64..=23).prop_map(Some)],
    ) {
        let offset = offset_h.map_or("Z".to_owned(), |h| format!("{h:+03}:00"));
        let text = format!("9999-12-{day:02}T23:59:60{frac}{offset}");
        // 9999-12-<day>T23:59:59 local, plus the leap second, in UTC.
        let secs = MAX_SECS - i64::from(31 - day) * 86_400 + 1 - offset_h.unwrap_or(0) * 3_600;
        let micros: i64 = if frac.is_empty() { 0 } else { format!("{:0<6.6}", &frac[1..]).parse().unwrap() };
        for field in ["when", "until"] {
            let r = parse_instant(field, &json!(text));
            if secs > MAX_SECS {
                let e = r.unwrap_err();
                let msg = e.to_string();
                prop_assert_eq!(field_of(e)?, field, "{}", text);
                prop_assert!(msg.contains("out of range"), "{text:?} refused for another reason: {msg}");
            } else {
                prop_assert_eq!(r.ok(), Some(Ts(secs * 1_000_000 + micros)), "{}", text);
            }
        }
        let r = parse_create(&json!({"interval": 60, "until": text}), NOW);
        if secs > MAX_SECS {
            prop_assert_eq!(field_of(r.unwrap_err())?, "until");
        } else {
            prop_assert_eq!(r.ok().and_then(|r| r.spec.triggers[0].until), Some(Ts(secs * 1_000_000 + micros)));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cron patterns and zones
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(400))]

    /// Any text as a pattern: no panic; compiled or refused naming `cron`, directly, in a body
    /// and in a trigger entry.
    #[test]
    fn any_text_as_a_cron_pattern_compiles_or_names_the_field(
        text in prop_oneof![any::<String>(), cronish_text()],
        tz in zone(),
    ) {
        let direct = parse_cron(&text, tz.name());
        if let Err(e) = &direct {
            prop_assert_eq!(e.field, "cron");
        }
        let r = parse_create(&json!({"cron": text, "timezone": tz.name()}), NOW);
        prop_assert_eq!(r.is_ok(), direct.is_ok(), "{:?}: {:?}", text, r);
        if let Err(e) = r {
            prop_assert_eq!(field_of(e)?, "cron");
        }
        let r = parse_reschedule(&json!({"triggers": [{"when": "2030-01-01T00:00:00Z"}, {"cron": text}]}), NOW);
        if let Err(e) = r {
            prop_assert_eq!(field_of(e)?, "triggers[1].cron");
        }
    }

    /// Valid 5- and 6-field patterns in any IANA zone compile, or (only when they name days of
    /// the month some months lack, like `30 2`) are refused naming `cron`. An accepted create
    /// keeps the pattern (trimmed) and zone, compiles, and is anchored at its first fire.
    #[test]
    fn generated_cron_patterns_compile_in_any_zone(expr in cron_expr(), tz in zone(), now in server_now()) {
        let direct = parse_cron(&expr.text, tz.name());
        match &direct {
            Ok(_) => {}
            Err(e) => {
                prop_assert_eq!(e.field, "cron", "{}", e);
                prop_assert!(expr.min_dom.is_some_and(|d| d > 28), "{:?} in {} refused: {}", expr.text, tz.name(), e);
            }
        }
        match parse_create(&json!({"cron": expr.text, "timezone": tz.name(), "vmId": "x"}), now) {
            Ok(r) => {
                prop_assert!(direct.is_ok());
                let t = &r.spec.triggers[0];
                prop_assert_eq!(&t.schedule, &ScheduleSpec::Cron { expr: expr.text.trim().to_owned(), timezone: tz.name().to_owned() });
                let compiled = r.spec.compile();
                prop_assert!(compiled.is_ok(), "{:?}", compiled.err());
                let first = compiled.unwrap()[0].first(now);
                prop_assert_eq!(Some(r.spec.anchor), first.or(Some(now)));
                prop_assert_eq!(r.payload, r#"{"vmId":"x"}"#);
            }
            Err(e) => {
                prop_assert!(direct.is_err());
                prop_assert_eq!(field_of(e)?, "cron");
            }
        }
    }

    /// Zone strings: accepted exactly when (trimmed) they are an IANA name; anything else is
    /// refused naming `timezone` (top level or nested), whatever the pattern. Non-string zones
    /// are refused the same way.
    #[test]
    fn time_zones_are_iana_names_or_refused(zone in bogus_zone(), expr in cron_expr(), other in json_value()) {
        let valid = is_zone_name(zone.trim());
        let direct = parse_cron(&expr.text, &zone);
        if valid {
            if let Err(e) = &direct {
                prop_assert_eq!(e.field, "cron");
            }
        } else {
            prop_assert_eq!(direct.map(|_| ()).unwrap_err().field, "timezone", "{:?}", zone);
            let r = parse_create(&json!({"cron": expr.text, "timezone": zone}), NOW);
            prop_assert_eq!(field_of(r.unwrap_err())?, "timezone");
            let r = parse_create(&json!({"triggers": [{"cron": "* * * * *", "timezone": zone}]}), NOW);
            prop_assert_eq!(field_of(r.unwrap_err())?, "triggers[0].timezone");
        }
        if !other.is_string() && !other.is_null() {
            let r = parse_create(&json!({"cron": "0 0 * * *", "timezone": other}), NOW);
            prop_assert_eq!(field_of(r.unwrap_err())?, "timezone");
        }
    }
}

proptest! {
    #![proptest_config(config(1_000))]

    /// For accepted patterns in any zone, from any "now" (often within hours of a daylight
    /// saving change): the first fire is at or after now, fires fall on whole seconds, each
    /// next fire is strictly later than the one before, and the schedule agrees with itself
    /// (a fire is its own first fire at-or-after; the fire after the microsecond before it is
    /// itself).
    #[test]
    fn cron_fires_are_strictly_increasing_from_any_now(expr in cron_expr(), tz in zone(), now in now_spec()) {
        let trigger = cron_trigger(&expr.text, tz.name());
        let Ok(c) = Compiled::new(&trigger) else { return Ok(()) };
        let now = resolve_now(&now, &tz);
        let mut fires = Vec::new();
        let mut next = c.first(now);
        while let Some(t) = next {
            fires.push(t);
            if fires.len() == 6 {
                break;
            }
            next = c.next_after(t, fires.len() as u64);
        }
        if let Some(first) = fires.first() {
            prop_assert!(*first >= now, "first fire {} before now {}", first, now);
        }
        for (i, &t) in fires.iter().enumerate() {
            prop_assert_eq!(t.0.rem_euclid(1_000_000), 0, "{} is not on a whole second", t);
            if i > 0 {
                prop_assert!(t > fires[i - 1], "{:?} in {}: fire {} after {}", expr.text, tz.name(), t, fires[i - 1]);
            }
            prop_assert_eq!(c.first(t), Some(t), "{} is a fire but not its own first fire", t);
            prop_assert_eq!(c.next_after(Ts(t.0 - 1), 0), Some(t), "the fire after {} - 1µs", t);
        }
        for w in fires.windows(2) {
            prop_assert_eq!(c.next_after(w[0], 0), Some(w[1]));
        }
        // The fires are croner's (the module documents croner's rules as the rules, the fast
        // path being only a shortcut to the same answers), and each is a wall time the pattern
        // names, or the first instant after a daylight-saving gap that skipped one.
        let (cron, _) = parse_cron(&expr.text, tz.name()).expect("it compiled");
        let whole = now.0.rem_euclid(1_000_000) == 0;
        let mut from = if whole { Ts(now.0 - 1_000_000) } else { now };
        for &t in &fires {
            if t >= CRONER_HORIZON {
                break;
            }
            prop_assert_eq!(Some(t), croner_after(&cron, &tz, from), "{:?} in {} after {}", expr.text, tz.name(), from);
            let local = DateTime::<Utc>::from_timestamp(t.0.div_euclid(1_000_000), 0).unwrap().with_timezone(&tz);
            let matching = cron.is_time_matching(&local).unwrap_or(false);
            let after_gap = offset_at(&tz, t.0.div_euclid(1_000_000) - 1) < offset_at(&tz, t.0.div_euclid(1_000_000));
            prop_assert!(matching || after_gap, "{:?} in {} fires at {} ({}), which it does not name", expr.text, tz.name(), t, local);
            from = t;
        }
    }
}

proptest! {
    #![proptest_config(config(200))]

    /// Cron fires from any `Ts`, including instants `Ts` (i64 microseconds) holds but chrono's
    /// calendar (years ±262,143) does not: nothing panics in any zone; from an instant beyond
    /// ±190,000 years of 1970 there is no fire (`first` and `next_after` are `None`); within
    /// that span, fires are at or after the instant and strictly increasing.
    #[test]
    fn cron_fires_from_any_representable_instant_never_panic(
        expr in cron_expr(),
        tz in zone(),
        now in prop_oneof![
            any::<i64>(),
            -CRON_CALENDAR_MICROS..=CRON_CALENDAR_MICROS,
            (-3 * 86_400i64..3 * 86_400).prop_map(|d| CRON_CALENDAR_MICROS + d * 1_000_000),
            (-3 * 86_400i64..3 * 86_400).prop_map(|d| -CRON_CALENDAR_MICROS + d * 1_000_000),
            (-3 * 86_400i64..3 * 86_400).prop_map(|d| (DateTime::<Utc>::MAX_UTC.timestamp() + d) * 1_000_000),
            (-3 * 86_400i64..3 * 86_400).prop_map(|d| (DateTime::<Utc>::MIN_UTC.timestamp() + d) * 1_000_000),
            select(vec![
                i64::MIN,
                i64::MAX,
                -1,
                0,
                CRON_CALENDAR_MICROS,
                CRON_CALENDAR_MICROS + 1,
                -CRON_CALENDAR_MICROS,
                -CRON_CALENDAR_MICROS - 1,
            ]),
        ],
    ) {
        let Ok(c) = Compiled::new(&cron_trigger(&expr.text, tz.name())) else { return Ok(()) };
        let now = Ts(now);
        if !(-CRON_CALENDAR_MICROS..=CRON_CALENDAR_MICROS).contains(&now.0) {
            prop_assert_eq!(c.first(now), None, "{:?} in {} fires from {:?}", expr.text, tz.name(), now);
            prop_assert_eq!(c.next_after(now, 1), None, "{:?} in {} fires after {:?}", expr.text, tz.name(), now);
            return Ok(());
        }
        let mut next = c.first(now);
        if let Some(first) = next {
            prop_assert!(first >= now, "first fire {:?} before {:?}", first, now);
        }
        for fired in 1..4 {
            let Some(t) = next else { break };
            next = c.next_after(t, fired);
            if let Some(n) = next {
                prop_assert!(n > t, "{:?} in {}: fire {:?} after {:?}", expr.text, tz.name(), n, t);
            }
        }
    }
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

// ---------------------------------------------------------------------------------------------
// Whole bodies: payload keys mixed with the service's own
// ---------------------------------------------------------------------------------------------

/// What a property asserts about any create body: no panic; when accepted, the payload holds
/// exactly the body's non-service keys with their values unchanged (and no NUL); when refused,
/// the error names a service key of the body (or one it lacks but needs: `when`,
/// `repeatIntervalInDays`), or `body` for a NUL in the payload.
fn check_create(body: &Map<String, Value>, now: Ts) -> Result<(), TestCaseError> {
    let expected: Map<String, Value> =
        body.iter().filter(|(k, _)| !SERVICE_KEYS.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    let payload_nul = has_nul(&Value::Object(expected.clone()));
    match parse_create(&Value::Object(body.clone()), now) {
        Ok(r) => {
            prop_assert!(!payload_nul, "a NUL in the payload was accepted");
            prop_assert_eq!(&r.payload, &serde_json::to_string(&expected).unwrap());
            let got: Map<String, Value> = serde_json::from_str(&r.payload).expect("the payload is a JSON object");
            prop_assert!(got.keys().eq(expected.keys()), "payload keys {:?}", got.keys().collect::<Vec<_>>());
            prop_assert!(SERVICE_KEYS.iter().all(|k| !got.contains_key(*k)));
            prop_assert_eq!(r.run_now, body.get("now") == Some(&json!(true)));
            prop_assert_eq!(r.paused, body.get("isPaused") == Some(&json!(true)));
            prop_assert!(!r.spec.triggers.is_empty());
            let compiled = r.spec.compile();
            prop_assert!(compiled.is_ok(), "an accepted spec does not compile: {:?}", compiled.err());
        }
        Err(e) => {
            let field = field_of(e)?;
            let root = root_of(&field);
            if root == "body" {
                prop_assert!(payload_nul, "`body` blamed without a NUL in the payload");
            } else {
                prop_assert!(SERVICE_KEYS.contains(&root), "`{}` blamed: not a service key", field);
                prop_assert!(
                    body.contains_key(root) || root == "when" || root == "repeatIntervalInDays",
                    "`{}` blamed but not in the body",
                    field
                );
            }
        }
    }
    Ok(())
}

/// Adding payload keys (without NUL) to a body changes neither whether it is accepted nor
/// its schedule and policies (nor, when refused, the field blamed).
fn check_payload_independence(
    base: &Map<String, Value>,
    payload: &Map<String, Value>,
    now: Ts,
) -> Result<(), TestCaseError> {
    let mut full = base.clone();
    full.extend(payload.clone());
    let alone = parse_create(&Value::Object(base.clone()), now);
    let with = parse_create(&Value::Object(full.clone()), now);
    match (alone, with) {
        (Ok(a), Ok(b)) => {
            prop_assert_eq!(&a.spec, &b.spec, "payload keys changed the spec of {:?}", Value::Object(full));
            prop_assert_eq!((a.paused, a.run_now, a.id), (b.paused, b.run_now, b.id));
            prop_assert_eq!(&b.payload, &serde_json::to_string(payload).unwrap());
        }
        (Err(a), Err(b)) => prop_assert_eq!(field_of(a)?, field_of(b)?),
        (a, b) => prop_assert!(false, "{:?} alone: {:?}; with payload {:?}: {:?}", base, a, payload, b),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(500))]

    /// Any JSON object (nested values, unicode keys, big numbers, service keys with values of
    /// any type mixed with payload keys) as a create body.
    #[test]
    fn any_body_splits_into_schedule_and_payload_or_names_a_field(
        schedule in schedule_part(),
        policies in policies(),
        noise in service_noise(),
        payload in payload(),
        now in server_now(),
    ) {
        let mut body = schedule;
        body.extend(policies);
        body.extend(noise);
        body.extend(payload);
        check_create(&body, now)?;
    }

    /// Arbitrary objects of arbitrary keys (no schedule on purpose), and non-objects.
    #[test]
    fn any_json_as_a_body_never_panics(v in json_value()) {
        match &v {
            Value::Object(m) => {
                check_create(m, NOW)?;
                if let Err(e) = parse_reschedule(&v, NOW) {
                    field_of(e)?;
                }
            }
            other => {
                prop_assert_eq!(field_of(parse_create(other, NOW).unwrap_err())?, "body");
                prop_assert_eq!(field_of(parse_reschedule(other, NOW).unwrap_err())?, "body");
            }
        }
    }

    /// Payload keys never change the schedule or the outcome.
    #[test]
    fn payload_keys_do_not_change_the_schedule(
        schedule in schedule_part(),
        policies in policies(),
        noise in service_noise(),
        payload in payload().prop_filter("no NUL", |p| !has_nul(&Value::Object(p.clone()))),
        now in server_now(),
    ) {
        let mut base = schedule;
        base.extend(policies);
        base.extend(noise);
        check_payload_independence(&base, &payload, now)?;
    }

    /// A PATCH body with only schedule keys is read exactly as the same POST body's schedule;
    /// any other key is refused, naming `body` and the key.
    #[test]
    fn reschedule_reads_schedules_as_create_does(
        schedule in schedule_part(),
        noise in prop::collection::btree_map(select(RESCHEDULE_KEYS.to_vec()).prop_map(str::to_owned), json_value(), 0..2),
        stray in prop::option::weighted(0.3, (prop_oneof![select(SERVICE_KEYS.to_vec()).prop_map(str::to_owned), json_string()], json_value())),
        now in server_now(),
    ) {
        let mut body = schedule;
        body.extend(noise);
        if let Some((k, v)) = stray {
            body.insert(k, v);
        }
        let patch = parse_reschedule(&Value::Object(body.clone()), now);
        if let Some(k) = body.keys().find(|k| !RESCHEDULE_KEYS.contains(&k.as_str())) {
            let e = patch.unwrap_err();
            let msg = e.to_string();
            prop_assert_eq!(field_of(e)?, "body");
            let shown: String = k.chars().take(64).collect();
            prop_assert!(msg.contains(&shown), "{} does not name {:?}", msg, k);
            return Ok(());
        }
        // A top-level `enabled` switches the schedule in a PATCH; in a POST it is payload.
        let enabled = body.get("enabled").filter(|v| !v.is_null()).cloned();
        let mut post = body.clone();
        post.remove("enabled");
        match (patch, parse_create(&Value::Object(post), now)) {
            (Ok(t), Ok(r)) => {
                let mut want = r.spec.triggers;
                if let Some(Value::Bool(on)) = enabled {
                    want.iter_mut().for_each(|w| w.enabled = on);
                }
                prop_assert_eq!(t, want)
            }
            (Err(a), Ok(_)) if enabled.is_some() => prop_assert_eq!(field_of(a)?, "enabled"),
            (Err(a), Err(b)) => prop_assert_eq!(field_of(a)?, field_of(b)?),
            (a, b) => prop_assert!(false, "{:?}: PATCH {:?}, POST {:?}", body, a, b.map(|r| r.spec)),
        }
    }
}

proptest! {
    #![proptest_config(config(300))]

    /// `enabled`, `name` and `data` are settings of an entry of `triggers` only: at the top
    /// level of a create body, with values of any type, they are payload keys like any other.
    /// They stay in the payload unchanged, never change the schedule or whether the body is
    /// accepted, and a schedule given at the top level stays enabled, unnamed and without data.
    #[test]
    fn top_level_trigger_keys_are_payload(
        schedule in schedule_part(),
        entry_keys in prop::collection::btree_map(select(ENTRY_ONLY_KEYS.to_vec()).prop_map(str::to_owned), prop_oneof![json_value(), Just(json!(false)), Just(json!("x")), Just(json!({"slot": "morning"}))], 1..=3),
        payload in payload(),
    ) {
        let mut payload = payload;
        payload.extend(entry_keys);
        prop_assume!(!has_nul(&Value::Object(payload.clone())));
        check_payload_independence(&schedule, &payload, NOW)?;
        let body: Map<String, Value> = schedule.into_iter().chain(payload).collect();
        check_create(&body, NOW)?;
        if let (Ok(r), false) = (parse_create(&Value::Object(body.clone()), NOW), body.contains_key("triggers")) {
            for t in &r.spec.triggers {
                prop_assert!(t.enabled && t.name.is_none() && t.data.is_none(), "{:?} read from {:?}", t, body);
            }
        }
    }

    /// A trigger's `name` is a string of at most 200 bytes without NUL (the job store cannot
    /// keep one): any other is refused naming `triggers[i].name`, in a create and in a
    /// reschedule; an accepted name is kept as given, and no accepted spec holds a NUL.
    #[test]
    fn trigger_names_with_a_nul_are_refused(
        name in prop_oneof![
            "[a-z]{0,3}\u{0}[a-z]{0,3}",
            json_string(),
            "[a-z]{195,205}",
            "\\PC{0,190}\u{0}",
        ],
    ) {
        let valid = name.len() <= 200 && !name.contains('\0');
        let body = json!({"triggers": [{"when": "2030-01-01T00:00:00Z"}, {"interval": 60, "name": name}]});
        match parse_create(&body, NOW) {
            Ok(r) => {
                prop_assert!(valid, "{:?} accepted as a name", name);
                prop_assert_eq!(r.spec.triggers[1].name.as_deref(), Some(name.as_str()));
                let spec = serde_json::to_string(&r.spec).unwrap();
                prop_assert!(!spec.contains("\\u0000"), "a NUL was accepted into the spec: {spec}");
            }
            Err(e) => {
                prop_assert!(!valid, "{:?} refused: {}", name, e);
                prop_assert_eq!(field_of(e)?, "triggers[1].name");
            }
        }
        match parse_reschedule(&body, NOW) {
            Ok(t) => {
                prop_assert!(valid, "{:?} accepted as a name", name);
                prop_assert_eq!(t[1].name.as_deref(), Some(name.as_str()));
            }
            Err(e) => {
                prop_assert!(!valid, "{:?} refused: {}", name, e);
                prop_assert_eq!(field_of(e)?, "triggers[1].name");
            }
        }
    }
}
