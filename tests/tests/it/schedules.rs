//! Recurring schedules through the API: every form and its bad input, previews (DST rules in
//! three zones), recurring fires, trigger data, misfire and overlap policies.

use std::time::Duration;

use harness::{instant_in, ms_of, now_ms, Backend, Server, NIL_VM, VM};
use serde_json::{json, Value};

const JOBS: &str = "/api/scheduler/vps4/backups/jobs";
const SLEEPY: &str = "/api/scheduler/fixtures/sleepy/jobs";
const FLAKY: &str = "/api/scheduler/fixtures/flaky/jobs";

fn path(base: &str, job: &Value) -> String {
    format!("{base}/{}", job["id"].as_str().expect("job id"))
}

/// The job's next `count` fires (after `after`, when given), as milliseconds.
fn preview(s: &Server, job_path: &str, count: usize, after: Option<&str>) -> Vec<i64> {
    let q = match after {
        Some(a) => format!("{job_path}/next?count={count}&after={a}"),
        None => format!("{job_path}/next?count={count}"),
    };
    let r = s.get(&q);
    assert_eq!(r.status, 200, "{}", r.text);
    r.body.as_array().unwrap().iter().map(ms_of).collect()
}

fn gaps(t: &[i64]) -> Vec<i64> {
    t.windows(2).map(|w| w[1] - w[0]).collect()
}

fn outcomes(runs: &[Value]) -> Vec<&str> {
    runs.iter().map(|r| r["outcome"].as_str().unwrap()).collect()
}

fn each_schedule_form_creates_a_job_whose_preview_follows_it(b: Backend) {
    let s = Server::start_on(b);
    let far = instant_in(86_400_000);
    let far_ms = ms_of(&json!(far));

    // Cron with seconds, in a zone: every day at 05:00 in New York.
    let j = s.create(JOBS, &json!({"vmId": VM, "cron": "0 0 5 * * *", "timezone": "America/New_York"}));
    assert_eq!(j["jobRequest"]["jobType"], "RECURRING", "{j}");
    assert_eq!(j["triggers"][0]["cron"], "0 0 5 * * *");
    assert_eq!(j["triggers"][0]["timezone"], "America/New_York");
    assert_eq!(j["jobRequest"]["vmId"], VM);
    let next = preview(&s, &path(JOBS, &j), 3, None);
    assert_eq!(next.len(), 3);
    assert!(next[0] > now_ms() && gaps(&next).iter().all(|g| *g == 86_400_000 || *g == 82_800_000 || *g == 90_000_000));
    assert_eq!(j["nextRun"], json!(chrono_ms(next[0])));

    // Standard five fields, UTC by default.
    let j = s.create(JOBS, &json!({"vmId": VM, "cron": "*/15 * * * *"}));
    let next = preview(&s, &path(JOBS, &j), 4, None);
    assert!(next.iter().all(|t| t % 900_000 == 0), "{next:?}");
    assert_eq!(gaps(&next), [900_000; 3]);

    // Intervals: seconds, readable text, ISO 8601; start at `when` or after `initialDelay`.
    for (every, ms) in [(json!(300), 300_000), (json!("2 minutes"), 120_000), (json!("1h30m"), 5_400_000)] {
        let j = s.create(JOBS, &json!({"vmId": VM, "interval": every, "when": far}));
        let next = preview(&s, &path(JOBS, &j), 3, None);
        assert_eq!(next[0], far_ms, "{every}: starts at when");
        assert_eq!(gaps(&next), [ms; 2], "{every}");
    }
    let before = now_ms();
    let j = s.create(JOBS, &json!({"vmId": VM, "interval": "PT5M", "initialDelay": "10m"}));
    let next = preview(&s, &path(JOBS, &j), 2, None);
    assert!((before + 600_000..=now_ms() + 600_000).contains(&next[0]), "{next:?}");
    assert_eq!(gaps(&next), [300_000]);

    // The reference service's recurring form.
    let j = s.create(
        JOBS,
        &json!({"vmId": VM, "when": far, "jobType": "RECURRING", "repeatIntervalInDays": 2, "repeatCount": 3}),
    );
    assert_eq!(j["jobRequest"]["jobType"], "RECURRING");
    assert_eq!(preview(&s, &path(JOBS, &j), 10, None), [far_ms, far_ms + 172_800_000, far_ms + 345_600_000]);

    // `until` ends it too.
    let until = chrono_ms(far_ms + 250_000);
    let j = s.create(JOBS, &json!({"vmId": VM, "interval": 100, "when": far, "until": until}));
    assert_eq!(preview(&s, &path(JOBS, &j), 10, None), [far_ms, far_ms + 100_000, far_ms + 200_000]);

    // Several triggers: the job fires on each enabled one.
    let j = s.create(
        JOBS,
        &json!({"vmId": VM, "triggers": [
            {"when": far, "name": "once"},
            {"interval": "1h", "when": far, "repeatCount": 2},
            {"cron": "0 0 * * * *", "enabled": false},
        ]}),
    );
    assert_eq!(j["triggers"].as_array().unwrap().len(), 3);
    assert_eq!(j["triggers"][2]["enabled"], false);
    // The one-time and the first interval fire coincide.
    assert_eq!(preview(&s, &path(JOBS, &j), 10, None), [far_ms, far_ms, far_ms + 3_600_000]);
}

/// `Ts` as the API writes it.
fn chrono_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn bad_schedules_are_rejected_naming_the_field_and_nothing_is_stored(b: Backend) {
    let s = Server::start_on(b);
    let when = instant_in(60_000);
    let before = s.get(JOBS).body;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"vmId": VM, "cron": "61 * * * *"}), "cron"),
        (json!({"vmId": VM, "cron": "0 0 30 2 *"}), "never fires"),
        (json!({"vmId": VM, "cron": 5}), "cron"),
        (json!({"vmId": VM, "cron": "* * * * *", "timezone": "Mars/Olympus"}), "timezone"),
        (json!({"vmId": VM, "when": when, "timezone": "UTC"}), "timezone"),
        (json!({"vmId": VM, "interval": 0}), "interval"),
        (json!({"vmId": VM, "interval": -5}), "interval"),
        (json!({"vmId": VM, "interval": "soon"}), "interval"),
        (json!({"vmId": VM, "interval": "PT0S"}), "interval"),
        (json!({"vmId": VM, "interval": 60, "initialDelay": "-1m"}), "initialDelay"),
        (json!({"vmId": VM, "interval": 60, "when": when, "initialDelay": 5}), "initialDelay"),
        (json!({"vmId": VM, "when": when, "cron": "* * * * *"}), "cron"),
        (json!({"vmId": VM, "cron": "* * * * *", "interval": 60}), "interval"),
        (json!({"vmId": VM, "interval": 60, "when": when, "until": instant_in(1_000)}), "until"),
        (json!({"vmId": VM, "interval": 60, "until": "tomorrow"}), "until"),
        (json!({"vmId": VM, "when": when, "until": instant_in(120_000)}), "until"),
        (json!({"vmId": VM, "when": when, "repeatCount": 3}), "repeatCount"),
        (json!({"vmId": VM, "interval": 60, "repeatCount": 0}), "repeatCount"),
        (json!({"vmId": VM, "interval": 60, "misfire": "sometimes"}), "misfire"),
        (json!({"vmId": VM, "interval": 60, "overlap": "maybe"}), "overlap"),
        (json!({"vmId": VM, "interval": 60, "overlap": "allow"}), "overlap"),
        (json!({"vmId": VM, "when": when, "attempts": 0}), "attempts"),
        (json!({"vmId": VM, "when": when, "attempts": 101}), "attempts"),
        (json!({"vmId": VM, "when": when, "backoff": {"type": "linear"}}), "backoff.type"),
        (json!({"vmId": VM, "when": when, "backoff": {"delay": -1}}), "backoff.delay"),
        (json!({"vmId": VM, "when": when, "backoff": {"factor": 0.5}}), "backoff.factor"),
        (json!({"vmId": VM, "when": when, "backoff": {"speed": 1}}), "backoff.speed"),
        (json!({"vmId": VM, "when": when, "priority": 1000}), "priority"),
        (json!({"vmId": VM, "when": when, "now": "yes"}), "now"),
        (json!({"vmId": VM, "triggers": []}), "triggers"),
        (json!({"vmId": VM, "triggers": {"when": when}}), "triggers"),
        (json!({"vmId": VM, "triggers": [{"when": when}], "when": when}), "when"),
        (json!({"vmId": VM, "triggers": [{"when": when}, {"cron": "nope"}]}), "triggers[1].cron"),
        (json!({"vmId": VM, "triggers": [{"when": when, "vmId": VM}]}), "triggers[0].vmId"),
        (json!({"vmId": VM, "triggers": [{"interval": 60, "enabled": "no"}]}), "triggers[0].enabled"),
        (json!({"vmId": VM, "triggers": [{"interval": 60, "data": [1]}]}), "triggers[0].data"),
        (json!({"vmId": VM, "when": when, "jobType": "RECURRING", "repeatIntervalInDays": 0}), "repeatIntervalInDays"),
        (json!({"vmId": VM, "cron": "* * * * *", "jobType": "RECURRING", "repeatIntervalInDays": 1}), "cron"),
    ];
    for (body, needle) in cases {
        let r = s.post_json(JOBS, &body);
        assert_eq!(r.status, 400, "{body} should be refused: {}", r.text);
        r.assert_problem(400, needle);
    }
    // Preview parameters.
    let j = s.create(JOBS, &json!({"vmId": VM, "interval": 60, "when": when}));
    for (q, needle) in [("count=0", "count"), ("count=1001", "count"), ("count=x", "count"), ("after=soon", "after")] {
        s.get(&format!("{}/next?{q}", path(JOBS, &j))).assert_problem(400, needle);
    }
    s.delete(&path(JOBS, &j));
    assert_eq!(s.get(JOBS).body, before, "a refused request stored something");
}

fn cron_previews_follow_the_documented_dst_rules_in_three_zones(b: Backend) {
    let s = Server::start_on(b);
    // Each case: zone, pattern, preview after, expected fires (checked against the IANA
    // database): a skipped wall time fires once at the end of the gap, a repeated one once.
    let cases = [
        // 2027-03-14: 02:00 EST jumps to 03:00 EDT.
        (
            "America/New_York",
            "30 2 * * *",
            "2027-03-13T00:00:00Z",
            ["2027-03-13T07:30:00.000Z", "2027-03-14T07:00:00.000Z", "2027-03-15T06:30:00.000Z"],
        ),
        // 2027-11-07: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
        (
            "America/New_York",
            "30 1 * * *",
            "2027-11-06T00:00:00Z",
            ["2027-11-06T05:30:00.000Z", "2027-11-07T05:30:00.000Z", "2027-11-08T06:30:00.000Z"],
        ),
        // 2027-03-28: 02:00 CET jumps to 03:00 CEST (a six-field pattern).
        (
            "Europe/Prague",
            "0 30 2 * * *",
            "2027-03-27T00:00:00Z",
            ["2027-03-27T01:30:00.000Z", "2027-03-28T01:00:00.000Z", "2027-03-29T00:30:00.000Z"],
        ),
        // 2027-10-31: 03:00 CEST falls back to 02:00 CET.
        (
            "Europe/Prague",
            "0 30 2 * * *",
            "2027-10-30T00:00:00Z",
            ["2027-10-30T00:30:00.000Z", "2027-10-31T00:30:00.000Z", "2027-11-01T01:30:00.000Z"],
        ),
        // 2027-04-04: 02:00 LHDT (+11) falls back half an hour to 01:30 LHST (+10:30).
        (
            "Australia/Lord_Howe",
            "45 1 * * *",
            "2027-04-02T00:00:00Z",
            ["2027-04-02T14:45:00.000Z", "2027-04-03T14:45:00.000Z", "2027-04-04T15:15:00.000Z"],
        ),
        // 2027-10-03: 02:00 LHST jumps half an hour to 02:30 LHDT; 02:15 does not exist.
        (
            "Australia/Lord_Howe",
            "15 2 * * *",
            "2027-10-01T00:00:00Z",
            ["2027-10-01T15:45:00.000Z", "2027-10-02T15:30:00.000Z", "2027-10-03T15:15:00.000Z"],
        ),
    ];
    for (zone, cron, after, expected) in cases {
        let j = s.create(JOBS, &json!({"vmId": VM, "cron": cron, "timezone": zone}));
        let r = s.get(&format!("{}/next?count=3&after={after}", path(JOBS, &j)));
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body, json!(expected), "{zone} {cron} after {after}");
    }
    // A step pattern follows absolute time through New York's repeated hour.
    let j = s.create(JOBS, &json!({"vmId": VM, "cron": "*/30 * * * *", "timezone": "America/New_York"}));
    let r = s.get(&format!("{}/next?count=6&after=2027-11-07T04:45:00Z", path(JOBS, &j)));
    let fires: Vec<i64> = r.body.as_array().unwrap().iter().map(ms_of).collect();
    assert_eq!(gaps(&fires), [1_800_000; 5], "{}", r.text);
}

fn recurring_jobs_fire_on_their_schedule_until_their_repeat_count(b: Backend) {
    let s = Server::start_on(b);
    let start = instant_in(500);
    let j = s.create(JOBS, &json!({"vmId": VM, "interval": 1, "when": start, "repeatCount": 3}));
    let p = path(JOBS, &j);
    let done = s.wait_job(&p, "completed", Duration::from_secs(20), |j| j["status"] == "completed");
    assert_eq!(done["nextRun"], Value::Null);
    let runs = s.runs_of(&p);
    let mut due: Vec<i64> = runs.iter().map(|r| ms_of(&r["scheduledFor"])).collect();
    due.sort();
    let start_ms = ms_of(&json!(start));
    assert_eq!(due, [start_ms, start_ms + 1_000, start_ms + 2_000]);
    assert!(runs.iter().all(|r| r["outcome"] == "succeeded" && r["trigger"] == 0), "{runs:?}");
    for r in &runs {
        assert!(ms_of(&r["startedAt"]) >= ms_of(&r["scheduledFor"]), "never early: {r}");
    }

    // A vetoed fire counts as used: the job moves on to its next fire.
    let j = s.create(JOBS, &json!({"vmId": NIL_VM, "interval": 1, "when": instant_in(200), "repeatCount": 2}));
    let p = path(JOBS, &j);
    s.wait_job(&p, "finished", Duration::from_secs(20), |j| j["nextRun"].is_null() && j["status"] != "running");
    let runs = s.wait_runs(&p, "two vetoed runs", Duration::from_secs(10), |r| r.len() == 2);
    assert_eq!(outcomes(&runs), ["vetoed", "vetoed"]);

    // Cron fires on whole seconds.
    let j = s.create(JOBS, &json!({"vmId": VM, "cron": "* * * * * *", "repeatCount": 2}));
    let p = path(JOBS, &j);
    s.wait_job(&p, "completed", Duration::from_secs(20), |j| j["status"] == "completed");
    let runs = s.runs_of(&p);
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| ms_of(&r["scheduledFor"]) % 1_000 == 0), "{runs:?}");
}

fn trigger_data_merges_into_the_request_and_disabled_triggers_never_fire(b: Backend) {
    let s = Server::start_on(b);
    let now = instant_in(300);
    // The first trigger's data replaces vmId with the id the listener vetoes.
    let j = s.create(
        JOBS,
        &json!({"vmId": VM, "triggers": [
            {"when": now, "data": {"vmId": NIL_VM}},
            {"when": now},
            {"interval": 1, "when": now, "enabled": false},
        ]}),
    );
    let p = path(JOBS, &j);
    let done = s.wait_job(&p, "finished", Duration::from_secs(20), |j| j["nextRun"].is_null());
    let runs = s.wait_runs(&p, "two finished runs", Duration::from_secs(10), |r| {
        r.len() >= 2 && r.iter().all(|r| !harness::in_progress(r))
    });
    assert_eq!(runs.len(), 2, "the disabled trigger never fired: {runs:?}");
    let by_trigger =
        |t: u64| runs.iter().find(|r| r["trigger"] == t).unwrap_or_else(|| panic!("trigger {t}: {runs:?}"));
    assert_eq!(by_trigger(0)["outcome"], "vetoed");
    assert_eq!(by_trigger(1)["outcome"], "succeeded");
    assert_eq!(by_trigger(1)["output"]["vmId"], VM);
    assert_eq!(done["jobRequest"]["vmId"], VM, "the job's own payload is unchanged");
}

/// An interval job every minute that started ten and a half minutes ago: eleven fires missed.
fn missed(s: &Server, misfire: &str) -> String {
    let j = s.create(SLEEPY, &json!({"sleepMs": 1, "interval": 60, "when": instant_in(-630_000), "misfire": misfire}));
    path(SLEEPY, &j)
}

fn each_misfire_policy_handles_missed_fires_and_records_them(b: Backend) {
    let s = Server::start_on(b);
    let once = missed(&s, "fireOnce");
    let skip = missed(&s, "skip");
    let all = missed(&s, "fireAll");

    // fireOnce: one catch-up run, noted, then back on the schedule.
    let done = |r: &[Value]| !r.is_empty() && r.iter().all(|r| !harness::in_progress(r));
    let runs = s.wait_runs(&once, "one catch-up", Duration::from_secs(20), done);
    assert_eq!(outcomes(&runs), ["succeeded"]);
    assert!(runs[0]["note"].as_str().unwrap().contains("11 fires missed"), "{}", runs[0]);
    // skip: the missed fires are recorded as skipped, nothing runs.
    let runs = s.wait_runs(&skip, "a skip record", Duration::from_secs(20), done);
    assert_eq!(outcomes(&runs), ["skipped"]);
    assert!(runs[0]["note"].as_str().unwrap().contains("11 missed fire(s)"), "{}", runs[0]);
    // fireAll: every missed fire runs, oldest first.
    let runs = s.wait_runs(&all, "eleven runs", Duration::from_secs(30), |r| r.len() >= 11 && done(r));
    assert_eq!(outcomes(&runs), ["succeeded"; 11]);
    assert_eq!(gaps(&runs.iter().map(|r| ms_of(&r["scheduledFor"])).collect::<Vec<_>>()), [60_000; 10]);
    // The last of them was only 30 s late, under the misfire threshold (60 s): an ordinary fire.
    assert!(runs[..10].iter().all(|r| r["note"].as_str().unwrap_or_default().contains("fireAll")), "{runs:?}");

    // All three are back on the schedule: the next fire is the grid point after now.
    for p in [once, skip, all] {
        let j = s.get(&p).body;
        let next = ms_of(&j["nextRun"]);
        assert!(next > now_ms() && next <= now_ms() + 60_000, "{j}");
        assert_eq!(j["status"], "scheduled");
    }
}

fn each_overlap_policy_handles_a_fire_during_a_run(b: Backend) {
    let s = Server::start_on(b);
    // Every second; each run takes 2.5 s. skip: fires 2 and 3 come due during run 1.
    let start = instant_in(300);
    let skip =
        path(SLEEPY, &s.create(SLEEPY, &json!({"sleepMs": 2_500, "interval": 1, "when": start, "repeatCount": 4})));
    // queue: every fire runs, each after the previous one ends.
    let queue = path(
        SLEEPY,
        &s.create(
            SLEEPY,
            &json!({"sleepMs": 1_500, "interval": 1, "when": start, "repeatCount": 3, "overlap": "queue"}),
        ),
    );
    // allow (a job type that allows it): run 2 starts while run 1 still runs.
    let allow = path(
        FLAKY,
        &s.create(
            FLAKY,
            &json!({"sleepMs": 2_500, "interval": 1, "when": start, "repeatCount": 2, "overlap": "allow"}),
        ),
    );

    let runs = s.wait_runs(&skip, "run, skip, run", Duration::from_secs(30), |r| {
        r.len() >= 3 && r.iter().all(|r| !harness::in_progress(r))
    });
    assert_eq!(outcomes(&runs), ["succeeded", "skipped", "succeeded"]);
    assert!(runs[1]["note"].as_str().unwrap().contains("2 fire(s)"), "{}", runs[1]);
    assert!(runs[1]["note"].as_str().unwrap().contains("still running"), "{}", runs[1]);

    let runs = s.wait_runs(&queue, "three runs", Duration::from_secs(30), |r| {
        r.len() >= 3 && r.iter().all(|r| !harness::in_progress(r))
    });
    assert_eq!(outcomes(&runs), ["succeeded"; 3]);
    for w in runs.windows(2) {
        assert!(ms_of(&w[1]["startedAt"]) >= ms_of(&w[0]["finishedAt"]), "queued runs never overlap: {w:?}");
        assert_eq!(ms_of(&w[1]["scheduledFor"]) - ms_of(&w[0]["scheduledFor"]), 1_000);
    }

    let runs = s.wait_runs(&allow, "two runs", Duration::from_secs(30), |r| {
        r.len() >= 2 && r.iter().all(|r| !harness::in_progress(r))
    });
    assert_eq!(outcomes(&runs), ["succeeded"; 2]);
    assert!(ms_of(&runs[1]["startedAt"]) < ms_of(&runs[0]["finishedAt"]), "allowed runs overlap: {runs:?}");
}

on_both_stores!(
    each_schedule_form_creates_a_job_whose_preview_follows_it,
    bad_schedules_are_rejected_naming_the_field_and_nothing_is_stored,
    cron_previews_follow_the_documented_dst_rules_in_three_zones,
    recurring_jobs_fire_on_their_schedule_until_their_repeat_count,
    trigger_data_merges_into_the_request_and_disabled_triggers_never_fire,
    each_misfire_policy_handles_missed_fires_and_records_them,
    each_overlap_policy_handles_a_fire_during_a_run,
);
