//! What this node hosts: product/groups, their plugins and listeners.

use actix_web::{web, HttpResponse};
use scheduler_plugin_api::ABI_VERSION;

use crate::dto::{GroupDto, PluginDto, RefusalDto, SchedulerDto};
use crate::state::AppState;

/// The registered product/job groups with their plugin and listeners.
#[utoipa::path(get, path = "/api/scheduler", tag = "scheduler",
    responses((status = 200, description = "What this node hosts", body = SchedulerDto)))]
pub async fn list(state: web::Data<AppState>) -> HttpResponse {
    let registry = state.scheduler.registry();
    HttpResponse::Ok().json(SchedulerDto {
        groups: registry.job_types().iter().map(|e| GroupDto::from(&**e)).collect(),
        plugins: registry.plugins().iter().map(|p| PluginDto::from(&**p)).collect(),
        refused_plugins: state.refused.iter().map(RefusalDto::from).collect(),
        node: state.scheduler.node().to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        plugin_abi: ABI_VERSION.to_owned(),
    })
}
