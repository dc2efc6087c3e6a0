//! Retention: one batch of old history per call, under an advisory lock so one node prunes at
//! a time; each statement deletes at most a batch, walking an age index from the oldest.

use diesel::connection::Connection;
use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Bool};
use diesel::{QueryableByName, RunQueryDsl};

use super::db;
use crate::model::DECLARED_KEY_PREFIX;
use crate::store::{Pruned, Retention, StoreError};

/// The advisory lock of retention (any constant both sides agree on).
const LOCK: i64 = 0x7363_6865_645f_7265; // "sched_re"

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

fn delete_runs(outcomes: &str) -> String {
    format!(
        "DELETE FROM runs r USING (
            SELECT id FROM runs
            WHERE outcome <> 'running' AND outcome IN ({outcomes})
              AND finished_at < now() - make_interval(secs => $1::double precision / 1e6)
            ORDER BY finished_at LIMIT $2
         ) v WHERE r.id = v.id"
    )
}

fn delete_jobs(statuses: &str) -> String {
    format!(
        "DELETE FROM jobs j USING (
            SELECT id FROM jobs
            WHERE final_status IS NOT NULL AND final_status IN ({statuses})
              AND updated_at < now() - make_interval(secs => $1::double precision / 1e6)
              AND (idempotency_key IS NULL OR NOT starts_with(idempotency_key, '{DECLARED_KEY_PREFIX}'))
            ORDER BY updated_at LIMIT $2
         ) v WHERE j.id = v.id"
    )
}

const DELETE_STATS: &str = "
    DELETE FROM run_stats WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM run_stats
        WHERE hour < now() - make_interval(secs => $1::double precision / 1e6)
        ORDER BY hour LIMIT $2))";

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// One batch of each kind.
pub(super) fn prune(conn: &mut PgConnection, r: &Retention) -> Result<Pruned, StoreError> {
    let batch = i64::try_from(r.batch).unwrap_or(i64::MAX);
    conn.transaction(|conn| {
        let locked: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
            .bind::<BigInt, _>(LOCK)
            .get_result(conn)?;
        if !locked.locked {
            return Ok(Pruned { busy: true, ..Pruned::default() });
        }
        let mut p = Pruned::default();
        let mut run = |sql: &str, age: Option<std::time::Duration>| -> Result<u64, diesel::result::Error> {
            match age {
                None => Ok(0),
                Some(a) => {
                    Ok(diesel::sql_query(sql).bind::<BigInt, _>(micros(a)).bind::<BigInt, _>(batch).execute(conn)?
                        as u64)
                }
            }
        };
        p.runs += run(&delete_runs("'succeeded', 'skipped'"), r.succeeded)?;
        p.runs += run(&delete_runs("'failed', 'vetoed', 'cancelled', 'abandoned'"), r.failed)?;
        p.jobs += run(&delete_jobs("'completed'"), r.succeeded)?;
        p.jobs += run(&delete_jobs("'failed', 'vetoed', 'cancelled'"), r.failed)?;
        p.stats += run(DELETE_STATS, r.stats)?;
        Ok(p)
    })
    .map_err(db)
}
