//! Whole create and reschedule bodies: schedule keys of every form mixed with policies,
//! service keys of any value and payload keys.

use proptest::prelude::*;
use proptest::sample::select;
use scheduler_core::request::{parse_create, parse_reschedule, RESCHEDULE_KEYS, SERVICE_KEYS};
use scheduler_core::Ts;
use serde_json::{json, Map, Value};

use crate::common::*;
use crate::cron::{cron_expr, zone};
use crate::instants::{nanos, offset_minutes, seconds_format, write_instant};
use crate::intervals::{human_text, iso_text};

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
