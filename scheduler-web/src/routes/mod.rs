//! The route table, mounted under every prefix the API answers on.

pub mod audit;
pub mod control;
pub mod groups;
pub mod health;
pub mod history;
pub mod jobs;
pub mod metrics;
pub mod nodes;
pub mod stats;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::problem::Problem;

/// The prefixes the scheduler routes answer under: the API's own, the reference document's
/// headings, the reference service's current path and the design card's.
pub const PREFIXES: [&str; 4] = ["/api/scheduler", "/api/schedulers", "/scheduler", "/schedulers"];

/// The path segments after whichever of `prefixes` starts `path` (as a whole segment), or None
/// when `path` is not a scheduler route. `/api/scheduler/vps4/b/jobs` → `["vps4", "b", "jobs"]`.
pub fn scheduler_segments<'a>(path: &'a str, prefixes: &[&str]) -> Option<Vec<&'a str>> {
    prefixes.iter().find_map(|prefix| {
        let rest = path.strip_prefix(prefix)?;
        (rest.is_empty() || rest.starts_with('/')).then(|| rest.split('/').filter(|s| !s.is_empty()).collect())
    })
}

/// Registers the scheduler routes (under one prefix).
pub fn scheduler_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("")
            .route(web::get().to(groups::list))
            .route(web::put().to(groups::reload))
            .default_service(web::to(|| not_allowed("GET, PUT"))),
    )
    .service(web::resource("/nodes").route(web::get().to(nodes::list)).default_service(web::to(|| not_allowed("GET"))))
    .service(
        web::resource("/{product}/{jobGroup}/jobs")
            .route(web::get().to(jobs::list))
            .route(web::post().to(jobs::create))
            .default_service(web::to(|| not_allowed("GET, POST"))),
    )
    .service(
        web::resource("/{product}/{jobGroup}/jobs/{jobId}")
            .route(web::get().to(jobs::get))
            .route(web::patch().to(jobs::reschedule))
            .route(web::delete().to(jobs::delete))
            .default_service(web::to(|| not_allowed("GET, PATCH, DELETE"))),
    )
    .service(
        web::resource("/{product}/{jobGroup}/jobs/{jobId}/runs")
            .route(web::get().to(jobs::runs))
            .default_service(web::to(|| not_allowed("GET"))),
    )
    .service(
        web::resource("/{product}/{jobGroup}/jobs/{jobId}/stats")
            .route(web::get().to(stats::of_job))
            .default_service(web::to(|| not_allowed("GET"))),
    )
    .service(
        web::resource("/{product}/{jobGroup}/jobs/{jobId}/next")
            .route(web::get().to(control::next))
            .default_service(web::to(|| not_allowed("GET"))),
    );
    cfg.service(post_only("/{product}/{jobGroup}/jobs/{jobId}/run").route(web::post().to(control::run_now)))
        .service(post_only("/{product}/{jobGroup}/jobs/{jobId}/pause").route(web::post().to(control::pause)))
        .service(post_only("/{product}/{jobGroup}/jobs/{jobId}/resume").route(web::post().to(control::resume)))
        .service(post_only("/{product}/{jobGroup}/runs/{runId}/cancel").route(web::post().to(control::cancel)));
}

/// A route answering GET with `handler`, and 405 with `Allow: GET` to any other method.
pub fn get_only<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path).route(web::get().to(handler)).default_service(web::to(|| not_allowed("GET")))
}

fn post_only(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|| not_allowed("POST")))
}

async fn not_allowed(allow: &'static str) -> HttpResponse {
    let p = Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!("this route accepts {allow}"),
    );
    let mut resp = actix_web::ResponseError::error_response(&p);
    if let Ok(v) = header::HeaderValue::from_str(allow) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    resp
}

/// The answer for any path that matches no route.
pub async fn fallback(req: HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&Problem::route_not_found(req.path()))
}
