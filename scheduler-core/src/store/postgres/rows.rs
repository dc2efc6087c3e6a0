//! Rows as the store's statements return them, and their conversion to the model.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use uuid::Uuid;

use crate::clock::Ts;
use crate::model::{GroupKey, Job, JobId, JobStatus, Run, RunId, RunOutcome, TraceId};
use crate::store::{NodeInfo, NodeRecord, Rescue, RescuedRun, StoreError};
use crate::trigger::{JobSpec, JobState, TriggerState};

pub fn ts(d: DateTime<Utc>) -> Ts {
    Ts::from_datetime(d)
}

pub fn group(product: &str, job_group: &str) -> Result<GroupKey, StoreError> {
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
    #[diesel(sql_type = Nullable<Text>)]
    spec: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    state: Option<String>,
    #[diesel(sql_type = Integer)]
    #[allow(dead_code)]
    attempt: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub fingerprint: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub idempotency_key: Option<String>,
}

/// A stored final status.
pub fn final_status(s: &str) -> JobStatus {
    match s {
        "completed" => JobStatus::Completed,
        "vetoed" => JobStatus::Vetoed,
        "cancelled" => JobStatus::Cancelled,
        _ => JobStatus::Failed,
    }
}

/// A stored spec (or the plain one-time spec when there is none).
pub fn spec_of(spec: Option<&str>, when: Ts) -> Result<JobSpec, StoreError> {
    match spec {
        Some(text) => {
            serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("stored job spec unreadable: {e}")))
        }
        None => Ok(JobSpec::once(when)),
    }
}

/// Stored progress (or that of a plain one-time job, from its next fire).
pub fn state_of(state: Option<&str>, next_due: Option<Ts>, finished: bool) -> Result<JobState, StoreError> {
    match state {
        Some(text) => {
            serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("stored job state unreadable: {e}")))
        }
        None => Ok(JobState {
            triggers: vec![TriggerState {
                next: next_due.filter(|_| !finished),
                fired: u64::from(next_due.is_none() || finished),
            }],
            extra: None,
        }),
    }
}

impl JobRow {
    pub fn id(&self) -> Uuid {
        self.id
    }

    pub fn into_job(self) -> Result<Job, StoreError> {
        let status = if self.running_run.is_some() {
            JobStatus::Running
        } else if let Some(f) = &self.final_status {
            final_status(f)
        } else {
            JobStatus::Scheduled
        };
        let when = ts(self.when_at);
        let next = self.next_due.map(ts);
        Ok(Job {
            id: JobId(self.id),
            group: group(&self.product, &self.job_group)?,
            spec: Arc::new(spec_of(self.spec.as_deref(), when)?),
            state: state_of(self.state.as_deref(), next, self.final_status.is_some())?,
            payload: Arc::from(self.payload),
            status,
            paused: self.paused,
            next_run: next,
            sort_due: ts(self.sort_due),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            version: self.version,
        })
    }
}

/// A job locked by a claim.
#[derive(QueryableByName)]
pub struct LockedRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub product: String,
    #[diesel(sql_type = Text)]
    pub job_group: String,
    #[diesel(sql_type = Timestamptz)]
    pub next_due: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub when_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub payload: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub spec: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub state: Option<String>,
    #[diesel(sql_type = Integer)]
    pub attempt: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_started_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_finished_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = SmallInt)]
    pub priority: i16,
    #[diesel(sql_type = Bool)]
    pub concurrent: bool,
    #[diesel(sql_type = Timestamptz)]
    pub db_now: DateTime<Utc>,
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
    #[diesel(sql_type = Nullable<Integer>)]
    trigger: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    note: Option<String>,
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
            trigger: self.trigger.and_then(|t| u32::try_from(t).ok()),
            note: self.note,
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
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    pub next_due: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(QueryableByName)]
pub struct CountRow {
    #[diesel(sql_type = BigInt)]
    pub n: i64,
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
    /// `handed_back`, `rerun`, `abandoned` or `cancelled`.
    #[diesel(sql_type = Text)]
    result: String,
}

impl RescueRow {
    pub fn into_rescued(self) -> RescuedRun {
        let result = match self.result.as_str() {
            "handed_back" => Rescue::HandedBack,
            "rerun" => Rescue::Rerun,
            "cancelled" => Rescue::Cancelled,
            _ => Rescue::Abandoned,
        };
        RescuedRun { run_id: RunId(self.run_id), job_id: JobId(self.job_id), node: self.node, result }
    }
}

/// Runs in progress in one group.
#[derive(QueryableByName)]
pub struct GroupCount {
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = BigInt)]
    pub running: i64,
}

/// A job created under an idempotency key.
#[derive(QueryableByName)]
pub struct KeyedRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    pub product: String,
    #[diesel(sql_type = Text)]
    pub job_group: String,
    #[diesel(sql_type = Text)]
    pub key: String,
}

/// One aggregated statistics cell.
#[derive(QueryableByName)]
pub struct StatCell {
    #[diesel(sql_type = Timestamptz)]
    pub period: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub product: String,
    #[diesel(sql_type = Text)]
    pub job_group: String,
    #[diesel(sql_type = Text)]
    pub outcome: String,
    #[diesel(sql_type = SmallInt)]
    pub measure: i16,
    #[diesel(sql_type = SmallInt)]
    pub bucket: i16,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

impl StatCell {
    pub fn into_row(self) -> Result<crate::stats::StatRow, StoreError> {
        Ok(crate::stats::StatRow {
            period: ts(self.period),
            group: group(&self.product, &self.job_group)?,
            outcome: RunOutcome::parse(&self.outcome)
                .ok_or_else(|| StoreError::Internal(format!("unknown outcome `{}` in run_stats", self.outcome)))?,
            measure: u8::try_from(self.measure).unwrap_or(0),
            bucket: u16::try_from(self.bucket).unwrap_or(0),
            count: u64::try_from(self.count).unwrap_or(0),
        })
    }
}

/// Due work of one group.
#[derive(QueryableByName)]
pub struct DueRow {
    #[diesel(sql_type = Text)]
    pub product: String,
    #[diesel(sql_type = Text)]
    pub job_group: String,
    #[diesel(sql_type = BigInt)]
    pub due: i64,
    #[diesel(sql_type = Timestamptz)]
    pub oldest: DateTime<Utc>,
}
