//! Instants (`when`, `until`): RFC 3339 text of every kind, in range, around the range and
//! garbled, read directly and in bodies.

use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use proptest::prelude::*;
use proptest::sample::select;
use scheduler_core::request::{check_instant, parse_create, parse_instant};
use scheduler_core::Ts;
use serde_json::json;

use crate::common::*;

// ---------------------------------------------------------------------------------------------
// Strategies: instants
// ---------------------------------------------------------------------------------------------

pub(crate) fn seconds_format() -> impl Strategy<Value = SecondsFormat> {
    select(vec![
        SecondsFormat::Secs,
        SecondsFormat::Millis,
        SecondsFormat::Micros,
        SecondsFormat::Nanos,
        SecondsFormat::AutoSi,
    ])
}

/// Offsets RFC 3339 can write (whole minutes, up to ±23:59), UTC often.
pub(crate) fn offset_minutes() -> impl Strategy<Value = i32> {
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
pub(crate) struct WrittenInstant {
    pub(crate) text: String,
    /// The instant, or `None` when its local year cannot be written in four digits.
    utc: Option<DateTime<Utc>>,
    /// Nanoseconds of the written second.
    written_nanos: u32,
}

pub(crate) fn write_instant(
    secs: i64,
    nanos: u32,
    offset_min: i32,
    format: SecondsFormat,
    spelling: u8,
) -> WrittenInstant {
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

pub(crate) fn nanos() -> impl Strategy<Value = u32> {
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
