//! Who may declare a node dead, on the PostgreSQL store itself: the judging node's own
//! heartbeats must cover the whole dead-after period without a gap, on the database clock,
//! and every judging statement checks it. Instants are set in the database directly to stand
//! for an outage, a blocked call or a pause.

use std::sync::Arc;
use std::time::Duration;

use harness::pg::{migrated_store, PgTestStore};
use scheduler_core::clock::{Clock, SystemClock};
use scheduler_core::model::{GroupKey, JobId, JobSpec, RunOutcome};
use scheduler_core::store::{
    Begun, ClaimDue, ClaimStore, HistoryStore, JobStore, NewJob, NodeInfo, NodeStore, Rescue, RescueDead, RunStart,
};

const DEAD_AFTER: Duration = Duration::from_secs(2);
const GAP: Duration = Duration::from_secs(1);

fn group() -> GroupKey {
    GroupKey::new("liveness", "jobs").unwrap()
}

/// A one-time job of the group, due a second ago.
fn insert_due(s: &PgTestStore) {
    let spec = JobSpec::once(SystemClock.now().plus_micros(-1_000_000));
    let state = spec.initial_state(&spec.compile().unwrap(), SystemClock.now());
    s.job_insert(NewJob {
        id: JobId::new(),
        group: group(),
        spec: Arc::new(spec),
        state,
        payload: Arc::from("{}"),
        paused: false,
        now: SystemClock.now(),
        idempotency: None,
    })
    .unwrap();
}

/// Claims up to `limit` due runs of the group as `node`.
fn claim_as(s: &PgTestStore, node: &str, limit: usize) -> scheduler_core::store::Claim {
    s.runs_claim_due(&ClaimDue {
        now: SystemClock.now(),
        limit,
        node: Arc::from(node),
        groups: Arc::from([group()]),
        max_running: Arc::from([]),
    })
    .unwrap()
}

fn register(s: &PgTestStore, id: &str) {
    s.node_register(&NodeInfo { id: Arc::from(id), host: "test".into(), groups: vec![group()] }).unwrap();
}

/// A victim node holding two runs: one claimed (not started), one started; then silent for an
/// hour. Returns the two run ids (claimed, started).
fn victim_with_two_runs(s: &PgTestStore) -> (String, String) {
    register(s, "victim");
    for _ in 0..2 {
        insert_due(s);
    }
    let claim = claim_as(s, "victim", 2);
    assert_eq!(claim.runs.len(), 2);
    let started = &claim.runs[1];
    let at = SystemClock.now();
    let start = RunStart { token: started.token, run_id: started.run_id, node: started.node.clone() };
    assert_eq!(s.runs_start(&[start], at).unwrap(), vec![Begun::Go]);
    s.runs_started(&[(started.run_id, at)]).unwrap();
    s.db().execute("UPDATE nodes SET heartbeat_at = now() - interval '1 hour' WHERE id = 'victim'");
    (claim.runs[0].run_id.to_string(), started.run_id.to_string())
}

fn rescue(s: &PgTestStore) -> Vec<(String, Rescue)> {
    s.runs_rescue(&RescueDead {
        judge: Arc::from("judge"),
        dead_after: DEAD_AFTER,
        gap: GAP,
        groups: vec![(group(), false)],
    })
    .unwrap()
    .into_iter()
    .map(|r| (r.run_id.to_string(), r.result))
    .collect()
}

fn outcomes(s: &PgTestStore) -> Vec<String> {
    let runs = s.runs_query(&scheduler_core::store::RunQuery { limit: 10, ..Default::default() }).unwrap();
    let mut v: Vec<String> = runs.iter().map(|(_, r)| r.outcome.as_str().to_owned()).collect();
    v.sort();
    v
}

#[test]
fn a_settled_judge_gives_back_claimed_runs_and_abandons_started_ones() {
    let s = migrated_store();
    let (claimed, started) = victim_with_two_runs(&s);
    register(&s, "judge");
    s.db().execute("UPDATE nodes SET connected_since = now() - interval '10 seconds' WHERE id = 'judge'");
    let mut done = rescue(&s);
    done.sort_by_key(|(_, r)| r.as_str());
    assert_eq!(done, vec![(started, Rescue::Abandoned), (claimed, Rescue::HandedBack)]);
    assert_eq!(outcomes(&s), vec![RunOutcome::Abandoned.as_str()], "the claimed run's record is gone");
    let listed = s.nodes_list(DEAD_AFTER).unwrap();
    assert!(listed.iter().any(|n| &*n.info.id == "victim" && n.stopped_at.is_some()), "declared dead");
    assert!(!s.node_heartbeat("victim", GAP).unwrap(), "the victim learns it at its next heartbeat");
    // The given-back fire is due again, same attempt; the abandoned job (no recovery) is done.
    let again = claim_as(&s, "judge", 5);
    assert_eq!(again.runs.iter().map(|r| r.attempt).collect::<Vec<_>>(), vec![1]);
}

#[test]
fn a_judge_connected_for_less_than_the_dead_after_period_decides_nothing() {
    let s = migrated_store();
    victim_with_two_runs(&s);
    register(&s, "judge");
    assert!(rescue(&s).is_empty());
    assert_eq!(outcomes(&s), vec!["claimed", "running"]);
}

#[test]
fn a_judge_whose_own_heartbeat_is_stale_decides_nothing() {
    // The judge's rescue ran after a call of its own hung (its heartbeat is older than a period).
    let s = migrated_store();
    victim_with_two_runs(&s);
    register(&s, "judge");
    s.db().execute(
        "UPDATE nodes SET connected_since = now() - interval '1 hour', heartbeat_at = now() - interval '5 seconds'
         WHERE id = 'judge'",
    );
    assert!(rescue(&s).is_empty());
    assert_eq!(outcomes(&s), vec!["claimed", "running"]);
}

#[test]
fn a_heartbeat_after_a_gap_starts_the_judges_connected_time_again() {
    // Connected for an hour, then a gap of 5 s (an outage): the heartbeat that ends it resets
    // the judge's connected time, so it waits a full dead-after period again.
    let s = migrated_store();
    victim_with_two_runs(&s);
    register(&s, "judge");
    s.db().execute(
        "UPDATE nodes SET connected_since = now() - interval '1 hour', heartbeat_at = now() - interval '5 seconds'
         WHERE id = 'judge'",
    );
    assert!(s.node_heartbeat("judge", GAP).unwrap());
    assert!(rescue(&s).is_empty(), "a gap restarts the judge's connected time");
    assert_eq!(outcomes(&s), vec!["claimed", "running"]);
    // Heartbeats within the gap keep it.
    s.db().execute("UPDATE nodes SET connected_since = now() - interval '1 hour' WHERE id = 'judge'");
    assert!(s.node_heartbeat("judge", GAP).unwrap());
    assert_eq!(rescue(&s).len(), 2, "settled: the victim's runs are resolved");
}

#[test]
fn a_node_counted_dead_can_neither_claim_nor_start() {
    let s = migrated_store();
    let (claimed, _) = victim_with_two_runs(&s);
    s.db().execute("UPDATE nodes SET stopped_at = now() WHERE id = 'victim'");
    let run = scheduler_core::model::RunId(claimed.parse().unwrap());
    let begun = s.runs_start(&[RunStart { token: 0, run_id: run, node: Arc::from("victim") }], SystemClock.now());
    assert_eq!(begun.unwrap(), vec![Begun::Lost], "a dead node's claim does not start");
    insert_due(&s);
    let claim = claim_as(&s, "victim", 5);
    assert!(claim.runs.is_empty(), "a dead node claims nothing");
    let stranger = claim_as(&s, "never-registered", 5);
    assert!(stranger.runs.is_empty(), "a node the cluster does not know claims nothing");
}

#[test]
fn a_live_nodes_runs_are_never_rescued_even_by_a_settled_judge() {
    let s = migrated_store();
    victim_with_two_runs(&s);
    // The victim heartbeats: it is live, however long the judge has been connected.
    s.db().execute("UPDATE nodes SET heartbeat_at = now() WHERE id = 'victim'");
    register(&s, "judge");
    s.db().execute("UPDATE nodes SET connected_since = now() - interval '1 hour' WHERE id = 'judge'");
    assert!(rescue(&s).is_empty());
    assert_eq!(outcomes(&s), vec!["claimed", "running"]);
    assert!(s.node_heartbeat("victim", GAP).unwrap(), "still live");
}

#[test]
fn a_run_begun_before_its_record_was_written_is_abandoned_not_given_back() {
    // The node recorded the start (its `executing` list) and died before its recorder wrote the
    // run's own record: the run reads `claimed`, but it began, so it is not given back.
    let s = migrated_store();
    register(&s, "victim");
    insert_due(&s);
    let claim = claim_as(&s, "victim", 1);
    let run = &claim.runs[0];
    let start = RunStart { token: run.token, run_id: run.run_id, node: run.node.clone() };
    assert_eq!(s.runs_start(&[start], SystemClock.now()).unwrap(), vec![Begun::Go]);
    assert_eq!(outcomes(&s), vec!["running"], "a begun run reads running before its record is written");
    assert_eq!(s.db().count("SELECT count(*) AS n FROM runs WHERE outcome = 'claimed'"), 1);
    s.db().execute("UPDATE nodes SET heartbeat_at = now() - interval '1 hour' WHERE id = 'victim'");
    register(&s, "judge");
    s.db().execute("UPDATE nodes SET connected_since = now() - interval '10 seconds' WHERE id = 'judge'");
    assert_eq!(rescue(&s), vec![(run.run_id.to_string(), Rescue::Abandoned)]);
    assert_eq!(outcomes(&s), vec!["abandoned"]);
}
