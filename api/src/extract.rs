//! Request extractors that answer problem+json when the request is not acceptable.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use commands::context::CommandContext;
use commands::tenancy::{Principal, Role};
use domain::actor::Actor;
use domain::ids::InvalidId;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::session::{self, CookieSession};
use crate::state::AppState;

/// A JSON body, read strictly: the right content type, within the size limit, and every field
/// known. A body that does not fit names the field at fault.
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime == "application/json" || mime.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            )
            .at("Content-Type"));
        }
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection {
                    BytesRejection::FailedToBufferBody(_) => ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        "the request body is larger than this endpoint accepts",
                    ),
                    other => ApiError::bad_request("unreadable_body", other.body_text()),
                })?;
        let deserializer = &mut serde_json::Deserializer::from_slice(&bytes);
        let value: T = serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let field = error.path().to_string();
            let inner = error.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return ApiError::bad_request(
                    "malformed_json",
                    format!("the body is not valid JSON: {inner}"),
                );
            }
            let message = inner.to_string();
            let missing = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next());
            let field = match (field.as_str(), missing) {
                (".", Some(name)) => Some(name.to_owned()),
                (".", None) => None,
                (path, Some(name)) => Some(format!("{path}.{name}")),
                (path, None) => Some(path.to_owned()),
            };
            let api = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", message);
            match field {
                Some(field) => api.at(field),
                None => api,
            }
        })?;
        Ok(Self(value))
    }
}

/// A query string, read strictly: every parameter known, each error naming its parameter.
pub struct AppQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs = form_urlencoded::parse(query.as_bytes());
        let deserializer = serde_urlencoded::Deserializer::new(pairs);
        serde_path_to_error::deserialize(deserializer)
            .map(Self)
            .map_err(|error| {
                let field = error.path().to_string();
                let message = error.into_inner().to_string();
                let field = message
                    .strip_prefix("unknown field `")
                    .and_then(|rest| rest.split('`').next())
                    .map(str::to_owned)
                    .unwrap_or(field);
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_query", message).at(field)
            })
    }
}

/// The authenticated caller, by API token or by the console's session cookie. The tenant
/// comes from the credential alone (DESIGN.md, decision 4).
#[derive(Debug, Clone)]
pub struct Auth {
    /// Tenant, agent and role behind the token.
    pub principal: Principal,
    /// The request id, for event metadata.
    pub request_id: String,
}

impl Auth {
    /// The metadata of commands this caller issues.
    pub fn context(&self) -> CommandContext {
        CommandContext::new(
            self.principal.tenant_id,
            Actor::Agent(self.principal.agent_id),
            self.request_id.clone(),
        )
    }

    /// Refuses callers who are not admins.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.principal.role {
            Role::Admin => Ok(()),
            Role::Agent | Role::Auditor => Err(ApiError::forbidden("only admins may do this")),
        }
    }

    /// Refuses read-only callers (auditors). The extractor already applies it to every
    /// request whose method may change something; a handler that changes state on a safe
    /// method (a WebSocket that accepts commands, say) must call it itself.
    pub fn require_writer(&self) -> Result<(), ApiError> {
        match self.principal.role {
            Role::Admin | Role::Agent => Ok(()),
            Role::Auditor => Err(ApiError::forbidden(
                "auditors may read but not change anything",
            )),
        }
    }

    /// Refuses callers who may not read the event-level record (histories, past states,
    /// the event feed): only admins and auditors may; agents work from the inbox.
    pub fn require_event_reader(&self) -> Result<(), ApiError> {
        match self.principal.role {
            Role::Admin | Role::Auditor => Ok(()),
            Role::Agent => Err(ApiError::forbidden(
                "only admins and auditors may read the event history and feed",
            )),
        }
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    /// A bearer token when the request has an `Authorization` header (it wins over a cookie,
    /// and needs no CSRF check: other sites cannot make a browser send it); otherwise the
    /// session cookie, with the CSRF checks on every method that may change something.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = match parts.headers.get(header::AUTHORIZATION) {
            Some(value) => {
                let token = value
                    .to_str()
                    .ok()
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::trim)
                    .ok_or_else(|| {
                        ApiError::unauthorized("send `Authorization: Bearer <token>`")
                    })?;
                state
                    .tokens
                    .authenticate(&state.pool, token)
                    .await?
                    .ok_or_else(|| ApiError::unauthorized("the token is not valid"))?
            }
            None => {
                let CookieSession { secret, session } =
                    CookieSession::from_request_parts(parts, state).await?;
                if !parts.method.is_safe() {
                    session::check_csrf(&parts.headers, &secret)?;
                }
                session.principal
            }
        };
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        tracing::Span::current().record("tenant_id", tracing::field::display(principal.tenant_id));
        let auth = Self {
            principal,
            request_id,
        };
        // Read-only by construction: whatever route a write arrives at, an auditor's token or
        // session is refused before the handler runs, so a new write endpoint cannot forget
        // the check.
        if !parts.method.is_safe() {
            auth.require_writer()?;
        }
        Ok(auth)
    }
}

/// The optional `Idempotency-Key` header: 1 to 255 visible ASCII characters.
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        let key = value
            .to_str()
            .ok()
            .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_idempotency_key",
                    "an idempotency key is 1 to 255 visible ASCII characters",
                )
                .at("Idempotency-Key")
            })?;
        Ok(Self(Some(key.to_owned())))
    }
}

/// Parses an id from the path; a malformed one is a 400 that names the parameter.
pub fn path_id<T>(
    name: &str,
    raw: &str,
    parse: fn(&str) -> Result<T, InvalidId>,
) -> Result<T, ApiError> {
    parse(raw).map_err(|e| ApiError::bad_request("invalid_id", e.to_string()).at(name))
}
