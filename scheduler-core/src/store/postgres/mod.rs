//! The PostgreSQL store, through Diesel: durable, and shared by every node on one database.
//!
//! Calls are synchronous Diesel calls on connections from an r2d2 pool: they block, so the
//! engine makes them from its own worker threads (which exist to block) and the HTTP layer moves
//! them to actix's blocking pool (`Store::blocking` is true). A synchronous driver fits an engine
//! that runs plugin code on OS threads anyway, keeps libpq's TLS and URL handling, and needs no
//! async-to-sync bridge on every call; batching (one claim statement per batch, one completion
//! statement per batch) is what keeps the number of round trips low.
//!
//! What is due is decided by the database clock (`now()`), never by a node's clock.

mod audit;
mod batcher;
mod claim;
mod history;
mod insert_batch;
mod migrate;
mod own_conn;
mod prepared;
mod retention;
mod rows;
pub mod schema;
mod sql;

use crate::store::{AuditStore, ClaimStore, HistoryStore, JobStore, NodeStore};
use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{Connection, RunQueryDsl};

pub use migrate::{MigrationReport, SchemaError};

/// The statement that locks a claim's batch, for diagnostics (`EXPLAIN`): `$1` the batch size,
/// `$2` the node's groups as `product/group` text.
pub const CLAIM_SQL: &str = sql::LOCK_DUE;

use self::rows::{FinishCounts, IdRow, JobRow, NodeRow, RescueRow, RunRow, StatusRow, TextIdRow};
use super::{
    Begun, Change, Claim, ClaimDue, Claimed, Control, DueSummary, Inserted, JobListQuery, JobReschedule, KeyedJob,
    NewJob, NodeInfo, NodeRecord, Pruned, RescueDead, RescuedRun, Retention, RunFinish, RunQuery, RunStart, Store,
    StoreError,
};
use crate::clock::Ts;
use crate::model::{GroupKey, Job, JobId, Run, RunId};
use crate::trigger::{ExtraFire, JobSpec, JobState};

type PgPool = Pool<ConnectionManager<PgConnection>>;
type Conn = PooledConnection<ConnectionManager<PgConnection>>;

/// Rows per bulk-insert statement.
const INSERT_CHUNK: usize = 5_000;

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/database?sslmode=...` (libpq syntax).
    pub url: String,
    /// Most connections this node opens.
    pub pool_size: u32,
    /// How long a caller waits for a connection before the call fails as unavailable.
    pub connect_timeout: Duration,
}

/// The database could not be used at start.
#[derive(Debug, thiserror::Error)]
pub enum PgSetupError {
    /// It could not be reached, or refused the credentials.
    #[error("cannot connect to PostgreSQL at {url}: {reason}")]
    Connect {
        /// The URL without its password.
        url: String,
        /// libpq's reason.
        reason: String,
    },
    /// Its schema does not fit this scheduler.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// The PostgreSQL job store.
pub struct PgStore {
    pool: PgPool,
    /// Heartbeats (and registering and stopping the node), on a connection of their own so a
    /// busy pool never delays a heartbeat and makes a live node look dead.
    heartbeats: own_conn::OwnConn,
    /// The rescue and cancel requests: the maintenance thread's connection.
    maintenance: own_conn::OwnConn,
    /// Run starts, committed without waiting for the WAL flush (see [`Store::runs_start`]).
    starts: own_conn::OwnConn,
    inserts: batcher::Batcher<NewJob, Inserted>,
    /// Audit entries, written in batches.
    audits: batcher::Batcher<(Ts, crate::audit::Change), ()>,
    /// Keep run statistics (`run_stats`) as runs finish.
    stats: bool,
}

impl PgStore {
    /// Connects (failing fast with libpq's reason when the database cannot be used) and opens
    /// a pool of up to `pool_size` connections.
    pub fn connect(config: &PgConfig) -> Result<PgStore, PgSetupError> {
        disable_openssl_atexit();
        let redacted = redact(&config.url);
        // One direct connection first: its error is libpq's own words (refused, bad password).
        PgConnection::establish(&config.url).map_err(|e| PgSetupError::Connect {
            url: redacted.clone(),
            reason: e.to_string().trim().replace('\n', " "),
        })?;
        let pool = Pool::builder()
            .max_size(config.pool_size.max(1))
            // Connections open on demand only: a background connect still running when the
            // process exits can crash inside libpq's libraries.
            .min_idle(Some(0))
            .connection_timeout(config.connect_timeout)
            .build_unchecked(ConnectionManager::new(config.url.clone()));
        let own = |connect, setup: &str| own_conn::OwnConn::new(&config.url, connect, setup.to_owned());
        Ok(PgStore {
            inserts: insert_batch::start(pool.clone()),
            audits: audit::batcher(pool.clone()),
            pool,
            // A heartbeat is a one-row update: anything slower than this is a sick database.
            heartbeats: own(Duration::from_secs(2), "SET statement_timeout = '1s'; SET lock_timeout = '500ms'"),
            maintenance: own(config.connect_timeout, "SET statement_timeout = '10s'; SET lock_timeout = '1s'"),
            // Only START_RUNS runs here: its one plan (by primary key) fits any batch.
            starts: own(
                config.connect_timeout,
                "SET synchronous_commit = off; SET statement_timeout = '10s'; SET plan_cache_mode = force_generic_plan",
            ),
            stats: true,
        })
    }

    /// Keeps (the default) or stops keeping run statistics as runs finish.
    pub fn with_stats(mut self, on: bool) -> PgStore {
        self.stats = on;
        self
    }

    fn conn(&self) -> Result<Conn, StoreError> {
        self.pool.get().map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))
    }

    /// Applies pending migrations (under an advisory lock, so nodes starting together do it
    /// once), refusing a schema newer than this scheduler knows.
    pub fn migrate(&self) -> Result<MigrationReport, PgSetupError> {
        let mut conn = self.conn().map_err(|e| PgSetupError::Connect { url: String::new(), reason: e.to_string() })?;
        Ok(migrate::run_pending(&mut conn)?)
    }

    /// Checks that the schema is exactly the one this scheduler knows (for `--no-migrate`).
    pub fn check_schema(&self) -> Result<(), PgSetupError> {
        let mut conn = self.conn().map_err(|e| PgSetupError::Connect { url: String::new(), reason: e.to_string() })?;
        Ok(migrate::check_current(&mut conn)?)
    }

    fn job_state(conn: &mut PgConnection, group: &GroupKey, id: JobId) -> Result<Option<StatusRow>, StoreError> {
        let rows: Vec<StatusRow> = diesel::sql_query(sql::JOB_STATE)
            .bind::<SqlUuid, _>(id.0)
            .bind::<Text, _>(group.product())
            .bind::<Text, _>(group.job_group())
            .load(conn)
            .map_err(db)?;
        Ok(rows.into_iter().next())
    }

    fn change_for_missing<T>(conn: &mut PgConnection, group: &GroupKey, id: JobId) -> Result<Change<T>, StoreError> {
        Ok(match Self::job_state(conn, group, id)? {
            Some(StatusRow { final_status: Some(status), .. }) => Change::Finished(rows::final_status(&status)),
            _ => Change::NotFound,
        })
    }
}

/// libpq uses OpenSSL, which registers an `atexit` cleanup that frees OpenSSL's state while
/// other threads (the connection pool's) may still be inside it: the process could crash as it
/// exits. OpenSSL's own switch turns that cleanup off; it must run before libpq first uses
/// OpenSSL. The symbol is looked up at run time (libcrypto is already loaded with libpq), so
/// nothing links against OpenSSL directly.
fn disable_openssl_atexit() {
    const OPENSSL_INIT_NO_ATEXIT: u64 = 0x0008_0000;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: dlsym with a NUL-terminated name; the symbol, when present, has OpenSSL 1.1+'s
        // signature `int OPENSSL_init_crypto(uint64_t opts, const OPENSSL_INIT_SETTINGS *)`.
        unsafe {
            let sym = libc::dlsym(libc::RTLD_DEFAULT, c"OPENSSL_init_crypto".as_ptr());
            if !sym.is_null() {
                let init: extern "C" fn(u64, *const libc::c_void) -> libc::c_int = std::mem::transmute(sym);
                init(OPENSSL_INIT_NO_ATEXIT, std::ptr::null());
            }
        }
    });
}

/// Maps Diesel's errors: a lost or unusable connection is `Unavailable` (try again later).
fn db(e: DieselError) -> StoreError {
    match &e {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            info,
        ) => StoreError::Unavailable(info.message().to_owned()),
        DieselError::BrokenTransactionManager => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Internal(e.to_string()),
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A spec as stored: NULL for a plain one-time job (read back from `when_at`).
fn spec_json(spec: &JobSpec) -> Option<String> {
    (!spec.is_plain_once()).then(|| serde_json::to_string(spec).unwrap_or_default())
}

/// Progress as stored: NULL for a plain one-time job.
fn state_json(spec: &JobSpec, state: &JobState) -> Option<String> {
    (!spec.is_plain_once() || state.extra.is_some()).then(|| serde_json::to_string(state).unwrap_or_default())
}

pub(super) fn group_names(groups: &[GroupKey]) -> Vec<String> {
    groups.iter().map(|g| g.to_string()).collect()
}

impl Store for PgStore {
    fn blocking(&self) -> bool {
        true
    }

    fn readiness(&self) -> Result<(), String> {
        let mut conn = self
            .pool
            .get_timeout(std::time::Duration::from_secs(2))
            .map_err(|e| format!("the database is unreachable: {e}"))?;
        migrate::check_current(&mut conn).map_err(|e| e.to_string())
    }

    fn flush(&self) {
        self.audits.flush();
    }
}

impl JobStore for PgStore {
    fn job_insert(&self, new: NewJob) -> Result<Inserted, StoreError> {
        self.inserts.call(new)
    }

    fn jobs_insert_many(&self, new: Vec<NewJob>) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let total = new.len();
        conn.transaction(|conn| {
            for chunk in new.chunks(INSERT_CHUNK) {
                let jobs: Vec<&NewJob> = chunk.iter().collect();
                insert_batch::bind_insert(&sql::insert_jobs(false), &jobs).execute(conn)?;
            }
            Ok(total)
        })
        .map_err(db)
    }

    fn job_get(&self, group: &GroupKey, id: JobId) -> Result<Option<Job>, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<JobRow> = diesel::sql_query(sql::get_job())
            .bind::<SqlUuid, _>(id.0)
            .bind::<Text, _>(group.product())
            .bind::<Text, _>(group.job_group())
            .load(&mut conn)
            .map_err(db)?;
        rows.into_iter().next().map(JobRow::into_job).transpose()
    }

    fn job_by_key(&self, group: &GroupKey, key: &str) -> Result<Option<Job>, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<JobRow> = diesel::sql_query(sql::job_by_key())
            .bind::<Text, _>(group.product())
            .bind::<Text, _>(group.job_group())
            .bind::<Text, _>(key)
            .load(&mut conn)
            .map_err(db)?;
        rows.into_iter().next().map(JobRow::into_job).transpose()
    }

    fn jobs_list(&self, q: &JobListQuery) -> Result<Vec<Job>, StoreError> {
        let mut conn = self.conn()?;
        let (due, id) = match q.after {
            Some(c) => (c.due.to_datetime(), c.id.0),
            // Before any instant the API accepts (it refuses years before 1970).
            None => (Ts::from_millis(-86_400_000).to_datetime(), uuid::Uuid::nil()),
        };
        let rows: Vec<JobRow> = diesel::sql_query(sql::list_jobs())
            .bind::<Text, _>(q.group.product())
            .bind::<Text, _>(q.group.job_group())
            .bind::<Timestamptz, _>(due)
            .bind::<SqlUuid, _>(id)
            .bind::<BigInt, _>(i64::try_from(q.limit).unwrap_or(i64::MAX))
            .load(&mut conn)
            .map_err(db)?;
        rows.into_iter().map(JobRow::into_job).collect()
    }

    fn jobs_pending(&self, product: &str) -> Result<u64, StoreError> {
        let mut conn = self.conn()?;
        // An index-only scan of `jobs_unfinished_by_group`.
        let row: rows::CountRow =
            diesel::sql_query("SELECT count(*) AS n FROM jobs WHERE product = $1 AND final_status IS NULL")
                .bind::<Text, _>(product)
                .get_result(&mut conn)
                .map_err(db)?;
        Ok(row.n.max(0) as u64)
    }

    fn job_reschedule(&self, c: &JobReschedule) -> Result<Option<Change<Job>>, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<JobRow> = diesel::sql_query(sql::reschedule_job())
            .bind::<SqlUuid, _>(c.id.0)
            .bind::<Text, _>(c.group.product())
            .bind::<Text, _>(c.group.job_group())
            .bind::<Text, _>(serde_json::to_string(&*c.spec).unwrap_or_default())
            .bind::<Text, _>(serde_json::to_string(&c.state).unwrap_or_default())
            .bind::<Timestamptz, _>(c.spec.anchor.to_datetime())
            .bind::<Nullable<Timestamptz>, _>(c.state.next_due().map(Ts::to_datetime))
            .bind::<SmallInt, _>(c.spec.priority)
            .bind::<BigInt, _>(c.version)
            .bind::<Nullable<Text>, _>(c.replace.as_ref().map(|r| &*r.payload))
            .bind::<Nullable<Bool>, _>(c.replace.as_ref().map(|r| r.paused))
            .bind::<Nullable<Text>, _>(c.replace.as_ref().map(|r| r.fingerprint.as_str()))
            .bind::<Nullable<Bool>, _>(
                c.replace.as_ref().map(|_| c.spec.overlap == crate::trigger::OverlapPolicy::Allow),
            )
            .load(&mut conn)
            .map_err(db)?;
        if let Some(row) = rows.into_iter().next() {
            return Ok(Some(Change::Done(row.into_job()?)));
        }
        Ok(match Self::job_state(&mut conn, &c.group, c.id)? {
            Some(StatusRow { final_status: Some(status), .. }) => Some(Change::Finished(rows::final_status(&status))),
            Some(_) => None, // the version moved on
            None => Some(Change::NotFound),
        })
    }

    fn job_control(&self, group: &GroupKey, id: JobId, control: Control, now: Ts) -> Result<Change<Job>, StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            let rows: Vec<JobRow> = diesel::sql_query(sql::get_job_for_update())
                .bind::<SqlUuid, _>(id.0)
                .bind::<Text, _>(group.product())
                .bind::<Text, _>(group.job_group())
                .load(conn)?;
            let Some(row) = rows.into_iter().next() else {
                return Ok(Change::NotFound);
            };
            let job = row.into_job().map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))?;
            if job.status.is_finished() && control != Control::RunNow {
                return Ok(Change::Finished(job.status));
            }
            let mut spec = None;
            let mut state = None;
            let mut next_due = job.next_run;
            let mut paused = job.paused;
            match control {
                Control::Pause => paused = true,
                Control::Resume => paused = false,
                Control::RunNow => {
                    let mut st = job.state.clone();
                    st.extra = Some(ExtraFire { at: now, attempt: 1, trigger: None, manual: true });
                    next_due = st.next_due();
                    if job.spec.is_plain_once() {
                        // A plain job gains its spec so the run-now fire is kept apart from the schedule.
                        spec = Some(serde_json::to_string(&*job.spec).unwrap_or_default());
                    }
                    state = Some(serde_json::to_string(&st).unwrap_or_default());
                }
            }
            let rows: Vec<JobRow> = diesel::sql_query(sql::control_job())
                .bind::<SqlUuid, _>(id.0)
                .bind::<Text, _>(group.product())
                .bind::<Text, _>(group.job_group())
                .bind::<Bool, _>(paused)
                .bind::<Nullable<Text>, _>(spec)
                .bind::<Nullable<Text>, _>(state)
                .bind::<Nullable<Timestamptz>, _>(next_due.map(Ts::to_datetime))
                .bind::<Bool, _>(control == Control::RunNow)
                .load(conn)?;
            let row = rows.into_iter().next().ok_or(diesel::result::Error::NotFound)?;
            let job = row.into_job().map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))?;
            Ok(Change::Done(job))
        })
        .map_err(db)
    }

    fn job_delete(&self, group: &GroupKey, id: JobId) -> Result<Change<()>, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<IdRow> = diesel::sql_query(sql::DELETE_JOB)
            .bind::<SqlUuid, _>(id.0)
            .bind::<Text, _>(group.product())
            .bind::<Text, _>(group.job_group())
            .load(&mut conn)
            .map_err(db)?;
        if !rows.is_empty() {
            return Ok(Change::Done(()));
        }
        Self::change_for_missing(&mut conn, group, id)
    }

    fn jobs_keyed(&self, groups: &[GroupKey], prefix: &str) -> Result<Vec<KeyedJob>, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<rows::KeyedRow> = diesel::sql_query(sql::JOBS_KEYED)
            .bind::<Array<Text>, _>(group_names(groups))
            .bind::<Text, _>(prefix)
            .load(&mut conn)
            .map_err(db)?;
        rows.into_iter()
            .map(|r| Ok(KeyedJob { group: rows::group(&r.product, &r.job_group)?, id: JobId(r.id), key: r.key }))
            .collect()
    }

    fn due_summary(&self, groups: &[GroupKey]) -> Result<(Vec<DueSummary>, Ts), StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<rows::DueRow> = diesel::sql_query(sql::DUE_SUMMARY)
            .bind::<Array<Text>, _>(group_names(groups))
            .bind::<BigInt, _>(crate::store::DUE_COUNT_CAP as i64)
            .load(&mut conn)
            .map_err(db)?;
        let now: rows::NextDueRow = diesel::sql_query(sql::NEXT_DUE)
            .bind::<Array<Text>, _>(Vec::<String>::new())
            .get_result(&mut conn)
            .map_err(db)?;
        let out = rows
            .into_iter()
            .map(|r| {
                Ok(DueSummary {
                    group: rows::group(&r.product, &r.job_group)?,
                    due: u64::try_from(r.due).unwrap_or(0),
                    oldest: rows::ts(r.oldest),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((out, Ts::from_datetime(now.db_now)))
    }
}

impl ClaimStore for PgStore {
    fn runs_claim_due(&self, c: &ClaimDue) -> Result<Claim, StoreError> {
        let mut conn = self.conn()?;
        claim::claim(&mut conn, c, self.stats)
    }

    fn runs_start(&self, runs: &[RunStart], at: Ts) -> Result<Vec<Begun>, StoreError> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        // Committed without waiting for the WAL flush: a start is visible to every node at once,
        // and only a crash of PostgreSQL itself can lose it (its finish then still counts: see
        // FINISH_RUNS).
        let started: Vec<IdRow> = self.starts.with(|conn| {
            prepared::Prepared(
                diesel::sql_query(sql::START_RUNS)
                    .bind::<Array<SqlUuid>, _>(runs.iter().map(|r| r.run_id.0).collect::<Vec<_>>())
                    .bind::<Timestamptz, _>(at.to_datetime()),
            )
            .load(conn)
        })?;
        Ok(runs
            .iter()
            .map(|r| if started.iter().any(|s| s.id == r.run_id.0) { Begun::Go } else { Begun::Lost })
            .collect())
    }

    fn runs_started(&self, runs: &[(RunId, Ts)]) -> Result<(), StoreError> {
        if runs.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn()?;
        diesel::sql_query(sql::RUNS_STARTED)
            .bind::<Array<SqlUuid>, _>(runs.iter().map(|(r, _)| r.0).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(runs.iter().map(|(_, t)| t.to_datetime()).collect::<Vec<_>>())
            .execute(&mut conn)
            .map_err(db)?;
        Ok(())
    }

    fn runs_finish(&self, batch: &[RunFinish]) -> Result<Option<Ts>, StoreError> {
        if batch.is_empty() {
            return Ok(None);
        }
        let mut conn = self.conn()?;
        static WITH_STATS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| sql::finish_runs(true));
        static WITHOUT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| sql::finish_runs(false));
        let text = if self.stats { WITH_STATS.as_str() } else { WITHOUT.as_str() };
        let counts: FinishCounts = diesel::sql_query(text)
            .bind::<Array<SqlUuid>, _>(batch.iter().map(|f| f.run_id.0).collect::<Vec<_>>())
            .bind::<Array<SqlUuid>, _>(batch.iter().map(|f| f.job_id.0).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(batch.iter().map(|f| f.ending.outcome().as_str()).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(batch.iter().map(|f| f.started_at.to_datetime()).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(batch.iter().map(|f| f.finished_at.to_datetime()).collect::<Vec<_>>())
            .bind::<Array<Nullable<Text>>, _>(batch.iter().map(|f| f.ending.error()).collect::<Vec<_>>())
            .bind::<Array<Nullable<Text>>, _>(batch.iter().map(|f| f.ending.output()).collect::<Vec<_>>())
            .bind::<Array<Nullable<Text>>, _>(batch.iter().map(|f| f.listener_error.as_deref()).collect::<Vec<_>>())
            .bind::<Array<Bool>, _>(batch.iter().map(|f| f.ending.requeue()).collect::<Vec<_>>())
            .bind::<Array<Nullable<Timestamptz>>, _>(
                batch.iter().map(|f| f.ending.retry_at().map(Ts::to_datetime)).collect::<Vec<_>>(),
            )
            .get_result(&mut conn)
            .map_err(db)?;
        if counts.runs < batch.len() as i64 {
            tracing::warn!(
                completions = batch.len(),
                recorded = counts.runs,
                "completions for runs no longer held were ignored (their claim was lost, e.g. after this node was declared dead)"
            );
        }
        Ok(counts.next_due.map(Ts::from_datetime))
    }

    fn runs_release(&self, runs: &[Claimed]) -> Result<(), StoreError> {
        if runs.is_empty() {
            return Ok(());
        }
        static CANCEL: std::sync::LazyLock<String> = std::sync::LazyLock::new(sql::cancel_released_runs);
        static RELEASE: std::sync::LazyLock<String> = std::sync::LazyLock::new(sql::release_runs);
        let ids: Vec<uuid::Uuid> = runs.iter().map(|c| c.run_id.0).collect();
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            diesel::sql_query(CANCEL.as_str()).bind::<Array<SqlUuid>, _>(&ids).execute(conn)?;
            diesel::sql_query(RELEASE.as_str()).bind::<Array<SqlUuid>, _>(&ids).execute(conn)
        })
        .map_err(db)?;
        Ok(())
    }

    fn run_cancel(&self, group: &GroupKey, run: RunId) -> Result<Option<bool>, StoreError> {
        let mut conn = self.conn()?;
        let marked: Vec<IdRow> = diesel::sql_query(sql::CANCEL_RUN)
            .bind::<SqlUuid, _>(run.0)
            .bind::<Text, _>(group.product())
            .bind::<Text, _>(group.job_group())
            .load(&mut conn)
            .map_err(db)?;
        if !marked.is_empty() {
            return Ok(Some(true));
        }
        let found: Vec<TextIdRow> = diesel::sql_query(sql::RUN_OUTCOME)
            .bind::<SqlUuid, _>(run.0)
            .bind::<Text, _>(group.product())
            .bind::<Text, _>(group.job_group())
            .load(&mut conn)
            .map_err(db)?;
        // In progress but already asked: still a cancel in progress.
        Ok(found.first().map(|r| r.id == "running" || r.id == "claimed"))
    }

    fn runs_cancel_requested(&self, node: &str) -> Result<Vec<RunId>, StoreError> {
        let rows: Vec<IdRow> =
            self.maintenance.with(|conn| diesel::sql_query(sql::TAKE_CANCELS).bind::<Text, _>(node).load(conn))?;
        Ok(rows.into_iter().map(|r| RunId(r.id)).collect())
    }
}

impl HistoryStore for PgStore {
    fn job_runs(&self, group: &GroupKey, id: JobId, limit: usize) -> Result<Option<Vec<Run>>, StoreError> {
        let mut conn = self.conn()?;
        if Self::job_state(&mut conn, group, id)?.is_none() {
            return Ok(None);
        }
        let rows: Vec<RunRow> = diesel::sql_query(sql::job_runs())
            .bind::<SqlUuid, _>(id.0)
            .bind::<BigInt, _>(i64::try_from(limit).unwrap_or(i64::MAX))
            .load(&mut conn)
            .map_err(db)?;
        rows.into_iter().map(RunRow::into_run).collect::<Result<_, _>>().map(Some)
    }

    fn runs_query(&self, q: &RunQuery) -> Result<Vec<(crate::store::RunCursor, Run)>, StoreError> {
        let mut conn = self.conn()?;
        history::query(&mut conn, q)
    }

    fn run_get(&self, id: RunId) -> Result<Option<Run>, StoreError> {
        let mut conn = self.conn()?;
        history::get(&mut conn, id)
    }

    fn stats(&self, q: &crate::stats::StatsQuery) -> Result<Vec<crate::stats::StatRow>, StoreError> {
        let mut conn = self.conn()?;
        let cells: Vec<rows::StatCell> = diesel::sql_query(sql::STATS)
            .bind::<Timestamptz, _>(q.from.to_datetime())
            .bind::<Nullable<Timestamptz>, _>(q.to.map(Ts::to_datetime))
            .bind::<Nullable<Text>, _>(q.product.as_deref())
            .bind::<Nullable<Text>, _>(q.job_group.as_deref())
            .bind::<Bool, _>(q.by_day)
            .load(&mut conn)
            .map_err(db)?;
        cells.into_iter().map(rows::StatCell::into_row).collect()
    }

    fn prune(&self, r: &Retention) -> Result<Pruned, StoreError> {
        let mut conn = self.conn()?;
        retention::prune(&mut conn, r)
    }
}

impl AuditStore for PgStore {
    fn audit_append(&self, at: Ts, change: crate::audit::Change) -> Result<(), StoreError> {
        // Not waited for: written with the next batch, a failure logged by the writer.
        self.audits.send((at, change))
    }

    fn audit_list(&self, q: &crate::audit::AuditQuery) -> Result<Vec<crate::audit::AuditEntry>, StoreError> {
        let mut conn = self.conn()?;
        audit::list(&mut conn, q)
    }
}

impl NodeStore for PgStore {
    fn node_register(&self, node: &NodeInfo) -> Result<(), StoreError> {
        self.heartbeats.with(|conn| {
            diesel::sql_query(sql::REGISTER_NODE)
                .bind::<Text, _>(&*node.id)
                .bind::<Text, _>(&node.host)
                .bind::<Array<Text>, _>(group_names(&node.groups))
                .execute(conn)
        })?;
        Ok(())
    }

    fn node_heartbeat(&self, node: &str, gap: Duration) -> Result<bool, StoreError> {
        let rows: Vec<TextIdRow> = self.heartbeats.with(|conn| {
            prepared::Prepared(
                diesel::sql_query(sql::HEARTBEAT)
                    .bind::<Text, _>(node)
                    .bind::<BigInt, _>(i64::try_from(gap.as_micros()).unwrap_or(i64::MAX)),
            )
            .load(conn)
        })?;
        Ok(!rows.is_empty())
    }

    fn node_stop(&self, node: &str) -> Result<(), StoreError> {
        self.heartbeats.with(|conn| diesel::sql_query(sql::STOP_NODE).bind::<Text, _>(node).execute(conn))?;
        Ok(())
    }

    fn nodes_list(&self, dead_after: Duration) -> Result<Vec<NodeRecord>, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<NodeRow> = diesel::sql_query(sql::LIST_NODES)
            .bind::<BigInt, _>(i64::try_from(dead_after.as_micros()).unwrap_or(i64::MAX))
            .load(&mut conn)
            .map_err(db)?;
        Ok(rows.into_iter().map(NodeRow::into_record).collect())
    }

    fn runs_rescue(&self, r: &RescueDead) -> Result<Vec<RescuedRun>, StoreError> {
        static MARK_DEAD: std::sync::LazyLock<String> = std::sync::LazyLock::new(sql::mark_dead_nodes);
        static CANCEL: std::sync::LazyLock<String> = std::sync::LazyLock::new(sql::cancel_dead_runs);
        static HAND_BACK: std::sync::LazyLock<String> = std::sync::LazyLock::new(sql::hand_back_dead_runs);
        static ABANDON: std::sync::LazyLock<String> = std::sync::LazyLock::new(sql::rescue_runs);
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        let (dead, gap) = (micros(r.dead_after), micros(r.gap));
        let groups: Vec<String> = r.groups.iter().map(|(g, _)| g.to_string()).collect();
        let recover: Vec<bool> = r.groups.iter().map(|(_, recover)| *recover).collect();
        // Each statement checks on its own that this node may judge (see `sql::judge`), so a
        // statement that waited out an outage decides nothing.
        let rows: Vec<RescueRow> = self.maintenance.with(|conn| {
            diesel::sql_query(MARK_DEAD.as_str())
                .bind::<BigInt, _>(dead)
                .bind::<Text, _>(&*r.judge)
                .bind::<BigInt, _>(gap)
                .execute(conn)?;
            let mut rows: Vec<RescueRow> = Vec::new();
            for claimed in [CANCEL.as_str(), HAND_BACK.as_str()] {
                rows.extend(
                    diesel::sql_query(claimed)
                        .bind::<BigInt, _>(dead)
                        .bind::<Array<Text>, _>(&groups)
                        .bind::<Text, _>(&*r.judge)
                        .bind::<BigInt, _>(gap)
                        .load::<RescueRow>(conn)?,
                );
            }
            let abandoned: Vec<RescueRow> = diesel::sql_query(ABANDON.as_str())
                .bind::<BigInt, _>(dead)
                .bind::<Array<Text>, _>(&groups)
                .bind::<Array<Bool>, _>(&recover)
                .bind::<Text, _>(&*r.judge)
                .bind::<BigInt, _>(gap)
                .load(conn)?;
            rows.extend(abandoned);
            Ok(rows)
        })?;
        Ok(rows.into_iter().map(RescueRow::into_rescued).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_appear_in_messages() {
        assert_eq!(redact("postgres://app:s3cret@db:5432/x"), "postgres://app:***@db:5432/x");
        assert_eq!(redact("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(redact("host=db user=app"), "host=db user=app");
    }
}
