//! Who may call what: bearer tokens from a tokens file (or certificate subjects passed by a
//! trusted proxy) mapped to scopes, checked by one middleware before any route runs.
//!
//! A request first gets what it needs from its method and path (`scope::classify`), then a
//! caller: the token in `Authorization: Bearer …` (401 with `WWW-Authenticate` when missing or
//! unknown), or with `--trust-cert-subject-header`, the `X-Cert-Subject-DN` header from a
//! configured proxy address (403 when missing or unknown, as the reference service did). A
//! caller without the scope gets 403 and the route never runs. The caller is left in the
//! request's extensions for the routes that check per record and for the audit trail.

pub mod rate;
pub mod scope;
pub mod tokens;

use std::net::IpAddr;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};

pub use rate::RateLimit;
pub use scope::{Caller, Need, Scope};
pub use tokens::{Tokens, TokensFile};

use scheduler_core::audit::AuditEntry;

use crate::problem::Problem;
use crate::routes::PREFIXES;
use crate::state::AppState;

/// The header a TLS-terminating proxy puts the client certificate's subject in.
pub const CERT_SUBJECT_HEADER: &str = "x-cert-subject-dn";

/// How callers are identified.
pub struct Auth {
    /// None: authentication is off (loopback-only, or `--insecure-no-auth`).
    pub tokens: Option<TokensFile>,
    /// Proxies whose `X-Cert-Subject-DN` header is believed (empty: the header is ignored).
    pub trusted_proxies: Vec<IpAddr>,
    /// Requests per second per authenticated caller (none: unlimited).
    pub rate: Option<RateLimit>,
}

impl Auth {
    /// Authentication switched off.
    pub fn off() -> Auth {
        Auth { tokens: None, trusted_proxies: Vec::new(), rate: None }
    }

    /// Re-reads the tokens file (on SIGHUP); a file that fails to load is logged and the
    /// tokens in use stay.
    pub fn reload_tokens(&self) {
        let Some(file) = &self.tokens else { return };
        match file.reload() {
            Ok((tokens, subjects)) => {
                tracing::info!(tokens, subjects, file = %file.path().display(), "tokens file reloaded")
            }
            Err(e) => tracing::error!(error = %e, "tokens file not reloaded; the tokens in use stay"),
        }
    }
}

fn problem(status: StatusCode, kind: &str, title: &str, detail: String) -> Problem {
    Problem::new(status, kind, title, detail)
}

/// Identifies the caller of `req`, or says why not.
fn identify(auth: &Auth, tokens: &Tokens, req: &ServiceRequest, need: &Need) -> Result<Caller, Problem> {
    let peer = req.peer_addr().map(|a| a.ip());
    if !auth.trusted_proxies.is_empty() {
        if let Some(dn) = req.headers().get(CERT_SUBJECT_HEADER) {
            if !peer.is_some_and(|p| auth.trusted_proxies.contains(&p)) {
                return Err(problem(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "Forbidden",
                    format!("{CERT_SUBJECT_HEADER} is only believed from a configured proxy address"),
                ));
            }
            let dn = dn.to_str().unwrap_or("");
            return tokens.subject(dn).cloned().ok_or_else(|| {
                problem(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "Forbidden",
                    format!("certificate subject `{}` is not in the tokens file", clip(dn)),
                )
            });
        }
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    match presented {
        Some(t) => tokens.find(t).cloned().ok_or_else(|| unauthorized("the bearer token is not known")),
        None if !auth.trusted_proxies.is_empty() && peer.is_some_and(|p| auth.trusted_proxies.contains(&p)) => {
            Err(problem(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Forbidden",
                format!("no {CERT_SUBJECT_HEADER} header and no bearer token"),
            ))
        }
        None => Err(unauthorized(&format!("this request needs {need}: send `Authorization: Bearer <token>`"))),
    }
}

fn unauthorized(detail: &str) -> Problem {
    problem(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized", detail.to_owned())
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

/// The middleware: authenticates, authorises, and records changes in the audit trail.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let auth = req.app_data::<web::Data<Auth>>().cloned();
    let need = scope::classify(req.method().as_str(), req.path(), &PREFIXES);
    // Whether the caller is identified by a token or subject (only those are rate-limited).
    let mut identified = false;
    let caller = match auth.as_ref().map(|a| a.get_ref()) {
        None | Some(Auth { tokens: None, .. }) => Ok(Caller::anonymous()),
        Some(_) if need == Need::Open => Ok(Caller::anonymous()),
        Some(_) if need == Need::Metrics && req.peer_addr().is_some_and(|a| a.ip().is_loopback()) => {
            Ok(Caller::anonymous())
        }
        Some(a @ Auth { tokens: Some(file), .. }) => {
            identified = true;
            identify(a, &file.get(), &req, &need)
        }
    };
    let checked = caller.and_then(|c| {
        c.allows(&need, req.query_string())
            .map(|()| c)
            .map_err(|why| problem(StatusCode::FORBIDDEN, "forbidden", "Forbidden", why))
    });
    let rate = auth.as_ref().and_then(|a| a.rate.as_ref()).filter(|_| identified);
    let checked = checked.and_then(|c| match rate {
        Some(rate) => match rate.check(&c.name) {
            Ok(()) => Ok(c),
            Err(wait) => {
                let mut p = problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate-limited",
                    "Too many requests",
                    format!(
                        "`{}` is over its request rate; try again in {} ms",
                        clip(&c.name),
                        wait.as_millis().max(1)
                    ),
                );
                p.retry_after = Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
                Err(p)
            }
        },
        _ => Ok(c),
    });
    match checked {
        Ok(caller) => {
            let change = crate::routes::audit::describe(req.method().as_str(), req.path(), &PREFIXES);
            let state = req.app_data::<web::Data<AppState>>().cloned();
            let (method, path) = (req.method().to_string(), req.path().to_owned());
            let who = caller.name.clone();
            req.extensions_mut().insert(caller);
            let res = next.call(req).await?;
            if let (Some((action, product, job_group, target)), Some(state)) = (change, state) {
                if res.status().is_success() {
                    // A create names its job in the Location header.
                    let created = res.headers().get(header::LOCATION).and_then(|l| l.to_str().ok());
                    let target = target.or_else(|| created.and_then(|l| l.rsplit('/').next()).map(str::to_owned));
                    let entry = AuditEntry {
                        seq: 0,
                        at: scheduler_core::Ts(0), // stamped by the scheduler's clock
                        who,
                        action: action.to_owned(),
                        method,
                        path,
                        status: res.status().as_u16(),
                        product,
                        job_group,
                        target,
                    };
                    // Queued, not waited for (see `Store::audit_append`).
                    if let Err(e) = state.scheduler.audit_record(entry) {
                        tracing::error!(error = %e, "recording a change in the audit trail failed");
                    }
                }
            }
            Ok(res.map_into_left_body())
        }
        Err(p) => {
            let mut resp = p.error_response();
            if p.status_code() == StatusCode::UNAUTHORIZED {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer realm=\"scheduler\""));
            }
            Ok(req.into_response(resp).map_into_right_body())
        }
    }
}
