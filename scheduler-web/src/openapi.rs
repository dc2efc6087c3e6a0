//! The OpenAPI 3 document, generated from the handlers and shapes in this crate.

use actix_web::HttpResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Components, ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::dto::{
    ApplyReportDto, GroupDto, JobDto, NodeDto, PluginDto, RefusalDto, RetryDto, RunDto, SchedulerDto, TriggerDto,
};
use crate::problem::Problem;
use scheduler_core::wire::{
    BackoffRequest, JobRequest, RescheduleRequest, ScheduleFields, ScheduleRequest, TriggerRequest,
};

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
        JobDto, TriggerDto, RetryDto, RunDto, GroupDto, NodeDto, PluginDto, RefusalDto, SchedulerDto, Problem, JobRequest, RescheduleRequest, ScheduleRequest, ScheduleFields, TriggerRequest, BackoffRequest,
        ApplyReportDto, crate::routes::stats::StatsDto, crate::routes::stats::PercentilesDto,
        crate::routes::audit::AuditDto
    )),
    modifiers(&BearerTokens),
    tags(
        (name = "jobs", description = "Jobs of a product and job group"),
        (name = "scheduler", description = "What this node hosts"),
        (name = "health", description = "Process health, readiness and metrics"),
        (name = "history", description = "Run history and statistics"),
    )
)]
pub struct ApiDoc;

/// Routes open without a token.
const OPEN: [&str; 3] = ["/health", "/live", "/ready"];
/// Open from loopback, a token from anywhere else.
const LOOPBACK_OPEN: &str = "/metrics";

/// With `--auth-tokens`, every route but [`OPEN`] (and [`LOOPBACK_OPEN`] from loopback) takes `Authorization: Bearer <token>` and
/// may answer 401 (no or unknown token), 403 (outside the token's scopes) or 429 (over the
/// token's request rate, with `Retry-After`). Without a tokens file none of these happen.
struct BearerTokens;

impl Modify for BearerTokens {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Components::new);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        let problem = |what: &str| {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
            RefOr::T(ResponseBuilder::new().description(what).content("application/problem+json", content).build())
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            if OPEN.contains(&path.as_str()) {
                continue;
            }
            let bearer = SecurityRequirement::new("bearer", Vec::<String>::new());
            // `{}` first: no token needed (from loopback).
            let security =
                if path == LOOPBACK_OPEN { vec![SecurityRequirement::default(), bearer] } else { vec![bearer] };
            for op in
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
            {
                op.security = Some(security.clone());
                let responses = &mut op.responses.responses;
                responses.entry("401".into()).or_insert_with(|| problem("No token, or an unknown one"));
                responses.entry("403".into()).or_insert_with(|| problem("The token's scopes do not allow this"));
                responses
                    .entry("429".into())
                    .or_insert_with(|| problem("Over the token's request rate (`Retry-After`)"));
            }
        }
    }
}

/// Serves the document.
pub async fn document() -> HttpResponse {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    HttpResponse::Ok().json(doc)
}
