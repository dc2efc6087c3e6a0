//! Run control: run a job now, pause and resume it, cancel a run, preview the next fires.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use scheduler_core::audit::Action;
use scheduler_core::store::Control;
use serde::Deserialize;
use serde_json::json;

use super::ids;
use crate::auth::{Allowed, ReadProduct, WriteProduct};
use crate::dto::JobDto;
use crate::problem::Problem;
use crate::state::AppState;

async fn control(
    allowed: Allowed<WriteProduct>,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    c: Control,
) -> Result<HttpResponse, Problem> {
    let (product, group, id) = path.into_inner();
    let id = ids::job(&state, &product, &group, &id)?;
    let job = state.call(move |s| s.job_control(&product, &group, id, c)).await?;
    let action = match c {
        Control::RunNow => Action::Run,
        Control::Pause => Action::Pause,
        Control::Resume => Action::Resume,
    };
    allowed.audit(&state, action, StatusCode::OK, Some(job.id.to_string()));
    Ok(HttpResponse::Ok().json(JobDto::from(&job)))
}

/// Runs a job once now, outside its schedule (its schedule is unchanged). A finished job is
/// re-queued: a failed job whose attempts ran out runs again.
#[utoipa::path(post, path = "/api/scheduler/{product}/{jobGroup}/jobs/{jobId}/run", tag = "jobs",
    params(("product" = String, Path), ("jobGroup" = String, Path), ("jobId" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job, with the fire due now", body = JobDto),
        (status = 404, description = "No such product/group or job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is paused", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn run_now(
    allowed: Allowed<WriteProduct>,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, Problem> {
    control(allowed, state, path, Control::RunNow).await
}

/// Pauses a job: it fires no more until resumed (a run in progress goes on).
#[utoipa::path(post, path = "/api/scheduler/{product}/{jobGroup}/jobs/{jobId}/pause", tag = "jobs",
    params(("product" = String, Path), ("jobGroup" = String, Path), ("jobId" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The paused job", body = JobDto),
        (status = 404, description = "No such product/group or job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has finished", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn pause(
    allowed: Allowed<WriteProduct>,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, Problem> {
    control(allowed, state, path, Control::Pause).await
}

/// Resumes a paused job; fires missed while paused follow its misfire policy.
#[utoipa::path(post, path = "/api/scheduler/{product}/{jobGroup}/jobs/{jobId}/resume", tag = "jobs",
    params(("product" = String, Path), ("jobGroup" = String, Path), ("jobId" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The resumed job", body = JobDto),
        (status = 404, description = "No such product/group or job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has finished", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn resume(
    allowed: Allowed<WriteProduct>,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, Problem> {
    control(allowed, state, path, Control::Resume).await
}

/// Asks a running run to stop. The node running it delivers the cancellation to the job (which
/// sees it through its context) within a second; the run ends `cancelled` if the job stops.
#[utoipa::path(post, path = "/api/scheduler/{product}/{jobGroup}/runs/{runId}/cancel", tag = "jobs",
    params(("product" = String, Path), ("jobGroup" = String, Path), ("runId" = String, Path, description = "The run's id")),
    responses(
        (status = 202, description = "Cancellation requested", body = Object, example = json!({"runId": "...", "status": "cancelling"})),
        (status = 404, description = "No such product/group or run", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is not running", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel(
    allowed: Allowed<WriteProduct>,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, Problem> {
    let (product, group, run) = path.into_inner();
    let run = ids::run(&state, &product, &group, &run)?;
    state.call(move |s| s.run_cancel(&product, &group, run)).await?;
    allowed.audit(&state, Action::Cancel, StatusCode::ACCEPTED, Some(run.to_string()));
    Ok(HttpResponse::Accepted().json(json!({ "runId": run.to_string(), "status": "cancelling" })))
}

#[derive(Deserialize)]
struct NextQuery {
    count: Option<String>,
    after: Option<String>,
}

/// Previews a job's next fires (`count`, default 10, at most 1000), earliest first; with
/// `after`, the fires after that instant (to see what a schedule does around a given date).
#[utoipa::path(get, path = "/api/scheduler/{product}/{jobGroup}/jobs/{jobId}/next", tag = "jobs",
    params(
        ("product" = String, Path), ("jobGroup" = String, Path), ("jobId" = String, Path, description = "The job's id"),
        ("count" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "How many fires (default 10)"),
        ("after" = Option<String>, Query, description = "Preview the fires after this RFC 3339 instant instead of from the job's next fire"),
    ),
    responses(
        (status = 200, description = "Instants, earliest first", body = [String]),
        (status = 400, description = "Bad `count` or `after`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product/group or job", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn next(
    _: Allowed<ReadProduct>,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let (product, group, id) = path.into_inner();
    let q = serde_urlencoded::from_str::<NextQuery>(req.query_string())
        .map_err(|e| Problem::invalid("query", format!("the query string cannot be read: {e}")))?;
    let count = match q.count.as_deref() {
        None => 10,
        Some(c) => c.parse::<usize>().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
            Problem::invalid(
                "count",
                format!(
                    "count: must be a whole number from 1 to 1000, not \"{}\"",
                    c.chars().take(32).collect::<String>()
                ),
            )
        })?,
    };
    let after = match q.after.as_deref() {
        None => None,
        Some(a) => Some(
            scheduler_core::request::parse_instant("after", &serde_json::Value::String(a.to_owned()))
                .map_err(Problem::from)?,
        ),
    };
    let id = ids::job(&state, &product, &group, &id)?;
    let fires = state.call(move |s| s.job_next(&product, &group, id, count, after)).await?;
    Ok(HttpResponse::Ok().json(fires.iter().map(|t| t.to_rfc3339()).collect::<Vec<_>>()))
}
