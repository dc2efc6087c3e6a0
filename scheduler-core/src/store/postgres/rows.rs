//! Rows as the store's statements return them, and their conversion to the model.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use uuid::Uuid;

use crate::clock::Ts;
use crate::model::{GroupKey, Job, JobId, JobStatus, Run, RunId, RunOutcome, Schedule, TraceId};
use crate::store::{Claimed, NodeInfo, NodeRecord, RescuedRun, StoreError};

fn ts(d: DateTime<Utc>) -> Ts {
    Ts::from_datetime(d)
}

fn group(product: &str, job_group: &str) -> Result<GroupKey, StoreError> {
    GroupKey::new(product, job_group).map_err(|e| StoreError::Internal(format!("stored group is invalid: {e}")))
}

#[derive(QueryableByName)]
pub struct JobRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    product: String,
    #[diesel(sql_type = Text)]
    job_group: String,
    #[diesel(sql_type = Text)]
    #[allow(dead_code)]
    schedule: String,
    #[diesel(sql_type = Timestamptz)]
    when_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    payload: String,
    #[diesel(sql_type = Bool)]
    paused: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    next_due: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    sort_due: DateTime<Utc>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    running_run: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    final_status: Option<String>,
    #[diesel(sql_type = BigInt)]
    version: i64,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
}

/// A stored final status.
pub fn final_status(s: &str) -> JobStatus {
    match s {
        "completed" => JobStatus::Completed,
        "vetoed" => JobStatus::Vetoed,
        _ => JobStatus::Failed,
    }
}

impl JobRow {
    pub fn into_job(self) -> Result<Job, StoreError> {
        let status = if self.running_run.is_some() {
            JobStatus::Running
        } else if let Some(f) = &self.final_status {
            final_status(f)
        } else if self.paused {
            JobStatus::Paused
        } else {
            JobStatus::Scheduled
        };
        Ok(Job {
            id: JobId(self.id),
            group: group(&self.product, &self.job_group)?,
            schedule: Schedule::Once { when: ts(self.when_at) },
            payload: Arc::from(self.payload),
            status,
            paused: self.paused,
            next_run: self.next_due.map(ts),
            sort_due: ts(self.sort_due),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            version: self.version,
        })
    }
}

#[derive(QueryableByName)]
pub struct RunRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    job_id: Uuid,
    #[diesel(sql_type = Text)]
    product: String,
    #[diesel(sql_type = Text)]
    job_group: String,
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = Timestamptz)]
    scheduled_for: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    started_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    finished_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Text)]
    node: String,
    #[diesel(sql_type = Text)]
    outcome: String,
    #[diesel(sql_type = Nullable<Text>)]
    error: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    output: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    listener_error: Option<String>,
    #[diesel(sql_type = Text)]
    trace_id: String,
}

impl RunRow {
    pub fn into_run(self) -> Result<Run, StoreError> {
        Ok(Run {
            id: RunId(self.id),
            job_id: JobId(self.job_id),
            group: group(&self.product, &self.job_group)?,
            attempt: u32::try_from(self.attempt).unwrap_or(1),
            scheduled_for: ts(self.scheduled_for),
            started_at: self.started_at.map(ts),
            finished_at: self.finished_at.map(ts),
            node: Arc::from(self.node),
            outcome: RunOutcome::parse(&self.outcome)
                .ok_or_else(|| StoreError::Internal(format!("unknown stored outcome `{}`", self.outcome)))?,
            error: self.error,
            trace_id: TraceId::parse(&self.trace_id).unwrap_or_default(),
            output: self.output,
            listener_error: self.listener_error,
        })
    }
}

#[derive(QueryableByName)]
pub struct ClaimRow {
    #[diesel(sql_type = SqlUuid)]
    job_id: Uuid,
    #[diesel(sql_type = Text)]
    product: String,
    #[diesel(sql_type = Text)]
    job_group: String,
    #[diesel(sql_type = SqlUuid)]
    run_id: Uuid,
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = Timestamptz)]
    scheduled_for: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    payload: String,
    #[diesel(sql_type = Text)]
    trace_id: String,
}

impl ClaimRow {
    pub fn into_claimed(self) -> Result<Claimed, StoreError> {
        Ok(Claimed {
            // The run id is the claim: completions are fenced on it, so no token is needed.
            token: 0,
            run_id: RunId(self.run_id),
            job_id: JobId(self.job_id),
            group: group(&self.product, &self.job_group)?,
            attempt: u32::try_from(self.attempt).unwrap_or(1),
            scheduled_for: ts(self.scheduled_for),
            payload: Arc::from(self.payload),
            trace_id: TraceId::parse(&self.trace_id).unwrap_or_default(),
        })
    }
}

#[derive(QueryableByName)]
pub struct NextDueRow {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub next_due: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    pub db_now: DateTime<Utc>,
}

#[derive(QueryableByName)]
pub struct FinishCounts {
    #[diesel(sql_type = BigInt)]
    pub runs: i64,
}

#[derive(QueryableByName)]
pub struct StatusRow {
    #[diesel(sql_type = Nullable<Text>)]
    pub final_status: Option<String>,
}

#[derive(QueryableByName)]
pub struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    #[allow(dead_code)]
    pub id: Uuid,
}

#[derive(QueryableByName)]
pub struct TextIdRow {
    #[diesel(sql_type = Text)]
    #[allow(dead_code)]
    pub id: String,
}

#[derive(QueryableByName)]
pub struct NodeRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    host: String,
    #[diesel(sql_type = Array<Text>)]
    groups: Vec<String>,
    #[diesel(sql_type = Timestamptz)]
    started_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    heartbeat_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    stopped_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Bool)]
    live: bool,
}

impl NodeRow {
    pub fn into_record(self) -> NodeRecord {
        NodeRecord {
            info: NodeInfo {
                id: Arc::from(self.id),
                host: self.host,
                groups: self
                    .groups
                    .iter()
                    .filter_map(|g| g.split_once('/').and_then(|(p, j)| GroupKey::new(p, j).ok()))
                    .collect(),
            },
            started_at: ts(self.started_at),
            heartbeat_at: ts(self.heartbeat_at),
            stopped_at: self.stopped_at.map(ts),
            live: self.live,
        }
    }
}

#[derive(QueryableByName)]
pub struct RescueRow {
    #[diesel(sql_type = SqlUuid)]
    run_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    job_id: Uuid,
    #[diesel(sql_type = Text)]
    node: String,
    #[diesel(sql_type = Bool)]
    rerun: bool,
}

impl RescueRow {
    pub fn into_rescued(self) -> RescuedRun {
        RescuedRun { run_id: RunId(self.run_id), job_id: JobId(self.job_id), node: self.node, rerun: self.rerun }
    }
}
