//! H1: history pages over HTTP on a PostgreSQL history of N runs (default 10,000,000): the
//! first page and a deep keyset page under each filter, p50/p99/max per page.

use std::time::Instant;

use diesel::RunQueryDsl;
use scheduler_core::store::postgres::{PgConfig, PgStore};

use crate::http::Conn;
use crate::pg::BenchDb;
use crate::report::{line, percentiles};
use crate::server::ServerProc;

const CHUNK: i64 = 1_000_000;

/// Fills `runs` with `n` finished runs over 30 days: 20 groups, 100,000 jobs, 10 nodes, 95 %
/// succeeded, 3 % failed, 1 % vetoed, 1 % cancelled.
fn fill(db: &BenchDb, n: i64) -> anyhow::Result<()> {
    let mut conn = db.conn()?;
    let began = Instant::now();
    let mut done = 0;
    while done < n {
        let end = (done + CHUNK).min(n);
        diesel::sql_query(format!(
            "INSERT INTO runs (id, job_id, product, job_group, attempt, scheduled_for, claimed_at, started_at,
                               finished_at, node, outcome, trace_id)
             SELECT gen_random_uuid(),
                    ('00000000-0000-4000-8000-' || lpad(to_hex(i % 100000), 12, '0'))::uuid,
                    'bench', 'g' || (i % 20), 1, t, t, t + interval '5 ms', t + interval '25 ms',
                    'node-' || (i % 10),
                    CASE WHEN i % 100 < 95 THEN 'succeeded' WHEN i % 100 < 98 THEN 'failed'
                         WHEN i % 100 < 99 THEN 'vetoed' ELSE 'cancelled' END,
                    md5(i::text)
             FROM (SELECT i, timestamptz '2026-10-01 00:00:00+00' + i * interval '1 second' * (2592000.0 / {n}) AS t
                   FROM generate_series({done}, {end} - 1) AS i) s"
        ))
        .execute(&mut conn)?;
        done = end;
        line("H1", format!("filled {done} runs ({:.0} s)", began.elapsed().as_secs_f64()));
    }
    diesel::sql_query("VACUUM ANALYZE runs").execute(&mut conn)?;
    Ok(())
}

fn seq_at(db: &BenchDb, fraction: f64) -> anyhow::Result<i64> {
    #[derive(diesel::QueryableByName)]
    struct S {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        seq: i64,
    }
    let mut conn = db.conn()?;
    let s: S =
        diesel::sql_query(format!("SELECT (min(seq) + (max(seq) - min(seq)) * {fraction})::bigint AS seq FROM runs"))
            .get_result(&mut conn)?;
    Ok(s.seq)
}

pub fn h1(n: i64, samples: usize) -> anyhow::Result<()> {
    let db = BenchDb::create()?;
    PgStore::connect(&PgConfig {
        url: db.url.clone(),
        pool_size: 2,
        connect_timeout: std::time::Duration::from_secs(10),
    })?
    .migrate()?;
    fill(&db, n)?;
    let deep = seq_at(&db, 0.02)?;
    let job = "00000000-0000-4000-8000-00000000beef";
    let queries: Vec<(String, String)> = vec![
        ("no filter, first page".into(), "limit=100".into()),
        ("no filter, deep page".into(), format!("limit=100&after={deep}")),
        ("group, first page".into(), "product=bench&jobGroup=g7&limit=100".into()),
        ("group, deep page".into(), format!("product=bench&jobGroup=g7&limit=100&after={deep}")),
        ("outcome failed, first page".into(), "outcome=failed&limit=100".into()),
        ("outcome failed, deep page".into(), format!("outcome=failed&limit=100&after={deep}")),
        ("group + outcome vetoed, deep page".into(), format!("jobGroup=g18&outcome=vetoed&limit=100&after={deep}")),
        ("job (100 runs)".into(), format!("jobId={job}&limit=100")),
        ("node, deep page".into(), format!("node=node-4&limit=100&after={deep}")),
        (
            "one day of scheduledFor".into(),
            "scheduledFrom=2026-10-15T00:00:00Z&scheduledTo=2026-10-16T00:00:00Z&limit=100".into(),
        ),
        (
            "one hour of startedAt, failed".into(),
            "startedFrom=2026-10-20T10:00:00Z&startedTo=2026-10-20T11:00:00Z&outcome=failed&limit=100".into(),
        ),
    ];
    let server = ServerProc::start_on(Some(db), &["--retain-succeeded", "forever", "--retain-failed", "forever"])?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut conn = Conn::connect(server.port).await?;
        for (name, q) in &queries {
            let path = format!("/api/runs?{q}");
            let mut times = Vec::with_capacity(samples);
            let mut rows = 0;
            for i in 0..samples + 20 {
                let t = Instant::now();
                let (status, body) = conn.request("GET", &path, None).await?;
                let us = t.elapsed().as_micros() as i64;
                anyhow::ensure!(status == 200, "{path}: {status} {}", String::from_utf8_lossy(&body));
                if i >= 20 {
                    times.push(us);
                }
                rows = serde_json::from_slice::<serde_json::Value>(&body)?.as_array().map_or(0, Vec::len);
            }
            line("H1", format!("{name:<36} {rows:>3} runs/page  {}", percentiles(times)));
        }
        Ok::<_, anyhow::Error>(())
    })?;
    line("H1", format!("{n} runs in history; {samples} requests per query over one keep-alive connection"));
    Ok(())
}
