//! Sign-in for the agent console: password sign-in, the session it starts, signing out, and
//! accepting an invitation (docs/api.md, "Sessions"). Everything else authenticates through
//! the `Auth` extractor, by API token or by the session cookie this module hands out.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use commands::sessions::{self, NewSession};
use commands::sign_in;
use commands::tenancy::{self, Identity};
use domain::ids::TenantId;
use domain::text::Password;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::AppJson;
use crate::routes::agents::AgentView;
use crate::session::{self, CookieSession};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/session", get(current_session))
        .route("/auth/logout", post(logout))
        .route("/auth/invitations/accept", post(accept_invitation))
}

/// A sign-in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    /// The agent's e-mail address (case-insensitive).
    email: String,
    /// The password.
    password: String,
    /// The tenant, when the address is an agent's in several tenants.
    tenant_id: Option<String>,
}

/// An invitation to accept.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcceptInvitation {
    /// The token from the invitation link.
    token: String,
    /// The password to set: 8 to 1,024 characters.
    password: String,
}

/// A tenant's id and name.
#[derive(Serialize, ToSchema)]
pub(crate) struct TenantView {
    id: uuid::Uuid,
    name: String,
}

/// A signed-in agent: who, in which tenant, the CSRF token to send as `X-CSRF-Token` on
/// every request that may change something, and when the session ends unless used.
#[derive(Serialize, ToSchema)]
pub(crate) struct SignedIn {
    agent: AgentView,
    tenant: TenantView,
    csrf_token: String,
    expires_at: DateTime<Utc>,
}

impl SignedIn {
    fn new(identity: Identity, secret: &str, expires_at: DateTime<Utc>) -> Self {
        Self {
            tenant: TenantView {
                id: identity.tenant_id,
                name: identity.tenant_name,
            },
            agent: identity.agent.into(),
            csrf_token: session::csrf_token(secret),
            expires_at,
        }
    }
}

/// The answer that starts a session: 200, the body and the cookie.
fn started(state: &AppState, headers: &HeaderMap, identity: Identity, new: NewSession) -> Response {
    let cookie = session::set_cookie(&new.secret, &state.sessions, headers);
    let body = SignedIn::new(identity, &new.secret, new.expires_at);
    ([(header::SET_COOKIE, cookie)], Json(body)).into_response()
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "the e-mail address or the password is not right",
    )
}

/// Signs in with an e-mail address and a password, and starts a session: the answer sets
/// the `upzento_session` cookie. An unknown address, an agent without a password and a wrong
/// password all get the same 401. An `Origin`, when sent, must be this server.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = Login,
    responses((status = 200, body = SignedIn,
               headers(("set-cookie" = String, description = "upzento_session=…; HttpOnly; SameSite=Strict; Path=/"))),
              (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
              (status = 409, description = "tenant_required: the problem has a `tenants` member [{id, name}]", body = crate::error::Problem),
              (status = 422, body = crate::error::Problem),
              (status = 429, body = crate::error::Problem)))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    AppJson(body): AppJson<Login>,
) -> Result<Response, ApiError> {
    // Another site's page must not sign the browser in to an account of its choosing.
    session::check_origin(&headers)?;
    // Only the upper bound: saying a password is too short would tell the policy, not help.
    if body.password.chars().count() > Password::MAX_CHARS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_long",
            format!("a password has at most {} characters", Password::MAX_CHARS),
        )
        .at("password"));
    }
    let tenant = body
        .tenant_id
        .as_deref()
        .map(TenantId::parse)
        .transpose()
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_id",
                e.to_string(),
            )
            .at("tenant_id")
        })?;
    state.login_limits.check(&body.email, peer.ip())?;
    let mut matched = sign_in::sign_in(&state.pool, &body.email, &body.password, tenant).await?;
    if matched.len() > 1 {
        let tenants: Vec<_> = matched
            .iter()
            .map(|i| json!({"id": i.tenant_id, "name": i.tenant_name}))
            .collect();
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "tenant_required",
            "this address signs in to several tenants; send `tenant_id` to choose one",
        )
        .at("tenant_id")
        .with_member("tenants", json!(tenants)));
    }
    let Some(identity) = matched.pop() else {
        state.login_limits.record_failure(&body.email, peer.ip());
        return Err(invalid_credentials());
    };
    let principal = identity.principal();
    let new = sessions::start(
        &state.pool,
        principal.tenant_id,
        principal.agent_id,
        state.sessions.idle_timeout,
    )
    .await?;
    Ok(started(&state, &headers, identity, new))
}

/// The session of the cookie: the same answer as the sign-in, so a console that reloads can
/// find out who it is and get its CSRF token.
#[utoipa::path(get, path = "/api/v1/auth/session", tag = "auth", security(("session" = [])),
    responses((status = 200, body = SignedIn), (status = 401, body = crate::error::Problem)))]
pub(crate) async fn current_session(
    State(state): State<AppState>,
    CookieSession { secret, session }: CookieSession,
) -> Result<Json<SignedIn>, ApiError> {
    let principal = session.principal;
    let identity = tenancy::identity(&state.pool, principal.tenant_id, principal.agent_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the session's agent no longer exists"))?;
    Ok(Json(SignedIn::new(identity, &secret, session.expires_at)))
}

/// Signs out: deletes the session, so its cookie no longer works anywhere, and clears the
/// cookie. Needs `X-CSRF-Token`, so another site cannot sign the agent out. Auditors may
/// sign out too: this ends a session rather than changing anything of the tenant.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("session" = [])),
    responses((status = 204, description = "Signed out; the cookie is cleared (Max-Age=0)"),
              (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    CookieSession { secret, .. }: CookieSession,
) -> Result<Response, ApiError> {
    session::check_csrf(&headers, &secret)?;
    sessions::end(&state.pool, &secret).await?;
    let cookie = session::clear_cookie(&state.sessions, &headers);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// Accepts an invitation: sets the password, uses the invitation up and starts a session,
/// with the same answer and cookie as the sign-in.
#[utoipa::path(post, path = "/api/v1/auth/invitations/accept", tag = "auth",
    request_body = AcceptInvitation,
    responses((status = 200, body = SignedIn), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub(crate) async fn accept_invitation(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppJson(body): AppJson<AcceptInvitation>,
) -> Result<Response, ApiError> {
    session::check_origin(&headers)?;
    let password =
        Password::parse(&body.password).map_err(|e| ApiError::invalid("password", &e))?;
    let (identity, new) = sign_in::accept_invitation(
        &state.pool,
        body.token.trim(),
        &password,
        state.sessions.idle_timeout,
    )
    .await?;
    Ok(started(&state, &headers, identity, new))
}
