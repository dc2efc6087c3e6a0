//! The audit trail in PostgreSQL (`audit`, migration 4).

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz};
use diesel::{QueryableByName, RunQueryDsl};

use super::db;
use super::rows::ts;
use crate::audit::{AuditEntry, AuditQuery};
use crate::store::StoreError;

const APPEND: &str = "INSERT INTO audit (at, who, action, method, path, status, product, job_group, target)
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

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

pub(super) fn append(conn: &mut PgConnection, e: &AuditEntry) -> Result<(), StoreError> {
    diesel::sql_query(APPEND)
        .bind::<Timestamptz, _>(e.at.to_datetime())
        .bind::<Text, _>(&e.who)
        .bind::<Text, _>(&e.action)
        .bind::<Text, _>(&e.method)
        .bind::<Text, _>(&e.path)
        .bind::<Integer, _>(i32::from(e.status))
        .bind::<Nullable<Text>, _>(e.product.as_deref())
        .bind::<Nullable<Text>, _>(e.job_group.as_deref())
        .bind::<Nullable<Text>, _>(e.target.as_deref())
        .execute(conn)
        .map_err(db)?;
    Ok(())
}

pub(super) fn list(conn: &mut PgConnection, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
    let rows: Vec<Row> = diesel::sql_query(LIST)
        .bind::<Nullable<BigInt>, _>(q.before)
        .bind::<Nullable<Text>, _>(q.who.as_deref())
        .bind::<Nullable<Text>, _>(q.product.as_deref())
        .bind::<BigInt, _>(i64::try_from(q.limit).unwrap_or(i64::MAX))
        .load(conn)
        .map_err(db)?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            seq: r.seq,
            at: ts(r.at),
            who: r.who,
            action: r.action,
            method: r.method,
            path: r.path,
            status: u16::try_from(r.status).unwrap_or(0),
            product: r.product,
            job_group: r.job_group,
            target: r.target,
        })
        .collect())
}
