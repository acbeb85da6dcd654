//! Webhook deliveries: stored durably before Meta is answered, then applied by workers.
//!
//! A delivery is applied message by message and status by status, every entry and change of
//! it. Meta delivers at least once and out of order, so:
//!
//! - a message is written with the idempotency key `whatsapp <channel> <wamid>`, whose
//!   primary key is written in the same statement as its events: a redelivery, even one
//!   applied at the same moment by another worker or instance, stores nothing more;
//! - a contact's conversation is reserved in `whatsapp_contacts` (primary key on number and
//!   contact) before it is started, so two first messages start one conversation;
//! - a status is parked first and then applied if its message is known; the sender applies
//!   parked statuses after it records a wamid, so whichever comes second applies it; the
//!   aggregate moves a status forward only, so the order of arrival does not matter.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::actor::Actor;
use domain::conversation::{
    Contact, ConversationCommand, ConversationError, DeliveryStatus, WaId, Wamid,
};
use domain::ids::{ChannelId, ConversationId, MessageId, TenantId};
use domain::text::{MessageContent, Name, Phone};
use serde_json::{Value, json};
use sqlx::PgPool;
use tracing::instrument;
use uuid::Uuid;

use super::wire::{self, MessagesValue, Webhook};
use super::{Whatsapp, while_locked};
use crate::bus::CommandError;
use crate::context::{CommandContext, stream_id};
use crate::store::IdempotencyRecord;

/// The first key of the advisory locks that mark a delivery as being applied (the second is
/// the delivery id): "WA".
const LOCK_SPACE: i32 = 0x5741;
/// Due deliveries a worker looks at per round.
const CANDIDATES: i64 = 20;
/// How often an idle worker looks for due deliveries without being woken.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Parked statuses no message claimed after this long (messages sent from elsewhere).
const PARKED_KEEP_DAYS: i64 = 7;

/// Stores a verified delivery; Meta may be answered once this returns.
pub async fn store(
    pool: &PgPool,
    channel: ChannelId,
    tenant: TenantId,
    payload: &Value,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "insert into whatsapp_webhooks (channel_id, tenant_id, payload) values ($1, $2, $3)
         returning id",
    )
    .bind(channel.as_uuid())
    .bind(tenant.as_uuid())
    .bind(payload)
    .fetch_one(pool)
    .await
}

/// A delivery taken by a worker.
#[derive(sqlx::FromRow)]
struct Delivery {
    id: i64,
    channel_id: Uuid,
    tenant_id: Uuid,
    payload: Value,
    received_at: DateTime<Utc>,
    attempts: i32,
}

/// Applies deliveries until stopped.
pub async fn run(whatsapp: Whatsapp) {
    loop {
        if let Err(error) = work(&whatsapp).await {
            tracing::warn!(%error, "webhook worker failed; restarting");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Applies due deliveries on a connection of its own, which holds the advisory lock of the
/// delivery being applied: another worker (here or on another instance) skips it, and if
/// this process dies the connection closes and the lock goes with it, so the delivery is
/// taken up again at once, with no lease to wait out.
async fn work(whatsapp: &Whatsapp) -> Result<(), sqlx::Error> {
    let mut conn = whatsapp.pool.acquire().await?.detach();
    loop {
        let due: Vec<i64> = sqlx::query_scalar(
            "select id from whatsapp_webhooks
              where processed_at is null and next_attempt_at <= now()
              order by next_attempt_at, id limit $1",
        )
        .bind(CANDIDATES)
        .fetch_all(&whatsapp.pool)
        .await?;
        let mut applied = 0;
        for id in due {
            let attempt = while_locked(&mut conn, LOCK_SPACE, id, async {
                match take(&whatsapp.pool, id).await? {
                    Some(delivery) => {
                        let attempts = delivery.attempts;
                        let outcome = apply(whatsapp, delivery).await;
                        finish(&whatsapp.pool, id, attempts, outcome).await?;
                        Ok(true)
                    }
                    None => Ok::<_, sqlx::Error>(false),
                }
            })
            .await?;
            if attempt.transpose()? == Some(true) {
                applied += 1;
            }
        }
        if applied == 0 {
            let _ = tokio::time::timeout(IDLE_POLL, whatsapp.deliveries.notified()).await;
        }
    }
}

/// The delivery, counted as one more attempt, if no one applied it in the meantime.
async fn take(pool: &PgPool, id: i64) -> Result<Option<Delivery>, sqlx::Error> {
    sqlx::query_as(
        "update whatsapp_webhooks set attempts = attempts + 1
          where id = $1 and processed_at is null
          returning id, channel_id, tenant_id, payload, received_at, attempts",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

async fn finish(
    pool: &PgPool,
    id: i64,
    attempts: i32,
    outcome: anyhow::Result<()>,
) -> Result<(), sqlx::Error> {
    match outcome {
        Ok(()) => {
            sqlx::query(
                "update whatsapp_webhooks set processed_at = now(), last_error = null
                  where id = $1",
            )
            .bind(id)
            .execute(pool)
            .await?;
        }
        Err(error) => {
            tracing::warn!(delivery = id, attempts, error.cause_chain = ?error, "webhook delivery failed; retrying");
            let backoff = 2f64.powi(attempts.min(9)).min(300.0);
            sqlx::query(
                "update whatsapp_webhooks
                    set last_error = $2,
                        next_attempt_at = now() + make_interval(secs => $3)
                  where id = $1",
            )
            .bind(id)
            .bind(format!("{error:#}"))
            .bind(backoff)
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}

/// Applies every message and status of a delivery. An error leaves the delivery for a retry;
/// what was applied before it is not applied twice.
#[instrument(skip_all, fields(delivery = delivery.id), err)]
async fn apply(whatsapp: &Whatsapp, delivery: Delivery) -> anyhow::Result<()> {
    let channel = ChannelId::from(delivery.channel_id);
    let tenant = TenantId::from(delivery.tenant_id);
    let phone_number_id: Option<String> =
        sqlx::query_scalar("select phone_number_id from whatsapp_channels where id = $1")
            .bind(channel.as_uuid())
            .fetch_optional(&whatsapp.pool)
            .await?;
    let Some(phone_number_id) = phone_number_id else {
        return Ok(());
    };
    let webhook: Webhook = serde_json::from_value(delivery.payload)?;
    let request_id = format!("whatsapp-webhook-{}", delivery.id);
    for change in webhook.entry.iter().flat_map(|e| &e.changes) {
        if change.field != "messages" {
            continue;
        }
        let value: MessagesValue = serde_json::from_value(change.value.clone())?;
        if value.metadata.phone_number_id != phone_number_id {
            tracing::warn!(
                phone_number_id = value.metadata.phone_number_id,
                "a change for another number reached this channel's webhook; ignored"
            );
            continue;
        }
        let names: HashMap<&str, Option<&str>> = value
            .contacts
            .iter()
            .map(|c| {
                let name = c.profile.as_ref().and_then(|p| p.name.as_deref());
                (c.wa_id.as_str(), name)
            })
            .collect();
        for message in &value.messages {
            let name = names.get(message.from.as_str()).copied().flatten();
            receive(
                whatsapp,
                channel,
                tenant,
                &request_id,
                message,
                name,
                delivery.received_at,
            )
            .await?;
        }
        for status in &value.statuses {
            park_and_apply(whatsapp, channel, tenant, status).await?;
        }
    }
    sqlx::query(
        "delete from whatsapp_parked_statuses
          where received_at < now() - make_interval(days => $1)",
    )
    .bind(PARKED_KEEP_DAYS as i32)
    .execute(&whatsapp.pool)
    .await?;
    Ok(())
}

/// The conversation of a contact on a number, reserved on first sight and started (again,
/// harmlessly, if a crash came between the reservation and the start).
async fn conversation_of(
    whatsapp: &Whatsapp,
    channel: ChannelId,
    tenant: TenantId,
    wa_id: &WaId,
    name: Option<&str>,
    context: &CommandContext,
) -> anyhow::Result<ConversationId> {
    sqlx::query(
        "insert into whatsapp_contacts (channel_id, wa_id, tenant_id, conversation_id)
         values ($1, $2, $3, $4) on conflict do nothing",
    )
    .bind(channel.as_uuid())
    .bind(wa_id.as_str())
    .bind(tenant.as_uuid())
    .bind(ConversationId::new().as_uuid())
    .execute(&whatsapp.pool)
    .await?;
    let id: Uuid = sqlx::query_scalar(
        "select conversation_id from whatsapp_contacts where channel_id = $1 and wa_id = $2",
    )
    .bind(channel.as_uuid())
    .bind(wa_id.as_str())
    .fetch_one(&whatsapp.pool)
    .await?;
    let id = ConversationId::from(id);
    let contact = Contact {
        name: name.and_then(|n| Name::parse(n).ok()),
        email: None,
        phone: Phone::parse(&format!("+{}", wa_id.as_str())).ok(),
    };
    let start = ConversationCommand::StartWhatsapp {
        contact,
        channel_id: channel,
        wa_id: wa_id.clone(),
    };
    match whatsapp
        .conversations
        .execute(&stream_id(tenant, id), start, context)
        .await
    {
        Ok(_) | Err(CommandError::Rejected(ConversationError::AlreadyStarted)) => Ok(id),
        Err(error) => Err(error.into()),
    }
}

/// Stores one incoming message once, whatever the number of deliveries.
async fn receive(
    whatsapp: &Whatsapp,
    channel: ChannelId,
    tenant: TenantId,
    request_id: &str,
    message: &wire::Message,
    name: Option<&str>,
    received_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let (Ok(wa_id), Ok(wamid)) = (WaId::parse(&message.from), Wamid::parse(&message.id)) else {
        tracing::warn!(
            kind = message.kind,
            "a message without a valid sender or id was skipped"
        );
        return Ok(());
    };
    // Spaces make this a key no API client can send (`Idempotency-Key` is visible ASCII).
    let key = format!("whatsapp {channel} {}", wamid.as_str());
    // A redelivery of a stored message: nothing to do (the key below is what guarantees it;
    // this only saves the work).
    if whatsapp
        .conversations
        .store()
        .idempotent_response(tenant, &key)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let context = CommandContext::new(
        tenant,
        Actor::Contact(wa_id.as_str().to_owned()),
        request_id.to_owned(),
    );
    let conversation = conversation_of(whatsapp, channel, tenant, &wa_id, name, &context).await?;
    let content: String = message.display_text().chars().take(10_000).collect();
    let content = MessageContent::parse(&content)
        .or_else(|_| MessageContent::parse("[message]"))
        .expect("a bracketed word is never blank");
    let message_id = MessageId::new();
    let command = ConversationCommand::ReceiveWhatsappMessage {
        message_id,
        content,
        sent_at: wire::unix_time(&message.timestamp).unwrap_or(received_at),
        wamid,
        kind: message.kind.chars().take(64).collect(),
        details: message.details(),
    };
    let answer = |_| json!({"conversation_id": conversation, "message_id": message_id});
    let record = IdempotencyRecord {
        key: &key,
        fingerprint: &key,
        response: &answer,
    };
    whatsapp
        .conversations
        .execute_idempotent(&stream_id(tenant, conversation), command, &context, record)
        .await?;
    Ok(())
}

/// The delivery status a webhook status names; `None` for ones the inbox does not track.
fn delivery_status(status: &str) -> Option<DeliveryStatus> {
    match status {
        "sent" => Some(DeliveryStatus::Sent),
        "delivered" => Some(DeliveryStatus::Delivered),
        "read" => Some(DeliveryStatus::Read),
        "failed" => Some(DeliveryStatus::Failed),
        _ => None,
    }
}

async fn park_and_apply(
    whatsapp: &Whatsapp,
    channel: ChannelId,
    tenant: TenantId,
    status: &wire::Status,
) -> anyhow::Result<()> {
    let Some(delivery_status) = delivery_status(&status.status) else {
        return Ok(());
    };
    let error = (delivery_status == DeliveryStatus::Failed).then(|| {
        let reasons: Vec<String> = status.errors.iter().map(wire::GraphError::reason).collect();
        if reasons.is_empty() {
            "WhatsApp reported the message as failed without a reason".to_owned()
        } else {
            reasons.join("; ")
        }
    });
    let at = wire::unix_time(&status.timestamp).unwrap_or_else(Utc::now);
    sqlx::query(
        "insert into whatsapp_parked_statuses (channel_id, wamid, status, at, error)
         values ($1, $2, $3, $4, $5) on conflict do nothing",
    )
    .bind(channel.as_uuid())
    .bind(&status.id)
    .bind(&status.status)
    .bind(at)
    .bind(error)
    .execute(&whatsapp.pool)
    .await?;
    apply_parked(whatsapp, channel, tenant, &status.id).await
}

/// Applies the statuses parked for `wamid` once the outbox knows that wamid; otherwise they
/// stay parked. Applying one twice is harmless: a repeat writes nothing and a step back is
/// refused by the aggregate.
pub async fn apply_parked(
    whatsapp: &Whatsapp,
    channel: ChannelId,
    tenant: TenantId,
    wamid: &str,
) -> anyhow::Result<()> {
    let message: Option<(Uuid, Uuid)> = sqlx::query_as(
        "select conversation_id, message_id from whatsapp_outbox
          where channel_id = $1 and wamid = $2 and tenant_id = $3 and message_id is not null",
    )
    .bind(channel.as_uuid())
    .bind(wamid)
    .bind(tenant.as_uuid())
    .fetch_optional(&whatsapp.pool)
    .await?;
    let Some((conversation, message_id)) = message else {
        return Ok(());
    };
    let parked: Vec<(String, DateTime<Utc>, Option<String>)> = sqlx::query_as(
        "select status, at, error from whatsapp_parked_statuses
          where channel_id = $1 and wamid = $2
          order by array_position(array['sent', 'delivered', 'read', 'failed'], status)",
    )
    .bind(channel.as_uuid())
    .bind(wamid)
    .fetch_all(&whatsapp.pool)
    .await?;
    let context = CommandContext::new(tenant, Actor::System, format!("whatsapp-status-{wamid}"));
    let stream = stream_id(tenant, conversation);
    for (status, at, error) in parked {
        let Some(delivery_status) = delivery_status(&status) else {
            continue;
        };
        let command = ConversationCommand::UpdateMessageStatus {
            message_id: MessageId::from(message_id),
            status: delivery_status,
            error,
            at,
        };
        match whatsapp
            .conversations
            .execute(&stream, command, &context)
            .await
        {
            Ok(_) | Err(CommandError::Rejected(_)) => {}
            Err(error) => return Err(error.into()),
        }
        sqlx::query(
            "delete from whatsapp_parked_statuses
              where channel_id = $1 and wamid = $2 and status = $3",
        )
        .bind(channel.as_uuid())
        .bind(wamid)
        .bind(&status)
        .execute(&whatsapp.pool)
        .await?;
    }
    Ok(())
}
