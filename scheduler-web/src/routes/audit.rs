//! `GET /api/audit` (admin): the changes made through the API, newest first; and how the
//! authentication middleware describes a change for the trail.

use actix_web::{web, HttpRequest, HttpResponse};
use scheduler_core::audit::{AuditEntry, AuditQuery};
use serde::Serialize;
use utoipa::ToSchema;

use super::history::{query_pairs, text};
use super::jobs::parse_limit;
use crate::problem::Problem;
use crate::state::AppState;

/// One change made through the API.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditDto {
    /// Position in the trail; pass it as `before` for the next page.
    pub seq: i64,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The token's or certificate subject's name.
    pub who: String,
    /// create, reschedule, delete, run, pause, resume, cancel or reload.
    pub action: String,
    /// The request's method.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// The response status.
    pub status: u16,
    /// The product changed.
    pub product: Option<String>,
    /// The job group changed.
    pub job_group: Option<String>,
    /// The job or run acted on.
    pub target: Option<String>,
}

impl From<&AuditEntry> for AuditDto {
    fn from(e: &AuditEntry) -> Self {
        AuditDto {
            seq: e.seq,
            at: e.at.to_rfc3339(),
            who: e.who.clone(),
            action: e.action.clone(),
            method: e.method.clone(),
            path: e.path.clone(),
            status: e.status,
            product: e.product.clone(),
            job_group: e.job_group.clone(),
            target: e.target.clone(),
        }
    }
}

/// The audit trail, newest first.
#[utoipa::path(get, path = "/api/audit", tag = "history",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100)"),
        ("before" = Option<i64>, Query, description = "Only entries older than this seq"),
        ("who" = Option<String>, Query, min_length = 1, max_length = 200, description = "Only this caller's changes"),
        ("product" = Option<String>, Query, min_length = 1, max_length = 200, description = "Only this product's changes"),
    ),
    responses(
        (status = 200, description = "Changes, newest first", body = [AuditDto]),
        (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token is not admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, Problem> {
    let mut q = AuditQuery { limit: parse_limit(None)?, ..AuditQuery::default() };
    for (k, v) in query_pairs(&req, &["limit", "before", "who", "product"])? {
        match k.as_str() {
            "limit" => q.limit = parse_limit(Some(&v))?,
            "before" => {
                q.before = Some(v.parse::<i64>().map_err(|_| {
                    Problem::invalid("before", "before: must be the seq of an audit entry (a whole number)")
                })?);
            }
            "who" => q.who = Some(text(&k, &v)?),
            _ => q.product = Some(text(&k, &v)?),
        }
    }
    let entries = state.call(move |s| s.audit_list(&q)).await?;
    Ok(HttpResponse::Ok().json(entries.iter().map(AuditDto::from).collect::<Vec<_>>()))
}

/// A change's action, product, job group and target.
pub type Change = (&'static str, Option<String>, Option<String>, Option<String>);

/// What a change request did, for the trail: the action, product, group and target, from its
/// method and path (`prefixes` are the scheduler routes' prefixes). None for reads.
pub fn describe(method: &str, path: &str, prefixes: &[&str]) -> Option<Change> {
    if matches!(method, "GET" | "HEAD" | "OPTIONS") {
        return None;
    }
    let seg = super::scheduler_segments(path, prefixes)?;
    let own = |i: usize| seg.get(i).map(|s| (*s).to_owned());
    let action = match (method, seg.as_slice()) {
        ("PUT", []) => return Some(("reload", None, None, None)),
        ("POST", [_, _, "jobs"]) => "create",
        ("PATCH", [_, _, "jobs", _]) => "reschedule",
        ("DELETE", [_, _, "jobs", _]) => "delete",
        ("POST", [_, _, "jobs", _, "run"]) => "run",
        ("POST", [_, _, "jobs", _, "pause"]) => "pause",
        ("POST", [_, _, "jobs", _, "resume"]) => "resume",
        ("POST", [_, _, "runs", _, "cancel"]) => "cancel",
        _ => return None,
    };
    Some((action, own(0), own(1), own(3)))
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn changes_are_named_and_reads_are_not() {
        let p = ["/api/scheduler"];
        let d = |m: &str, path: &str| describe(m, path, &p);
        assert_eq!(d("GET", "/api/scheduler/vps4/b/jobs"), None);
        assert_eq!(
            d("POST", "/api/scheduler/vps4/b/jobs"),
            Some(("create", Some("vps4".into()), Some("b".into()), None))
        );
        assert_eq!(d("DELETE", "/api/scheduler/vps4/b/jobs/j1").unwrap().3.as_deref(), Some("j1"));
        assert_eq!(d("POST", "/api/scheduler/vps4/b/runs/r1/cancel").unwrap().0, "cancel");
        assert_eq!(d("PUT", "/api/scheduler").unwrap().0, "reload");
        assert_eq!(d("POST", "/api/scheduler/vps4/b/nothing"), None);
    }
}
