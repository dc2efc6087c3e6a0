//! Health: `/health` and `/live` (the process is up and serving), `/ready` (it can do its work:
//! job store reachable with a current schema, plugins loaded).

use actix_web::{web, HttpResponse};
use scheduler_plugin_api::ABI_VERSION;
use serde_json::{json, Value};

use crate::state::AppState;

fn versions() -> Value {
    json!({ "version": env!("CARGO_PKG_VERSION"), "pluginAbi": ABI_VERSION })
}

/// The process is up and serving, with the service and plugin ABI versions.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "The process is up", body = Object,
        example = json!({"status": "up", "version": "0.1.0", "pluginAbi": "1.0.0"}))))]
pub async fn health() -> HttpResponse {
    let mut body = versions();
    body["status"] = json!("up");
    HttpResponse::Ok().json(body)
}

/// Liveness: the process answers (restart it if this fails), with the service and plugin ABI
/// versions.
#[utoipa::path(get, path = "/live", tag = "health",
    responses((status = 200, description = "The process answers", body = Object,
        example = json!({"status": "live", "version": "0.1.0", "pluginAbi": "1.0.0"}))))]
pub async fn live() -> HttpResponse {
    let mut body = versions();
    body["status"] = json!("live");
    HttpResponse::Ok().json(body)
}

/// Readiness: 200 when the job store is reachable with a current schema and plugins are
/// loaded; 503 naming what is not (send it no traffic until it is).
#[utoipa::path(get, path = "/ready", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Object,
            example = json!({"status": "ready", "checks": {"store": "ok", "plugins": "ok"}, "version": "0.1.0", "pluginAbi": "1.0.0"})),
        (status = 503, description = "Not ready; each failing check says why", body = Object,
            example = json!({"status": "not ready", "checks": {"store": "the database is unreachable: ...", "plugins": "ok"}})),
    ))]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let s = state.scheduler.clone();
    let checks = match web::block(move || s.readiness()).await {
        Ok(c) => c,
        Err(e) => vec![("store", Err(format!("the check could not run: {e}")))],
    };
    let ok = checks.iter().all(|(_, r)| r.is_ok());
    let mut body = versions();
    body["status"] = json!(if ok { "ready" } else { "not ready" });
    body["checks"] = checks
        .into_iter()
        .map(|(name, r)| (name.to_owned(), json!(r.err().unwrap_or_else(|| "ok".to_owned()))))
        .collect::<serde_json::Map<_, _>>()
        .into();
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
