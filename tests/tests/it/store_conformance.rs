//! One behaviour suite for every store. Each case is a function over `&dyn Store`; the
//! `store_suite!` macro instantiates all of them for one store, so no store can skip a case.
//!
//! Cases use the real clock (past versus far-future instants) because the PostgreSQL store
//! decides what is due by the database's clock, not the caller's.

use std::sync::Arc;

use scheduler_core::clock::{Clock, SystemClock, Ts};
use scheduler_core::model::{GroupKey, Job, JobId, JobSpec, JobStatus, RunOutcome};
use scheduler_core::store::{
    Begun, Change, ClaimDue, Claimed, Control, Ending, Idempotency, Inserted, JobListQuery, JobReschedule, ListCursor,
    NewJob, NodeInfo, RescueDead, Retention, RunFinish, RunStart, Store,
};

/// Every case, by name. Adding a case here adds it for every store.
macro_rules! store_cases {
    ($gen:ident, $make:expr) => {
        $gen!(an_inserted_job_reads_back_only_in_its_group, $make);
        $gen!(the_list_is_soonest_first_and_pages_by_cursor, $make);
        $gen!(a_claim_takes_due_jobs_earliest_first_up_to_the_limit, $make);
        $gen!(a_claimed_job_is_not_claimed_again_until_it_finishes, $make);
        $gen!(a_finished_run_completes_a_one_time_job, $make);
        $gen!(failed_and_vetoed_runs_finish_their_jobs_so, $make);
        $gen!(rescheduling_a_pending_job_moves_its_next_run, $make);
        $gen!(rescheduling_a_running_job_fires_it_again_after_the_run, $make);
        $gen!(a_finished_job_cannot_be_rescheduled_or_deleted, $make);
        $gen!(deleting_a_running_job_lets_the_run_finish, $make);
        $gen!(a_paused_job_is_listed_but_never_claimed, $make);
        $gen!(a_released_run_disappears_and_its_job_is_due_again, $make);
        $gen!(a_stale_completion_changes_nothing, $make);
        $gen!(runs_are_listed_newest_first, $make);
        $gen!(bulk_insert_stores_every_job, $make);
        $gen!(a_requeued_run_makes_its_job_due_again, $make);
        $gen!(a_claim_takes_only_the_nodes_groups, $make);
        $gen!(a_group_limit_caps_its_runs_in_progress, $make);
        $gen!(a_keyed_job_is_found_by_prefix_and_replaced_whole, $make);
        $gen!(nodes_register_heartbeat_and_stop, $make);
        $gen!(a_claimed_run_waits_unstarted_until_a_worker_starts_it, $make);
        $gen!(a_run_given_back_leaves_no_record_and_a_started_run_is_never_given_back, $make);
        $gen!(a_cancel_asked_while_a_run_waits_is_seen_when_it_starts, $make);
        $gen!(a_job_is_found_by_its_idempotency_key_in_its_group_only, $make);
        $gen!(pending_counts_a_products_unfinished_jobs, $make);
        $gen!(pause_resume_and_run_now_change_what_a_claim_takes, $make);
        $gen!(the_due_summary_counts_due_jobs_per_group, $make);
        $gen!(a_run_reads_back_by_id_with_how_it_ended, $make);
        $gen!(finished_runs_are_counted_in_the_statistics, $make);
        $gen!(pruning_removes_finished_runs_and_jobs_past_retention, $make);
        $gen!(the_audit_trail_numbers_entries_and_pages_newest_first, $make);
        $gen!(a_rescue_with_no_dead_node_changes_nothing, $make);
        $gen!(a_fresh_store_is_ready, $make);
    };
}

macro_rules! gen_test {
    ($case:ident, $make:expr) => {
        #[test]
        fn $case() {
            let store = $make;
            super::$case(&*store);
        }
    };
}

macro_rules! store_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            store_cases!(gen_test, $make);
        }
    };
}

store_suite!(memory, Arc::new(scheduler_core::store::memory::MemoryStore::new()));
store_suite!(postgres, harness::pg::migrated_store());

const HOUR: i64 = 3_600_000_000;

fn now() -> Ts {
    SystemClock.now()
}

fn group(name: &str) -> GroupKey {
    GroupKey::new("conformance", name).unwrap()
}

fn new_job(g: &GroupKey, when: Ts) -> NewJob {
    let spec = JobSpec::once(when);
    let state = spec.initial_state(&spec.compile().unwrap(), now());
    NewJob {
        id: JobId::new(),
        group: g.clone(),
        spec: Arc::new(spec),
        state,
        payload: Arc::from(r#"{"n":1}"#),
        paused: false,
        now: now(),
        idempotency: None,
    }
}

fn insert(s: &dyn Store, job: NewJob) -> Job {
    match s.job_insert(job).unwrap() {
        Inserted::Created(j) => j,
        other => panic!("not created: {other:?}"),
    }
}

/// Gives a job a new one-time instant, as a PATCH does.
fn reschedule(s: &dyn Store, g: &GroupKey, id: JobId, when: Ts) -> Change<Job> {
    loop {
        let version = match s.job_get(g, id).unwrap() {
            Some(j) => j.version,
            None => 0,
        };
        let spec = JobSpec::once(when);
        let state = spec.initial_state(&spec.compile().unwrap(), now());
        let change =
            JobReschedule { group: g.clone(), id, spec: Arc::new(spec), state, version, now: now(), replace: None };
        if let Some(c) = s.job_reschedule(&change).unwrap() {
            return c;
        }
    }
}

/// Every group the cases use: a claim may take any of them.
const GROUPS: &[&str] = &[
    "read",
    "list",
    "claim",
    "once",
    "complete",
    "fail",
    "move",
    "rerun",
    "done",
    "delrun",
    "paused",
    "release",
    "stale",
    "history",
    "bulk",
    "requeue",
    "rescue",
    "limited",
    "keyed",
    "claimed",
    "giveback",
    "precancel",
    "control",
    "due",
    "runget",
    "stats",
    "prune",
    "norescue",
];

/// Registers the claiming node (a node registers before it claims).
fn register(s: &dyn Store) {
    let node =
        NodeInfo { id: Arc::from("node-a"), host: "test".into(), groups: GROUPS.iter().map(|g| group(g)).collect() };
    s.node_register(&node).unwrap();
}

/// Claims due runs without starting them (they stay `claimed`).
fn claim_unstarted(s: &dyn Store, groups: &[&str], limit: usize) -> Vec<Claimed> {
    register(s);
    s.runs_claim_due(&ClaimDue {
        now: now(),
        limit,
        node: Arc::from("node-a"),
        groups: groups.iter().map(|g| group(g)).collect(),
        max_running: Arc::from([]),
    })
    .unwrap()
    .runs
}

/// Records the start of claimed runs, as workers do before calling the job, and then their
/// records, as the engine's recorder does.
fn start(s: &dyn Store, runs: &[Claimed]) -> Vec<Begun> {
    let at = now();
    let starts: Vec<RunStart> =
        runs.iter().map(|c| RunStart { token: c.token, run_id: c.run_id, node: c.node.clone() }).collect();
    let begun = s.runs_start(&starts, at).unwrap();
    let records: Vec<_> =
        runs.iter().zip(&begun).filter(|(_, b)| **b == Begun::Go).map(|(c, _)| (c.run_id, at)).collect();
    s.runs_started(&records).unwrap();
    begun
}

/// Claims due runs and starts them, as the engine does.
fn claim_in(s: &dyn Store, groups: &[&str], limit: usize) -> Vec<Claimed> {
    let runs = claim_unstarted(s, groups, limit);
    for b in start(s, &runs) {
        assert_eq!(b, Begun::Go, "a fresh claim starts");
    }
    runs
}

fn claim_limited(s: &dyn Store, max: u32, limit: usize) -> scheduler_core::store::Claim {
    register(s);
    let claim = s
        .runs_claim_due(&ClaimDue {
            now: now(),
            limit,
            node: Arc::from("node-a"),
            groups: GROUPS.iter().map(|g| group(g)).collect(),
            max_running: Arc::from([(group("limited"), max)]),
        })
        .unwrap();
    start(s, &claim.runs);
    claim
}

fn claim(s: &dyn Store, limit: usize) -> Vec<Claimed> {
    claim_in(s, GROUPS, limit)
}

fn payload_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("payload is JSON")
}

fn finish(c: &Claimed, outcome: RunOutcome) -> RunFinish {
    let t = now();
    RunFinish {
        limited: false,
        token: c.token,
        run_id: c.run_id,
        job_id: c.job_id,
        started_at: t,
        finished_at: t,
        ending: match outcome {
            RunOutcome::Succeeded => Ending::Succeeded { output: Some(r#"{"ok":true}"#.to_owned()) },
            RunOutcome::Vetoed => Ending::Vetoed { reason: "Vetoed".into() },
            RunOutcome::Cancelled => Ending::Cancelled { reason: "Cancelled".into(), requeue: false },
            _ => Ending::Failed { error: format!("{outcome:?}"), retry_at: None },
        },
        listener_error: None,
    }
}

/// A run cancelled by its node's shutdown: the fire is due again.
fn requeued(c: &Claimed) -> RunFinish {
    RunFinish {
        ending: Ending::Cancelled { reason: "Cancelled".into(), requeue: true },
        ..finish(c, RunOutcome::Cancelled)
    }
}

fn status(s: &dyn Store, g: &GroupKey, id: JobId) -> JobStatus {
    s.job_get(g, id).unwrap().expect("job exists").status
}

fn an_inserted_job_reads_back_only_in_its_group(s: &dyn Store) {
    let g = group("read");
    let when = now().plus_micros(HOUR);
    let j = insert(s, new_job(&g, when));
    assert_eq!(j.status, JobStatus::Scheduled);
    assert_eq!(j.next_run, Some(when));
    let got = s.job_get(&g, j.id).unwrap().unwrap();
    assert_eq!(got.id, j.id);
    assert_eq!(payload_of(&got.payload), serde_json::json!({"n": 1}));
    assert_eq!(got.when(), when);
    assert!(got.spec.is_plain_once());
    assert!(s.job_get(&group("other"), j.id).unwrap().is_none());
    assert!(s.job_get(&g, JobId::new()).unwrap().is_none());
}

fn the_list_is_soonest_first_and_pages_by_cursor(s: &dyn Store) {
    let g = group("list");
    let base = now().plus_micros(HOUR);
    let mut ids = Vec::new();
    for i in [3, 1, 4, 0, 2] {
        ids.push((i, insert(s, new_job(&g, base.plus_micros(i * 1000))).id));
    }
    // Two jobs at the same instant are ordered by id.
    let tie_a = insert(s, new_job(&g, base.plus_micros(5000))).id;
    let tie_b = insert(s, new_job(&g, base.plus_micros(5000))).id;
    insert(s, new_job(&group("elsewhere"), base));
    ids.sort();
    let mut expected: Vec<JobId> = ids.into_iter().map(|(_, id)| id).collect();
    expected.extend(if tie_a < tie_b { [tie_a, tie_b] } else { [tie_b, tie_a] });

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.jobs_list(&JobListQuery { group: g.clone(), limit: 2, after }).unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        after = Some(ListCursor { due: last.sort_due, id: last.id });
        seen.extend(page.iter().map(|j| j.id));
    }
    assert_eq!(seen, expected);
}

fn a_claim_takes_due_jobs_earliest_first_up_to_the_limit(s: &dyn Store) {
    let g = group("claim");
    let t = now();
    let late = insert(s, new_job(&g, t.plus_micros(-HOUR))).id;
    let later = insert(s, new_job(&g, t.plus_micros(-2 * HOUR))).id;
    let recent = insert(s, new_job(&g, t.plus_micros(-1000))).id;
    let future = insert(s, new_job(&g, t.plus_micros(HOUR))).id;
    let first = claim(s, 2);
    assert_eq!(first.iter().map(|c| c.job_id).collect::<Vec<_>>(), vec![later, late]);
    assert_eq!(first[0].attempt, 1);
    assert_eq!(first[0].scheduled_for, t.plus_micros(-2 * HOUR));
    assert_eq!(payload_of(&first[0].payload), serde_json::json!({"n": 1}));
    assert_ne!(first[0].run_id, first[1].run_id);
    assert_ne!(first[0].trace_id, first[1].trace_id);
    let second = claim(s, 10);
    assert_eq!(second.iter().map(|c| c.job_id).collect::<Vec<_>>(), vec![recent]);
    assert!(claim(s, 10).is_empty(), "the future job is not due");
    assert_eq!(status(s, &g, future), JobStatus::Scheduled);
    assert_eq!(status(s, &g, late), JobStatus::Running);
}

fn a_claimed_job_is_not_claimed_again_until_it_finishes(s: &dyn Store) {
    let g = group("once");
    let id = insert(s, new_job(&g, now().plus_micros(-1000))).id;
    let c = claim(s, 10);
    assert_eq!(c.len(), 1);
    assert!(claim(s, 10).is_empty());
    let job = s.job_get(&g, id).unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Running);
    assert_eq!(job.next_run, None);
    let runs = s.job_runs(&g, id, 10).unwrap().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].outcome, RunOutcome::Running);
    assert_eq!(&*runs[0].node, "node-a");
    s.runs_finish(&[finish(&c[0], RunOutcome::Succeeded)]).unwrap();
    assert!(claim(s, 10).is_empty(), "a one-time job runs once");
}

fn a_finished_run_completes_a_one_time_job(s: &dyn Store) {
    let g = group("complete");
    let id = insert(s, new_job(&g, now().plus_micros(-1000))).id;
    let c = claim(s, 1).remove(0);
    s.runs_finish(&[finish(&c, RunOutcome::Succeeded)]).unwrap();
    let job = s.job_get(&g, id).unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.next_run, None);
    let run = &s.job_runs(&g, id, 10).unwrap().unwrap()[0];
    assert_eq!(run.id, c.run_id);
    assert_eq!(run.outcome, RunOutcome::Succeeded);
    assert_eq!(run.output.as_deref().map(payload_of), Some(serde_json::json!({"ok": true})));
    assert_eq!(run.trace_id, c.trace_id);
    assert!(run.finished_at.is_some() && run.started_at.is_some());
    let listed = s.jobs_list(&JobListQuery { group: g.clone(), limit: 10, after: None }).unwrap();
    assert!(listed.is_empty(), "finished jobs leave the list");
}

fn failed_and_vetoed_runs_finish_their_jobs_so(s: &dyn Store) {
    let g = group("fail");
    let a = insert(s, new_job(&g, now().plus_micros(-2000))).id;
    let b = insert(s, new_job(&g, now().plus_micros(-1000))).id;
    let c = claim(s, 2);
    s.runs_finish(&[finish(&c[0], RunOutcome::Failed), finish(&c[1], RunOutcome::Vetoed)]).unwrap();
    assert_eq!(status(s, &g, a), JobStatus::Failed);
    assert_eq!(status(s, &g, b), JobStatus::Vetoed);
    let run = &s.job_runs(&g, a, 1).unwrap().unwrap()[0];
    assert_eq!(run.error.as_deref(), Some("Failed"));
}

fn rescheduling_a_pending_job_moves_its_next_run(s: &dyn Store) {
    let g = group("move");
    let id = insert(s, new_job(&g, now().plus_micros(HOUR))).id;
    let when = now().plus_micros(-1000);
    let Change::Done(job) = reschedule(s, &g, id, when) else { panic!("reschedule refused") };
    assert_eq!(job.next_run, Some(when));
    assert!(job.version > 1);
    assert_eq!(payload_of(&job.payload), serde_json::json!({"n": 1}), "payload kept");
    assert_eq!(claim(s, 10).len(), 1, "due at its new instant");
}

fn rescheduling_a_running_job_fires_it_again_after_the_run(s: &dyn Store) {
    let g = group("rerun");
    let id = insert(s, new_job(&g, now().plus_micros(-1000))).id;
    let c = claim(s, 1).remove(0);
    let when = now().plus_micros(-500);
    let Change::Done(job) = reschedule(s, &g, id, when) else { panic!("reschedule refused") };
    assert_eq!(job.status, JobStatus::Running);
    assert_eq!(job.next_run, Some(when));
    assert!(claim(s, 10).is_empty(), "never two runs at once, even though the new instant has passed");
    s.runs_finish(&[finish(&c, RunOutcome::Succeeded)]).unwrap();
    assert_eq!(status(s, &g, id), JobStatus::Scheduled);
    let again = claim(s, 10);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].scheduled_for, when);
}

fn a_finished_job_cannot_be_rescheduled_or_deleted(s: &dyn Store) {
    let g = group("done");
    let id = insert(s, new_job(&g, now().plus_micros(-1000))).id;
    let c = claim(s, 1).remove(0);
    s.runs_finish(&[finish(&c, RunOutcome::Succeeded)]).unwrap();
    let r = reschedule(s, &g, id, now());
    assert_eq!(r, Change::Finished(JobStatus::Completed));
    assert_eq!(s.job_delete(&g, id).unwrap(), Change::Finished(JobStatus::Completed));
    assert_eq!(s.job_delete(&g, JobId::new()).unwrap(), Change::NotFound);
    assert_eq!(status(s, &g, id), JobStatus::Completed);
}

fn deleting_a_running_job_lets_the_run_finish(s: &dyn Store) {
    let g = group("delrun");
    let id = insert(s, new_job(&g, now().plus_micros(-1000))).id;
    let c = claim(s, 1).remove(0);
    assert_eq!(s.job_delete(&g, id).unwrap(), Change::Done(()));
    assert!(s.job_get(&g, id).unwrap().is_none());
    s.runs_finish(&[finish(&c, RunOutcome::Succeeded)]).unwrap();
    assert!(s.job_get(&g, id).unwrap().is_none());
    assert!(claim(s, 10).is_empty());
}

fn a_paused_job_is_listed_but_never_claimed(s: &dyn Store) {
    let g = group("paused");
    let mut j = new_job(&g, now().plus_micros(-1000));
    j.paused = true;
    let id = insert(s, j).id;
    assert!(claim(s, 10).is_empty());
    let job = s.job_get(&g, id).unwrap().unwrap();
    assert_eq!((job.status, job.status_name()), (JobStatus::Scheduled, "paused"));
    assert!(job.paused);
    let listed = s.jobs_list(&JobListQuery { group: g.clone(), limit: 10, after: None }).unwrap();
    assert_eq!(listed.len(), 1);
}

fn a_released_run_disappears_and_its_job_is_due_again(s: &dyn Store) {
    let g = group("release");
    let when = now().plus_micros(-1000);
    let id = insert(s, new_job(&g, when)).id;
    let c = claim_unstarted(s, &["release"], 1);
    s.runs_release(&c).unwrap();
    assert!(s.job_runs(&g, id, 10).unwrap().unwrap().is_empty());
    let job = s.job_get(&g, id).unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Scheduled);
    assert_eq!(job.next_run, Some(when));
    let again = claim(s, 1);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].scheduled_for, when);
}

fn a_stale_completion_changes_nothing(s: &dyn Store) {
    let g = group("stale");
    let id = insert(s, new_job(&g, now().plus_micros(-1000))).id;
    let c = claim(s, 1).remove(0);
    s.runs_finish(&[finish(&c, RunOutcome::Succeeded)]).unwrap();
    // The same completion again, and one claiming a different outcome: both ignored.
    s.runs_finish(&[finish(&c, RunOutcome::Failed)]).unwrap();
    assert_eq!(status(s, &g, id), JobStatus::Completed);
    let runs = s.job_runs(&g, id, 10).unwrap().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].outcome, RunOutcome::Succeeded);
}

fn runs_are_listed_newest_first(s: &dyn Store) {
    let g = group("history");
    let id = insert(s, new_job(&g, now().plus_micros(-3000))).id;
    let mut run_ids = Vec::new();
    for _ in 0..3 {
        let c = claim(s, 1).remove(0);
        run_ids.push(c.run_id);
        s.runs_finish(&[requeued(&c)]).unwrap();
    }
    let runs = s.job_runs(&g, id, 10).unwrap().unwrap();
    run_ids.reverse();
    assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), run_ids);
    assert_eq!(s.job_runs(&g, id, 2).unwrap().unwrap().len(), 2);
    assert!(s.job_runs(&g, JobId::new(), 2).unwrap().is_none());
}

fn bulk_insert_stores_every_job(s: &dyn Store) {
    let g = group("bulk");
    let jobs: Vec<NewJob> = (0..500).map(|i| new_job(&g, now().plus_micros(HOUR + i))).collect();
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    assert_eq!(s.jobs_insert_many(jobs).unwrap(), 500);
    for id in ids.iter().step_by(50) {
        assert!(s.job_get(&g, *id).unwrap().is_some());
    }
    let listed = s.jobs_list(&JobListQuery { group: g.clone(), limit: 1000, after: None }).unwrap();
    assert_eq!(listed.len(), 500);
}

fn a_requeued_run_makes_its_job_due_again(s: &dyn Store) {
    let g = group("requeue");
    let when = now().plus_micros(-1000);
    let id = insert(s, new_job(&g, when)).id;
    let c = claim(s, 1).remove(0);
    s.runs_finish(&[requeued(&c)]).unwrap();
    assert_eq!(status(s, &g, id), JobStatus::Scheduled);
    let again = claim(s, 1);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].scheduled_for, when);
    let runs = s.job_runs(&g, id, 10).unwrap().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].outcome, RunOutcome::Cancelled);
}

fn a_claim_takes_only_the_nodes_groups(s: &dyn Store) {
    let mine = group("claim");
    let theirs = GroupKey::new("elsewhere", "claim").unwrap();
    insert(s, new_job(&theirs, now().plus_micros(-2000)));
    let id = insert(s, new_job(&mine, now().plus_micros(-1000))).id;
    let c = claim_in(s, &["claim"], 10);
    if s.blocking() {
        // A store shared by nodes filters by group: the other group's job stays for its nodes.
        assert_eq!(c.iter().map(|c| c.job_id).collect::<Vec<_>>(), vec![id]);
    } else {
        // One process hosts every group it has jobs for.
        assert!(c.iter().any(|c| c.job_id == id));
    }
}

fn a_group_limit_caps_its_runs_in_progress(s: &dyn Store) {
    let g = group("limited");
    for i in 0..5 {
        insert(s, new_job(&g, now().plus_micros(-10_000 + i)));
    }
    let first = claim_limited(s, 2, 10);
    assert_eq!(first.runs.len(), 2, "two may run");
    let again = claim_limited(s, 2, 10);
    assert!(again.runs.is_empty(), "none while two run");
    assert!(again.next_due.is_none_or(|d| d > now()), "a full group is not due: {:?}", again.next_due);
    s.runs_finish(&[finish(&first.runs[0], RunOutcome::Succeeded)]).unwrap();
    assert_eq!(claim_limited(s, 2, 10).runs.len(), 1, "one finished, one more may start");
    // A higher limit (every node's claim says it) lets the rest start.
    assert_eq!(claim_limited(s, 10, 10).runs.len(), 2);
}

fn a_keyed_job_is_found_by_prefix_and_replaced_whole(s: &dyn Store) {
    use scheduler_core::store::{Idempotency, KeyedJob, Replacement};
    let g = group("keyed");
    let keyed = |key: &str, fingerprint: &str| NewJob {
        idempotency: Some(Idempotency { key: key.into(), fingerprint: fingerprint.into() }),
        ..new_job(&g, now().plus_micros(3_600_000_000))
    };
    let job = insert(s, keyed("schedules:a", "one"));
    insert(s, keyed("other:b", "one"));
    assert_eq!(
        s.jobs_keyed(std::slice::from_ref(&g), "schedules:").unwrap(),
        vec![KeyedJob { group: g.clone(), id: job.id, key: "schedules:a".into() }]
    );
    assert!(s.jobs_keyed(&[group("list")], "schedules:").unwrap().is_empty(), "other groups are not looked at");
    let spec = JobSpec::once(now().plus_micros(7_200_000_000));
    let state = spec.initial_state(&spec.compile().unwrap(), now());
    let change = JobReschedule {
        group: g.clone(),
        id: job.id,
        spec: Arc::new(spec),
        state,
        version: job.version,
        now: now(),
        replace: Some(Replacement { payload: Arc::from(r#"{"n":2}"#), paused: true, fingerprint: "two".into() }),
    };
    let Some(Change::Done(after)) = s.job_reschedule(&change).unwrap() else { panic!("replaced") };
    assert_eq!((payload_of(&after.payload), after.paused), (serde_json::json!({"n": 2}), true));
    assert_eq!(s.job_get(&g, job.id).unwrap().unwrap().payload, after.payload);
    // The new fingerprint is the key's now: the new declaration is a repeat, the old a conflict.
    assert!(matches!(s.job_insert(keyed("schedules:a", "two")).unwrap(), Inserted::Existing(j) if j.id == job.id));
    assert!(matches!(s.job_insert(keyed("schedules:a", "one")).unwrap(), Inserted::Conflict(j) if j.id == job.id));
}

fn nodes_register_heartbeat_and_stop(s: &dyn Store) {
    let node = NodeInfo { id: Arc::from("node-b"), host: "host-b".into(), groups: vec![group("read"), group("list")] };
    s.node_register(&node).unwrap();
    assert!(s.node_heartbeat("node-b", std::time::Duration::from_secs(30)).unwrap());
    let listed = s.nodes_list(std::time::Duration::from_secs(30)).unwrap();
    let me = listed.iter().find(|n| &*n.info.id == "node-b").expect("listed");
    assert_eq!(me.info.host, "host-b");
    assert_eq!(me.info.groups, node.groups);
    assert!(me.stopped_at.is_none());
    assert!(me.live);
    s.node_stop("node-b").unwrap();
    let listed = s.nodes_list(std::time::Duration::from_secs(30)).unwrap();
    let me = listed.iter().find(|n| &*n.info.id == "node-b").expect("still listed");
    assert!(!me.live && me.stopped_at.is_some());
    assert!(!s.node_heartbeat("node-b", std::time::Duration::from_secs(30)).unwrap(), "a stopped node is not live");
    assert!(!s.node_heartbeat("never-registered", std::time::Duration::from_secs(30)).unwrap());
}

fn a_claimed_run_waits_unstarted_until_a_worker_starts_it(s: &dyn Store) {
    let g = group("claimed");
    let id = insert(s, new_job(&g, now().plus_micros(-1000))).id;
    let c = claim_unstarted(s, &["claimed"], 1);
    assert_eq!(c.len(), 1);
    assert_eq!(&*c[0].node, "node-a");
    let run = &s.job_runs(&g, id, 10).unwrap().unwrap()[0];
    assert_eq!((run.outcome, run.started_at), (RunOutcome::Claimed, None), "claimed, not started");
    assert_eq!(status(s, &g, id), JobStatus::Running, "a claimed run holds its job");
    assert!(claim_unstarted(s, &["claimed"], 1).is_empty());
    let at = now();
    let starts = [RunStart { token: c[0].token, run_id: c[0].run_id, node: c[0].node.clone() }];
    assert_eq!(s.runs_start(&starts, at).unwrap(), vec![Begun::Go]);
    let run = &s.job_runs(&g, id, 10).unwrap().unwrap()[0];
    assert_eq!((run.outcome, run.started_at), (RunOutcome::Running, Some(at)), "begun: it reads running");
    s.runs_started(&[(c[0].run_id, at)]).unwrap();
    assert_eq!(s.runs_start(&starts, at).unwrap(), vec![Begun::Go], "a retry after a lost answer is answered alike");
    let run = &s.job_runs(&g, id, 10).unwrap().unwrap()[0];
    assert_eq!((run.outcome, run.started_at), (RunOutcome::Running, Some(at)), "and changes nothing");
    let history = s
        .runs_query(&scheduler_core::store::RunQuery {
            job: Some(id),
            outcomes: vec![RunOutcome::Running],
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(history.len(), 1, "the history filters executing runs");
}

fn a_run_given_back_leaves_no_record_and_a_started_run_is_never_given_back(s: &dyn Store) {
    let g = group("giveback");
    let a = insert(s, new_job(&g, now().plus_micros(-2000))).id;
    let b = insert(s, new_job(&g, now().plus_micros(-1000))).id;
    let c = claim_unstarted(s, &["giveback"], 2);
    assert_eq!(c.iter().map(|c| c.job_id).collect::<Vec<_>>(), vec![a, b]);
    assert_eq!(start(s, &c[1..]), vec![Begun::Go]);
    s.runs_release(&c).unwrap();
    assert!(s.job_runs(&g, a, 10).unwrap().unwrap().is_empty(), "no record says it started");
    assert_eq!(status(s, &g, a), JobStatus::Scheduled);
    let runs_b = s.job_runs(&g, b, 10).unwrap().unwrap();
    assert_eq!(runs_b[0].outcome, RunOutcome::Running, "a started run is never given back");
    assert_eq!(status(s, &g, b), JobStatus::Running);
    let again = claim_unstarted(s, &["giveback"], 2);
    assert_eq!(again.iter().map(|c| (c.job_id, c.attempt)).collect::<Vec<_>>(), vec![(a, 1)], "same attempt");
}

fn a_cancel_asked_while_a_run_waits_is_seen_when_it_starts(s: &dyn Store) {
    let g = group("precancel");
    let id = insert(s, new_job(&g, now().plus_micros(-1000))).id;
    let c = claim_unstarted(s, &["precancel"], 1);
    assert_eq!(s.run_cancel(&g, c[0].run_id).unwrap(), Some(true));
    assert_eq!(s.runs_cancel_requested("node-a").unwrap(), vec![c[0].run_id], "handed to its node");
    assert!(s.runs_cancel_requested("node-a").unwrap().is_empty(), "once");
    assert_eq!(s.run_cancel(&g, c[0].run_id).unwrap(), Some(true), "still a cancel in progress");
    assert_eq!(start(s, &c), vec![Begun::Go]);
    let f = RunFinish {
        ending: Ending::Cancelled { reason: "cancelled before it started".into(), requeue: false },
        ..finish(&c[0], RunOutcome::Cancelled)
    };
    s.runs_finish(&[f]).unwrap();
    assert_eq!(status(s, &g, id), JobStatus::Cancelled);
}

fn a_job_is_found_by_its_idempotency_key_in_its_group_only(s: &dyn Store) {
    let g = group("bykey");
    let job = insert(
        s,
        NewJob {
            idempotency: Some(Idempotency { key: "k-1".into(), fingerprint: "f".into() }),
            ..new_job(&g, now().plus_micros(HOUR))
        },
    );
    assert_eq!(s.job_by_key(&g, "k-1").unwrap().map(|j| j.id), Some(job.id));
    assert!(s.job_by_key(&g, "k-2").unwrap().is_none());
    assert!(s.job_by_key(&group("other"), "k-1").unwrap().is_none(), "keys are per group");
}

fn pending_counts_a_products_unfinished_jobs(s: &dyn Store) {
    let a = GroupKey::new("pending-a", "one").unwrap();
    let a2 = GroupKey::new("pending-a", "two").unwrap();
    let b = GroupKey::new("pending-b", "one").unwrap();
    assert_eq!(s.jobs_pending("pending-a").unwrap(), 0);
    for g in [&a, &a2, &a] {
        insert(s, new_job(g, now().plus_micros(HOUR)));
    }
    let paused = insert(s, NewJob { paused: true, ..new_job(&a, now().plus_micros(HOUR)) });
    insert(s, new_job(&b, now().plus_micros(HOUR)));
    assert_eq!(s.jobs_pending("pending-a").unwrap(), 4, "every group of the product, paused ones too");
    assert_eq!(s.jobs_pending("pending-b").unwrap(), 1);
    assert!(matches!(s.job_delete(&a, paused.id).unwrap(), Change::Done(())));
    assert_eq!(s.jobs_pending("pending-a").unwrap(), 3);
    // A job that finished is no longer pending.
    register(s);
    let done = insert(s, new_job(&b, now().plus_micros(-1_000)));
    let runs = s
        .runs_claim_due(&ClaimDue {
            now: now(),
            limit: 10,
            node: Arc::from("node-a"),
            groups: Arc::from([b.clone()]),
            max_running: Arc::from([]),
        })
        .unwrap()
        .runs;
    assert_eq!(runs.len(), 1);
    start(s, &runs);
    s.runs_finish(&[finish(&runs[0], RunOutcome::Succeeded)]).unwrap();
    assert_eq!(status(s, &b, done.id), JobStatus::Completed);
    assert_eq!(s.jobs_pending("pending-b").unwrap(), 1, "the completed job left the count");
}

fn pause_resume_and_run_now_change_what_a_claim_takes(s: &dyn Store) {
    let g = group("control");
    let job = insert(s, new_job(&g, now().plus_micros(-1_000)));
    let Change::Done(paused) = s.job_control(&g, job.id, Control::Pause, now()).unwrap() else { panic!("paused") };
    assert!(paused.paused);
    assert!(claim_in(s, &["control"], 10).is_empty(), "a paused job is not claimed");
    let Change::Done(resumed) = s.job_control(&g, job.id, Control::Resume, now()).unwrap() else { panic!("resumed") };
    assert!(!resumed.paused);
    let runs = claim_in(s, &["control"], 10);
    assert_eq!(runs.len(), 1);
    s.runs_finish(&[finish(&runs[0], RunOutcome::Succeeded)]).unwrap();
    assert_eq!(status(s, &g, job.id), JobStatus::Completed);
    // Run-now revives the finished job for one more fire.
    let Change::Done(again) = s.job_control(&g, job.id, Control::RunNow, now()).unwrap() else { panic!("run now") };
    assert!(!again.status.is_finished());
    let runs = claim_in(s, &["control"], 10);
    assert_eq!(runs.len(), 1, "run-now makes it due at once");
    assert_eq!(runs[0].job_id, job.id);
    assert!(matches!(s.job_control(&g, JobId::new(), Control::Pause, now()).unwrap(), Change::NotFound));
}

fn the_due_summary_counts_due_jobs_per_group(s: &dyn Store) {
    let (g, other) = (group("due"), group("due-other"));
    let t = now();
    insert(s, new_job(&g, t.plus_micros(-2_000_000)));
    insert(s, new_job(&g, t.plus_micros(-1_000_000)));
    insert(s, new_job(&g, t.plus_micros(HOUR)));
    insert(s, NewJob { paused: true, ..new_job(&g, t.plus_micros(-3_000_000)) });
    insert(s, new_job(&other, t.plus_micros(-1_000_000)));
    let (due, store_now) = s.due_summary(std::slice::from_ref(&g)).unwrap();
    assert!(store_now.micros_since(t).abs() < 60_000_000, "the store's clock is near ours");
    assert!(due.iter().all(|d| d.group == g), "only the groups asked about: {due:?}");
    let mine: Vec<_> = due.iter().filter(|d| d.group == g).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].due, 2, "due, not paused, not in the future");
    assert_eq!(mine[0].oldest, t.plus_micros(-2_000_000));
}

fn a_run_reads_back_by_id_with_how_it_ended(s: &dyn Store) {
    let g = group("runget");
    let job = insert(s, new_job(&g, now().plus_micros(-1_000)));
    let runs = claim_in(s, &["runget"], 10);
    assert_eq!(runs.len(), 1);
    let running = s.run_get(runs[0].run_id).unwrap().expect("the run");
    assert_eq!((running.job_id, running.outcome), (job.id, RunOutcome::Running));
    s.runs_finish(&[finish(&runs[0], RunOutcome::Failed)]).unwrap();
    let ended = s.run_get(runs[0].run_id).unwrap().expect("the run");
    assert_eq!(ended.outcome, RunOutcome::Failed);
    assert_eq!(ended.error.as_deref(), Some("Failed"));
    assert!(ended.finished_at.is_some());
    assert!(s.run_get(scheduler_core::model::RunId::new()).unwrap().is_none());
}

fn finished_runs_are_counted_in_the_statistics(s: &dyn Store) {
    let g = group("stats");
    for _ in 0..3 {
        insert(s, new_job(&g, now().plus_micros(-1_000)));
    }
    let runs = claim_in(s, &["stats"], 10);
    assert_eq!(runs.len(), 3);
    let batch: Vec<_> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| finish(r, if i == 0 { RunOutcome::Failed } else { RunOutcome::Succeeded }))
        .collect();
    s.runs_finish(&batch).unwrap();
    let query = scheduler_core::stats::StatsQuery {
        from: now().plus_micros(-HOUR),
        to: None,
        product: Some("conformance".into()),
        job_group: Some("stats".into()),
        by_day: false,
    };
    let rows = harness_wait(|| {
        let rows = s.stats(&query).unwrap();
        (rows.iter().filter(|r| r.measure == scheduler_core::stats::RUNS).map(|r| r.count).sum::<u64>() == 3)
            .then_some(rows)
    });
    let runs_of = |o: RunOutcome| {
        rows.iter().filter(|r| r.measure == scheduler_core::stats::RUNS && r.outcome == o).map(|r| r.count).sum::<u64>()
    };
    assert_eq!((runs_of(RunOutcome::Succeeded), runs_of(RunOutcome::Failed)), (2, 1));
    assert!(rows.iter().all(|r| r.group == g));
    let other = scheduler_core::stats::StatsQuery { job_group: Some("nothing-here".into()), ..query };
    assert!(s.stats(&other).unwrap().is_empty());
}

/// Statistics may be written after the finish (batched): polls up to 10 s.
fn harness_wait<T>(f: impl FnMut() -> Option<T>) -> T {
    harness::wait_until("the statistics", std::time::Duration::from_secs(10), f)
}

fn pruning_removes_finished_runs_and_jobs_past_retention(s: &dyn Store) {
    let g = group("prune");
    let done = insert(s, new_job(&g, now().plus_micros(-1_000)));
    let runs = claim_in(s, &["prune"], 10);
    s.runs_finish(&[finish(&runs[0], RunOutcome::Succeeded)]).unwrap();
    let waiting = insert(s, new_job(&g, now().plus_micros(HOUR)));
    let keep_all = Retention {
        succeeded: Some(std::time::Duration::from_secs(3_600)),
        failed: Some(std::time::Duration::from_secs(3_600)),
        stats: None,
        batch: 100,
    };
    let pruned = s.prune(&keep_all).unwrap();
    assert_eq!((pruned.runs, pruned.jobs), (0, 0), "nothing is old enough");
    assert!(s.run_get(runs[0].run_id).unwrap().is_some());
    // The finish must be in the store's past before a zero retention covers it.
    let run_id = runs[0].run_id;
    let zero = Retention { succeeded: Some(std::time::Duration::ZERO), ..keep_all };
    harness::wait_until("the run to be pruned", std::time::Duration::from_secs(10), || {
        s.prune(&zero).unwrap();
        s.run_get(run_id).unwrap().is_none().then_some(())
    });
    assert!(s.job_get(&g, done.id).unwrap().is_none(), "the completed job went with its run");
    assert!(s.job_get(&g, waiting.id).unwrap().is_some(), "an unfinished job stays");
}

fn the_audit_trail_numbers_entries_and_pages_newest_first(s: &dyn Store) {
    use scheduler_core::audit::{Action, AuditQuery, Change as Audited};
    let change = |who: &str, product: &str, action: Action| Audited {
        who: who.into(),
        action,
        method: "POST".into(),
        path: format!("/api/scheduler/{product}/g/jobs"),
        status: 201,
        product: Some(product.into()),
        job_group: Some("g".into()),
        target: None,
    };
    let t = now();
    s.audit_append(t, change("alice", "p1", Action::Create)).unwrap();
    s.audit_append(t.plus_micros(1), change("bob", "p2", Action::Delete)).unwrap();
    s.audit_append(t.plus_micros(2), change("alice", "p2", Action::Pause)).unwrap();
    s.flush();
    let all = s.audit_list(&AuditQuery { limit: 10, ..AuditQuery::default() }).unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.windows(2).all(|w| w[0].seq > w[1].seq), "newest first, numbered by the store");
    assert_eq!(all[0].change, change("alice", "p2", Action::Pause));
    assert_eq!(all[0].at, t.plus_micros(2));
    let alice = s.audit_list(&AuditQuery { who: Some("alice".into()), limit: 10, ..AuditQuery::default() }).unwrap();
    assert_eq!(alice.len(), 2);
    let p2 = s.audit_list(&AuditQuery { product: Some("p2".into()), limit: 1, ..AuditQuery::default() }).unwrap();
    assert_eq!(p2.len(), 1, "the limit holds");
    let older = s
        .audit_list(&AuditQuery { before: Some(p2[0].seq), product: Some("p2".into()), limit: 10, who: None })
        .unwrap();
    assert_eq!(older.iter().map(|e| e.change.action).collect::<Vec<_>>(), vec![Action::Delete]);
}

fn a_rescue_with_no_dead_node_changes_nothing(s: &dyn Store) {
    let g = group("norescue");
    insert(s, new_job(&g, now().plus_micros(-1_000)));
    let runs = claim_in(s, &["norescue"], 10);
    assert_eq!(runs.len(), 1);
    assert!(s.node_heartbeat("node-a", std::time::Duration::from_secs(30)).unwrap());
    let rescued = s
        .runs_rescue(&RescueDead {
            judge: Arc::from("node-a"),
            dead_after: std::time::Duration::from_secs(3_600),
            gap: std::time::Duration::from_secs(30),
            groups: vec![(g.clone(), true)],
        })
        .unwrap();
    assert!(rescued.is_empty(), "the only node is live: {rescued:?}");
    assert_eq!(s.run_get(runs[0].run_id).unwrap().unwrap().outcome, RunOutcome::Running);
}

fn a_fresh_store_is_ready(s: &dyn Store) {
    assert_eq!(s.readiness(), Ok(()));
    let _ = s.blocking();
}

/// The suite calls every store method: a method added to a store role without a case here
/// fails this test.
#[test]
fn the_suite_calls_every_store_method() {
    let roles = include_str!("../../../scheduler-core/src/store/roles.rs");
    let suite = include_str!("store_conformance.rs");
    let methods: Vec<&str> = roles
        .lines()
        .filter_map(|l| l.trim().strip_prefix("fn "))
        .map(|l| l.split('(').next().unwrap_or_default())
        .collect();
    assert!(methods.len() >= 30, "read the store roles: {methods:?}");
    let missing: Vec<&&str> = methods.iter().filter(|m| !suite.contains(&format!(".{m}("))).collect();
    assert!(missing.is_empty(), "store methods no conformance case calls: {missing:?}");
}

/// The memory store judges time by the clock it is given, so hours pass in no time: history
/// ages past its retention and heartbeats are stamped as the clock is moved.
#[test]
fn the_memory_store_judges_time_by_its_clock() {
    use scheduler_core::clock::ManualClock;
    let clock = Arc::new(ManualClock::at(now()));
    let store = scheduler_core::store::memory::MemoryStore::new().with_clock(clock.clone());
    let s: &dyn Store = &store;
    let g = group("prune");
    let job = insert(s, new_job(&g, now().plus_micros(-1_000)));
    let runs = claim_in(s, &["prune"], 10);
    s.runs_finish(&[finish(&runs[0], RunOutcome::Succeeded)]).unwrap();
    let hour =
        Retention { succeeded: Some(std::time::Duration::from_secs(3_600)), failed: None, stats: None, batch: 100 };
    assert_eq!(s.prune(&hour).unwrap().runs, 0);
    clock.advance(std::time::Duration::from_secs(3_600 + 60));
    let pruned = s.prune(&hour).unwrap();
    assert_eq!((pruned.runs, pruned.jobs), (1, 1), "an hour later, by the store's clock");
    assert!(s.job_get(&g, job.id).unwrap().is_none());

    // One process is the memory store's only node: it stays live, and its heartbeats are
    // stamped by the store's clock.
    clock.advance(std::time::Duration::from_secs(90));
    assert!(s.node_heartbeat("node-a", std::time::Duration::from_secs(30)).unwrap());
    let nodes = s.nodes_list(std::time::Duration::from_secs(30)).unwrap();
    let me = nodes.iter().find(|n| &*n.info.id == "node-a").unwrap();
    assert_eq!(me.heartbeat_at, clock.now());
    let (_, store_now) = s.due_summary(&[]).unwrap();
    assert_eq!(store_now, clock.now());
}
