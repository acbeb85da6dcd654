//! The WebSocket protocol's messages (docs/realtime.md): what the server pushes, what the
//! client may send, and how a stored event is shown to an agent or to a visitor.

use projections::reader::StoredEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::signals::Participant;

/// A message the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message: the connection is live; events follow from `cursor` on.
    Ready {
        /// Where this connection's stream starts.
        cursor: String,
    },
    /// A committed event.
    Event(EventView),
    /// Someone started or stopped typing.
    Typing {
        /// The conversation.
        conversation_id: Uuid,
        /// Who.
        who: Participant,
        /// Started or stopped.
        on: bool,
    },
    /// An agent opened or left a conversation (agents only).
    Viewing {
        /// The conversation.
        conversation_id: Uuid,
        /// The agent.
        agent_id: Uuid,
        /// Opened or left.
        on: bool,
    },
    /// The caller's unread counts, after a change reached the inbox (agents only).
    Unread(projections::queries::Counts),
    /// The client sent something the server could not use; the connection stays open.
    Error {
        /// Stable code.
        code: &'static str,
        /// In words.
        detail: String,
    },
}

/// An event as a client sees it.
#[derive(Debug, Serialize)]
pub struct EventView {
    /// Resume from here after a reconnect.
    pub cursor: String,
    /// Global position.
    pub position: i64,
    /// The conversation.
    pub conversation_id: Uuid,
    /// Sequence within the conversation.
    pub sequence: i64,
    /// Event name (docs/events.md).
    pub event_type: String,
    /// Commit time.
    pub time: chrono::DateTime<chrono::Utc>,
    /// Who did it (`agent:<id>`, `visitor:<id>`, `contact:<id>`, `system`), for agents, so a
    /// live event can become the same activity line `GET …/activity` answers. Visitors are
    /// not told: it would name agents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The event's fields.
    pub data: Value,
}

/// A message a client may send.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Typing started or stopped. Visitors leave out the conversation: theirs is implied.
    Typing {
        /// The conversation (agents).
        conversation_id: Option<Uuid>,
        /// Started or stopped.
        on: bool,
    },
    /// An agent opened or left a conversation.
    Viewing {
        /// The conversation.
        conversation_id: Uuid,
        /// Opened or left.
        on: bool,
    },
}

/// The event's own fields (the stored payload is `{"EventType": {...}}`).
fn fields(event: &StoredEvent) -> Map<String, Value> {
    match &event.payload {
        Value::Object(outer) => match outer.values().next() {
            Some(Value::Object(inner)) => inner.clone(),
            _ => Map::new(),
        },
        _ => Map::new(),
    }
}

fn view(
    event: &StoredEvent,
    conversation_id: Uuid,
    actor: Option<String>,
    data: Map<String, Value>,
) -> EventView {
    EventView {
        cursor: event.cursor().to_string(),
        position: event.position,
        conversation_id,
        sequence: event.sequence,
        event_type: event.event_type.clone(),
        time: event.recorded_at,
        actor,
        data: Value::Object(data),
    }
}

/// A conversation event as an agent of the tenant sees it: in full.
pub fn for_agent(event: &StoredEvent) -> Option<EventView> {
    if event.aggregate_type != "Conversation" {
        return None;
    }
    Some(view(
        event,
        event.resource_id()?,
        event.meta("actor"),
        fields(event),
    ))
}

/// An event of `conversation_id` as its visitor sees it: messages between them and the
/// team, their delivery, and how far the team has read. Notes, assignment, labels and
/// workflow are the team's business, and agents' ids are not shown.
pub fn for_visitor(event: &StoredEvent, conversation_id: Uuid) -> Option<EventView> {
    if event.aggregate_type != "Conversation" || event.resource_id()? != conversation_id {
        return None;
    }
    let mut data = fields(event);
    match event.event_type.as_str() {
        "MessageReceived" | "MessageStatusChanged" => {}
        "MessagePosted" => {
            data.remove("author");
        }
        "ReadMarkerMoved" => {
            data.remove("agent_id");
        }
        _ => return None,
    }
    Some(view(event, conversation_id, None, data))
}
