//! What a route needs, declared once, in its handler's signature: an [`Allowed<R>`] argument
//! identifies the caller (a bearer token, or a certificate subject passed by a trusted proxy),
//! checks the rule `R` against what the request touches, and takes one request from the
//! caller's rate. A refused request never reaches the handler (extractors run first, and the
//! body is read by the handler). A handler that changes something records it with
//! [`Allowed::audit`], naming the action and what it acted on.

use std::future::{ready, Ready};
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use scheduler_core::audit::{Action, Change};

use super::{identify, problem, Auth, Caller, Need};
use crate::problem::Problem;
use crate::state::AppState;

/// What a kind of route needs, from its request.
pub trait Rule {
    /// The need of `req`.
    fn need(req: &HttpRequest) -> Need;
}

/// Anyone (health, the API document): no caller is looked for.
pub struct Open;
/// Any valid caller (node-wide reads, and the answers to unknown routes).
pub struct AnyCaller;
/// The `admin` scope.
pub struct Admin;
/// `/metrics`: open to loopback callers, any valid caller from elsewhere.
pub struct Metrics;
/// Read access to the route's `{product}`.
pub struct ReadProduct;
/// Write access to the route's `{product}`.
pub struct WriteProduct;
/// History and statistics across products: admin, or read access to the `product` the query
/// names.
pub struct AcrossProducts;
/// For methods a product route does not take: what the method would need there (GET and
/// HEAD read, anything else writes).
pub struct ProductByMethod;
/// For methods `/api/scheduler` does not take: any caller for reads, admin for changes.
pub struct AdminToChange;

fn product(req: &HttpRequest) -> String {
    req.match_info().get("product").unwrap_or_default().to_owned()
}

fn reads(req: &HttpRequest) -> bool {
    matches!(req.method().as_str(), "GET" | "HEAD")
}

impl Rule for Open {
    fn need(_: &HttpRequest) -> Need {
        Need::Open
    }
}

impl Rule for AnyCaller {
    fn need(_: &HttpRequest) -> Need {
        Need::Authenticated
    }
}

impl Rule for Admin {
    fn need(_: &HttpRequest) -> Need {
        Need::Admin
    }
}

impl Rule for Metrics {
    fn need(_: &HttpRequest) -> Need {
        Need::Metrics
    }
}

impl Rule for ReadProduct {
    fn need(req: &HttpRequest) -> Need {
        Need::Read(product(req))
    }
}

impl Rule for WriteProduct {
    fn need(req: &HttpRequest) -> Need {
        Need::Write(product(req))
    }
}

impl Rule for AcrossProducts {
    fn need(_: &HttpRequest) -> Need {
        Need::AcrossProducts
    }
}

impl Rule for ProductByMethod {
    fn need(req: &HttpRequest) -> Need {
        if reads(req) {
            Need::Read(product(req))
        } else {
            Need::Write(product(req))
        }
    }
}

impl Rule for AdminToChange {
    fn need(req: &HttpRequest) -> Need {
        if reads(req) {
            Need::Authenticated
        } else {
            Need::Admin
        }
    }
}

/// A request whose caller may do what rule `R` asks.
pub struct Allowed<R> {
    caller: Caller,
    req: HttpRequest,
    rule: PhantomData<R>,
}

impl<R> Allowed<R> {
    /// Who is calling.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Records a change this request made, after it succeeded with `status`: the caller, the
    /// action, the request's method and path, the product and group it names, and `target`
    /// (the job or run acted on). Queued, not waited for (see `Store::audit_append`).
    pub fn audit(&self, state: &AppState, action: Action, status: StatusCode, target: Option<String>) {
        let info = self.req.match_info();
        let change = Change {
            who: self.caller.name.clone(),
            action,
            method: self.req.method().to_string(),
            path: self.req.path().to_owned(),
            status: status.as_u16(),
            product: info.get("product").map(str::to_owned),
            job_group: info.get("jobGroup").map(str::to_owned),
            target,
        };
        if let Err(e) = state.scheduler.audit_record(change) {
            tracing::error!(error = %e, "recording a change in the audit trail failed");
        }
    }
}

impl<R: Rule> FromRequest for Allowed<R> {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check(req, &R::need(req)).map(|caller| Allowed { caller, req: req.clone(), rule: PhantomData }))
    }
}

/// Finds the caller of `req` and checks it has what `need` asks for, then its request rate.
fn check(req: &HttpRequest, need: &Need) -> Result<Caller, Problem> {
    let auth = req.app_data::<web::Data<Auth>>().map(|a| a.get_ref());
    // Only callers identified by a token or subject are rate-limited.
    let (caller, identified) = match auth {
        None | Some(Auth { tokens: None, .. }) => (Caller::anonymous(), false),
        Some(_) if *need == Need::Open => (Caller::anonymous(), false),
        Some(_) if *need == Need::Metrics && req.peer_addr().is_some_and(|a| a.ip().is_loopback()) => {
            (Caller::anonymous(), false)
        }
        Some(a @ Auth { tokens: Some(file), .. }) => (identify(a, &file.get(), req, need)?, true),
    };
    caller
        .allows(need, req.query_string())
        .map_err(|why| problem(StatusCode::FORBIDDEN, "forbidden", "Forbidden", why))?;
    if let (true, Some(rate)) = (identified, auth.and_then(|a| a.rate.as_ref())) {
        if let Err(wait) = rate.check(&caller.name) {
            let mut p = problem(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                format!(
                    "`{}` is over its request rate; try again in {} ms",
                    super::clip(&caller.name),
                    wait.as_millis().max(1)
                ),
            );
            p.retry_after = Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
            return Err(p);
        }
    }
    Ok(caller)
}

#[cfg(test)]
mod tests {
    use actix_web::http::Method;
    use actix_web::test::TestRequest;

    use super::*;

    fn req(method: Method, product: Option<&'static str>) -> HttpRequest {
        let mut t = TestRequest::default().method(method).uri("/api/scheduler/x");
        if let Some(p) = product {
            t = t.param("product", p);
        }
        t.to_http_request()
    }

    #[test]
    fn product_rules_name_the_routes_product() {
        assert_eq!(ReadProduct::need(&req(Method::GET, Some("vps4"))), Need::Read("vps4".into()));
        assert_eq!(WriteProduct::need(&req(Method::POST, Some("vps4"))), Need::Write("vps4".into()));
        // What a method a route does not take would need there: reads read, the rest write.
        assert_eq!(ProductByMethod::need(&req(Method::HEAD, Some("vps4"))), Need::Read("vps4".into()));
        assert_eq!(ProductByMethod::need(&req(Method::DELETE, Some("vps4"))), Need::Write("vps4".into()));
        assert_eq!(AdminToChange::need(&req(Method::GET, None)), Need::Authenticated);
        assert_eq!(AdminToChange::need(&req(Method::DELETE, None)), Need::Admin);
    }
}
