//! The OpenAPI 3 document, generated from the handlers and shapes in this crate.

use actix_web::HttpResponse;
use utoipa::OpenApi;

use crate::dto::{
    ApplyReportDto, GroupDto, JobDto, NodeDto, PluginDto, RefusalDto, RetryDto, RunDto, SchedulerDto, TriggerDto,
};
use crate::problem::Problem;
use crate::routes::jobs::{CreateJobBody, RescheduleBody};

/// The API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Scheduler",
        description = "Schedules jobs that plugins run at their time. Every route under `/api/scheduler` \
is also served under `/api/schedulers`, `/scheduler` and `/schedulers`. Errors are \
`application/problem+json` (RFC 9457) whose `detail` names the field at fault."
    ),
    paths(
        crate::routes::health::health,
        crate::routes::health::live,
        crate::routes::health::ready,
        crate::routes::metrics::metrics,
        crate::routes::history::list,
        crate::routes::history::get,
        crate::routes::stats::window,
        crate::routes::stats::daily,
        crate::routes::stats::of_job,
        crate::routes::audit::list,
        crate::routes::groups::list,
        crate::routes::groups::reload,
        crate::routes::nodes::list,
        crate::routes::jobs::list,
        crate::routes::jobs::create,
        crate::routes::jobs::get,
        crate::routes::jobs::reschedule,
        crate::routes::jobs::delete,
        crate::routes::jobs::runs,
        crate::routes::control::run_now,
        crate::routes::control::pause,
        crate::routes::control::resume,
        crate::routes::control::cancel,
        crate::routes::control::next,
    ),
    components(schemas(
        JobDto, TriggerDto, RetryDto, RunDto, GroupDto, NodeDto, PluginDto, RefusalDto, SchedulerDto, Problem, CreateJobBody, RescheduleBody,
        ApplyReportDto, crate::routes::stats::StatsDto, crate::routes::stats::PercentilesDto,
        crate::routes::audit::AuditDto
    )),
    tags(
        (name = "jobs", description = "Jobs of a product and job group"),
        (name = "scheduler", description = "What this node hosts"),
        (name = "health", description = "Process health, readiness and metrics"),
        (name = "history", description = "Run history and statistics"),
    )
)]
pub struct ApiDoc;

/// Serves the document.
pub async fn document() -> HttpResponse {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    HttpResponse::Ok().json(doc)
}
