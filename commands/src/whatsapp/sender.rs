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
use super::{Whatsapp, channels, ingest, while_locked};
use crate::bus::CommandError;
use crate::context::{CommandContext, stream_id};

/// The first key of the advisory locks that mark an outbox row as being sent (the second
/// is the row id): "WO".
const LOCK_SPACE: i32 = 0x574f;
/// Due rows a sender looks at per round.
const CANDIDATES: i64 = 20;
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
        if let Err(error) = work(&whatsapp, &client).await {
            tracing::warn!(%error, "WhatsApp sender failed; restarting");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Sends due rows on a connection of its own, which holds the advisory lock of the row being
/// sent: another sender (on another instance) skips it, and if this process dies the lock
/// goes with its connection, so the row is taken up again at once.
async fn work(whatsapp: &Whatsapp, client: &reqwest::Client) -> Result<(), sqlx::Error> {
    let mut conn = whatsapp.pool.acquire().await?.detach();
    loop {
        let due: Vec<i64> = sqlx::query_scalar(
            "select id from whatsapp_outbox
              where (state = 'pending' or not recorded) and next_attempt_at <= now()
              order by next_attempt_at, id limit $1",
        )
        .bind(CANDIDATES)
        .fetch_all(&whatsapp.pool)
        .await?;
        if due.is_empty() {
            tokio::time::sleep(IDLE_POLL).await;
            continue;
        }
        for id in due {
            let attempt = while_locked(&mut conn, LOCK_SPACE, id, async {
                let Some(row) = take(&whatsapp.pool, id).await? else {
                    return Ok(());
                };
                if let Err(error) = handle(whatsapp, client, row).await {
                    tracing::warn!(outbox = id, error.cause_chain = ?error, "WhatsApp send step failed; retrying");
                    sqlx::query(
                        "update whatsapp_outbox
                            set next_attempt_at = now() + interval '5 seconds' where id = $1",
                    )
                    .bind(id)
                    .execute(&whatsapp.pool)
                    .await?;
                }
                Ok::<_, sqlx::Error>(())
            })
            .await?;
            attempt.transpose()?;
        }
    }
}

/// The row, if it is still due (no one sent or recorded it in the meantime).
async fn take(pool: &sqlx::PgPool, id: i64) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as(
        "select id, tenant_id, conversation_id, message_id, channel_id, kind, request,
                state, attempts, wamid, error
           from whatsapp_outbox
          where id = $1 and (state = 'pending' or not recorded) and next_attempt_at <= now()",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

async fn handle(whatsapp: &Whatsapp, client: &reqwest::Client, mut row: Row) -> anyhow::Result<()> {
    if row.state == "pending" {
        let attempt = send(whatsapp, client, &row).await?;
        let attempts = row.attempts + 1;
        let read_receipt = row.kind == "read";
        let outcome = match &attempt {
            Attempt::Sent(_) => "sent",
            Attempt::Retry(..) if attempts < MAX_ATTEMPTS => "retried",
            Attempt::Retry(..) | Attempt::Failed(_) => "failed",
        };
        metrics::counter!("upzento_whatsapp_sends_total", "kind" => row.kind.clone(), "outcome" => outcome)
            .increment(1);
        match attempt {
            Attempt::Sent(wamid) => {
                sqlx::query(
                    "update whatsapp_outbox set state = 'sent', wamid = $2, attempts = $3,
                            error = null, recorded = $4 where id = $1",
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
                    "update whatsapp_outbox set attempts = $2, error = $3,
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
                            recorded = $4 where id = $1",
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
    sqlx::query("update whatsapp_outbox set recorded = true where id = $1")
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
