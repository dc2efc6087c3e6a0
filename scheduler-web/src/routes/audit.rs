//! `GET /api/audit` (admin): the changes made through the API, newest first.

use actix_web::{web, HttpRequest, HttpResponse};
use scheduler_core::audit::{AuditEntry, AuditQuery};
use serde::Serialize;
use utoipa::ToSchema;

use super::history::{query_pairs, text};
use super::jobs::parse_limit;
use crate::auth::{Admin, Allowed};
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
    pub action: &'static str,
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
        let c = &e.change;
        AuditDto {
            seq: e.seq,
            at: e.at.to_rfc3339(),
            who: c.who.clone(),
            action: c.action.as_str(),
            method: c.method.clone(),
            path: c.path.clone(),
            status: c.status,
            product: c.product.clone(),
            job_group: c.job_group.clone(),
            target: c.target.clone(),
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
pub async fn list(_: Allowed<Admin>, state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, Problem> {
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
