//! Who may call what: bearer tokens from a tokens file (or certificate subjects passed by a
//! trusted proxy) mapped to scopes, checked before a route's handler runs.
//!
//! Each handler declares what it needs with an [`Allowed<Rule>`](allowed::Allowed) argument:
//! the rule says what the request touches (a product's reads or writes, history across
//! products, admin), and the extractor finds the caller: the token in `Authorization: Bearer …`
//! (401 with `WWW-Authenticate` when missing or unknown), or with
//! `--trust-cert-subject-header`, the `X-Cert-Subject-DN` header from a configured proxy address
//! (403 when missing or unknown, as the reference service did). A caller without the scope gets
//! 403 and the handler never runs. Routes without the argument (health, the API document) are
//! open.

pub mod allowed;
pub mod rate;
pub mod scope;
pub mod tokens;

use std::net::IpAddr;

use actix_web::http::{header, StatusCode};
use actix_web::HttpRequest;

pub use allowed::{
    AcrossProducts, Admin, AdminToChange, Allowed, AnyCaller, Metrics, Open, ProductByMethod, ReadProduct, Rule,
    WriteProduct,
};
pub use rate::RateLimit;
pub use scope::{Caller, Need, Scope};
pub use tokens::{Tokens, TokensFile};

use crate::problem::Problem;

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
fn identify(auth: &Auth, tokens: &Tokens, req: &HttpRequest, need: &Need) -> Result<Caller, Problem> {
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

pub(crate) fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}
