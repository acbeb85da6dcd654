//! The WhatsApp outbox projector: turns the team's messages in WhatsApp conversations into
//! Graph API requests waiting in `whatsapp_outbox`.
//!
//! Sending happens after the event is committed, never inside a command: this projector
//! writes the request in the same transaction that moves its checkpoint, so a message is
//! queued exactly once, and the sender (in `commands`) delivers the queue with retries.
//! Besides the outbox it keeps `whatsapp_conversations`, where each WhatsApp conversation's
//! replies go (its number and contact) and which incoming message a read receipt marks.
//!
//! A rebuild empties only `whatsapp_conversations`: the outbox is the record of what was
//! sent, and its unique key `(tenant, conversation, message_key)` makes the re-projected
//! requests no-ops, so a rebuild never sends anything again.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use domain::conversation::{ConversationEvent, Direction, Template};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::reader::StoredEvent;
use crate::runtime::Projector;

/// The projector's stored name.
pub const NAME: &str = "whatsapp_outbox";

/// The event types this projector acts on; the rest are skipped without deserializing.
const RELEVANT: [&str; 5] = [
    "WhatsappContactLinked",
    "WhatsappMessageLinked",
    "MessagePosted",
    "WhatsappTemplatePosted",
    "ReadMarkerMoved",
];

/// How long the projector lets events gather after a batch that did not fill up.
const GATHER: Duration = Duration::from_millis(50);

/// The outbox projector.
pub struct WhatsappOutbox;

/// Where a WhatsApp conversation's messages go.
#[derive(Debug, Clone)]
struct Route {
    channel_id: Uuid,
    wa_id: String,
    last_incoming_wamid: Option<String>,
}

/// The Graph API body of a text message.
pub fn text_request(to: &str, body: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": false, "body": body},
    })
}

/// The Graph API body of a template message; the parameters fill the body's `{{n}}`.
pub fn template_request(to: &str, template: &Template) -> Value {
    let mut body = json!({
        "name": template.name,
        "language": {"code": template.language},
    });
    if !template.parameters.is_empty() {
        let parameters: Vec<Value> = template
            .parameters
            .iter()
            .map(|p| json!({"type": "text", "text": p}))
            .collect();
        body["components"] = json!([{"type": "body", "parameters": parameters}]);
    }
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": body,
    })
}

/// The Graph API body that marks an incoming message read (blue ticks for the contact).
pub fn read_request(wamid: &str) -> Value {
    json!({"messaging_product": "whatsapp", "status": "read", "message_id": wamid})
}

async fn enqueue(
    tx: &mut PgConnection,
    key: (Uuid, Uuid),
    route: &Route,
    message_key: &str,
    message_id: Option<Uuid>,
    kind: &str,
    request: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into whatsapp_outbox
             (tenant_id, conversation_id, message_key, message_id, channel_id, kind, request)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (tenant_id, conversation_id, message_key) do nothing",
    )
    .bind(key.0)
    .bind(key.1)
    .bind(message_key)
    .bind(message_id)
    .bind(route.channel_id)
    .bind(kind)
    .bind(request)
    .execute(&mut *tx)
    .await
    .map(drop)
}

#[async_trait]
impl Projector for WhatsappOutbox {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["whatsapp_conversations"]
    }

    /// A reply reaches WhatsApp a few tens of milliseconds later, and under load this
    /// projector, which skips most events, commits a few times a second rather than after
    /// every command.
    fn gather(&self) -> Duration {
        GATHER
    }

    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let relevant: Vec<&StoredEvent> = events
            .iter()
            .filter(|e| {
                e.aggregate_type == "Conversation" && RELEVANT.contains(&e.event_type.as_str())
            })
            .collect();
        if relevant.is_empty() {
            return Ok(());
        }
        let (tenants, conversations): (Vec<Uuid>, Vec<Uuid>) = relevant
            .iter()
            .filter_map(|e| Some((e.tenant_id, e.resource_id()?)))
            .unzip();
        let rows: Vec<(Uuid, Uuid, Uuid, String, Option<String>)> = sqlx::query_as(
            "select w.tenant_id, w.conversation_id, w.channel_id, w.wa_id, w.last_incoming_wamid
               from whatsapp_conversations w
               join unnest($1::uuid[], $2::uuid[]) as k(tenant_id, conversation_id)
                 on k.tenant_id = w.tenant_id and k.conversation_id = w.conversation_id",
        )
        .bind(&tenants)
        .bind(&conversations)
        .fetch_all(&mut *tx)
        .await?;
        let mut routes: HashMap<(Uuid, Uuid), Route> = rows
            .into_iter()
            .map(|(tenant, conversation, channel_id, wa_id, last)| {
                let route = Route {
                    channel_id,
                    wa_id,
                    last_incoming_wamid: last,
                };
                ((tenant, conversation), route)
            })
            .collect();
        for stored in relevant {
            let Some(conversation) = stored.resource_id() else {
                continue;
            };
            let key = (stored.tenant_id, conversation);
            let event = ConversationEvent::deserialize(&stored.payload)
                .map_err(|e| anyhow::anyhow!("event {} does not read: {e}", stored.position))?;
            if let ConversationEvent::WhatsappContactLinked { channel_id, wa_id } = &event {
                sqlx::query(
                    "insert into whatsapp_conversations (tenant_id, conversation_id, channel_id, wa_id)
                     values ($1, $2, $3, $4) on conflict do nothing",
                )
                .bind(key.0)
                .bind(key.1)
                .bind(channel_id.as_uuid())
                .bind(wa_id.as_str())
                .execute(&mut *tx)
                .await?;
                let route = Route {
                    channel_id: channel_id.as_uuid(),
                    wa_id: wa_id.as_str().to_owned(),
                    last_incoming_wamid: None,
                };
                routes.insert(key, route);
                continue;
            }
            // Not a WhatsApp conversation: nothing to send.
            let Some(route) = routes.get_mut(&key) else {
                continue;
            };
            match event {
                ConversationEvent::WhatsappMessageLinked {
                    wamid,
                    direction: Direction::Incoming,
                    ..
                } => {
                    sqlx::query(
                        "update whatsapp_conversations set last_incoming_wamid = $3
                          where tenant_id = $1 and conversation_id = $2",
                    )
                    .bind(key.0)
                    .bind(key.1)
                    .bind(wamid.as_str())
                    .execute(&mut *tx)
                    .await?;
                    route.last_incoming_wamid = Some(wamid.as_str().to_owned());
                }
                ConversationEvent::MessagePosted {
                    message_id,
                    content,
                    ..
                } => {
                    let request = text_request(&route.wa_id, content.as_str());
                    let id = message_id.as_uuid();
                    enqueue(tx, key, route, &id.to_string(), Some(id), "text", request).await?;
                }
                ConversationEvent::WhatsappTemplatePosted {
                    message_id,
                    template,
                    ..
                } => {
                    let request = template_request(&route.wa_id, &template);
                    let id = message_id.as_uuid();
                    enqueue(
                        tx,
                        key,
                        route,
                        &id.to_string(),
                        Some(id),
                        "template",
                        request,
                    )
                    .await?;
                }
                ConversationEvent::ReadMarkerMoved { .. } => {
                    if let Some(wamid) = route.last_incoming_wamid.clone() {
                        let request = read_request(&wamid);
                        let message_key = format!("read:{wamid}");
                        enqueue(tx, key, route, &message_key, None, "read", request).await?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}
