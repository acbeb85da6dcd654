//! The sender: delivers `whatsapp_outbox` to the Graph API and records what happened.
//!
//! A row is taken for a lease, sent with `POST /{version}/{phone_number_id}/messages`, and
//! then, in order: the outcome is written to the row (the `wamid`, or `failed` and why), and
//! the outcome is recorded in the conversation (`WhatsappMessageLinked` and `sent`, or the
//! `failed` status with the reason the agent sees). A 429, a 5xx, a network error or one of
//! Meta's throttling codes is retried with doubling delays (or the `Retry-After` given);
//! any other refusal is permanent.
//!
//! The Graph API takes no idempotency key, so a crash between its answer and the first write
//! sends that message again when the lease runs out: sending is at least once, and that
//! window is one statement wide.

use std::time::Duration;

use chrono::Utc;
use domain::actor::Actor;
use domain::conversation::{ConversationCommand, DeliveryStatus, Wamid};
use domain::ids::{ChannelId, MessageId, TenantId};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use super::wire::{ErrorAnswer, SendAnswer};
use super::{Whatsapp, channels, ingest};
use crate::bus::CommandError;
use crate::context::{CommandContext, stream_id};

/// How long a sender may hold a row.
const LEASE_SECONDS: f64 = 60.0;
/// How often an idle sender looks for due rows.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Attempts before a retryable failure becomes permanent.
const MAX_ATTEMPTS: i32 = 10;
/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// Meta's error codes that mean "slow down" or "try later", whatever the HTTP status:
/// rate limits (4, 80007, 130429, 131056, 131048) and temporary errors (131000, 131016, 133004).
const RETRYABLE_CODES: [i64; 8] = [4, 80007, 130429, 131048, 131056, 131000, 131016, 133004];

/// A row taken for sending or recording.
#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    tenant_id: Uuid,
    conversation_id: Uuid,
    message_id: Option<Uuid>,
    channel_id: Uuid,
    kind: String,
    request: Value,
    state: String,
    attempts: i32,
    wamid: Option<String>,
    error: Option<String>,
}

/// What one attempt came to.
enum Attempt {
    /// Accepted, under this wamid (none for read receipts).
    Sent(Option<String>),
    /// Try again after this long.
    Retry(Duration, String),
    /// Refused for good.
    Failed(String),
}

/// Sends until stopped.
pub async fn run(whatsapp: Whatsapp) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("the HTTP client builds");
    loop {
        match next(&whatsapp).await {
            Ok(Some(row)) => {
                let id = row.id;
                if let Err(error) = handle(&whatsapp, &client, row).await {
                    tracing::warn!(outbox = id, error.cause_chain = ?error, "WhatsApp send step failed; retrying");
                    let _ = sqlx::query(
                        "update whatsapp_outbox set locked_until = null,
                                next_attempt_at = now() + interval '5 seconds' where id = $1",
                    )
                    .bind(id)
                    .execute(&whatsapp.pool)
                    .await;
                }
            }
            Ok(None) => tokio::time::sleep(IDLE_POLL).await,
            Err(error) => {
                tracing::warn!(%error, "could not take an outbox row");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn next(whatsapp: &Whatsapp) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as(
        "update whatsapp_outbox set locked_until = now() + make_interval(secs => $1)
          where id = (select id from whatsapp_outbox
                       where (state = 'pending' or not recorded) and next_attempt_at <= now()
                         and (locked_until is null or locked_until < now())
                       order by next_attempt_at, id
                       for update skip locked
                       limit 1)
          returning id, tenant_id, conversation_id, message_id, channel_id, kind, request,
                    state, attempts, wamid, error",
    )
    .bind(LEASE_SECONDS)
    .fetch_optional(&whatsapp.pool)
    .await
}

async fn handle(whatsapp: &Whatsapp, client: &reqwest::Client, mut row: Row) -> anyhow::Result<()> {
    if row.state == "pending" {
        let attempt = send(whatsapp, client, &row).await?;
        let attempts = row.attempts + 1;
        let read_receipt = row.kind == "read";
        match attempt {
            Attempt::Sent(wamid) => {
                sqlx::query(
                    "update whatsapp_outbox set state = 'sent', wamid = $2, attempts = $3,
                            error = null, recorded = $4, locked_until = null where id = $1",
                )
                .bind(row.id)
                .bind(&wamid)
                .bind(attempts)
                .bind(read_receipt)
                .execute(&whatsapp.pool)
                .await?;
                row.state = "sent".into();
                row.wamid = wamid;
            }
            Attempt::Retry(delay, reason) if attempts < MAX_ATTEMPTS => {
                tracing::info!(
                    outbox = row.id,
                    attempts,
                    reason,
                    "WhatsApp send will be retried"
                );
                sqlx::query(
                    "update whatsapp_outbox set attempts = $2, error = $3, locked_until = null,
                            next_attempt_at = now() + make_interval(secs => $4) where id = $1",
                )
                .bind(row.id)
                .bind(attempts)
                .bind(&reason)
                .bind(delay.as_secs_f64())
                .execute(&whatsapp.pool)
                .await?;
                return Ok(());
            }
            Attempt::Retry(_, reason) | Attempt::Failed(reason) => {
                let reason = if attempts >= MAX_ATTEMPTS {
                    format!("gave up after {attempts} attempts: {reason}")
                } else {
                    reason
                };
                sqlx::query(
                    "update whatsapp_outbox set state = 'failed', attempts = $2, error = $3,
                            recorded = $4, locked_until = null where id = $1",
                )
                .bind(row.id)
                .bind(attempts)
                .bind(&reason)
                .bind(read_receipt)
                .execute(&whatsapp.pool)
                .await?;
                row.state = "failed".into();
                row.error = Some(reason);
            }
        }
        if read_receipt {
            return Ok(());
        }
    }
    record(whatsapp, &row).await
}

/// Records a row's outcome in its conversation, then marks it recorded.
async fn record(whatsapp: &Whatsapp, row: &Row) -> anyhow::Result<()> {
    let Some(message_id) = row.message_id.map(MessageId::from) else {
        return Ok(());
    };
    let tenant = TenantId::from(row.tenant_id);
    let channel = ChannelId::from(row.channel_id);
    let context = CommandContext::new(tenant, Actor::System, format!("whatsapp-outbox-{}", row.id));
    let command = match (row.state.as_str(), &row.wamid) {
        ("sent", Some(wamid)) => ConversationCommand::LinkWhatsappMessage {
            message_id,
            wamid: Wamid::parse(wamid)?,
            kind: row.kind.clone(),
            at: Utc::now(),
        },
        _ => ConversationCommand::UpdateMessageStatus {
            message_id,
            status: DeliveryStatus::Failed,
            error: row.error.clone(),
            at: Utc::now(),
        },
    };
    let stream = stream_id(tenant, row.conversation_id);
    match whatsapp
        .conversations
        .execute(&stream, command, &context)
        .await
    {
        // Refused: the status has moved past it already (a webhook came first).
        Ok(_) | Err(CommandError::Rejected(_)) => {}
        Err(error) => return Err(error.into()),
    }
    sqlx::query("update whatsapp_outbox set recorded = true, locked_until = null where id = $1")
        .bind(row.id)
        .execute(&whatsapp.pool)
        .await?;
    if let Some(wamid) = &row.wamid {
        ingest::apply_parked(whatsapp, channel, tenant, wamid).await?;
    }
    Ok(())
}

/// One attempt at the Graph API.
async fn send(whatsapp: &Whatsapp, client: &reqwest::Client, row: &Row) -> anyhow::Result<Attempt> {
    let Some(keys) = channels::keys(
        &whatsapp.pool,
        &whatsapp.secrets,
        ChannelId::from(row.channel_id),
    )
    .await?
    else {
        return Ok(Attempt::Failed(
            "the WhatsApp channel was removed before the message was sent".into(),
        ));
    };
    let graph = &whatsapp.graph;
    let url = format!(
        "{}/{}/{}/messages",
        graph.base_url, graph.version, keys.phone_number_id
    );
    let backoff = graph
        .retry_base
        .saturating_mul(1 << row.attempts.clamp(0, 16))
        .min(MAX_BACKOFF);
    let response = match client
        .post(&url)
        .bearer_auth(&keys.access_token)
        .json(&row.request)
        .send()
        .await
    {
        Ok(response) => response,
        Err(error) => {
            return Ok(Attempt::Retry(
                backoff,
                format!("the Graph API could not be reached: {error}"),
            ));
        }
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(MAX_BACKOFF));
    let body = response.text().await.unwrap_or_default();
    if status.is_success() {
        let wamid = serde_json::from_str::<SendAnswer>(&body)
            .ok()
            .and_then(|a| a.messages.into_iter().next())
            .map(|m| m.id);
        if wamid.is_none() && row.kind != "read" {
            return Ok(Attempt::Failed(format!(
                "the Graph API accepted the message but named no message id: {}",
                body.chars().take(300).collect::<String>()
            )));
        }
        return Ok(Attempt::Sent(wamid));
    }
    let error = serde_json::from_str::<ErrorAnswer>(&body)
        .ok()
        .map(|a| a.error);
    let reason = error.as_ref().map_or_else(
        || {
            format!(
                "the Graph API answered {status}: {}",
                body.chars().take(300).collect::<String>()
            )
        },
        |e| e.reason(),
    );
    let retryable = status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
        || error
            .as_ref()
            .is_some_and(|e| RETRYABLE_CODES.contains(&e.code));
    Ok(if retryable {
        Attempt::Retry(retry_after.unwrap_or(backoff), reason)
    } else {
        Attempt::Failed(reason)
    })
}
