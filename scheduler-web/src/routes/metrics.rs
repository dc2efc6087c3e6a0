//! `/metrics`: Prometheus text exposition.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use crate::auth::{Allowed, Metrics};
use crate::problem::Problem;
use crate::state::AppState;

/// Prometheus metrics of this node (depth and lag are cluster-wide, read from the job store).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"),
        (status = 404, description = "Metrics are switched off (--no-metrics)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn metrics(_: Allowed<Metrics>, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let s = state.scheduler.clone();
    let text = web::block(move || s.metrics_text())
        .await
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", e.to_string()))?;
    match text {
        Some(t) => Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(t)),
        None => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "metrics-off",
            "Metrics are switched off",
            "this node was started with --no-metrics",
        )),
    }
}
