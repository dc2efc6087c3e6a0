//! Next-fire rules, around real daylight-saving transitions of 2026 (expected instants checked
//! against the IANA database with Python's zoneinfo).

use super::*;

fn ts(s: &str) -> Ts {
    Ts::from_datetime(chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc())
}

fn cron(expr: &str, tz: &str) -> Compiled {
    Compiled::new(&Trigger::new(ScheduleSpec::Cron { expr: expr.into(), timezone: tz.into() })).unwrap()
}

/// The next `n` fires after `from`, in UTC.
fn fires(c: &Compiled, from: &str, n: usize) -> Vec<String> {
    let first = c.next_after(ts(from), 0);
    c.upcoming(first, 0, n).into_iter().map(|t| t.to_rfc3339()).collect()
}

#[test]
fn new_york_spring_forward_fires_a_skipped_wall_time_once_after_the_gap() {
    // 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist that day.
    let c = cron("30 2 * * *", "America/New_York");
    assert_eq!(
        fires(&c, "2026-03-07T12:00:00-05:00", 3),
        ["2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z", "2026-03-10T06:30:00.000Z"]
    );
}

#[test]
fn new_york_fall_back_fires_a_repeated_wall_time_once() {
    // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
    let c = cron("30 1 * * *", "America/New_York");
    assert_eq!(
        fires(&c, "2026-10-31T12:00:00-04:00", 3),
        ["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z", "2026-11-03T06:30:00.000Z"]
    );
}

#[test]
fn new_york_step_patterns_follow_absolute_time_through_the_repeated_hour() {
    let c = cron("*/15 * * * *", "America/New_York");
    let f = c.upcoming(c.next_after(ts("2026-11-01T00:50:00-04:00"), 0), 0, 12);
    // Every 15 minutes of real time, both passes through 01:00-02:00 included.
    for w in f.windows(2) {
        assert_eq!(w[1].micros_since(w[0]), 15 * 60 * 1_000_000, "{w:?}");
    }
    assert_eq!(f[0].to_rfc3339(), "2026-11-01T05:00:00.000Z");
}

#[test]
fn prague_spring_forward_with_seconds_field() {
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST.
    let c = cron("0 30 2 * * *", "Europe/Prague");
    assert_eq!(fires(&c, "2026-03-28T12:00:00+01:00", 2), ["2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"]);
}

#[test]
fn prague_fall_back_fires_once() {
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    let c = cron("0 30 2 * * *", "Europe/Prague");
    assert_eq!(fires(&c, "2026-10-24T12:00:00+02:00", 2), ["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"]);
}

#[test]
fn lord_howe_half_hour_spring_forward() {
    // 2026-10-04: 02:00 LHST (+10:30) jumps to 02:30 LHDT (+11:00); 02:15 does not exist.
    let c = cron("15 2 * * *", "Australia/Lord_Howe");
    assert_eq!(fires(&c, "2026-10-03T12:00:00+10:30", 2), ["2026-10-03T15:30:00.000Z", "2026-10-04T15:15:00.000Z"]);
}

#[test]
fn lord_howe_half_hour_fall_back() {
    // 2026-04-05: 02:00 LHDT (+11:00) falls back to 01:30 LHST (+10:30); 01:45 happens twice.
    let c = cron("45 1 * * *", "Australia/Lord_Howe");
    assert_eq!(fires(&c, "2026-04-04T12:00:00+11:00", 2), ["2026-04-04T14:45:00.000Z", "2026-04-05T15:15:00.000Z"]);
    // A step pattern keeps real time through the repeated half hour.
    let c = cron("*/10 * * * *", "Australia/Lord_Howe");
    let f = c.upcoming(c.next_after(ts("2026-04-05T01:25:00+11:00"), 0), 0, 8);
    for w in f.windows(2) {
        assert_eq!(w[1].micros_since(w[0]), 10 * 60 * 1_000_000, "{w:?}");
    }
}

#[test]
fn intervals_follow_absolute_time() {
    let c =
        Compiled::new(&Trigger::new(ScheduleSpec::Interval { every_ms: 90_000, start: ts("2026-03-08T06:59:00Z") }))
            .unwrap();
    assert_eq!(c.first(ts("2026-01-01T00:00:00Z")), Some(ts("2026-03-08T06:59:00Z")));
    assert_eq!(c.next_after(ts("2026-03-08T06:59:00Z"), 1), Some(ts("2026-03-08T07:00:30Z")));
    // From any instant, the next fire is on the start's grid.
    assert_eq!(c.next_after(ts("2026-03-08T07:00:31Z"), 2), Some(ts("2026-03-08T07:02:00Z")));
    assert_eq!(c.count_between(ts("2026-03-08T06:59:00Z"), ts("2026-03-08T07:14:00Z"), 1_000), 10);
}

#[test]
fn repeat_count_and_until_end_a_trigger() {
    let mut t = Trigger::new(ScheduleSpec::Interval { every_ms: 1_000, start: Ts(0) });
    t.repeat_count = Some(3);
    let c = Compiled::new(&t).unwrap();
    assert_eq!(c.upcoming(c.first(Ts(0)), 0, 10).len(), 3);
    t.repeat_count = None;
    t.until = Some(Ts(2_500_000));
    let c = Compiled::new(&t).unwrap();
    assert_eq!(c.upcoming(c.first(Ts(0)), 0, 10), [Ts(0), Ts(1_000_000), Ts(2_000_000)]);
}

#[test]
fn a_one_time_trigger_fires_once_even_when_overdue() {
    let c = Compiled::new(&Trigger::new(ScheduleSpec::Once { when: Ts(5) })).unwrap();
    assert_eq!(c.first(Ts(1_000)), Some(Ts(5)));
    assert_eq!(c.next_after(Ts(5), 1), None);
}

#[test]
fn cron_fires_on_whole_seconds_after_a_fractional_instant() {
    let c = cron("* * * * * *", "UTC");
    assert_eq!(c.next_after(ts("2026-01-01T00:00:00.500Z"), 0), Some(ts("2026-01-01T00:00:01Z")));
    assert_eq!(c.next_after(ts("2026-01-01T00:00:01Z"), 0), Some(ts("2026-01-01T00:00:02Z")));
    assert_eq!(c.first(ts("2026-01-01T00:00:01Z")), Some(ts("2026-01-01T00:00:01Z")));
    assert_eq!(c.count_between(ts("2026-01-01T00:00:00Z"), ts("2026-01-01T00:01:00Z"), 1_000), 60);
}

#[test]
fn bad_cron_patterns_and_zones_name_their_field() {
    let e = parse_cron("61 * * * *", "UTC").unwrap_err();
    assert_eq!(e.field, "cron");
    let e = parse_cron("* * * * *", "Mars/Olympus").unwrap_err();
    assert_eq!(e.field, "timezone");
    let e = parse_cron("0 0 30 2 *", "UTC").unwrap_err();
    assert!(e.reason.contains("never fires"), "{e}");
    assert!(parse_cron("0 0 5 * * *", "Europe/Prague").is_ok());
    assert!(parse_cron("0 0 5 * * * 2099", "UTC").is_ok());
    assert!(parse_cron("@daily", "UTC").is_ok());
}
