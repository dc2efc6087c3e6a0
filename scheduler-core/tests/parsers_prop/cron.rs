//! Cron patterns and their time zones: any text as a pattern, generated patterns in any IANA
//! zone, and the fires they compute from any "now".

use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use scheduler_core::request::{parse_create, parse_reschedule};
use scheduler_core::trigger::{parse_cron, Compiled, ScheduleSpec, Trigger};
use scheduler_core::Ts;
use serde_json::json;

use crate::common::*;

// ---------------------------------------------------------------------------------------------
// Strategies: cron patterns and zones
// ---------------------------------------------------------------------------------------------

/// A generated cron pattern, with the smallest day of the month it may fire on.
#[derive(Debug, Clone)]
pub(crate) struct CronExpr {
    pub(crate) text: String,
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
pub(crate) fn cron_expr() -> impl Strategy<Value = CronExpr> {
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
pub(crate) fn zone() -> impl Strategy<Value = Tz> {
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
