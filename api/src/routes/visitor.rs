//! The website channel's visitor API (`/api/v1/widget/{public_key}/...`) and `/widget.js`.
//!
//! Every request here names the widget by its public key, and is let in only from the
//! widget's verified domains (see [`crate::visitor::gate`]), within the rate limits. The
//! visitor's own credential is the token the session answers; it names the tenant, the
//! widget and the visitor, so a visitor reaches their own conversation and nothing else.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use commands::bus::CommandError;
use commands::context::{CommandContext, stream_id};
use domain::actor::Actor;
use domain::conversation::{
    Contact, ConversationCommand, ConversationError, DeliveryStatus, Source,
};
use domain::ids::MessageId;
use domain::text::{Email, MessageContent, Name};
use projections::runtime::checkpoint;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{AppJson, AppQuery};
use crate::realtime::connection::Peer;
use crate::realtime::{starting_cursor, upgrade};
use crate::routes::widgets::Appearance;
use crate::state::AppState;
use crate::visitor::gate::Admission;
use crate::visitor::keys::{Keys, VisitorClaims, VisitorIdentity};

/// The widget script, served as it is in the repository: no build step.
const WIDGET_JS: &str = include_str!("../../widget/widget.js");

pub(super) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/widget/{public_key}/sessions",
            post(start_session).options(preflight),
        )
        .route(
            "/widget/{public_key}/identify",
            post(identify).options(preflight),
        )
        .route(
            "/widget/{public_key}/messages",
            get(history).post(send_message).options(preflight),
        )
        .route(
            "/widget/{public_key}/receipts",
            post(acknowledge).options(preflight),
        )
        .route("/widget/{public_key}/realtime", get(visitor_socket))
        .route_layer(middleware::from_fn_with_state(state, admit))
}

/// `/widget.js`, outside `/api/v1`.
pub(super) fn script() -> Router<AppState> {
    Router::new().route("/widget.js", get(widget_js))
}

async fn widget_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        WIDGET_JS,
    )
        .into_response()
}

/// Lets a request in only for a live widget, from one of its verified domains, within the
/// address's rate limit; answers CORS for exactly that origin.
async fn admit(
    State(state): State<AppState>,
    params: RawPathParams,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let key = params
        .iter()
        .find(|(name, _)| *name == "public_key")
        .map(|(_, value)| value.to_owned())
        .unwrap_or_default();
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let admitted = async {
        let admission = state.gate.admit(&key).await?;
        admission.check_origin(origin.as_deref())?;
        Ok::<_, ApiError>(admission)
    }
    .await;
    let admission = match admitted {
        Ok(admission) => admission,
        Err(refused) => {
            tracing::info!(origin = origin.as_deref(), code = ?refused.status(), "visitor request refused");
            return refused.into_response();
        }
    };
    let mut response = match state.limits.check(peer.ip()) {
        Ok(()) => {
            request.extensions_mut().insert(admission);
            next.run(request).await
        }
        Err(limited) => limited.into_response(),
    };
    let headers = response.headers_mut();
    if let Some(origin) = origin.and_then(|o| HeaderValue::from_str(&o).ok()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after"),
        );
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(600));
    }
    response
}

async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// A visitor, proven by their token, on the widget the path names.
pub(crate) struct Visitor {
    claims: VisitorClaims,
    admission: Arc<Admission>,
    request_id: String,
}

impl Visitor {
    fn context(&self) -> CommandContext {
        CommandContext::new(
            self.claims.tenant,
            Actor::Visitor(self.claims.actor_id()),
            self.request_id.clone(),
        )
    }

    fn stream(&self) -> String {
        stream_id(self.claims.tenant, self.claims.conversation_id())
    }
}

/// The widget the gate let the request in for.
pub(crate) struct Admitted(Arc<Admission>);

impl<S: Send + Sync> FromRequestParts<S> for Admitted {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        admission_of(parts).map(Self)
    }
}

fn admission_of(parts: &Parts) -> Result<Arc<Admission>, ApiError> {
    parts
        .extensions
        .get::<Arc<Admission>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("visitor route without admission"))
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let admission = admission_of(parts)?;
        let from_query = || {
            parts.uri.query().and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "token")
                    .map(|(_, v)| v.into_owned())
            })
        };
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)
            .or_else(from_query)
            .ok_or_else(|| ApiError::unauthorized("start a session first"))?;
        let claims = state
            .keys
            .get()
            .await?
            .verify(token.trim(), Utc::now())
            .filter(|c| c.widget == admission.widget_id && c.tenant == admission.tenant_id)
            .ok_or_else(|| {
                ApiError::unauthorized("the visitor token is not valid; start a session again")
            })?;
        // The address was counted by the gate; here the visitor is.
        state.limits.check_visitor(&claims.actor_id())?;
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| Uuid::now_v7().to_string());
        Ok(Self {
            claims,
            admission,
            request_id,
        })
    }
}

/// A session: the visitor's token and everything the widget shows first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Session {
    /// Keep it (the widget uses `localStorage`) and send it as `Authorization: Bearer`.
    token: String,
    /// The visitor's conversation on this widget (it exists once they have written).
    conversation_id: String,
    /// Whether the visitor is a verified user of the site.
    identified: bool,
    /// Whether an agent of the team is connected now.
    agents_online: bool,
    /// What the widget needs to render.
    widget: Appearance,
}

fn session(
    state: &AppState,
    keys: &Keys,
    admission: &Admission,
    claims: &VisitorClaims,
) -> Session {
    Session {
        token: keys.sign(claims),
        conversation_id: claims.conversation_id().to_string(),
        identified: matches!(claims.visitor, VisitorIdentity::User(_)),
        agents_online: state.signals.agents_online(admission.tenant_id.as_uuid()),
        widget: (&admission.settings).into(),
    }
}

/// Starting a session: with the token a returning visitor kept, if any.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSession {
    /// The token from an earlier session on this widget; a new visitor sends none.
    token: Option<String>,
}

/// Starts or resumes a visitor session. Refused unless the page's origin is one of the
/// widget's verified domains and the widget is enabled.
#[utoipa::path(post, path = "/api/v1/widget/{public_key}/sessions", tag = "widget",
    params(("public_key" = String, Path, description = "The widget's public key")),
    request_body = NewSession,
    responses((status = 200, body = Session),
              (status = 403, description = "The page is not on a verified domain", body = crate::error::Problem),
              (status = 404, description = "No live widget has this key", body = crate::error::Problem),
              (status = 429, body = crate::error::Problem)))]
pub(crate) async fn start_session(
    State(state): State<AppState>,
    Admitted(admission): Admitted,
    AppJson(NewSession { token }): AppJson<NewSession>,
) -> Result<Json<Session>, ApiError> {
    let now = Utc::now();
    let keys = state.keys.get().await?;
    let visitor = token
        .and_then(|t| keys.verify(&t, now))
        .filter(|c| c.widget == admission.widget_id && c.tenant == admission.tenant_id)
        .map(|c| c.visitor)
        .unwrap_or_else(|| VisitorIdentity::Anonymous(Uuid::new_v4()));
    let claims = VisitorClaims::new(admission.tenant_id, admission.widget_id, visitor, now);
    Ok(Json(session(&state, keys, &admission, &claims)))
}

/// A logged-in user of the site, vouched for by the site's server.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Identity {
    /// The site's own id for the user.
    user_id: String,
    /// `hex(HMAC-SHA256(widget identity secret, user_id))`, computed by the site's server.
    hash: String,
}

/// Identifies the visitor as a user of the site: from now on their conversation is the
/// user's, on every device. A wrong hash is refused.
#[utoipa::path(post, path = "/api/v1/widget/{public_key}/identify", tag = "widget",
    params(("public_key" = String, Path, description = "The widget's public key")),
    request_body = Identity, security(("visitor" = [])),
    responses((status = 200, body = Session),
              (status = 401, body = crate::error::Problem),
              (status = 403, description = "The hash does not match", body = crate::error::Problem)))]
pub(crate) async fn identify(
    State(state): State<AppState>,
    visitor: Visitor,
    AppJson(body): AppJson<Identity>,
) -> Result<Json<Session>, ApiError> {
    let user_id = body.user_id.trim();
    if user_id.is_empty() || user_id.len() > 255 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_user_id",
            "a user id is 1 to 255 characters",
        )
        .at("user_id"));
    }
    let keys = state.keys.get().await?;
    if !keys.identity_matches(visitor.admission.widget_id, user_id, &body.hash) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "identity_not_verified",
            "the hash is not the HMAC of this user id under the widget's identity secret",
        )
        .at("hash"));
    }
    let claims = VisitorClaims::new(
        visitor.claims.tenant,
        visitor.claims.widget,
        VisitorIdentity::User(user_id.to_owned()),
        Utc::now(),
    );
    Ok(Json(session(&state, keys, &visitor.admission, &claims)))
}

/// A message as the visitor sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VisitorMessage {
    id: Uuid,
    /// `visitor` or `team`.
    from: &'static str,
    /// Text; the widget renders it as text, never as HTML.
    content: String,
    created_at: chrono::DateTime<Utc>,
    /// For the team's messages: `sent`, `delivered` or `read` (by the visitor).
    status: Option<String>,
}

/// The visitor's conversation so far, and where to follow it live from.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VisitorHistory {
    data: Vec<VisitorMessage>,
    /// Connect the WebSocket with `after=<cursor>`: nothing between is missed.
    cursor: String,
}

/// Which page of history.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryParams {
    /// Messages before this message id.
    before: Option<Uuid>,
    /// At most this many (default 50, at most 200).
    limit: Option<i64>,
}

/// The visitor's conversation, oldest first, without the team's private notes.
#[utoipa::path(get, path = "/api/v1/widget/{public_key}/messages", tag = "widget",
    params(("public_key" = String, Path, description = "The widget's public key"), HistoryParams),
    security(("visitor" = [])),
    responses((status = 200, body = VisitorHistory), (status = 401, body = crate::error::Problem)))]
pub(crate) async fn history(
    State(state): State<AppState>,
    visitor: Visitor,
    AppQuery(params): AppQuery<HistoryParams>,
) -> Result<Json<VisitorHistory>, ApiError> {
    let limit = params.limit.unwrap_or(50).clamp(1, 200);
    // The checkpoint first: the rows read after it show at least that much.
    let cursor = checkpoint(&state.pool, projections::inbox::NAME).await?;
    let rows = projections::queries::messages(
        &state.pool,
        visitor.claims.tenant.as_uuid(),
        visitor.claims.conversation_id().as_uuid(),
        (params.before, None),
        limit,
        projections::queries::Timeline::MessagesOnly,
    )
    .await?;
    let data = rows
        .into_iter()
        .map(|m| VisitorMessage {
            id: m.id,
            from: if m.direction == "incoming" {
                "visitor"
            } else {
                "team"
            },
            content: m.content,
            created_at: m.created_at,
            status: m.delivery.status,
        })
        .collect();
    Ok(Json(VisitorHistory {
        data,
        cursor: cursor.to_string(),
    }))
}

/// A message from the visitor; the pre-chat form's answers ride along with the first.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VisitorMessageBody {
    /// Optional client-chosen id (UUID), so a retry is not a second message.
    id: Option<Uuid>,
    content: String,
    /// From the pre-chat form.
    name: Option<String>,
    /// From the pre-chat form.
    email: Option<String>,
}

/// What sending did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Sent {
    id: Uuid,
    conversation_id: Uuid,
    /// Global position the message reached.
    position: Option<i64>,
}

/// Sends a message to the team; the first one starts the visitor's conversation.
#[utoipa::path(post, path = "/api/v1/widget/{public_key}/messages", tag = "widget",
    params(("public_key" = String, Path, description = "The widget's public key")),
    request_body = VisitorMessageBody, security(("visitor" = [])),
    responses((status = 201, body = Sent), (status = 401, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub(crate) async fn send_message(
    State(state): State<AppState>,
    visitor: Visitor,
    AppJson(body): AppJson<VisitorMessageBody>,
) -> Result<(StatusCode, Json<Sent>), ApiError> {
    let content =
        MessageContent::parse(&body.content).map_err(|e| ApiError::invalid("content", &e))?;
    let contact = Contact {
        name: body
            .name
            .filter(|n| !n.trim().is_empty())
            .map(|n| Name::parse(&n).map_err(|e| ApiError::invalid("name", &e)))
            .transpose()?,
        email: body
            .email
            .filter(|e| !e.trim().is_empty())
            .map(|e| Email::parse(&e).map_err(|e| ApiError::invalid("email", &e)))
            .transpose()?,
        phone: None,
    };
    let context = visitor.context();
    let stream = visitor.stream();
    let message_id = body.id.map(MessageId::from).unwrap_or_default();
    let receive = ConversationCommand::ReceiveMessage {
        message_id,
        content,
        sent_at: Utc::now(),
    };
    let conversations = &state.conversations;
    // Most messages go to a conversation that exists: the first one starts it, then is
    // received (two first messages racing start it once).
    let mut received = conversations
        .execute(&stream, receive.clone(), &context)
        .await;
    if let Err(CommandError::Rejected(ConversationError::NotFound)) = received {
        let start = ConversationCommand::Start {
            source: Source::Web,
            contact,
            widget_id: Some(visitor.claims.widget),
        };
        match conversations.execute(&stream, start, &context).await {
            Ok(_) | Err(CommandError::Rejected(ConversationError::AlreadyStarted)) => {}
            Err(other) => return Err(other.into()),
        }
        received = conversations.execute(&stream, receive, &context).await;
    }
    // A retry of a message that was stored (a client resending with the same id after an
    // answer got lost) is answered as the first one was, without its position; the id
    // decides, so a different text under a used id is not stored.
    let position = match received {
        Ok(outcome) => outcome.position,
        Err(CommandError::Rejected(ConversationError::DuplicateMessage(_))) => None,
        Err(other) => return Err(other.into()),
    };
    Ok((
        StatusCode::CREATED,
        Json(Sent {
            id: message_id.as_uuid(),
            conversation_id: visitor.claims.conversation_id().as_uuid(),
            position,
        }),
    ))
}

/// The widget reports that the visitor has the team's messages up to one, or has seen them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Receipt {
    /// The newest of the team's messages received or seen.
    message_id: Uuid,
    /// `delivered` or `read`.
    #[schema(value_type = String, example = "read")]
    status: DeliveryStatus,
}

/// Moves the team's messages up to one to `delivered` or `read`; never backwards.
#[utoipa::path(post, path = "/api/v1/widget/{public_key}/receipts", tag = "widget",
    params(("public_key" = String, Path, description = "The widget's public key")),
    request_body = Receipt, security(("visitor" = [])),
    responses((status = 204, description = "Recorded (or already so)"),
              (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    visitor: Visitor,
    AppJson(body): AppJson<Receipt>,
) -> Result<StatusCode, ApiError> {
    let command = ConversationCommand::AcknowledgeByContact {
        up_to: body.message_id.into(),
        status: body.status,
        at: Utc::now(),
    };
    state
        .conversations
        .execute(&visitor.stream(), command, &visitor.context())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where the visitor's live connection starts. Its `token` parameter is read with the
/// visitor's credential (browsers cannot set headers on a WebSocket).
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct VisitorSocketParams {
    /// Resume after this cursor (from the history or the last event seen).
    after: Option<String>,
}

/// The visitor's live connection: their conversation's messages, delivery, "seen" and the
/// team's typing; the visitor's typing goes the other way.
#[utoipa::path(get, path = "/api/v1/widget/{public_key}/realtime", tag = "widget",
    params(("public_key" = String, Path, description = "The widget's public key"),
           ("token" = String, Query, description = "The visitor token"), VisitorSocketParams),
    responses((status = 101, description = "Switching to the WebSocket protocol (docs/realtime.md)"),
              (status = 401, body = crate::error::Problem)))]
pub(crate) async fn visitor_socket(
    State(state): State<AppState>,
    visitor: Visitor,
    AppQuery(params): AppQuery<VisitorSocketParams>,
    socket: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let after = starting_cursor(&state, params.after.as_deref()).await?;
    let peer = Peer::Visitor {
        tenant_id: visitor.claims.tenant.as_uuid(),
        conversation_id: visitor.claims.conversation_id().as_uuid(),
    };
    Ok(upgrade(socket, state, peer, after))
}
