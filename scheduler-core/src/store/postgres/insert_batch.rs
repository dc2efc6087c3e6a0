//! Creates written in batches (through [`super::batcher::Batcher`]): one statement and one
//! commit for every create waiting at that moment. A create whose id or idempotency key is
//! taken is answered with the job that holds it.

use std::collections::HashMap;

use diesel::pg::{Pg, PgConnection};
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Array, Bool, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel::RunQueryDsl;

use super::batcher::Batcher;
use super::rows::JobRow;
use super::{db, spec_json, sql, state_json, PgPool};
use crate::clock::Ts;
use crate::store::{Inserted, NewJob, StoreError};

/// Most creates written in one statement.
const MAX_BATCH: usize = 256;

/// The create batcher.
pub(super) fn start(pool: PgPool) -> Batcher<NewJob, Inserted> {
    Batcher::start("pg-inserter", MAX_BATCH, pool, insert)
}

/// The insert statement with the jobs bound as parallel arrays.
pub(super) fn bind_insert<'a>(query: &str, jobs: &[&NewJob]) -> BoxedSqlQuery<'a, Pg, SqlQuery> {
    diesel::sql_query(query.to_owned())
        .into_boxed()
        .bind::<Array<SqlUuid>, _>(jobs.iter().map(|j| j.id.0).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(jobs.iter().map(|j| j.group.product().to_owned()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(jobs.iter().map(|j| j.group.job_group().to_owned()).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(jobs.iter().map(|j| j.spec.anchor.to_datetime()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(jobs.iter().map(|j| j.payload.to_string()).collect::<Vec<_>>())
        .bind::<Array<Bool>, _>(jobs.iter().map(|j| j.paused).collect::<Vec<_>>())
        .bind::<Array<Nullable<Timestamptz>>, _>(
            jobs.iter().map(|j| j.state.next_due().map(Ts::to_datetime)).collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(jobs.iter().map(|j| spec_json(&j.spec)).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(jobs.iter().map(|j| state_json(&j.spec, &j.state)).collect::<Vec<_>>())
        .bind::<Array<SmallInt>, _>(jobs.iter().map(|j| j.spec.priority).collect::<Vec<_>>())
        .bind::<Array<Bool>, _>(
            jobs.iter().map(|j| j.spec.overlap == crate::trigger::OverlapPolicy::Allow).collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(
            jobs.iter().map(|j| j.idempotency.as_ref().map(|k| k.key.clone())).collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(
            jobs.iter().map(|j| j.idempotency.as_ref().map(|k| k.fingerprint.clone())).collect::<Vec<_>>(),
        )
}

/// Inserts the jobs in one statement; a job whose id or key was taken is answered with the job
/// that holds it.
fn insert(conn: &mut PgConnection, jobs: &[&NewJob]) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
    let rows: Vec<JobRow> = bind_insert(&sql::insert_jobs(true), jobs).load(conn).map_err(db)?;
    let mut created: HashMap<uuid::Uuid, JobRow> = rows.into_iter().map(|r| (r.id(), r)).collect();
    Ok(jobs
        .iter()
        .map(|j| match created.remove(&j.id.0) {
            Some(row) => row.into_job().map(Inserted::Created),
            None => existing(conn, j),
        })
        .collect())
}

/// The job that holds a create's id or idempotency key.
fn existing(conn: &mut PgConnection, new: &NewJob) -> Result<Inserted, StoreError> {
    let key = new.idempotency.as_ref().map(|k| k.key.as_str()).unwrap_or_default();
    let rows: Vec<JobRow> = diesel::sql_query(sql::job_by_id_or_key())
        .bind::<SqlUuid, _>(new.id.0)
        .bind::<Text, _>(new.group.product())
        .bind::<Text, _>(new.group.job_group())
        .bind::<Text, _>(key)
        .load(conn)
        .map_err(db)?;
    let row = rows
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Internal("an insert conflicted with a job that is gone".into()))?;
    let same = match (&new.idempotency, &row.fingerprint, &row.idempotency_key) {
        (Some(k), Some(f), Some(stored_key)) => *f == k.fingerprint && *stored_key == k.key,
        _ => false,
    };
    let job = row.into_job()?;
    Ok(if same && job.group == new.group { Inserted::Existing(job) } else { Inserted::Conflict(job) })
}
