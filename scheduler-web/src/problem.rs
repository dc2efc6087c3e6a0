//! Errors as `application/problem+json` (RFC 9457). The one place that chooses HTTP statuses.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use scheduler_core::store::StoreError;
use scheduler_core::CoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// A problem detail: what went wrong, for a client to show or act on.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`urn:scheduler:problem:<kind>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What is wrong, naming the field when one is at fault.
    pub detail: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds to wait before trying again, sent as `Retry-After` (429 and some 503s).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem of `kind` with this status, title and detail.
    pub fn new(status: StatusCode, kind: &str, title: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("urn:scheduler:problem:{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            retry_after: None,
        }
    }

    /// The same problem, naming the field at fault.
    pub fn with_field(mut self, field: &str) -> Problem {
        self.field = Some(field.to_owned());
        self
    }

    /// A 400 about one field.
    pub fn invalid(field: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "invalid-field", "Invalid request field", detail).with_field(field)
    }

    /// The response for a route that does not exist.
    pub fn route_not_found(path: &str) -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "route-not-found",
            "No such route",
            format!("no route matches {}", path.chars().take(200).collect::<String>()),
        )
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let body = serde_json::to_vec(self).unwrap_or_default();
        let mut resp = HttpResponse::build(self.status_code());
        resp.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if let Some(s) = self.retry_after {
            resp.insert_header((header::RETRY_AFTER, s.max(1)));
        }
        if self.status == 401 {
            resp.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"scheduler\""));
        }
        resp.body(body)
    }
}

impl From<CoreError> for Problem {
    fn from(e: CoreError) -> Problem {
        let detail = e.to_string();
        match e {
            CoreError::GroupNotFound { .. } => {
                Problem::new(StatusCode::NOT_FOUND, "group-not-found", "Unknown product or job group", detail)
            }
            CoreError::JobNotFound { .. } => {
                Problem::new(StatusCode::NOT_FOUND, "job-not-found", "No such job", detail).with_field("jobId")
            }
            CoreError::Conflict { .. } => Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", detail),
            CoreError::RunNotFound { .. } => {
                Problem::new(StatusCode::NOT_FOUND, "run-not-found", "No such run", detail).with_field("runId")
            }
            CoreError::JobFinished { .. } => {
                Problem::new(StatusCode::CONFLICT, "job-finished", "Job already finished", detail)
            }
            CoreError::InvalidField { field, .. } => Problem::invalid(&field, detail),
            CoreError::PayloadRejected { .. } => {
                Problem::new(StatusCode::BAD_REQUEST, "payload-rejected", "Payload rejected by the job type", detail)
            }
            CoreError::SchedulesFile { .. } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-schedules-file",
                "The schedules file is invalid; nothing was applied",
                detail,
            ),
            CoreError::PayloadTooLarge { .. } => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Payload too large", detail)
                    .with_field("payload")
            }
            CoreError::QuotaReached { retry_after, .. } => {
                let mut p = Problem::new(StatusCode::TOO_MANY_REQUESTS, "quota-reached", "Quota reached", detail);
                p.retry_after = Some(retry_after.as_secs());
                p
            }
            CoreError::ShuttingDown => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "shutting-down", "Shutting down", detail)
            }
            CoreError::Store(StoreError::Unavailable(_)) => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "store-unavailable", "Job store unavailable", detail)
            }
            CoreError::Store(StoreError::Internal(_)) => {
                tracing::error!(error = %detail, "store error");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "the job store failed; the error is in the service log",
                )
            }
        }
    }
}
