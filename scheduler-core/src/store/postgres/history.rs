//! Run history: filtered pages, newest first, by keyset on `seq` (no counting, no offsets).
//!
//! Every filter is optional and each one has an index that yields rows in the page's order
//! (`runs_by_group`, `runs_by_outcome`, `runs_by_node`, `runs_by_job`, `runs_seq` for `seq`
//! order; `runs_by_scheduled`, `runs_by_started` for pages of a time window, which come latest
//! first in that time), so a page reads about as many rows as it returns, however deep.

use diesel::pg::{Pg, PgConnection};
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Array, BigInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{QueryableByName, RunQueryDsl};

use super::rows::RunRow;
use super::{db, sql};
use crate::model::{Run, RunId, RunOutcome};
use crate::store::{RunCursor, RunOrder, RunQuery, StoreError};

#[derive(QueryableByName)]
struct PagedRun {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(embed)]
    run: RunRow,
}

/// A bind for one filter.
enum Arg {
    Text(String),
    Texts(Vec<String>),
    Uuid(uuid::Uuid),
    Time(chrono::DateTime<chrono::Utc>),
    Int(i64),
}

/// The page `q` asks for.
pub(super) fn query(conn: &mut PgConnection, q: &RunQuery) -> Result<Vec<(RunCursor, Run)>, StoreError> {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Arg> = Vec::new();
    let mut add = |clause: &str, arg: Arg| {
        args.push(arg);
        clauses.push(clause.replace('?', &format!("${}", args.len())));
    };
    if let Some(p) = &q.product {
        add("r.product = ?", Arg::Text(p.clone()));
    }
    if let Some(g) = &q.job_group {
        add("r.job_group = ?", Arg::Text(g.clone()));
    }
    if let Some(j) = q.job {
        add("r.job_id = ?", Arg::Uuid(j.0));
    }
    if !q.outcomes.is_empty() {
        // A claimed run a worker has begun reads `running` (see `sql::RUN_COLUMNS`).
        let mut also = Vec::new();
        if q.outcomes.contains(&RunOutcome::Running) {
            also.push(" OR (r.outcome = 'claimed' AND r.began_at IS NOT NULL)");
        }
        if q.outcomes.contains(&RunOutcome::Claimed) {
            also.push(" OR (r.outcome = 'claimed' AND r.began_at IS NULL)");
        }
        let plain = q.outcomes.iter().filter(|o| **o != RunOutcome::Claimed).map(|o| o.as_str().to_owned()).collect();
        add(&format!("(r.outcome = ANY(?){})", also.concat()), Arg::Texts(plain));
    }
    if let Some(n) = &q.node {
        add("r.node = ?", Arg::Text(n.clone()));
    }
    for (col, op, t) in [
        ("scheduled_for", ">=", q.scheduled_from),
        ("scheduled_for", "<", q.scheduled_to),
        ("started_at", ">=", q.started_from),
        ("started_at", "<", q.started_to),
    ] {
        if let Some(t) = t {
            add(&format!("r.{col} {op} ?"), Arg::Time(t.to_datetime()));
        }
    }
    let (col, order) = match q.order() {
        RunOrder::Seq => ("", "r.seq DESC"),
        RunOrder::Scheduled => ("r.scheduled_for", "r.scheduled_for DESC, r.seq DESC"),
        RunOrder::Started => ("r.started_at", "r.started_at DESC, r.seq DESC"),
    };
    if let Some(b) = q.before {
        match b.at.filter(|_| !col.is_empty()) {
            None => add("r.seq < ?", Arg::Int(b.seq)),
            Some(at) => {
                args.push(Arg::Time(at.to_datetime()));
                args.push(Arg::Int(b.seq));
                clauses.push(format!("({col}, r.seq) < (${}, ${})", args.len() - 1, args.len()));
            }
        }
    }
    let filter = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    args.push(Arg::Int(i64::try_from(q.limit).unwrap_or(i64::MAX)));
    let text =
        format!("SELECT r.seq, {} FROM runs r {filter} ORDER BY {order} LIMIT ${}", sql::RUN_COLUMNS, args.len());
    let mut query: BoxedSqlQuery<'_, Pg, SqlQuery> = diesel::sql_query(text).into_boxed();
    for a in args {
        query = match a {
            Arg::Text(s) => query.bind::<Text, _>(s),
            Arg::Texts(v) => query.bind::<Array<Text>, _>(v),
            Arg::Uuid(u) => query.bind::<SqlUuid, _>(u),
            Arg::Time(t) => query.bind::<Timestamptz, _>(t),
            Arg::Int(n) => query.bind::<BigInt, _>(n),
        };
    }
    let rows: Vec<PagedRun> = query.load(conn).map_err(db)?;
    rows.into_iter()
        .map(|r| {
            let run = r.run.into_run()?;
            Ok((q.cursor_of(r.seq, &run), run))
        })
        .collect()
}

/// One run by id.
pub(super) fn get(conn: &mut PgConnection, id: RunId) -> Result<Option<Run>, StoreError> {
    let rows: Vec<RunRow> = diesel::sql_query(format!("SELECT {} FROM runs r WHERE r.id = $1", sql::RUN_COLUMNS))
        .bind::<SqlUuid, _>(id.0)
        .load(conn)
        .map_err(db)?;
    rows.into_iter().next().map(RunRow::into_run).transpose()
}
