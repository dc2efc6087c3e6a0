//! The audit trail in PostgreSQL (`audit`, migration 4).

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz};
use diesel::{QueryableByName, RunQueryDsl};

use super::batcher::Batcher;
use super::rows::ts;
use super::{db, PgPool};
use crate::audit::{Action, AuditEntry, AuditQuery, Change};
use crate::clock::Ts;
use crate::store::StoreError;

// Entries arriving together are written with one statement, in arrival order (`seq`).
const APPEND: &str = "INSERT INTO audit (at, who, action, method, path, status, product, job_group, target)
                      SELECT at, who, action, method, path, status, product, job_group, target FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[],
                                           $6::integer[], $7::text[], $8::text[], $9::text[])
                      WITH ORDINALITY AS e(at, who, action, method, path, status, product, job_group, target, n)
                      ORDER BY n";

/// Most entries written in one statement.
const MAX_BATCH: usize = 256;

// Each filter is either absent or an equality on an index's leading column, so the page is a
// range read of `audit_by_product`, `audit_by_who` or the primary key, newest first.
const LIST: &str = "SELECT seq, at, who, action, method, path, status, product, job_group, target FROM audit
                    WHERE ($1::bigint IS NULL OR seq < $1)
                      AND ($2::text IS NULL OR who = $2)
                      AND ($3::text IS NULL OR product = $3)
                    ORDER BY seq DESC LIMIT $4";

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Timestamptz)]
    at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    who: String,
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Text)]
    method: String,
    #[diesel(sql_type = Text)]
    path: String,
    #[diesel(sql_type = Integer)]
    status: i32,
    #[diesel(sql_type = Nullable<Text>)]
    product: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    job_group: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    target: Option<String>,
}

/// The audit batcher: appends are committed with whatever others arrive at the same moment.
pub(super) fn batcher(pool: PgPool) -> Batcher<(Ts, Change), ()> {
    Batcher::start("pg-audit", MAX_BATCH, pool, append)
}

fn append(conn: &mut PgConnection, entries: &[&(Ts, Change)]) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let text = |f: fn(&Change) -> &str| entries.iter().map(|(_, e)| f(e).to_owned()).collect::<Vec<_>>();
    let opt = |f: fn(&Change) -> Option<&str>| entries.iter().map(|(_, e)| f(e).map(str::to_owned)).collect::<Vec<_>>();
    diesel::sql_query(APPEND)
        .bind::<Array<Timestamptz>, _>(entries.iter().map(|(at, _)| at.to_datetime()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(text(|e| &e.who))
        .bind::<Array<Text>, _>(text(|e| e.action.as_str()))
        .bind::<Array<Text>, _>(text(|e| &e.method))
        .bind::<Array<Text>, _>(text(|e| &e.path))
        .bind::<Array<Integer>, _>(entries.iter().map(|(_, e)| i32::from(e.status)).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(opt(|e| e.product.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(opt(|e| e.job_group.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(opt(|e| e.target.as_deref()))
        .execute(conn)
        .map_err(db)?;
    Ok(entries.iter().map(|_| Ok(())).collect())
}

pub(super) fn list(conn: &mut PgConnection, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
    let rows: Vec<Row> = diesel::sql_query(LIST)
        .bind::<Nullable<BigInt>, _>(q.before)
        .bind::<Nullable<Text>, _>(q.who.as_deref())
        .bind::<Nullable<Text>, _>(q.product.as_deref())
        .bind::<BigInt, _>(i64::try_from(q.limit).unwrap_or(i64::MAX))
        .load(conn)
        .map_err(db)?;
    rows.into_iter()
        .map(|r| {
            let action = Action::parse(&r.action)
                .ok_or_else(|| StoreError::Internal(format!("unknown audit action `{}`", r.action)))?;
            Ok(AuditEntry {
                seq: r.seq,
                at: ts(r.at),
                change: Change {
                    who: r.who,
                    action,
                    method: r.method,
                    path: r.path,
                    status: u16::try_from(r.status).unwrap_or(0),
                    product: r.product,
                    job_group: r.job_group,
                    target: r.target,
                },
            })
        })
        .collect()
}
