//! Creates arriving concurrently, written in one statement and one commit.
//!
//! Each API create is a small insert whose cost is dominated by its commit (a WAL flush). The
//! batcher thread takes every create waiting at that moment (up to a limit), inserts them with
//! one statement, and answers each caller: under load, many creates share one commit; alone, a
//! create waits for nothing but a thread hop.

use std::collections::HashMap;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use diesel::pg::PgConnection;
use diesel::sql_types::{Array, Bool, Text, Timestamptz, Uuid as SqlUuid};
use diesel::RunQueryDsl;

use super::rows::JobRow;
use super::{db, schedule_json, sql, PgPool};
use crate::model::Job;
use crate::store::{NewJob, StoreError};

/// Most creates written in one statement.
const MAX_BATCH: usize = 256;

type Reply = Sender<Result<Job, StoreError>>;

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
    pub(super) fn insert(&self, job: NewJob) -> Result<Job, StoreError> {
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
            .and_then(|mut conn| insert_returning(&mut conn, &jobs));
        match result {
            Ok(mut by_id) => {
                for (job, reply) in batch.drain(..) {
                    let answer = by_id
                        .remove(&job.id.0)
                        .ok_or_else(|| StoreError::Internal("an inserted job was not returned".into()));
                    let _ = reply.send(answer);
                }
            }
            Err(e) => {
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(match &e {
                        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
                        StoreError::Internal(m) => StoreError::Internal(m.clone()),
                    }));
                }
            }
        }
    }
}

/// Inserts the jobs in one statement; returns them by id.
pub(super) fn insert_returning(
    conn: &mut PgConnection,
    jobs: &[&NewJob],
) -> Result<HashMap<uuid::Uuid, Job>, StoreError> {
    let rows: Vec<JobRow> = diesel::sql_query(sql::insert_jobs_returning())
        .bind::<Array<SqlUuid>, _>(jobs.iter().map(|j| j.id.0).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(jobs.iter().map(|j| j.group.product()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(jobs.iter().map(|j| j.group.job_group()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(jobs.iter().map(|j| schedule_json(&j.schedule)).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(jobs.iter().map(|j| j.schedule.when().to_datetime()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(jobs.iter().map(|j| &*j.payload).collect::<Vec<_>>())
        .bind::<Array<Bool>, _>(jobs.iter().map(|j| j.paused).collect::<Vec<_>>())
        .load(conn)
        .map_err(db)?;
    rows.into_iter().map(|r| r.into_job().map(|j| (j.id.0, j))).collect()
}
