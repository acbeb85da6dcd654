//! The WhatsApp channel over HTTP: channel setup for admins, approved templates for agents,
//! and the per-channel webhook Meta calls (`/webhooks/whatsapp/{channel_id}`, outside
//! `/api/v1` because Meta authenticates by signature, not by bearer token).
//!
//! The webhook checks the signature on the raw bytes before it parses anything, stores the
//! verified delivery, and only then answers 200; workers apply it (see
//! `commands::whatsapp::ingest`), so nothing Meta was told we have can be lost.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use commands::whatsapp::channels::{self, Channel, ChannelError, NewChannel};
use commands::whatsapp::signature::{self, SignatureError};
use commands::whatsapp::{ingest, wire};
use domain::actor::Actor;
use domain::conversation::{ConversationCommand, Template};
use domain::ids::{ChannelId, ConversationId};
use domain::text::Name;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;

use super::conversations::{MessageAnswer, chosen_message_id, write_message};
use crate::error::ApiError;
use crate::extract::{AppJson, Auth, IdempotencyKey, path_id};
use crate::state::AppState;

/// The largest webhook delivery accepted. Meta batches updates, so this is above the API's
/// usual body limit; anything larger is refused before it is read.
const WEBHOOK_MAX_BYTES: usize = 1024 * 1024;
/// The longest `hub.challenge` echoed; Meta's are short numbers.
const MAX_CHALLENGE_BYTES: usize = 256;

/// The admin and agent routes, nested under `/api/v1`.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/whatsapp/channels",
            post(create_channel).get(list_channels),
        )
        .route(
            "/whatsapp/channels/{id}",
            get(get_channel).delete(delete_channel),
        )
        .route(
            "/conversations/{id}/whatsapp/templates",
            post(send_template),
        )
}

/// The webhook routes, at the top level.
pub(super) fn webhooks() -> Router<AppState> {
    Router::new().route(
        "/webhooks/whatsapp/{channel_id}",
        get(verify_webhook)
            .post(receive_webhook)
            .layer(DefaultBodyLimit::max(WEBHOOK_MAX_BYTES)),
    )
}

/// A WhatsApp number to connect. The secrets are stored encrypted and never shown again.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewChannelBody {
    /// A name for the team; defaults to `WhatsApp <phone_number_id>`.
    name: Option<String>,
    /// Meta's phone number id (WhatsApp Manager → API Setup), digits.
    #[schema(example = "106540352242922")]
    phone_number_id: String,
    /// Meta's WhatsApp Business Account id, digits.
    #[schema(example = "102290129340398")]
    business_account_id: String,
    /// A system user's permanent access token with `whatsapp_business_messaging`.
    access_token: String,
    /// The Meta app's secret (App settings → Basic), which signs webhooks.
    app_secret: String,
    /// A token you choose; Meta sends it back when you register the webhook URL.
    verify_token: String,
}

/// A connected WhatsApp number. Its secrets are never returned.
#[derive(Serialize, ToSchema)]
pub(crate) struct ChannelView {
    id: uuid::Uuid,
    name: String,
    phone_number_id: String,
    business_account_id: String,
    /// The callback URL to register in the Meta app's WhatsApp webhook settings.
    webhook_url: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl ChannelView {
    fn new(channel: Channel, public_url: &str) -> Self {
        Self {
            webhook_url: format!("{public_url}/webhooks/whatsapp/{}", channel.id),
            id: channel.id,
            name: channel.name,
            phone_number_id: channel.phone_number_id,
            business_account_id: channel.business_account_id,
            created_at: channel.created_at,
        }
    }
}

/// An approved template to send, with its body parameters.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTemplate {
    /// Optional client-chosen message id (UUID), unique in the conversation.
    id: Option<String>,
    /// The template's name as approved in WhatsApp Manager.
    #[schema(example = "order_follow_up")]
    name: String,
    /// Its language code.
    #[schema(example = "en_US")]
    language: String,
    /// Values for the body's `{{1}}`, `{{2}}`, … in order.
    #[serde(default)]
    parameters: Vec<String>,
}

impl From<ChannelError> for ApiError {
    fn from(error: ChannelError) -> Self {
        match error {
            ChannelError::PhoneNumberTaken => ApiError::new(
                StatusCode::CONFLICT,
                "phone_number_taken",
                "this phone number id is already connected (a number belongs to one account)",
            )
            .at("phone_number_id"),
            ChannelError::Database(e) => e.into(),
            unreadable @ ChannelError::Unreadable(_) => ApiError::internal(unreadable),
        }
    }
}

/// Checks a credential-like field: 1 to `max` visible ASCII characters.
fn token_field<'a>(field: &str, value: &'a str, max: usize) -> Result<&'a str, ApiError> {
    let ok = (1..=max).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic());
    ok.then_some(value).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_credential",
            format!("`{field}` must be 1 to {max} visible ASCII characters without spaces"),
        )
        .at(field)
    })
}

/// Checks one of Meta's numeric ids.
fn meta_id<'a>(field: &str, value: &'a str) -> Result<&'a str, ApiError> {
    let ok = (1..=32).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(value).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_meta_id",
            format!("`{field}` is Meta's numeric id: 1 to 32 digits"),
        )
        .at(field)
    })
}

/// Connects a WhatsApp number (admins only). A number can be connected to one account only.
#[utoipa::path(post, path = "/api/v1/whatsapp/channels", tag = "whatsapp",
    request_body = NewChannelBody, security(("bearer" = [])),
    responses((status = 201, body = ChannelView), (status = 403, body = crate::error::Problem),
              (status = 409, description = "The number is connected already", body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub(crate) async fn create_channel(
    State(state): State<AppState>,
    auth: Auth,
    AppJson(body): AppJson<NewChannelBody>,
) -> Result<(StatusCode, Json<ChannelView>), ApiError> {
    auth.require_admin()?;
    let phone_number_id = meta_id("phone_number_id", body.phone_number_id.trim())?;
    let business_account_id = meta_id("business_account_id", body.business_account_id.trim())?;
    let name = match body.name.as_deref() {
        Some(raw) => Name::parse(raw).map_err(|e| ApiError::invalid("name", &e))?,
        None => Name::parse(&format!("WhatsApp {phone_number_id}"))
            .map_err(|e| ApiError::invalid("phone_number_id", &e))?,
    };
    let new = NewChannel {
        name: name.as_str(),
        phone_number_id,
        business_account_id,
        access_token: token_field("access_token", body.access_token.trim(), 4096)?,
        app_secret: token_field("app_secret", body.app_secret.trim(), 256)?,
        verify_token: token_field("verify_token", body.verify_token.trim(), 256)?,
    };
    let tenant = auth.principal.tenant_id;
    let channel = channels::create(&state.pool, &state.whatsapp.secrets, tenant, &new).await?;
    Ok((
        StatusCode::CREATED,
        Json(ChannelView::new(channel, &state.public_url)),
    ))
}

/// The account's WhatsApp numbers, oldest first.
#[utoipa::path(get, path = "/api/v1/whatsapp/channels", tag = "whatsapp",
    security(("bearer" = [])), responses((status = 200, body = Vec<ChannelView>)))]
pub(crate) async fn list_channels(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Vec<ChannelView>>, ApiError> {
    let channels = channels::list(&state.pool, auth.principal.tenant_id).await?;
    Ok(Json(
        channels
            .into_iter()
            .map(|c| ChannelView::new(c, &state.public_url))
            .collect(),
    ))
}

fn channel_not_found() -> ApiError {
    ApiError::not_found("channel_not_found", "there is no such WhatsApp channel")
}

/// One WhatsApp number.
#[utoipa::path(get, path = "/api/v1/whatsapp/channels/{id}", tag = "whatsapp",
    security(("bearer" = [])), params(("id" = String, Path, description = "Channel id")),
    responses((status = 200, body = ChannelView), (status = 404, body = crate::error::Problem)))]
pub(crate) async fn get_channel(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<ChannelView>, ApiError> {
    let id = path_id("id", &id, ChannelId::parse)?;
    let channel = channels::get(&state.pool, auth.principal.tenant_id, id)
        .await?
        .ok_or_else(channel_not_found)?;
    Ok(Json(ChannelView::new(channel, &state.public_url)))
}

/// Disconnects a WhatsApp number (admins only): its webhook stops answering and its secrets
/// are erased. Its conversations stay in the inbox.
#[utoipa::path(delete, path = "/api/v1/whatsapp/channels/{id}", tag = "whatsapp",
    security(("bearer" = [])), params(("id" = String, Path, description = "Channel id")),
    responses((status = 204), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)))]
pub(crate) async fn delete_channel(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require_admin()?;
    let id = path_id("id", &id, ChannelId::parse)?;
    if channels::delete(&state.pool, auth.principal.tenant_id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(channel_not_found())
    }
}

/// Sends an approved template in a WhatsApp conversation: what WhatsApp delivers when the
/// contact last wrote more than 24 hours ago. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/whatsapp/templates", tag = "whatsapp",
    request_body = NewTemplate, security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = MessageAnswer), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem),
              (status = 422, description = "Not a WhatsApp conversation, or a bad template", body = crate::error::Problem)))]
pub(crate) async fn send_template(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    AppJson(body): AppJson<NewTemplate>,
) -> Result<Response, ApiError> {
    let conversation = path_id("id", &id, ConversationId::parse)?;
    let message_id = chosen_message_id(body.id.as_deref())?;
    let template = Template::parse(
        body.name.trim(),
        body.language.trim(),
        body.parameters.clone(),
    )
    .map_err(|(field, e)| ApiError::invalid(field, &e))?;
    let command = ConversationCommand::PostTemplate {
        message_id,
        template,
        author: Actor::Agent(auth.principal.agent_id),
    };
    let path = format!("/conversations/{id}/whatsapp/templates");
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

fn forbidden_handshake() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "verification_failed",
        "the webhook verification request does not match this channel",
    )
}

/// Meta's verification handshake: with `hub.mode=subscribe` and the channel's verify token,
/// the answer is `hub.challenge` as plain text; anything else is 403.
#[utoipa::path(get, path = "/webhooks/whatsapp/{channel_id}", tag = "whatsapp",
    params(("channel_id" = String, Path, description = "Channel id"),
           ("hub.mode" = String, Query, description = "`subscribe`"),
           ("hub.verify_token" = String, Query, description = "The channel's verify token"),
           ("hub.challenge" = String, Query, description = "Echoed back")),
    responses((status = 200, description = "The challenge, as text/plain", body = String),
              (status = 403, body = crate::error::Problem)))]
pub(crate) async fn verify_webhook(
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = ChannelId::parse(&channel_id).map_err(|_| forbidden_handshake())?;
    let keys = channels::keys(&state.pool, &state.whatsapp.secrets, id)
        .await?
        .ok_or_else(forbidden_handshake)?;
    let mode = query.get("hub.mode").map(String::as_str);
    let token = query.get("hub.verify_token").map(String::as_str);
    match (mode, token, query.get("hub.challenge")) {
        (Some("subscribe"), Some(token), Some(challenge))
            if challenge.len() <= MAX_CHALLENGE_BYTES && keys.verify_token_matches(token) =>
        {
            // Echoed as inert text: the challenge is caller-chosen.
            Ok((
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                ],
                challenge.clone(),
            )
                .into_response())
        }
        _ => Err(forbidden_handshake()),
    }
}

/// What the webhook answers once a delivery is stored.
#[derive(Serialize, ToSchema)]
pub(crate) struct Received {
    /// The stored delivery; it is applied to the inbox right after.
    delivery: i64,
}

fn signature_error(error: SignatureError) -> ApiError {
    let code = match error {
        SignatureError::Missing => "signature_missing",
        SignatureError::Malformed | SignatureError::Mismatch => "invalid_signature",
    };
    ApiError::new(StatusCode::UNAUTHORIZED, code, error.to_string()).at("X-Hub-Signature-256")
}

/// Reads a verified body, naming the JSON path at fault.
fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], prefix: &str) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
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
        let path = match (path.as_str(), missing) {
            (".", Some(name)) => format!(".{name}"),
            (".", None) => String::new(),
            (path, Some(name)) => format!(".{path}.{name}"),
            (path, None) => format!(".{path}"),
        };
        let field = format!("{prefix}{path}").trim_start_matches('.').to_owned();
        let problem = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_webhook", message);
        if field.is_empty() {
            problem
        } else {
            problem.at(field)
        }
    })
}

/// A delivery from Meta: the `X-Hub-Signature-256` header must be the HMAC-SHA256 of the raw
/// body under the channel's app secret (401 and nothing stored otherwise). The verified
/// delivery is stored before the 200, then applied: every entry, change, message and status.
#[utoipa::path(post, path = "/webhooks/whatsapp/{channel_id}", tag = "whatsapp",
    params(("channel_id" = String, Path, description = "Channel id"),
           ("X-Hub-Signature-256" = String, Header, description = "`sha256=` + hex HMAC-SHA256 of the body")),
    request_body(content = serde_json::Value, description = "A WhatsApp Cloud API webhook payload"),
    responses((status = 200, body = Received), (status = 401, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem), (status = 413, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub(crate) async fn receive_webhook(
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Received>, ApiError> {
    let id = path_id("channel_id", &channel_id, ChannelId::parse)?;
    let body = body.map_err(|rejection| match rejection {
        BytesRejection::FailedToBufferBody(_) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("a webhook delivery may be at most {WEBHOOK_MAX_BYTES} bytes"),
        ),
        other => ApiError::bad_request("unreadable_body", other.body_text()),
    })?;
    let keys = channels::keys(&state.pool, &state.whatsapp.secrets, id)
        .await?
        .ok_or_else(channel_not_found)?;
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    signature::verify(&keys.app_secret, &body, signature).map_err(|error| {
        metrics::counter!("upzento_whatsapp_webhooks_total", "outcome" => "bad_signature")
            .increment(1);
        signature_error(error)
    })?;

    let webhook: wire::Webhook = parse(&body, "")?;
    if webhook.object != wire::OBJECT {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_object",
            format!("this webhook takes `{}` deliveries", wire::OBJECT),
        )
        .at("object"));
    }
    for (e, entry) in webhook.entry.iter().enumerate() {
        for (c, change) in entry.changes.iter().enumerate() {
            if change.field == "messages" {
                let value = serde_json::to_vec(&change.value).map_err(ApiError::internal)?;
                parse::<wire::MessagesValue>(&value, &format!("entry[{e}].changes[{c}].value"))?;
            }
        }
    }
    let payload: serde_json::Value = parse(&body, "")?;
    let delivery = ingest::store(&state.pool, id, keys.tenant_id, &payload).await?;
    state.whatsapp.deliveries.notify_one();
    metrics::counter!("upzento_whatsapp_webhooks_total", "outcome" => "stored").increment(1);
    Ok(Json(Received { delivery }))
}
