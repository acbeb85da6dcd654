//! What auditors read: one aggregate's events in order, with who did what and when, and a
//! conversation's state as it was at a past point, rebuilt by replaying its events.
//!
//! Histories are read straight from the event store, in pages by sequence, so an endpoint can
//! stream a history of any length in bounded memory and without holding a connection for as
//! long as a slow client takes to read it. The state fold here is independent of the inbox
//! projector on purpose: it answers "what did the events say then", which is what the read
//! models must agree with, not something derived from them.

use chrono::{DateTime, Utc};
use domain::conversation::{Contact, ConversationEvent, Direction};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::feed::{event_data, event_id};
use crate::queries::{Delivery, MessageRow};
use crate::reader::StoredEvent;
use crate::wire;

/// Events read per round trip while streaming a history.
pub const HISTORY_PAGE: i64 = 500;

/// True when the aggregate has at least one event.
pub async fn exists(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (select 1 from events
                         where aggregate_type = $1 and aggregate_id = $2 and sequence = 1)",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_one(pool)
    .await
}

/// Where a history read stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Every event.
    End,
    /// Events up to and including this sequence.
    Version(i64),
    /// Events recorded at or before this time. Within one aggregate, recording times grow
    /// with the sequence (a command writes `n + 1` only after `n` committed), so this is a
    /// prefix of the history.
    Time(DateTime<Utc>),
}

/// The next events of one aggregate after `after_sequence`, in order, at most `limit`.
pub async fn history_page(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    after_sequence: i64,
    until: Until,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let (max_sequence, max_time) = match until {
        Until::End => (None, None),
        Until::Version(version) => (Some(version), None),
        Until::Time(time) => (None, Some(time)),
    };
    sqlx::query_as(
        "select transaction_id::text::bigint as transaction_id, position, tenant_id,
                aggregate_type, aggregate_id, sequence, event_type, event_version,
                payload, metadata, recorded_at
           from events
          where aggregate_type = $1 and aggregate_id = $2 and sequence > $3
            and ($4::bigint is null or sequence <= $4)
            and ($5::timestamptz is null or recorded_at <= $5)
          order by sequence
          limit $6",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(after_sequence)
    .bind(max_sequence)
    .bind(max_time)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Who, why and when, as recorded on an event.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EventMetadata {
    /// `agent:<id>`, `visitor:<id>`, `contact:<id>` or `system`.
    pub actor: Option<String>,
    /// The request that carried the command.
    pub request_id: Option<String>,
    /// The chain of causes the command belongs to.
    pub correlation_id: Option<String>,
    /// The event or request that directly caused the command, where one is recorded.
    pub causation_id: Option<String>,
    /// When the command was committed, by the server's clock.
    pub timestamp: Option<String>,
}

/// One event of a history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HistoryEvent {
    /// Stable event id, the same as in the event feed.
    pub id: Uuid,
    /// Sequence within the aggregate, from 1: the aggregate's version after this event.
    pub sequence: i64,
    /// Global position.
    pub position: i64,
    /// The feed cursor just after this event: hand it to `/events?after=` to follow on.
    pub cursor: String,
    /// Event name.
    pub event_type: String,
    /// Version of the event's schema.
    pub event_version: String,
    /// When the event was recorded (the store's commit time).
    pub recorded_at: DateTime<Utc>,
    /// The event's fields (`docs/events.md`).
    #[schema(value_type = Object)]
    pub data: Value,
    /// Who, why and when.
    pub metadata: EventMetadata,
}

impl HistoryEvent {
    /// The auditors' form of a stored event.
    pub fn from_stored(event: &StoredEvent) -> Self {
        let meta = |key: &str| event.meta(key);
        Self {
            id: event_id(event),
            sequence: event.sequence,
            position: event.position,
            cursor: event.cursor().to_string(),
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            recorded_at: event.recorded_at,
            data: event_data(event),
            metadata: EventMetadata {
                actor: meta("actor"),
                request_id: meta("request_id"),
                correlation_id: meta("correlation_id"),
                causation_id: meta("causation_id"),
                timestamp: meta("timestamp"),
            },
        }
    }
}

/// The contact of a conversation, as it was.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct ContactState {
    /// Display name.
    pub name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
}

impl From<Contact> for ContactState {
    fn from(contact: Contact) -> Self {
        Self {
            name: contact.name.map(|v| v.as_str().to_owned()),
            email: contact.email.map(|v| v.as_str().to_owned()),
            phone: contact.phone.map(|v| v.as_str().to_owned()),
        }
    }
}

/// An agent's read marker at that point.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ReadMarker {
    /// The reader.
    pub agent_id: Uuid,
    /// The newest message the agent had read.
    pub last_read_message_id: Uuid,
}

/// A conversation as its events describe it at one point of its history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConversationState {
    /// Conversation id.
    pub id: Uuid,
    /// The sequence of the last event applied: the state is the one right after it.
    pub version: i64,
    /// Global position of that event.
    pub position: i64,
    /// When that event was recorded.
    pub recorded_at: DateTime<Utc>,
    /// `web`, `whatsapp` or `api`.
    pub source: String,
    /// Who it is with.
    pub contact: ContactState,
    /// The widget, for `web`.
    pub widget_id: Option<Uuid>,
    /// `open`, `pending`, `resolved` or `snoozed`.
    pub status: String,
    /// Until when, while snoozed.
    pub snoozed_until: Option<DateTime<Utc>>,
    /// Responsible agent.
    pub assignee_id: Option<Uuid>,
    /// Responsible team.
    pub team_id: Option<Uuid>,
    /// Labels, in the order they were put on.
    pub labels: Vec<String>,
    /// Messages and notes, in order.
    pub messages: Vec<MessageRow>,
    /// Read markers, by agent id.
    pub read_markers: Vec<ReadMarker>,
}

impl ConversationState {
    /// The state after the first event, which must be `ConversationStarted`.
    fn started(stored: &StoredEvent, event: ConversationEvent) -> Option<Self> {
        let ConversationEvent::ConversationStarted {
            source,
            contact,
            widget_id,
        } = event
        else {
            return None;
        };
        Some(Self {
            id: stored.resource_id()?,
            version: stored.sequence,
            position: stored.position,
            recorded_at: stored.recorded_at,
            source: wire(&source),
            contact: contact.into(),
            widget_id: widget_id.map(|w| w.as_uuid()),
            status: "open".to_owned(),
            snoozed_until: None,
            assignee_id: None,
            team_id: None,
            labels: Vec::new(),
            messages: Vec::new(),
            read_markers: Vec::new(),
        })
    }

    fn written(
        &mut self,
        stored: &StoredEvent,
        id: Uuid,
        direction: Direction,
        content: String,
        author: Option<String>,
        created_at: DateTime<Utc>,
    ) {
        self.messages.push(MessageRow {
            id,
            seq: stored.sequence,
            direction: wire(&direction),
            content,
            author,
            created_at,
            delivery: Delivery::of(direction),
        });
    }

    /// Applies the next event.
    fn apply(&mut self, stored: &StoredEvent, event: ConversationEvent) {
        use ConversationEvent as C;
        self.version = stored.sequence;
        self.position = stored.position;
        self.recorded_at = stored.recorded_at;
        let at = stored.recorded_at;
        match event {
            // A second start is refused by the aggregate; a stored one would change nothing.
            C::ConversationStarted { .. } => {}
            C::MessageReceived {
                message_id,
                content,
                sent_at,
            } => self.written(
                stored,
                message_id.as_uuid(),
                Direction::Incoming,
                content.as_str().to_owned(),
                None,
                sent_at,
            ),
            C::MessagePosted {
                message_id,
                content,
                author,
            }
            | C::WhatsappTemplatePosted {
                message_id,
                content,
                author,
                ..
            } => self.written(
                stored,
                message_id.as_uuid(),
                Direction::Outgoing,
                content.as_str().to_owned(),
                Some(author.to_string()),
                at,
            ),
            C::NoteAdded {
                message_id,
                content,
                author,
            } => self.written(
                stored,
                message_id.as_uuid(),
                Direction::Note,
                content.as_str().to_owned(),
                Some(author.to_string()),
                at,
            ),
            C::MessageStatusChanged {
                message_id,
                status,
                error,
                at,
            } => {
                if let Some(message) = self
                    .messages
                    .iter_mut()
                    .find(|m| m.id == message_id.as_uuid())
                {
                    message.delivery.record(status, error, at);
                }
            }
            C::ReadMarkerMoved {
                agent_id,
                last_read_message_id,
            } => {
                let marker = ReadMarker {
                    agent_id: agent_id.as_uuid(),
                    last_read_message_id: last_read_message_id.as_uuid(),
                };
                match self
                    .read_markers
                    .iter_mut()
                    .find(|m| m.agent_id == marker.agent_id)
                {
                    Some(existing) => *existing = marker,
                    None => self.read_markers.push(marker),
                }
            }
            C::ConversationAssigned { agent_id, team_id } => {
                self.assignee_id = agent_id.map(|a| a.as_uuid());
                self.team_id = team_id.map(|t| t.as_uuid());
            }
            C::ConversationUnassigned {} => {
                self.assignee_id = None;
                self.team_id = None;
            }
            C::ConversationStatusChanged {
                status,
                snoozed_until,
                ..
            } => {
                self.status = wire(&status);
                self.snoozed_until = snoozed_until;
            }
            C::LabelAdded { label } => {
                if !self.labels.iter().any(|l| l == label.as_str()) {
                    self.labels.push(label.as_str().to_owned());
                }
            }
            C::LabelRemoved { label } => self.labels.retain(|l| l != label.as_str()),
            C::WhatsappContactLinked { .. } | C::WhatsappMessageLinked { .. } => {}
        }
    }
}

/// A stored event that does not read as a conversation event: a bug or a hand-edited
/// store, never the caller's fault.
#[derive(Debug, thiserror::Error)]
#[error("event {sequence} of the conversation does not deserialize: {error}")]
pub struct CorruptEvent {
    /// Its sequence.
    pub sequence: i64,
    /// What serde said.
    pub error: serde_json::Error,
}

/// A stored conversation event's payload (`{"EventType": {...}}`), read back.
pub(crate) fn decode(sequence: i64, payload: &Value) -> Result<ConversationEvent, CorruptEvent> {
    ConversationEvent::deserialize(payload).map_err(|error| CorruptEvent { sequence, error })
}

/// Why a past state could not be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No event of the conversation lies at or before the point asked for.
    #[error("the conversation had not started at that point")]
    NotStarted,
    /// A stored event does not read as a conversation event.
    #[error(transparent)]
    Corrupt(#[from] CorruptEvent),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Replays a conversation's events up to `until`, page by page, and answers its state then.
pub async fn conversation_state(
    pool: &PgPool,
    aggregate_id: &str,
    until: Until,
) -> Result<ConversationState, StateError> {
    let mut state: Option<ConversationState> = None;
    let mut after = 0;
    loop {
        let page = history_page(
            pool,
            "Conversation",
            aggregate_id,
            after,
            until,
            HISTORY_PAGE,
        )
        .await?;
        for stored in &page {
            let event = decode(stored.sequence, &stored.payload)?;
            match state.as_mut() {
                Some(state) => state.apply(stored, event),
                None => state = ConversationState::started(stored, event),
            }
        }
        match page.last() {
            Some(last) if page.len() as i64 == HISTORY_PAGE => after = last.sequence,
            _ => return state.ok_or(StateError::NotStarted),
        }
    }
}
