//! The route table, mounted under every prefix the API answers on.

pub mod audit;
pub mod control;
pub mod groups;
pub mod health;
pub mod history;
pub mod ids;
pub mod jobs;
pub mod metrics;
pub mod nodes;
pub mod stats;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::auth::{AdminToChange, Allowed, AnyCaller, ProductByMethod, Rule};
use crate::problem::Problem;

/// The prefixes the scheduler routes answer under: the API's own, the reference document's
/// headings, the reference service's current path and the design card's.
pub const PREFIXES: [&str; 4] = ["/api/scheduler", "/api/schedulers", "/scheduler", "/schedulers"];

/// The scheduler routes (under one prefix): each path once, with its methods' handlers. What a
/// route needs is declared by its handler (an `Allowed<Rule>` argument), and so is the change
/// it records in the audit trail; a method a route does not take is a 405 for any caller who
/// could have used it.
pub fn scheduler_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("")
            .route(web::get().to(groups::list))
            .route(web::put().to(groups::reload))
            .default_service(web::to(not_allowed::<AdminToChange>("GET, PUT"))),
    )
    .service(
        web::resource("/nodes")
            .route(web::get().to(nodes::list))
            .default_service(web::to(not_allowed::<AnyCaller>("GET"))),
    )
    .service(
        web::resource("/{product}/{jobGroup}/jobs")
            .route(web::get().to(jobs::list))
            .route(web::post().to(jobs::create))
            .default_service(web::to(not_allowed::<ProductByMethod>("GET, POST"))),
    )
    .service(
        web::resource("/{product}/{jobGroup}/jobs/{jobId}")
            .route(web::get().to(jobs::get))
            .route(web::patch().to(jobs::reschedule))
            .route(web::delete().to(jobs::delete))
            .default_service(web::to(not_allowed::<ProductByMethod>("GET, PATCH, DELETE"))),
    )
    .service(product_get("/{product}/{jobGroup}/jobs/{jobId}/runs", jobs::runs))
    .service(product_get("/{product}/{jobGroup}/jobs/{jobId}/stats", stats::of_job))
    .service(product_get("/{product}/{jobGroup}/jobs/{jobId}/next", control::next))
    .service(product_post("/{product}/{jobGroup}/jobs/{jobId}/run", control::run_now))
    .service(product_post("/{product}/{jobGroup}/jobs/{jobId}/pause", control::pause))
    .service(product_post("/{product}/{jobGroup}/jobs/{jobId}/resume", control::resume))
    .service(product_post("/{product}/{jobGroup}/runs/{runId}/cancel", control::cancel));
}

/// A route answering GET with `handler`, and 405 with `Allow: GET` to any other method (for a
/// caller that rule `R` admits).
pub fn get_only<R, F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    R: Rule + 'static,
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path).route(web::get().to(handler)).default_service(web::to(not_allowed::<R>("GET")))
}

fn product_get<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    get_only::<ProductByMethod, _, _>(path, handler)
}

fn product_post<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path).route(web::post().to(handler)).default_service(web::to(not_allowed::<ProductByMethod>("POST")))
}

/// The answer to a method a route does not take: 405 with `Allow`, once the caller passes `R`
/// (a caller who could not have used the route learns nothing about it).
fn not_allowed<R: Rule + 'static>(
    allow: &'static str,
) -> impl Fn(Allowed<R>) -> std::future::Ready<HttpResponse> + Clone + 'static {
    move |_| std::future::ready(method_not_allowed(allow))
}

fn method_not_allowed(allow: &'static str) -> HttpResponse {
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

/// The answer for any path that matches no route (to any valid caller: others get 401).
pub async fn fallback(_: Allowed<AnyCaller>, req: HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&Problem::route_not_found(req.path()))
}
