//! Run history: `GET /api/runs` with filters and keyset pages, `GET /api/runs/{runId}`, and a
//! job's runs.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use scheduler_core::model::{JobId, RunOutcome};
use scheduler_core::request::parse_instant;
use scheduler_core::store::{RunCursor, RunQuery};
use scheduler_core::Ts;
use serde_json::Value;

use super::ids;
use super::jobs::parse_limit;
use crate::auth::{AcrossProducts, Allowed, AnyCaller};
use crate::dto::RunDto;
use crate::problem::Problem;
use crate::state::AppState;

/// The query keys `GET /api/runs` understands.
const KEYS: [&str; 11] = [
    "product",
    "jobGroup",
    "jobId",
    "outcome",
    "node",
    "scheduledFrom",
    "scheduledTo",
    "startedFrom",
    "startedTo",
    "limit",
    "after",
];

/// The query string as pairs; a key this route does not know, or given twice, is a 400.
pub(crate) fn query_pairs(req: &HttpRequest, known: &[&str]) -> Result<Vec<(String, String)>, Problem> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| Problem::invalid("query", format!("the query string cannot be read: {e}")))?;
    let mut seen = std::collections::HashSet::new();
    for (k, v) in &pairs {
        let shown: String = k.chars().take(64).collect();
        if v.chars().any(char::is_control) {
            return Err(Problem::invalid(&shown, format!("{shown}: contains a control character")));
        }
        if !known.contains(&k.as_str()) {
            return Err(Problem::invalid(
                &shown,
                format!("{shown}: not a parameter of this route (those are {})", known.join(", ")),
            ));
        }
        if !seen.insert(k.clone()) {
            return Err(Problem::invalid(&shown, format!("{shown}: given more than once")));
        }
    }
    Ok(pairs)
}

/// An RFC 3339 instant from the query.
pub(crate) fn instant(field: &str, v: &str) -> Result<Ts, Problem> {
    parse_instant(field, &Value::String(v.to_owned())).map_err(Problem::from)
}

/// A free-text filter: 1 to 200 bytes.
pub(crate) fn text(field: &str, v: &str) -> Result<String, Problem> {
    if v.is_empty() || v.len() > 200 {
        return Err(Problem::invalid(field, format!("{field}: must be 1 to 200 characters")));
    }
    Ok(v.to_owned())
}

/// Reads the filters, limit and cursor of a history page.
fn run_query(pairs: &[(String, String)]) -> Result<RunQuery, Problem> {
    let mut q = RunQuery { limit: parse_limit(None)?, ..RunQuery::default() };
    for (k, v) in pairs {
        match k.as_str() {
            "product" => q.product = Some(text(k, v)?),
            "jobGroup" => q.job_group = Some(text(k, v)?),
            "jobId" => {
                q.job = Some(v.parse::<JobId>().map_err(|_| Problem::invalid(k, "jobId: must be a job id (a UUID)"))?)
            }
            "outcome" => {
                for o in v.split(',') {
                    let outcome = RunOutcome::parse(o.trim()).ok_or_else(|| {
                        Problem::invalid(
                            k,
                            format!(
                                "outcome: `{}` is not an outcome (claimed, running, succeeded, failed, vetoed, \
                                 cancelled, abandoned, skipped; several separated by commas)",
                                o.chars().take(32).collect::<String>()
                            ),
                        )
                    })?;
                    q.outcomes.push(outcome);
                }
            }
            "node" => q.node = Some(text(k, v)?),
            "scheduledFrom" => q.scheduled_from = Some(instant(k, v)?),
            "scheduledTo" => q.scheduled_to = Some(instant(k, v)?),
            "startedFrom" => q.started_from = Some(instant(k, v)?),
            "startedTo" => q.started_to = Some(instant(k, v)?),
            "limit" => q.limit = parse_limit(Some(v))?,
            "after" => {
                q.before = Some(decode_cursor(v).ok_or_else(|| {
                    Problem::invalid(
                        "after",
                        "after: not a cursor this service issued (take it from the `Link` header of the previous page)",
                    )
                })?)
            }
            _ => {}
        }
    }
    for (from, to, a, b) in [
        (q.scheduled_from, q.scheduled_to, "scheduledFrom", "scheduledTo"),
        (q.started_from, q.started_to, "startedFrom", "startedTo"),
    ] {
        if let (Some(f), Some(t)) = (from, to) {
            if t <= f {
                return Err(Problem::invalid(b, format!("{b}: must be later than {a}")));
            }
        }
    }
    Ok(q)
}

/// Cursor text: `<seq>`, or `<seq>.<µs>` for pages in time order; opaque to clients.
fn encode_cursor(c: &RunCursor) -> String {
    match c.at {
        None => c.seq.to_string(),
        Some(at) => format!("{}.{}", c.seq, at.0),
    }
}

fn decode_cursor(s: &str) -> Option<RunCursor> {
    let (seq, at) = match s.split_once('.') {
        None => (s, None),
        Some((seq, at)) => (seq, Some(Ts(at.parse().ok()?))),
    };
    Some(RunCursor { seq: seq.parse().ok().filter(|n: &i64| *n > 0)?, at })
}

/// Answers a page, with a `Link` to the next one when the page is full.
async fn page(state: &AppState, req: &HttpRequest, q: RunQuery) -> Result<HttpResponse, Problem> {
    let limit = q.limit;
    let runs = state.call(move |s| s.runs_query(&q)).await?;
    let mut resp = HttpResponse::Ok();
    if runs.len() == limit {
        if let Some((cursor, _)) = runs.last() {
            let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
            pairs.retain(|(k, _)| k != "after");
            pairs.push(("after".into(), encode_cursor(cursor)));
            let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
            resp.insert_header((header::LINK, format!("<{}?{query}>; rel=\"next\"", req.path())));
        }
    }
    Ok(resp.json(runs.iter().map(|(_, r)| RunDto::from(r)).collect::<Vec<_>>()))
}

/// Run history, newest first, across every product/group: filter by `product`, `jobGroup`,
/// `jobId`, `outcome` (one or several, comma-separated), `node`, and the due or start instant
/// (`scheduledFrom`/`scheduledTo`, `startedFrom`/`startedTo`: from inclusive, to exclusive).
/// Pages come newest inserted first; with a due (or start) window, latest due (or started)
/// first. A full page carries `Link: <...>; rel="next"`; pages stay stable while new runs
/// arrive.
#[utoipa::path(get, path = "/api/runs", tag = "history",
    params(
        ("product" = Option<String>, Query, min_length = 1, max_length = 200), ("jobGroup" = Option<String>, Query, min_length = 1, max_length = 200),
        ("jobId" = Option<String>, Query, description = "A job id (the job may since have been deleted)"),
        ("outcome" = Option<String>, Query, description = "claimed, running, succeeded, failed, vetoed, cancelled, abandoned or skipped; several separated by commas"),
        ("node" = Option<String>, Query, min_length = 1, max_length = 200),
        ("scheduledFrom" = Option<String>, Query, format = DateTime, description = "RFC 3339, inclusive"),
        ("scheduledTo" = Option<String>, Query, format = DateTime, description = "RFC 3339, exclusive"),
        ("startedFrom" = Option<String>, Query, format = DateTime, description = "RFC 3339, inclusive"),
        ("startedTo" = Option<String>, Query, format = DateTime, description = "RFC 3339, exclusive"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100)"),
        ("after" = Option<String>, Query, description = "Cursor from the previous page's Link header"),
    ),
    responses(
        (status = 200, description = "Runs, newest first", body = [RunDto]),
        (status = 400, description = "A bad filter, limit or cursor, or an unknown parameter", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    _: Allowed<AcrossProducts>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let q = run_query(&query_pairs(&req, &KEYS)?)?;
    page(&state, &req, q).await
}

/// One run, by id.
#[utoipa::path(get, path = "/api/runs/{runId}", tag = "history",
    params(("runId" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run", body = RunDto),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    allowed: Allowed<AnyCaller>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let id = ids::any_run(&path.into_inner())?;
    // A caller scoped to other products learns nothing, not even that the run exists.
    let caller = allowed.caller().clone();
    let run = state.call(move |s| s.run_get(id, |product| caller.can_read(product))).await?;
    Ok(HttpResponse::Ok().json(RunDto::from(&run)))
}

/// A job's runs, newest first, with the same filters and pages as `GET /api/runs`.
pub async fn of_job(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let (product, group, id) = path.into_inner();
    let id = ids::job(&state, &product, &group, &id)?;
    let job = state.call(move |s| s.job_get(&product, &group, id)).await?;
    let keys: Vec<&str> = KEYS.iter().copied().filter(|k| !matches!(*k, "product" | "jobGroup" | "jobId")).collect();
    let mut q = run_query(&query_pairs(&req, &keys)?)?;
    q.job = Some(job.id);
    page(&state, &req, q).await
}
