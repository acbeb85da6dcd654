//! Real time over WebSocket (docs/realtime.md): committed events from the live tail, and
//! ephemeral signals (typing, viewing, online) between instances.

pub mod connection;
pub mod protocol;
pub mod signals;
pub mod unread;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;
use projections::reader::{Cursor, head};
use serde::Deserialize;
use utoipa::IntoParams;

use commands::tenancy::Role;

use crate::error::ApiError;
use crate::extract::AppQuery;
use crate::session;
use crate::state::AppState;
use connection::Peer;

/// Largest message a client may send: typing and viewing signals are tiny.
pub const MAX_CLIENT_MESSAGE: usize = 4 * 1024;
/// Outgoing bytes a connection may have queued before writes to it fail: bounded, so a
/// client that stops reading cannot make the server hold its backlog.
const MAX_WRITE_BUFFER: usize = 64 * 1024;

/// Where a connection starts, and (for browsers, which cannot set headers on a WebSocket)
/// its credential.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct RealtimeParams {
    /// Resume after this cursor (from the last event seen); live from now when absent.
    after: Option<String>,
    /// The API token, when it cannot be sent as `Authorization: Bearer`.
    access_token: Option<String>,
}

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/realtime", get(agent_socket))
}

/// The cursor a connection resumes after: the client's, or the head of the store.
pub(crate) async fn starting_cursor(
    state: &AppState,
    after: Option<&str>,
) -> Result<Cursor, ApiError> {
    match after {
        Some(raw) => crate::routes::events::cursor("after", Some(raw)),
        None => Ok(head(&state.pool).await?),
    }
}

/// Upgrades with this service's limits on frame sizes and buffers.
pub(crate) fn upgrade(
    socket: WebSocketUpgrade,
    state: AppState,
    peer: Peer,
    after: Cursor,
) -> Response {
    socket
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        // Buffers are allocated per connection up front: small ones keep idle
        // connections cheap. Every message is written at once rather than batched.
        .read_buffer_size(MAX_CLIENT_MESSAGE)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_upgrade(move |socket| connection::run(socket, state, peer, after))
}

/// An agent's live connection: every conversation event of the tenant, typing and viewing
/// of the team and visitors, and the agent's unread counts. The credential is an API token
/// (header or `access_token`) or, for the console, the session cookie, which a browser sends
/// on a same-origin upgrade. A page of another site can make a browser open a WebSocket here
/// with that cookie too, so a cookie-authenticated upgrade must come from this server's
/// origin.
#[utoipa::path(get, path = "/api/v1/realtime", tag = "realtime", params(RealtimeParams),
    security(("bearer" = [])),
    responses((status = 101, description = "Switching to the WebSocket protocol (docs/realtime.md)"),
              (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
pub(crate) async fn agent_socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppQuery(params): AppQuery<RealtimeParams>,
    socket: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or(params.access_token.as_deref());
    let principal = match token {
        Some(token) => state
            .tokens
            .authenticate(&state.pool, token.trim())
            .await?
            .ok_or_else(|| ApiError::unauthorized("the token is not valid"))?,
        None => {
            let secret = session::cookie_secret(&headers).ok_or_else(|| {
                ApiError::unauthorized("send the API token as `access_token`, or sign in")
            })?;
            session::check_origin(&headers)?;
            session::session_of(&state, secret).await?.principal
        }
    };
    let after = starting_cursor(&state, params.after.as_deref()).await?;
    let peer = Peer::Agent {
        tenant_id: principal.tenant_id.as_uuid(),
        agent_id: principal.agent_id.as_uuid(),
        read_only: principal.role == Role::Auditor,
    };
    Ok(upgrade(socket, state, peer, after))
}
