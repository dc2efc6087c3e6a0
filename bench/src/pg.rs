//! A fresh PostgreSQL database per benchmark run, on the server `BENCH_DATABASE_URL` (or
//! `TEST_DATABASE_URL`) names, and the queries that read results straight from it.

use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};

/// A database created for one run and dropped after it.
pub struct BenchDb {
    pub url: String,
    name: String,
    admin: String,
}

impl BenchDb {
    pub fn create() -> anyhow::Result<BenchDb> {
        let admin = std::env::var("BENCH_DATABASE_URL")
            .or_else(|_| std::env::var("TEST_DATABASE_URL"))
            .map_err(|_| anyhow::anyhow!("set BENCH_DATABASE_URL (e.g. eval \"$(PGTEST_DURABLE=1 scripts/pg.sh start)\" and use TEST_DATABASE_URL)"))?;
        let name = format!("sched_bench_{}", std::process::id());
        let mut conn = PgConnection::establish(&admin)?;
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn)?;
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn)?;
        let (path, query) = admin.split_once('?').map_or((admin.as_str(), ""), |(p, q)| (p, q));
        let base = path.rsplit_once('/').map(|(b, _)| b).unwrap_or(path);
        let query = if query.is_empty() { String::new() } else { format!("?{query}") };
        Ok(BenchDb { url: format!("{base}/{name}{query}"), name, admin })
    }

    pub fn conn(&self) -> anyhow::Result<PgConnection> {
        Ok(PgConnection::establish(&self.url)?)
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&self.admin) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut conn);
        }
    }
}

#[derive(QueryableByName)]
struct StartRow {
    #[diesel(sql_type = BigInt)]
    due: i64,
    #[diesel(sql_type = BigInt)]
    start: i64,
}

/// (scheduled_for, started_at) in microseconds of every run.
pub fn run_starts(conn: &mut PgConnection) -> anyhow::Result<Vec<(i64, i64)>> {
    let rows: Vec<StartRow> = diesel::sql_query(
        "SELECT (extract(epoch FROM scheduled_for) * 1e6)::bigint AS due, (extract(epoch FROM started_at) * 1e6)::bigint AS start FROM runs",
    )
    .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.due, r.start)).collect())
}

#[derive(QueryableByName)]
struct RunRow {
    #[diesel(sql_type = BigInt)]
    due: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    start: Option<i64>,
    #[diesel(sql_type = Text)]
    outcome: String,
}

/// (scheduled_for, started_at, outcome) of every run, instants in microseconds.
pub fn run_records(conn: &mut PgConnection) -> anyhow::Result<Vec<(i64, Option<i64>, String)>> {
    let rows: Vec<RunRow> = diesel::sql_query(
        "SELECT (extract(epoch FROM scheduled_for) * 1e6)::bigint AS due,
                (extract(epoch FROM started_at) * 1e6)::bigint AS start, outcome FROM runs",
    )
    .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.due, r.start, r.outcome)).collect())
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// The plan of `sql` with timings, run in a transaction that is rolled back.
pub fn explain(conn: &mut PgConnection, sql: &str) -> anyhow::Result<String> {
    let mut plan = String::new();
    conn.transaction::<(), diesel::result::Error, _>(|conn| {
        // The settings the store's claim runs with.
        diesel::sql_query("SET LOCAL enable_bitmapscan = off").execute(conn)?;
        diesel::sql_query("SET LOCAL enable_seqscan = off").execute(conn)?;
        let lines: Vec<PlanLine> =
            diesel::sql_query(format!("EXPLAIN (ANALYZE, COSTS OFF, TIMING ON) {sql}")).load(conn)?;
        plan = lines.into_iter().map(|l| l.line).collect::<Vec<_>>().join("\n");
        Err(diesel::result::Error::RollbackTransaction)
    })
    .or_else(|e| if matches!(e, diesel::result::Error::RollbackTransaction) { Ok(()) } else { Err(e) })?;
    Ok(plan)
}

/// Makes sure `n` jobs of group `bench/idle` (which no engine hosts) are due now.
pub fn ensure_idle_due(conn: &mut PgConnection, n: i64) -> anyhow::Result<()> {
    diesel::sql_query(
        "INSERT INTO jobs (id, product, job_group, schedule, when_at, payload, next_due, sort_due, created_at, updated_at)
         SELECT gen_random_uuid(), 'bench', 'idle', '{\"type\":\"once\"}', now() - interval '1 minute', '{}',
                now() - interval '1 minute', now() - interval '1 minute', now(), now()
         FROM generate_series(1, $1 - (SELECT count(*) FROM jobs WHERE job_group = 'idle'))",
    )
    .bind::<BigInt, _>(n)
    .execute(conn)?;
    diesel::sql_query("ANALYZE jobs").execute(conn)?;
    Ok(())
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The `n` column of a one-row count query.
pub fn count(conn: &mut PgConnection, sql: &str) -> anyhow::Result<i64> {
    let rows: Vec<Count> = diesel::sql_query(sql).load(conn)?;
    Ok(rows.first().map_or(0, |r| r.n))
}

#[derive(QueryableByName)]
struct NodeCount {
    #[diesel(sql_type = Text)]
    node: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How many runs each node executed.
pub fn runs_per_node(conn: &mut PgConnection) -> anyhow::Result<Vec<(String, i64)>> {
    let rows: Vec<NodeCount> =
        diesel::sql_query("SELECT node, count(*) AS n FROM runs GROUP BY node ORDER BY node").load(conn)?;
    Ok(rows.into_iter().map(|r| (r.node, r.n)).collect())
}
