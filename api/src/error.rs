//! Every error the API answers, as `application/problem+json` (RFC 9457), mapped in one place.
//!
//! Each answer has a stable `code` (also the last part of `type`), a human `detail`, and the
//! `field` at fault where there is one. Unexpected failures are logged with their cause and
//! answered with an opaque 500 that carries the request id, never the cause.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use commands::bus::CommandError;
use commands::store::StoreError;
use commands::tenancy::TenancyError;
use domain::rejection::{Rejection, RejectionKind};
use serde::Serialize;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    field: Option<String>,
    retry_after: Option<u32>,
    /// Extension members of the problem (RFC 9457, section 3.2) beside the standard ones.
    members: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
/// The body of every error answer.
pub struct Problem {
    /// `urn:upzento:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong in this instance, in words.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
    /// The request field at fault (a JSON path such as `contact.email`, a query parameter, a
    /// path parameter or a header), where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// An error with a status, code and detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            field: None,
            retry_after: None,
            members: serde_json::Map::new(),
        }
    }

    /// Adds an extension member, such as the tenants a sign-in must choose from.
    pub fn with_member(mut self, name: &str, value: serde_json::Value) -> Self {
        self.members.insert(name.to_owned(), value);
        self
    }

    /// Tells the client when to try again.
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Names the field at fault.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400 for a request that cannot be read at all.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 422 for a value that was read but is not acceptable.
    pub fn invalid(field: &str, error: &impl Rejection) -> Self {
        Self::rejected(error).at(field)
    }

    /// 404.
    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    /// 403: the caller is known but its role does not allow this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 401.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 500 for what should not happen: logged here with its cause, answered opaquely.
    pub fn internal(error: impl std::fmt::Display + std::fmt::Debug) -> Self {
        tracing::error!(error.cause_chain = ?error, error.message = %error, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side; it has been logged",
        )
    }

    /// Any refusal that describes itself.
    pub fn rejected(error: &impl Rejection) -> Self {
        let status = match error.kind() {
            RejectionKind::NotFound => StatusCode::NOT_FOUND,
            RejectionKind::Conflict => StatusCode::CONFLICT,
            RejectionKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            RejectionKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        let mut api = Self::new(status, error.code(), error.to_string());
        api.field = error.field().map(str::to_owned);
        api
    }

    /// The status, for logs and tests.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

fn title(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").to_owned()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            kind: format!("urn:upzento:problem:{}", self.code),
            title: title(self.status),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_owned(),
            field: self.field,
        };
        let mut body = serde_json::to_value(problem).expect("a problem serializes");
        if let serde_json::Value::Object(members) = &mut body {
            members.extend(self.members);
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => {
                tracing::warn!(error.message = %error, "event store unavailable");
                let mut api = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                    "the event store is unavailable; retry shortly",
                );
                api.retry_after = Some(1);
                api
            }
            other => Self::internal(other),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::from(error).into()
    }
}

impl<E: Rejection> From<CommandError<E>> for ApiError {
    fn from(error: CommandError<E>) -> Self {
        match error {
            CommandError::Rejected(rejection) => Self::rejected(&rejection),
            CommandError::Contended => {
                let mut api = Self::new(StatusCode::CONFLICT, "contended", error.to_string());
                api.retry_after = Some(1);
                api
            }
            CommandError::IdempotencyMismatch => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                error.to_string(),
            )
            .at("Idempotency-Key"),
            CommandError::Store(store) => store.into(),
        }
    }
}

impl From<TenancyError> for ApiError {
    fn from(error: TenancyError) -> Self {
        let detail = error.to_string();
        match error {
            TenancyError::EmailTaken => {
                Self::new(StatusCode::CONFLICT, "email_taken", detail).at("email")
            }
            TenancyError::TeamNameTaken => {
                Self::new(StatusCode::CONFLICT, "team_name_taken", detail).at("name")
            }
            TenancyError::TeamNotFound => Self::not_found("team_not_found", detail),
            TenancyError::AgentNotFound => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "agent_not_found", detail)
                    .at("agent_id")
            }
            TenancyError::NoSuchAgent => Self::not_found("agent_not_found", detail),
            TenancyError::LastAdmin => {
                Self::new(StatusCode::CONFLICT, "last_admin", detail).at("role")
            }
            TenancyError::InvitationNotFound => Self::not_found("invitation_not_found", detail),
            TenancyError::Unexpected(e) => Self::internal(e),
            TenancyError::Database(e) => e.into(),
        }
    }
}
