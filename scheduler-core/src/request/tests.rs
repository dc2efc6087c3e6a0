use serde_json::json;

use super::*;
use crate::trigger::{BackoffKind, MisfirePolicy, OverlapPolicy, ScheduleSpec};

const NOW: Ts = Ts(1_790_000_000_000_000);

fn field_of(e: CoreError) -> String {
    match e {
        CoreError::InvalidField { field, .. } => field,
        other => panic!("unexpected {other:?}"),
    }
}

fn create(v: Value) -> CreateRequest {
    parse_create(&v, NOW).unwrap()
}

fn refused(v: Value) -> String {
    field_of(parse_create(&v, NOW).unwrap_err())
}

#[test]
fn the_reference_body_splits_into_schedule_and_payload() {
    let r = create(json!({"vmId": "79bfd10c-1529-42de-bd68-1a6e084ee13d", "when": "2017-09-21T23:58:16.797Z"}));
    assert!(r.spec.is_plain_once());
    assert_eq!(r.spec.anchor.to_rfc3339(), "2017-09-21T23:58:16.797Z");
    assert_eq!(r.payload, r#"{"vmId":"79bfd10c-1529-42de-bd68-1a6e084ee13d"}"#);
    assert!(!r.paused && !r.run_now && r.id.is_none());
}

#[test]
fn offsets_are_converted_to_utc() {
    let r = create(json!({"when": "2017-09-22T01:58:16.797+02:00"}));
    assert_eq!(r.spec.anchor.to_rfc3339(), "2017-09-21T23:58:16.797Z");
}

#[test]
fn cron_with_a_time_zone_is_read() {
    let r = create(json!({"cron": "0 0 5 * * *", "timezone": "Europe/Prague", "misfire": "skip", "vmId": "x"}));
    assert_eq!(r.spec.job_type(), "RECURRING");
    let t = &r.spec.triggers[0];
    assert_eq!(t.schedule, ScheduleSpec::Cron { expr: "0 0 5 * * *".into(), timezone: "Europe/Prague".into() });
    assert_eq!(t.misfire, MisfirePolicy::Skip);
    assert_eq!(r.payload, r#"{"vmId":"x"}"#);
}

#[test]
fn intervals_start_now_after_a_delay_or_at_when() {
    let every = |v: Value| match create(v).spec.triggers[0].schedule {
        ScheduleSpec::Interval { every_ms, start } => (every_ms, start),
        ref other => panic!("{other:?}"),
    };
    assert_eq!(every(json!({"interval": 300})), (300_000, NOW));
    assert_eq!(every(json!({"interval": "2 minutes", "initialDelay": "PT1M"})), (120_000, NOW.plus_micros(60_000_000)));
    assert_eq!(
        every(json!({"interval": "PT5M", "when": "2030-01-01T00:00:00Z"})).1.to_rfc3339(),
        "2030-01-01T00:00:00.000Z"
    );
}

#[test]
fn the_reference_recurring_form_is_read_as_written() {
    let r = create(
        json!({"when": "2030-01-01T00:00:00Z", "jobType": "RECURRING", "repeatIntervalInDays": 2, "repeatCount": 5}),
    );
    let t = &r.spec.triggers[0];
    assert!(matches!(t.schedule, ScheduleSpec::Interval { every_ms: 172_800_000, .. }));
    assert_eq!(t.repeat_count, Some(5));
    assert_eq!(refused(json!({"when": "2030-01-01T00:00:00Z", "jobType": "RECURRING"})), "repeatIntervalInDays");
    assert_eq!(
        refused(json!({"when": "2030-01-01T00:00:00Z", "jobType": "RECURRING", "repeatIntervalInDays": 0})),
        "repeatIntervalInDays"
    );
    assert_eq!(refused(json!({"when": "2030-01-01T00:00:00Z", "repeatIntervalInDays": 1})), "repeatIntervalInDays");
}

#[test]
fn several_triggers_each_keep_their_own_data_and_flag() {
    let r = create(json!({"triggers": [
        {"cron": "0 8 * * *", "data": {"slot": "morning"}},
        {"cron": "0 20 * * *", "timezone": "America/New_York", "enabled": false, "name": "evening"}
    ], "overlap": "queue", "priority": "high", "attempts": 3, "backoff": {"type": "fixed", "delay": 500}}));
    assert_eq!(r.spec.triggers.len(), 2);
    assert_eq!(r.spec.triggers[0].data.as_ref().unwrap()["slot"], "morning");
    assert!(!r.spec.triggers[1].enabled);
    assert_eq!(r.spec.overlap, OverlapPolicy::Queue);
    assert_eq!(r.spec.priority, 10);
    let retry = r.spec.retry.unwrap();
    assert_eq!(
        (retry.attempts.map(std::num::NonZeroU32::get), retry.backoff.kind, retry.backoff.base_ms),
        (Some(3), BackoffKind::Fixed, 500)
    );
}

#[test]
fn run_now_needs_no_when() {
    let r = create(json!({"now": true, "vmId": "x"}));
    assert!(r.run_now);
    assert_eq!(r.spec.anchor, NOW);
}

#[test]
fn bad_bodies_name_the_field() {
    assert_eq!(refused(json!([1])), "body");
    assert_eq!(refused(json!({})), "when");
    assert_eq!(refused(json!({"when": 5})), "when");
    assert_eq!(refused(json!({"when": "tomorrow"})), "when");
    assert_eq!(refused(json!({"when": "2017-09-21T23:58:16"})), "when");
    assert_eq!(refused(json!({"when": "2017-09-21T23:58:16Z", "jobType": 3})), "jobType");
    assert_eq!(refused(json!({"when": "2017-09-21T23:58:16Z", "repeatCount": 3})), "repeatCount");
    assert_eq!(refused(json!({"when": "2017-09-21T23:58:16Z", "isPaused": "yes"})), "isPaused");
    assert_eq!(refused(json!({"cron": "61 * * * *"})), "cron");
    assert_eq!(refused(json!({"cron": "* * * * *", "timezone": "Mars/Base"})), "timezone");
    assert_eq!(refused(json!({"cron": "* * * * *", "when": "2030-01-01T00:00:00Z"})), "cron");
    assert_eq!(refused(json!({"interval": 0})), "interval");
    assert_eq!(refused(json!({"interval": -5})), "interval");
    assert_eq!(refused(json!({"interval": "0.5s"})), "interval");
    assert_eq!(refused(json!({"interval": 60, "cron": "* * * * *"})), "interval");
    assert_eq!(refused(json!({"interval": 60, "until": "1999-01-01T00:00:00Z"})), "until");
    assert_eq!(refused(json!({"interval": 60, "when": "2030-01-01T00:00:00Z", "initialDelay": 5})), "initialDelay");
    assert_eq!(refused(json!({"when": "2030-01-01T00:00:00Z", "timezone": "UTC"})), "timezone");
    assert_eq!(refused(json!({"interval": 60, "misfire": "sometimes"})), "misfire");
    assert_eq!(refused(json!({"when": "2030-01-01T00:00:00Z", "overlap": "maybe"})), "overlap");
    assert_eq!(refused(json!({"when": "2030-01-01T00:00:00Z", "priority": 1000})), "priority");
    assert_eq!(refused(json!({"when": "2030-01-01T00:00:00Z", "attempts": 0})), "attempts");
    assert_eq!(refused(json!({"when": "2030-01-01T00:00:00Z", "backoff": {"type": "linear"}})), "backoff.type");
    assert_eq!(refused(json!({"when": "2030-01-01T00:00:00Z", "id": "not-a-uuid"})), "id");
    assert_eq!(refused(json!({"when": "2030-01-01T00:00:00Z", "now": "yes"})), "now");
    assert_eq!(refused(json!({"triggers": []})), "triggers");
    assert_eq!(refused(json!({"triggers": [{"cron": "bad"}]})), "triggers[0].cron");
    assert_eq!(refused(json!({"triggers": [{"interval": 5}, {"when": "x"}]})), "triggers[1].when");
    assert_eq!(refused(json!({"triggers": [{"interval": 5, "vmId": 1}]})), "triggers[0].vmId");
    assert_eq!(refused(json!({"triggers": [{"interval": 5}], "cron": "* * * * *"})), "cron");
}

#[test]
fn instants_outside_1970_to_9999_are_refused() {
    assert_eq!(refused(json!({"when": "1969-12-31T23:59:59Z"})), "when");
    assert_eq!(refused(json!({"when": "0000-01-01T00:00:00Z"})), "when");
    assert!(parse_create(&json!({"when": "1970-01-01T00:00:00Z"}), NOW).is_ok());
    assert!(parse_create(&json!({"when": "9999-12-31T23:59:59.999Z"}), NOW).is_ok());
    assert_eq!(refused(json!({"when": "9999-12-31T23:59:59-01:00"})), "when");
}

#[test]
fn a_nul_character_in_the_payload_is_refused() {
    let e = parse_create(&json!({"when": "2020-01-01T00:00:00Z", "name": "a\u{0}b"}), NOW).unwrap_err();
    assert!(e.to_string().contains("NUL"), "{e}");
    assert!(
        parse_create(&json!({"when": "2020-01-01T00:00:00Z", "name": "a\\u0000b"}), NOW).is_ok(),
        "an escaped backslash is fine"
    );
}

#[test]
fn a_missing_offset_is_explained() {
    let e = parse_create(&json!({"when": "2017-09-21T23:58:16.797"}), NOW).unwrap_err();
    assert!(e.to_string().contains("no UTC offset"), "{e}");
}

#[test]
fn patch_takes_only_the_schedule() {
    assert!(parse_reschedule(&json!({"when": "2017-09-21T22:16:36.797Z"}), NOW).is_ok());
    assert!(parse_reschedule(&json!({"cron": "*/5 * * * *"}), NOW).is_ok());
    assert_eq!(field_of(parse_reschedule(&json!({}), NOW).unwrap_err()), "when");
    let e = parse_reschedule(&json!({"when": "2017-09-21T22:16:36.797Z", "vmId": "x"}), NOW).unwrap_err();
    assert!(e.to_string().contains("vmId"), "{e}");
}
