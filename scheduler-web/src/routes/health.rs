//! Process health.

use actix_web::HttpResponse;
use serde_json::json;

/// The process is up and serving.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "The process is up", body = Object, example = json!({"status": "up"}))))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "up" }))
}
