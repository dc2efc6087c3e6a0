//! What this node hosts: product/groups, their plugins and listeners.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use scheduler_plugin_api::ABI_VERSION;

use scheduler_core::audit::Action;

use crate::auth::{Admin, Allowed, AnyCaller};
use crate::dto::{ApplyReportDto, GroupDto, PluginDto, RefusalDto, SchedulerDto};
use crate::problem::Problem;
use crate::state::AppState;

/// The registered product/job groups with their plugin and listeners.
#[utoipa::path(get, path = "/api/scheduler", tag = "scheduler",
    responses((status = 200, description = "What this node hosts", body = SchedulerDto)))]
pub async fn list(_: Allowed<AnyCaller>, state: web::Data<AppState>) -> HttpResponse {
    let registry = state.scheduler.registry();
    HttpResponse::Ok().json(SchedulerDto {
        groups: registry.job_types().iter().map(|e| GroupDto::from(&**e)).collect(),
        plugins: registry.plugins().iter().map(|p| PluginDto::from(&**p)).collect(),
        refused_plugins: state.refused.iter().map(RefusalDto::from).collect(),
        node: state.scheduler.node().to_string(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        plugin_abi: ABI_VERSION.to_owned(),
    })
}

/// Re-reads the schedules file (`--schedules`) and applies it: declared jobs are created,
/// updated or removed so that the store holds exactly what the file declares. Safe to call on
/// several nodes at once; the change is cluster-wide.
#[utoipa::path(put, path = "/api/scheduler", tag = "scheduler",
    responses(
        (status = 200, description = "What applying the file did, by declaration key", body = ApplyReportDto),
        (status = 409, description = "The service was started without a schedules file", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The file is unreadable or invalid; nothing was applied", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reload(allowed: Allowed<Admin>, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let Some(path) = state.schedules.clone() else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "no-schedules-file",
            "No schedules file",
            "this node was started without --schedules FILE, so there is nothing to reload",
        ));
    };
    let report = state.call(move |s| s.apply_schedules_file(&path)).await?;
    allowed.audit(&state, Action::Reload, StatusCode::OK, None);
    Ok(HttpResponse::Ok().json(report))
}
