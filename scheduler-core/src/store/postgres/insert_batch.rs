//! Creates arriving concurrently, written in one statement and one commit.
//!
//! Each API create is a small insert whose cost is dominated by its commit (a WAL flush). The
//! batcher thread takes every create waiting at that moment (up to a limit), inserts them with
//! one statement, and answers each caller: under load, many creates share one commit; alone, a
//! create waits for nothing but a thread hop. A create whose id or idempotency key is taken is
//! answered with the job that holds it.

use std::collections::HashMap;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use diesel::pg::{Pg, PgConnection};
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Array, Bool, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel::RunQueryDsl;

use super::rows::JobRow;
use super::{db, spec_json, sql, state_json, PgPool};
use crate::clock::Ts;
use crate::store::{Inserted, NewJob, StoreError};

/// Most creates written in one statement.
const MAX_BATCH: usize = 256;

type Reply = Sender<Result<Inserted, StoreError>>;

/// The handle API threads use; the thread ends when it is dropped.
pub(super) struct InsertBatcher {
    tx: Option<Sender<(NewJob, Reply)>>,
    handle: Option<JoinHandle<()>>,
}

impl InsertBatcher {
    pub(super) fn start(pool: PgPool) -> InsertBatcher {
        let (tx, rx) = unbounded::<(NewJob, Reply)>();
        let handle = std::thread::Builder::new()
            .name("pg-inserter".into())
            .spawn(move || run(&pool, &rx))
            .expect("spawn the insert thread");
        InsertBatcher { tx: Some(tx), handle: Some(handle) }
    }

    /// Inserts one job, in whatever batch is being formed.
    pub(super) fn insert(&self, job: NewJob) -> Result<Inserted, StoreError> {
        let (reply_tx, reply_rx) = bounded(1);
        let gone = || StoreError::Internal("the insert thread stopped".into());
        self.tx.as_ref().ok_or_else(gone)?.send((job, reply_tx)).map_err(|_| gone())?;
        reply_rx.recv().map_err(|_| gone())?
    }
}

impl Drop for InsertBatcher {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn copy_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Internal(m) => StoreError::Internal(m.clone()),
    }
}

fn run(pool: &PgPool, rx: &Receiver<(NewJob, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let jobs: Vec<&NewJob> = batch.iter().map(|(j, _)| j).collect();
        let result = pool
            .get()
            .map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))
            .and_then(|mut conn| insert(&mut conn, &jobs));
        match result {
            Ok(answers) => {
                for ((_, reply), answer) in batch.drain(..).zip(answers) {
                    let _ = reply.send(answer);
                }
            }
            Err(e) => {
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(copy_err(&e)));
                }
            }
        }
    }
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
