//! Jobs of a product and group: create, list, read, reschedule, delete, and their runs.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use scheduler_core::store::ListCursor;
use scheduler_core::Ts;
use serde::Deserialize;
use serde_json::Value;

use scheduler_core::audit::Action;
use scheduler_core::wire::{JobRequest, RescheduleRequest};
use scheduler_core::Created;

use super::ids;
use crate::auth::{Allowed, ReadProduct, WriteProduct};
use crate::dto::{JobDto, RunDto};
use crate::problem::Problem;
use crate::state::AppState;

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<String>,
    after: Option<String>,
}

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

fn page_query(req: &HttpRequest) -> Result<PageQuery, Problem> {
    serde_urlencoded::from_str::<PageQuery>(req.query_string())
        .map_err(|e| Problem::invalid("query", format!("the query string cannot be read: {e}")))
}

pub(crate) fn parse_limit(raw: Option<&str>) -> Result<usize, Problem> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(Problem::invalid(
                "limit",
                format!(
                    "limit: must be a whole number from 1 to {MAX_LIMIT}, not \"{}\"",
                    s.chars().take(32).collect::<String>()
                ),
            )),
        },
    }
}

/// Cursor text: `<sort instant in µs>.<job id>`; opaque to clients.
fn encode_cursor(c: &ListCursor) -> String {
    format!("{}.{}", c.due.0, c.id.0.simple())
}

fn decode_cursor(s: &str) -> Result<ListCursor, Problem> {
    let bad = || {
        Problem::invalid(
            "after",
            "after: not a cursor this service issued (take it from the `Link` header of the previous page)",
        )
    };
    let (due, id) = s.split_once('.').ok_or_else(bad)?;
    Ok(ListCursor { due: Ts(due.parse().map_err(|_| bad())?), id: id.parse().map_err(|_| bad())? })
}

/// The `Idempotency-Key` header, if any: 1 to 255 visible ASCII characters.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, Problem> {
    let Some(v) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    match v.to_str() {
        Ok(k) if (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic() || b == b' ') => {
            Ok(Some(k.to_owned()))
        }
        _ => Err(Problem::invalid("Idempotency-Key", "Idempotency-Key: must be 1 to 255 visible ASCII characters")),
    }
}

pub(crate) async fn read_json(state: &AppState, payload: web::Payload) -> Result<Value, Problem> {
    let limit = state.max_body_bytes;
    let bytes = match payload.to_bytes_limited(limit).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "unreadable-body",
                "Unreadable body",
                format!("body: could not be read: {e}"),
            )
            .with_field("body"))
        }
        Err(_) => {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Body too large",
                format!("body: larger than the limit of {limit} bytes"),
            )
            .with_field("body"))
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::invalid("body", "body: is empty; send a JSON object with a `when` key"));
    }
    scheduler_core::json::parse(&bytes).map_err(|e| match e {
        scheduler_core::json::JsonError::DuplicateKey { ref path } => {
            Problem::invalid(path, format!("{path}: {e}; send each key once"))
        }
        scheduler_core::json::JsonError::Syntax(_) => Problem::invalid("body", format!("body: {e}")),
    })
}

/// Lists the jobs of a product and group that have not finished yet, soonest first.
#[utoipa::path(get, path = "/api/scheduler/{product}/{jobGroup}/jobs", tag = "jobs",
    params(
        ("product" = String, Path, description = "The product, e.g. `vps4`"),
        ("jobGroup" = String, Path, description = "The job group, e.g. `backups`"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "At most this many jobs (default 100)"),
        ("after" = Option<String>, Query, description = "Cursor from the previous page's `Link: rel=\"next\"` header"),
    ),
    responses(
        (status = 200, description = "Jobs, soonest first; a full page carries a `Link` header to the next", body = [JobDto]),
        (status = 400, description = "Bad `limit` or `after`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No plugin registers this product and group", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    _: Allowed<ReadProduct>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let (product, group) = path.into_inner();
    let q = page_query(&req)?;
    let limit = parse_limit(q.limit.as_deref())?;
    let after = q.after.as_deref().map(decode_cursor).transpose()?;
    let jobs = state.call(move |s| s.jobs_list(&product, &group, limit, after)).await?;
    let mut resp = HttpResponse::Ok();
    if jobs.len() == limit {
        if let Some(last) = jobs.last() {
            let cursor = ListCursor { due: last.sort_due, id: last.id };
            let next = format!("<{}?limit={limit}&after={}>; rel=\"next\"", req.path(), encode_cursor(&cursor));
            resp.insert_header((header::LINK, next));
        }
    }
    Ok(resp.json(jobs.iter().map(JobDto::from).collect::<Vec<_>>()))
}

/// Creates a job: a schedule (`when`, `cron`, `interval`, `triggers`) plus payload keys.
/// Answers 201 with the job and its `Location`; with an `Idempotency-Key` (or an `id` in the
/// body) a repeat of the same request answers 200 with the job it created, and a different
/// request with the same key 409.
#[utoipa::path(post, path = "/api/scheduler/{product}/{jobGroup}/jobs", tag = "jobs",
    params(
        ("product" = String, Path, description = "The product, e.g. `vps4`"),
        ("jobGroup" = String, Path, description = "The job group, e.g. `backups`"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the create idempotent within the group"),
    ),
    request_body(content = JobRequest, description = "`when` (or another schedule) plus payload keys", content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = JobDto, headers(("Location" = String, description = "The new job's URL"))),
        (status = 200, description = "The job an earlier request with the same idempotency key created", body = JobDto),
        (status = 409, description = "The idempotency key (or id) was used with a different request", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "Body not a JSON object, nested too deep, bad `when`, or payload refused by the job type", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No plugin registers this product and group", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body or payload over its size limit", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The product's quota of unfinished jobs is reached (`Retry-After`)", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ))]
pub async fn create(
    allowed: Allowed<WriteProduct>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let (product, group) = path.into_inner();
    // An unknown group is a 404 even before the body is read.
    if state.scheduler.registry().lookup(&product, &group).is_none() {
        return Err(Problem::from(scheduler_core::CoreError::GroupNotFound {
            product: product.chars().take(64).collect(),
            job_group: group.chars().take(64).collect(),
        }));
    }
    let key = idempotency_key(&req)?;
    let body = read_json(&state, payload).await?;
    let created = state.call(move |s| s.job_create(&product, &group, &body, key.as_deref())).await?;
    let location = format!("{}/{}", req.path().trim_end_matches('/'), created.job().id);
    let status = match created {
        Created::New(_) => StatusCode::CREATED,
        // The same key with the same request: the job it created, unchanged.
        Created::Existing(_) => StatusCode::OK,
    };
    allowed.audit(&state, Action::Create, status, Some(created.job().id.to_string()));
    Ok(HttpResponse::build(status).insert_header((header::LOCATION, location)).json(JobDto::from(created.job())))
}

/// Reads one job.
#[utoipa::path(get, path = "/api/scheduler/{product}/{jobGroup}/jobs/{jobId}", tag = "jobs",
    params(
        ("product" = String, Path, description = "The product"),
        ("jobGroup" = String, Path, description = "The job group"),
        ("jobId" = String, Path, description = "The job's id (a UUID)"),
    ),
    responses(
        (status = 200, description = "The job", body = JobDto),
        (status = 404, description = "No such product/group, or no such job in it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    _: Allowed<ReadProduct>,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, Problem> {
    let (product, group, id) = path.into_inner();
    let id = ids::job(&state, &product, &group, &id)?;
    let (job, last) = state
        .call(move |s| {
            let job = s.job_get(&product, &group, id)?;
            let last = s.job_runs(&product, &group, id, 1)?.into_iter().next();
            Ok((job, last))
        })
        .await?;
    let mut dto = JobDto::from(&job);
    dto.last_run = last.as_ref().map(|r| Box::new(RunDto::from(r)));
    Ok(HttpResponse::Ok().json(dto))
}

/// Reschedules a job: body `{"when": ...}`; the payload and pause state are kept.
#[utoipa::path(patch, path = "/api/scheduler/{product}/{jobGroup}/jobs/{jobId}", tag = "jobs",
    params(
        ("product" = String, Path, description = "The product"),
        ("jobGroup" = String, Path, description = "The job group"),
        ("jobId" = String, Path, description = "The job's id (a UUID)"),
    ),
    request_body(content = RescheduleRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The rescheduled job", body = JobDto),
        (status = 400, description = "Bad body or `when`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product/group, or no such job in it", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has already finished", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over the size limit", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reschedule(
    allowed: Allowed<WriteProduct>,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let (product, group, id) = path.into_inner();
    // Unknown group or job: 404 before the body is judged.
    let id = ids::job(&state, &product, &group, &id)?;
    let (p, g) = (product.clone(), group.clone());
    state.call(move |s| s.job_get(&p, &g, id)).await?;
    let body = read_json(&state, payload).await?;
    let job = state.call(move |s| s.job_reschedule(&product, &group, id, &body)).await?;
    allowed.audit(&state, Action::Reschedule, StatusCode::OK, Some(job.id.to_string()));
    Ok(HttpResponse::Ok().json(JobDto::from(&job)))
}

/// Deletes a job that has not finished; a run in progress is left to finish.
#[utoipa::path(delete, path = "/api/scheduler/{product}/{jobGroup}/jobs/{jobId}", tag = "jobs",
    params(
        ("product" = String, Path, description = "The product"),
        ("jobGroup" = String, Path, description = "The job group"),
        ("jobId" = String, Path, description = "The job's id (a UUID)"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such product/group, or no such job in it", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has already finished", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    allowed: Allowed<WriteProduct>,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, Problem> {
    let (product, group, id) = path.into_inner();
    let id = ids::job(&state, &product, &group, &id)?;
    state.call(move |s| s.job_delete(&product, &group, id)).await?;
    allowed.audit(&state, Action::Delete, StatusCode::NO_CONTENT, Some(id.to_string()));
    Ok(HttpResponse::NoContent().finish())
}

/// A job's runs, newest first, with the filters and pages of `GET /api/runs` (`outcome`,
/// `node`, time ranges, `limit`, `after`).
#[utoipa::path(get, path = "/api/scheduler/{product}/{jobGroup}/jobs/{jobId}/runs", tag = "jobs",
    params(
        ("product" = String, Path, description = "The product"),
        ("jobGroup" = String, Path, description = "The job group"),
        ("jobId" = String, Path, description = "The job's id (a UUID)"),
        ("outcome" = Option<String>, Query, description = "One or several outcomes, comma-separated"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "At most this many runs (default 100)"),
        ("after" = Option<String>, Query, description = "Cursor from the previous page's Link header"),
    ),
    responses(
        (status = 200, description = "Runs, newest first", body = [RunDto]),
        (status = 400, description = "A bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product/group, or no such job in it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn runs(
    _: Allowed<ReadProduct>,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    super::history::of_job(state, path, req).await
}
