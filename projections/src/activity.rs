//! A conversation's activity: the "system lines" an agent's timeline shows between messages
//! (started, assigned, status changed, labels, the WhatsApp number), read straight from the
//! event store.
//!
//! Why the event store and not a read model: the lines are the events themselves, one for
//! one, already in the conversation's own order (`sequence`, the numbering the timeline's
//! `seq` uses), and the primary key `(aggregate_type, aggregate_id, sequence)` reaches them.
//! A projection would copy them into a second table that could only lag behind. Reading the
//! store is always consistent with the commands' answers, so no `min_position` is needed
//! (decision 48 in docs/decisions.md).

use chrono::{DateTime, Utc};
use domain::conversation::ConversationEvent;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{ContactState, CorruptEvent, decode};
use crate::wire;

/// The most lines one page holds, and the page size when none is asked for: a long page,
/// because a conversation has few such lines next to its messages.
pub const MAX_PAGE: i64 = 200;

/// The events that are activity lines: those [`ActivityChange::of`] turns into a line. It is also,
/// word for word, the condition of the partial index `events_conversation_activity`
/// (migration `…_activity.sql`), which is what lets the planner read a page from that index
/// instead of walking past every message; so it is SQL text, not a bound array, which a
/// generic plan could not match to the index. Unit tests check it against both.
pub const FILTER: &str = "event_type in ('ConversationStarted', 'WhatsappContactLinked', \
    'ConversationAssigned', 'ConversationUnassigned', 'ConversationStatusChanged', \
    'LabelAdded', 'LabelRemoved')";

/// One line of a conversation's activity.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ActivityLine {
    /// The event's sequence in the conversation: the same numbering as a message's `seq`, so
    /// lines and messages merge into one timeline by it.
    pub seq: i64,
    /// What happened, as `kind` and the fields of that kind.
    #[serde(flatten)]
    pub change: ActivityChange,
    /// Who did it, as the event's metadata records it: `agent:<id>`, `visitor:<id>`,
    /// `contact:<wa_id>` or `system`. Every event this service writes has one.
    pub actor: Option<String>,
    /// When the event was recorded.
    pub at: DateTime<Utc>,
}

/// What an activity line says, by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActivityChange {
    /// The conversation began (`ConversationStarted`).
    Started {
        /// `web`, `whatsapp` or `api`.
        source: String,
        /// Who it is with, as given at the start.
        contact: ContactState,
        /// The widget, for `web`.
        widget_id: Option<Uuid>,
    },
    /// The conversation is with this WhatsApp user through this number of the tenant
    /// (`WhatsappContactLinked`, right after the start).
    WhatsappContactLinked {
        /// The tenant's WhatsApp channel (number).
        channel_id: Uuid,
        /// The contact's WhatsApp id.
        wa_id: String,
    },
    /// Responsibility changed (`ConversationAssigned`, or `ConversationUnassigned` with both
    /// null). Both values replace the previous ones.
    Assigned {
        /// The agent now responsible, or null.
        agent_id: Option<Uuid>,
        /// The team now responsible, or null.
        team_id: Option<Uuid>,
    },
    /// The workflow status changed (`ConversationStatusChanged`).
    StatusChanged {
        /// `open`, `pending`, `resolved` or `snoozed`.
        status: String,
        /// Until when, for `snoozed`; null otherwise.
        snoozed_until: Option<DateTime<Utc>>,
        /// True when an incoming message reopened the conversation rather than a person.
        reopened_by_contact: bool,
    },
    /// A label was put on (`LabelAdded`).
    LabelAdded {
        /// The label.
        label: String,
    },
    /// A label was taken off (`LabelRemoved`).
    LabelRemoved {
        /// The label.
        label: String,
    },
}

impl ActivityChange {
    /// The line an event makes, or `None` for what the timeline already shows (messages,
    /// replies, notes, templates), ticks show (delivery statuses, read markers) or nobody reads
    /// as a line (a message's WhatsApp id). Exhaustive on purpose: a new event must be
    /// placed here, and in [`FILTER`] when it makes a line.
    pub fn of(event: ConversationEvent) -> Option<Self> {
        use ConversationEvent as C;
        Some(match event {
            C::ConversationStarted {
                source,
                contact,
                widget_id,
            } => Self::Started {
                source: wire(&source),
                contact: contact.into(),
                widget_id: widget_id.map(|w| w.as_uuid()),
            },
            C::WhatsappContactLinked { channel_id, wa_id } => Self::WhatsappContactLinked {
                channel_id: channel_id.as_uuid(),
                wa_id: wa_id.as_str().to_owned(),
            },
            C::ConversationAssigned { agent_id, team_id } => Self::Assigned {
                agent_id: agent_id.map(|a| a.as_uuid()),
                team_id: team_id.map(|t| t.as_uuid()),
            },
            C::ConversationUnassigned {} => Self::Assigned {
                agent_id: None,
                team_id: None,
            },
            C::ConversationStatusChanged {
                status,
                snoozed_until,
                reopened_by_contact,
            } => Self::StatusChanged {
                status: wire(&status),
                snoozed_until,
                reopened_by_contact,
            },
            C::LabelAdded { label } => Self::LabelAdded {
                label: label.as_str().to_owned(),
            },
            C::LabelRemoved { label } => Self::LabelRemoved {
                label: label.as_str().to_owned(),
            },
            C::MessageReceived { .. }
            | C::MessagePosted { .. }
            | C::NoteAdded { .. }
            | C::WhatsappTemplatePosted { .. }
            | C::MessageStatusChanged { .. }
            | C::ReadMarkerMoved { .. }
            | C::WhatsappMessageLinked { .. } => return None,
        })
    }
}

/// Why activity could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ActivityError {
    /// A stored event does not read as a conversation event.
    #[error(transparent)]
    Corrupt(#[from] CorruptEvent),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A page of a conversation's activity, oldest first: the newest `limit` lines with a
/// sequence below `before` (all of them without it). `aggregate_id` is the conversation's
/// stream id (`<tenant>:<conversation>`), which keeps the read inside the caller's tenant.
///
/// An empty page does not say whether the conversation exists; every conversation's first
/// event is a `started` line, so a page without `before` is empty only when it does not.
pub async fn page(
    pool: &PgPool,
    aggregate_id: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<ActivityLine>, ActivityError> {
    let rows: Vec<(i64, Value, Option<String>, DateTime<Utc>)> = sqlx::query_as(&format!(
        "select sequence, payload, metadata->>'actor', recorded_at
           from events
          where aggregate_type = 'Conversation' and aggregate_id = $1 and {FILTER}
            and sequence < $2
          order by sequence desc
          limit $3"
    ))
    .bind(aggregate_id)
    // A bound, not an `is null` alternative, so that it stays a condition of the index scan.
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let mut lines = Vec::with_capacity(rows.len());
    for (seq, payload, actor, at) in rows.into_iter().rev() {
        if let Some(change) = ActivityChange::of(decode(seq, &payload)?) {
            lines.push(ActivityLine {
                seq,
                change,
                actor,
                at,
            });
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// One stored payload of every conversation event (the examples of docs/events.md), by
    /// its `event_type`: the payload's one key, as stored.
    fn every_event() -> Vec<(String, ConversationEvent)> {
        let message = "0193a8f2-6c1e-7d3a-9b2f-4e5d6c7b8a90";
        let agent = "agent:0193a8f0-2c3d-7e4f-9a5b-6c7d8e9f0a1b";
        [
            json!({"ConversationStarted": {"source": "api", "contact": {"name": "Bob",
                "email": null, "phone": null}, "widget_id": null}}),
            json!({"MessageReceived": {"message_id": message, "content": "Hi",
                "sent_at": "2026-11-25T15:04:05Z"}}),
            json!({"MessagePosted": {"message_id": message, "content": "Hi", "author": agent}}),
            json!({"NoteAdded": {"message_id": message, "content": "VIP", "author": agent}}),
            json!({"MessageStatusChanged": {"message_id": message, "status": "delivered",
                "error": null, "at": "2026-11-25T15:05:00Z"}}),
            json!({"ReadMarkerMoved": {"agent_id": "0193a8f0-2c3d-7e4f-9a5b-6c7d8e9f0a1b",
                "last_read_message_id": message}}),
            json!({"ConversationAssigned": {"agent_id": null,
                "team_id": "0193a8f1-3d4e-7f50-8b6c-7d8e9fa0b1c2"}}),
            json!({"ConversationUnassigned": {}}),
            json!({"ConversationStatusChanged": {"status": "snoozed",
                "snoozed_until": "2026-11-25T17:00:00Z", "reopened_by_contact": false}}),
            json!({"LabelAdded": {"label": "vip"}}),
            json!({"LabelRemoved": {"label": "vip"}}),
            json!({"WhatsappContactLinked": {"channel_id": "0193a8f6-0a1b-7c2d-8e3f-4a5b6c7d8e9f",
                "wa_id": "16505551234"}}),
            json!({"WhatsappMessageLinked": {"message_id": message, "wamid": "wamid.X1",
                "direction": "incoming", "kind": "text", "details": null}}),
            json!({"WhatsappTemplatePosted": {"message_id": message, "template": {
                "name": "order_follow_up", "language": "en_US", "parameters": ["Sheena"]},
                "content": "[template order_follow_up (en_US)] Sheena", "author": agent}}),
        ]
        .into_iter()
        .map(|payload| {
            let name = payload.as_object().unwrap().keys().next().unwrap().clone();
            let event = serde_json::from_value(payload).expect("a catalogued payload reads");
            (name, event)
        })
        .collect()
    }

    #[test]
    fn the_query_filter_names_exactly_the_events_that_make_lines() {
        let events = every_event();
        let mut types: Vec<&String> = events.iter().map(|(name, _)| name).collect();
        types.sort();
        types.dedup();
        assert_eq!(types.len(), events.len(), "one sample of each event");
        for (name, event) in events {
            assert_eq!(
                ActivityChange::of(event).is_some(),
                FILTER.contains(&format!("'{name}'")),
                "{name}: a line exactly when the query reads it"
            );
        }
    }

    #[test]
    fn the_partial_index_has_the_querys_filter_as_its_condition() {
        let migration = include_str!("../../migrations/20261125000009_activity.sql");
        assert!(
            migration.contains(FILTER),
            "the index condition must be the query's filter, word for word"
        );
    }

    #[test]
    fn a_line_is_its_kind_and_fields_between_seq_actor_and_time() {
        let line = ActivityLine {
            seq: 7,
            change: ActivityChange::of(ConversationEvent::ConversationUnassigned {}).unwrap(),
            actor: Some("system".into()),
            at: "2026-11-25T15:04:05Z".parse().unwrap(),
        };
        assert_eq!(
            serde_json::to_value(line).unwrap(),
            json!({"seq": 7, "kind": "assigned", "agent_id": null, "team_id": null,
                   "actor": "system", "at": "2026-11-25T15:04:05Z"})
        );
    }
}
