//! Run statistics: per product/group over a window, per day, and per job.

use actix_web::{web, HttpRequest, HttpResponse};
use scheduler_core::stats::{Percentiles, StatsQuery, Summary};
use scheduler_core::Ts;
use serde::Serialize;
use utoipa::ToSchema;

use super::history::{instant, query_pairs, text};
use super::ids;
use crate::auth::{AcrossProducts, Allowed, ReadProduct};
use crate::problem::Problem;
use crate::state::AppState;

const DAY: i64 = 86_400_000_000;

/// Percentiles in milliseconds (histogram bucket bounds for groups, exact for one job).
#[derive(Debug, Serialize, ToSchema)]
pub struct PercentilesDto {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// The largest.
    pub max: f64,
}

/// Counts and percentiles of one product/group (or job) over one period.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatsDto {
    /// The period's start: the window's start (rounded down to its hour), or the day.
    #[schema(format = DateTime)]
    pub period: String,
    pub product: String,
    pub job_group: String,
    /// Finished runs by outcome.
    #[schema(value_type = Object, example = json!({"succeeded": 1200, "failed": 3}))]
    pub runs: std::collections::BTreeMap<&'static str, u64>,
    /// Every finished run counted.
    pub total: u64,
    /// Start − due, of runs that started.
    pub lateness_ms: Option<PercentilesDto>,
    /// End − start, of runs that ran.
    pub duration_ms: Option<PercentilesDto>,
}

fn pct(p: Option<Percentiles>) -> Option<PercentilesDto> {
    p.map(|p| PercentilesDto { p50: p.p50, p90: p.p90, p99: p.p99, max: p.max })
}

impl From<Summary> for StatsDto {
    fn from(s: Summary) -> Self {
        StatsDto {
            period: s.period.to_rfc3339(),
            product: s.product,
            job_group: s.job_group,
            runs: s.runs,
            total: s.total,
            lateness_ms: pct(s.lateness_ms),
            duration_ms: pct(s.duration_ms),
        }
    }
}

fn now() -> Ts {
    Ts::from_datetime(chrono::Utc::now())
}

/// Per product/group: runs by outcome, lateness and duration percentiles since `since`
/// (default: the last 24 hours; counted by the hour the runs finished in).
#[utoipa::path(get, path = "/api/stats", tag = "history",
    params(
        ("since" = Option<String>, Query, format = DateTime, description = "RFC 3339 (default: 24 hours ago); rounded down to its hour"),
        ("product" = Option<String>, Query, min_length = 1, max_length = 200), ("jobGroup" = Option<String>, Query, min_length = 1, max_length = 200),
    ),
    responses(
        (status = 200, description = "One entry per product/group with runs in the window", body = [StatsDto]),
        (status = 400, description = "A bad parameter", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn window(
    _: Allowed<AcrossProducts>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let mut q = StatsQuery { from: Ts(now().0 - DAY), to: None, product: None, job_group: None, by_day: false };
    for (k, v) in query_pairs(&req, &["since", "product", "jobGroup"])? {
        match k.as_str() {
            "since" => q.from = instant("since", &v)?,
            "product" => q.product = Some(text(&k, &v)?),
            _ => q.job_group = Some(text(&k, &v)?),
        }
    }
    let rows = state.call(move |s| s.run_stats(&q)).await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(StatsDto::from).collect::<Vec<_>>()))
}

/// Per UTC day and product/group, from `from` to `to` (default: the last 7 days).
#[utoipa::path(get, path = "/api/stats/daily", tag = "history",
    params(
        ("from" = Option<String>, Query, format = DateTime, description = "RFC 3339 (default: 7 days ago)"),
        ("to" = Option<String>, Query, format = DateTime, description = "RFC 3339, exclusive (default: now)"),
        ("product" = Option<String>, Query, min_length = 1, max_length = 200), ("jobGroup" = Option<String>, Query, min_length = 1, max_length = 200),
    ),
    responses(
        (status = 200, description = "One entry per day and product/group with runs", body = [StatsDto]),
        (status = 400, description = "A bad parameter", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn daily(
    _: Allowed<AcrossProducts>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let mut q = StatsQuery { from: Ts(now().0 - 7 * DAY), to: None, product: None, job_group: None, by_day: true };
    for (k, v) in query_pairs(&req, &["from", "to", "product", "jobGroup"])? {
        match k.as_str() {
            "from" => q.from = instant("from", &v)?,
            "to" => q.to = Some(instant("to", &v)?),
            "product" => q.product = Some(text(&k, &v)?),
            _ => q.job_group = Some(text(&k, &v)?),
        }
    }
    if q.to.is_some_and(|t| t <= q.from) {
        return Err(Problem::invalid("to", "to: must be later than from"));
    }
    let rows = state.call(move |s| s.run_stats(&q)).await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(StatsDto::from).collect::<Vec<_>>()))
}

/// One job's runs since `since` (default: 24 hours ago): counts and exact percentiles.
#[utoipa::path(get, path = "/api/scheduler/{product}/{jobGroup}/jobs/{jobId}/stats", tag = "jobs",
    params(
        ("product" = String, Path), ("jobGroup" = String, Path), ("jobId" = String, Path, description = "The job's id"),
        ("since" = Option<String>, Query, format = DateTime, description = "RFC 3339 (default: 24 hours ago)"),
    ),
    responses(
        (status = 200, description = "The job's statistics", body = StatsDto),
        (status = 400, description = "A bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product/group or job", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn of_job(
    _: Allowed<ReadProduct>,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let (product, group, id) = path.into_inner();
    let mut since = Ts(now().0 - DAY);
    for (_, v) in query_pairs(&req, &["since"])? {
        since = instant("since", &v)?;
    }
    let id = ids::job(&state, &product, &group, &id)?;
    let summary = state.call(move |s| s.job_stats(&product, &group, id, since)).await?;
    Ok(HttpResponse::Ok().json(StatsDto::from(summary)))
}
