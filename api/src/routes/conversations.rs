//! Conversation commands: start, messages and notes, delivery status, read markers,
//! assignment, status and labels. Reads come from the read models (see the read-side docs).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use commands::bus::Execution;
use commands::context::stream_id;
use commands::store::{Committed, IdempotencyRecord};
use commands::tenancy;
use domain::actor::Actor;
use domain::conversation::{
    Contact, ConversationCommand, ConversationStatus, DeliveryStatus, Source,
};
use domain::ids::{AgentId, ConversationId, MessageId, TeamId};
use domain::text::{Email, Label, MessageContent, Name, Phone};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{AppJson, Auth, IdempotencyKey, path_id};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/conversations", post(start_conversation))
        .route("/conversations/{id}/messages", post(post_message))
        .route(
            "/conversations/{id}/messages/{message_id}/status",
            post(update_message_status),
        )
        .route("/conversations/{id}/read", post(mark_read))
        .route("/conversations/{id}/assignment", post(assign))
        .route("/conversations/{id}/status", post(change_status))
        .route("/conversations/{id}/labels", post(add_label))
        .route("/conversations/{id}/labels/{label}", delete(remove_label))
}

/// Where a command left the conversation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CommandAnswer {
    /// The conversation.
    pub id: String,
    /// Version of the conversation's event stream.
    pub version: usize,
    /// Global position the command's events reached; a query can wait for it
    /// (read-your-writes). `null` when the command changed nothing.
    pub position: Option<i64>,
}

/// A posted message.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageAnswer {
    /// The conversation.
    pub conversation_id: String,
    /// The message.
    pub message_id: String,
    /// Version of the conversation's event stream.
    pub version: usize,
    /// Global position the message reached.
    pub position: Option<i64>,
}

/// Who the conversation is with.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactBody {
    name: Option<String>,
    email: Option<String>,
    /// International format, e.g. `+4915112345678`.
    phone: Option<String>,
}

/// A conversation started by an integration (the API channel).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewConversation {
    /// Must be `api`: web and WhatsApp conversations start in their channels.
    #[schema(value_type = String, example = "api")]
    source: Source,
    #[serde(default)]
    contact: ContactBody,
}

/// Which way a message goes.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MessageType {
    /// From the contact.
    Incoming,
    /// To the contact (or, with `private`, a note).
    Outgoing,
}

/// A message or private note.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewMessage {
    /// Optional client-chosen id (UUID), unique in the conversation.
    id: Option<String>,
    content: String,
    message_type: MessageType,
    /// A note for the team only; outgoing only.
    #[serde(default)]
    private: bool,
    /// For incoming messages: when the contact sent it. Defaults to now.
    sent_at: Option<DateTime<Utc>>,
}

/// A delivery status report for an outgoing message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewStatus {
    /// `sent`, `delivered`, `read` or `failed`.
    #[schema(value_type = String, example = "delivered")]
    status: DeliveryStatus,
    /// Why it failed, for `failed`.
    error: Option<String>,
    /// When it happened; defaults to now.
    at: Option<DateTime<Utc>>,
}

/// Who is responsible; both `null` unassigns.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAssignment {
    agent_id: Option<String>,
    team_id: Option<String>,
}

/// A workflow status.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewConversationStatus {
    /// `open`, `pending`, `resolved` or `snoozed`.
    #[schema(value_type = String, example = "resolved")]
    status: ConversationStatus,
    /// Required for `snoozed`, in the future.
    snoozed_until: Option<DateTime<Utc>>,
}

/// A label to put on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewLabel {
    #[schema(example = "vip")]
    label: String,
}

fn optional<T, E: domain::rejection::Rejection>(
    field: &str,
    raw: Option<&str>,
    parse: fn(&str) -> Result<T, E>,
) -> Result<Option<T>, ApiError> {
    raw.map(|v| parse(v).map_err(|e| ApiError::invalid(field, &e)))
        .transpose()
}

fn unprocessable_id(field: &str, error: domain::ids::InvalidId) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_id",
        error.to_string(),
    )
    .at(field)
}

/// The hash that ties an idempotency key to one request: method, path and the body as parsed.
fn fingerprint(path: &str, body: &impl Serialize) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"POST ");
    hasher.update(path.as_bytes());
    hasher.update(serde_json::to_vec(body).unwrap_or_default());
    hex::encode(hasher.finalize())
}

/// Runs a conversation command, once per idempotency key when one is given, and answers
/// `201` with what `answer` builds (the stored first answer on a retry).
async fn run_idempotent<T: Serialize>(
    state: &AppState,
    auth: &Auth,
    stream: &str,
    command: ConversationCommand,
    key: Option<String>,
    fingerprint: String,
    answer: impl Fn(Committed) -> T + Sync,
) -> Result<Response, ApiError> {
    let context = auth.context();
    let respond = |c: Committed| serde_json::to_value(answer(c)).unwrap_or_default();
    let (body, replayed) = match key {
        Some(key) => {
            let record = IdempotencyRecord {
                key: &key,
                fingerprint: &fingerprint,
                response: &respond,
            };
            match state
                .conversations
                .execute_idempotent(stream, command, &context, record)
                .await?
            {
                Execution::Ran(o) => (respond(committed(o.version, o.position)), false),
                Execution::Replayed(stored) => (stored, true),
            }
        }
        None => {
            let o = state
                .conversations
                .execute(stream, command, &context)
                .await?;
            (respond(committed(o.version, o.position)), false)
        }
    };
    let mut headers = HeaderMap::new();
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok((StatusCode::CREATED, headers, Json(body)).into_response())
}

fn committed(version: usize, position: Option<i64>) -> Committed {
    Committed {
        version,
        position: position.unwrap_or_default(),
    }
}

/// Starts a conversation for a contact of an integration. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/conversations", tag = "conversations",
    request_body = NewConversation, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = CommandAnswer), (status = 422, body = crate::error::Problem)))]
pub(crate) async fn start_conversation(
    State(state): State<AppState>,
    auth: Auth,
    IdempotencyKey(key): IdempotencyKey,
    AppJson(body): AppJson<NewConversation>,
) -> Result<Response, ApiError> {
    if body.source != Source::Api {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_source",
            "only `api` conversations start here; web and WhatsApp conversations start in their channels",
        )
        .at("source"));
    }
    let contact = Contact {
        name: optional("contact.name", body.contact.name.as_deref(), Name::parse)?,
        email: optional("contact.email", body.contact.email.as_deref(), Email::parse)?,
        phone: optional("contact.phone", body.contact.phone.as_deref(), Phone::parse)?,
    };
    let id = ConversationId::new();
    let command = ConversationCommand::Start {
        source: Source::Api,
        contact,
        widget_id: None,
    };
    let print = fingerprint("/conversations", &body);
    let stream = stream_id(auth.principal.tenant_id, id);
    run_idempotent(&state, &auth, &stream, command, key, print, |c| {
        CommandAnswer {
            id: id.to_string(),
            version: c.version,
            position: Some(c.position),
        }
    })
    .await
}

/// Adds a message (incoming or outgoing) or a private note. Honours `Idempotency-Key`: a
/// retry answers the first answer and adds nothing.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "conversations",
    request_body = NewMessage, security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = MessageAnswer), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub(crate) async fn post_message(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    AppJson(body): AppJson<NewMessage>,
) -> Result<Response, ApiError> {
    let conversation = path_id("id", &id, ConversationId::parse)?;
    let content =
        MessageContent::parse(&body.content).map_err(|e| ApiError::invalid("content", &e))?;
    let message_id = chosen_message_id(body.id.as_deref())?;
    let author = Actor::Agent(auth.principal.agent_id);
    let command = match (body.message_type, body.private) {
        (MessageType::Incoming, true) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_private",
                "only outgoing messages can be private notes",
            )
            .at("private"));
        }
        (MessageType::Outgoing, _) if body.sent_at.is_some() => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_sent_at",
                "`sent_at` is only for incoming messages",
            )
            .at("sent_at"));
        }
        (MessageType::Incoming, false) => ConversationCommand::ReceiveMessage {
            message_id,
            content,
            sent_at: body.sent_at.unwrap_or_else(Utc::now),
        },
        (MessageType::Outgoing, false) => ConversationCommand::PostMessage {
            message_id,
            content,
            author,
            at: Utc::now(),
        },
        (MessageType::Outgoing, true) => ConversationCommand::AddNote {
            message_id,
            content,
            author,
        },
    };
    let path = format!("/conversations/{id}/messages");
    write_message(
        &state,
        &auth,
        (conversation, message_id),
        command,
        key,
        (&path, &body),
    )
    .await
}

/// The message id a request chose (`id`, a UUID), or a new one.
pub(super) fn chosen_message_id(raw: Option<&str>) -> Result<MessageId, ApiError> {
    raw.map(|raw| MessageId::parse(raw).map_err(|e| unprocessable_id("id", e)))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// Runs a command that writes one message, once per idempotency key (tied to the request's
/// `path` and body), and answers 201 with the message's ids.
pub(super) async fn write_message(
    state: &AppState,
    auth: &Auth,
    (conversation, message_id): (ConversationId, MessageId),
    command: ConversationCommand,
    key: Option<String>,
    (path, body): (&str, &impl Serialize),
) -> Result<Response, ApiError> {
    let stream = stream_id(auth.principal.tenant_id, conversation);
    run_idempotent(
        state,
        auth,
        &stream,
        command,
        key,
        fingerprint(path, body),
        |c| MessageAnswer {
            conversation_id: conversation.to_string(),
            message_id: message_id.to_string(),
            version: c.version,
            position: Some(c.position),
        },
    )
    .await
}

async fn execute(
    state: &AppState,
    auth: &Auth,
    id: ConversationId,
    command: ConversationCommand,
) -> Result<Json<CommandAnswer>, ApiError> {
    let outcome = state
        .conversations
        .execute(
            &stream_id(auth.principal.tenant_id, id),
            command,
            &auth.context(),
        )
        .await?;
    Ok(Json(CommandAnswer {
        id: id.to_string(),
        version: outcome.version,
        position: outcome.position,
    }))
}

/// Reports how far an outgoing message got. Status only moves forward; a repeat changes nothing.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages/{message_id}/status",
    tag = "conversations", request_body = NewStatus, security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id"),
           ("message_id" = String, Path, description = "Message id")),
    responses((status = 200, body = CommandAnswer), (status = 404, body = crate::error::Problem),
              (status = 409, description = "The status would go backwards", body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub(crate) async fn update_message_status(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, message_id)): Path<(String, String)>,
    AppJson(body): AppJson<NewStatus>,
) -> Result<Json<CommandAnswer>, ApiError> {
    let id = path_id("id", &id, ConversationId::parse)?;
    let message_id = path_id("message_id", &message_id, MessageId::parse)?;
    if body.error.is_some() && body.status != DeliveryStatus::Failed {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_error",
            "`error` is only for status `failed`",
        )
        .at("error"));
    }
    let command = ConversationCommand::UpdateMessageStatus {
        message_id,
        status: body.status,
        error: body.error,
        at: body.at.unwrap_or_else(Utc::now),
    };
    execute(&state, &auth, id, command).await
}

/// Marks the conversation read by the caller up to its newest message.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/read", tag = "conversations",
    security(("bearer" = [])), params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = CommandAnswer), (status = 404, body = crate::error::Problem)))]
pub(crate) async fn mark_read(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<CommandAnswer>, ApiError> {
    let id = path_id("id", &id, ConversationId::parse)?;
    let agent_id = auth.principal.agent_id;
    execute(
        &state,
        &auth,
        id,
        ConversationCommand::MarkRead { agent_id },
    )
    .await
}

/// Assigns the conversation to an agent and/or a team of the tenant; both `null` unassigns.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/assignment", tag = "conversations",
    request_body = NewAssignment, security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = CommandAnswer), (status = 404, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub(crate) async fn assign(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    AppJson(body): AppJson<NewAssignment>,
) -> Result<Json<CommandAnswer>, ApiError> {
    let id = path_id("id", &id, ConversationId::parse)?;
    let tenant = auth.principal.tenant_id;
    let agent_id = body
        .agent_id
        .as_deref()
        .map(|raw| AgentId::parse(raw).map_err(|e| unprocessable_id("agent_id", e)))
        .transpose()?;
    let team_id = body
        .team_id
        .as_deref()
        .map(|raw| TeamId::parse(raw).map_err(|e| unprocessable_id("team_id", e)))
        .transpose()?;
    let unknown = |field: &str, code, what| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
            format!("no such {what} in this account"),
        )
        .at(field)
    };
    if let Some(agent) = agent_id
        && !tenancy::agent_exists(&state.pool, tenant, agent).await?
    {
        return Err(unknown("agent_id", "agent_not_found", "agent"));
    }
    if let Some(team) = team_id
        && !tenancy::team_exists(&state.pool, tenant, team).await?
    {
        return Err(unknown("team_id", "team_not_found", "team"));
    }
    execute(
        &state,
        &auth,
        id,
        ConversationCommand::Assign { agent_id, team_id },
    )
    .await
}

/// Changes the workflow status; `snoozed` needs `snoozed_until` in the future.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/status", tag = "conversations",
    request_body = NewConversationStatus, security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = CommandAnswer), (status = 404, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub(crate) async fn change_status(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    AppJson(body): AppJson<NewConversationStatus>,
) -> Result<Json<CommandAnswer>, ApiError> {
    let id = path_id("id", &id, ConversationId::parse)?;
    let command = ConversationCommand::ChangeStatus {
        status: body.status,
        snoozed_until: body.snoozed_until,
        now: Utc::now(),
    };
    execute(&state, &auth, id, command).await
}

/// Puts a label on; a label already there changes nothing.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/labels", tag = "conversations",
    request_body = NewLabel, security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = CommandAnswer), (status = 404, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub(crate) async fn add_label(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    AppJson(body): AppJson<NewLabel>,
) -> Result<Json<CommandAnswer>, ApiError> {
    let id = path_id("id", &id, ConversationId::parse)?;
    let label = Label::parse(&body.label).map_err(|e| ApiError::invalid("label", &e))?;
    execute(&state, &auth, id, ConversationCommand::AddLabel { label }).await
}

/// Takes a label off; a label not there changes nothing.
#[utoipa::path(delete, path = "/api/v1/conversations/{id}/labels/{label}", tag = "conversations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id"),
           ("label" = String, Path, description = "The label")),
    responses((status = 200, body = CommandAnswer), (status = 404, body = crate::error::Problem)))]
pub(crate) async fn remove_label(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, label)): Path<(String, String)>,
) -> Result<Json<CommandAnswer>, ApiError> {
    let id = path_id("id", &id, ConversationId::parse)?;
    let label = Label::parse(&label).map_err(|e| ApiError::invalid("label", &e))?;
    execute(
        &state,
        &auth,
        id,
        ConversationCommand::RemoveLabel { label },
    )
    .await
}
