//! The conversation aggregate: its state and its rules.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::commands::ConversationCommand;
use super::error::ConversationError;
use super::events::{
    Contact, ConversationEvent, ConversationStatus, DeliveryStatus, Direction, Source,
};
use super::whatsapp::{MAX_TEXT_CHARS, window_open};
use crate::ids::{AgentId, MessageId, TeamId, WidgetId};
use crate::text::Label;

/// What the rules need to know of one message: its direction, and for outgoing messages
/// how far delivery got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageState {
    /// Which way it went.
    pub direction: Direction,
    /// Delivery status, for outgoing messages.
    pub status: Option<DeliveryStatus>,
}

/// A conversation's state, rebuilt from its events (or from a snapshot and the events after
/// it). It holds only what the rules need; screens are projections.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// The channel; `None` until the conversation is started.
    pub source: Option<Source>,
    /// Who it is with.
    pub contact: Contact,
    /// The widget it came through, for `web`.
    pub widget_id: Option<WidgetId>,
    /// Workflow status.
    pub status: Option<ConversationStatus>,
    /// Until when, while snoozed.
    pub snoozed_until: Option<DateTime<Utc>>,
    /// Responsible agent.
    pub assignee: Option<AgentId>,
    /// Responsible team.
    pub team: Option<TeamId>,
    /// Labels, sorted.
    pub labels: BTreeSet<Label>,
    /// Every message and note, so ids stay unique and statuses move forward only. Stored
    /// in snapshots as one compact string: a long conversation's snapshot is read on every
    /// command, and a JSON object per message made it several times larger and slower.
    #[serde(with = "compact")]
    pub messages: BTreeMap<MessageId, MessageState>,
    /// The newest message or note.
    pub last_message_id: Option<MessageId>,
    /// Per agent, the newest message that agent has read.
    pub read_markers: BTreeMap<AgentId, MessageId>,
    /// When the contact last wrote, by the channel's clock: WhatsApp's 24-hour reply window
    /// runs from it. Absent from snapshots taken before it existed, hence the default.
    #[serde(default)]
    pub last_incoming_at: Option<DateTime<Utc>>,
}

impl Conversation {
    /// About how many bytes of memory the state holds: its message table dominates, so a
    /// cache of conversations can be bounded by memory rather than by count.
    pub fn approximate_size(&self) -> u32 {
        // A B-tree entry of a message (id, direction, status) with its share of the node,
        // and the fixed part with the contact's strings.
        const PER_MESSAGE: usize = 64;
        const FIXED: usize = 1024;
        let size = FIXED
            + PER_MESSAGE * (self.messages.len() + self.read_markers.len() + self.labels.len());
        u32::try_from(size).unwrap_or(u32::MAX)
    }

    /// WhatsApp's rules for a free-form reply posted at `now`: within 24 hours of the
    /// contact's last message, and no longer than the Cloud API takes.
    fn ensure_replyable(
        &self,
        content: &crate::text::MessageContent,
        now: DateTime<Utc>,
    ) -> Result<(), ConversationError> {
        if self.source != Some(Source::Whatsapp) {
            return Ok(());
        }
        if content.as_str().chars().count() > MAX_TEXT_CHARS {
            return Err(ConversationError::WhatsappTextTooLong);
        }
        if !window_open(self.last_incoming_at, now) {
            return Err(ConversationError::ReplyWindowClosed);
        }
        Ok(())
    }

    fn ensure_new_message(&self, id: MessageId) -> Result<(), ConversationError> {
        if self.messages.contains_key(&id) {
            return Err(ConversationError::DuplicateMessage(id));
        }
        Ok(())
    }

    /// Writes an incoming message, its WhatsApp link if it has one, and reopens a resolved
    /// or snoozed conversation: the contact wrote again.
    async fn receive(
        &mut self,
        status: ConversationStatus,
        received: ConversationEvent,
        linked: Option<ConversationEvent>,
        sink: &EventSink<Self>,
    ) {
        sink.write(received, self).await;
        if let Some(linked) = linked {
            sink.write(linked, self).await;
        }
        if matches!(
            status,
            ConversationStatus::Resolved | ConversationStatus::Snoozed
        ) {
            let reopen = ConversationEvent::ConversationStatusChanged {
                status: ConversationStatus::Open,
                snoozed_until: None,
                reopened_by_contact: true,
            };
            sink.write(reopen, self).await;
        }
    }

    fn next_status(
        &self,
        message_id: MessageId,
        to: DeliveryStatus,
    ) -> Result<Option<DeliveryStatus>, ConversationError> {
        let message = self
            .messages
            .get(&message_id)
            .ok_or(ConversationError::MessageNotFound(message_id))?;
        if message.direction != Direction::Outgoing {
            return Err(ConversationError::NotOutgoing(message_id));
        }
        if to == DeliveryStatus::Pending {
            return Err(ConversationError::PendingNotReportable);
        }
        let from = message.status.unwrap_or(DeliveryStatus::Pending);
        match (from, to) {
            (from, to) if from == to => Ok(None),
            (DeliveryStatus::Failed, to) | (DeliveryStatus::Read, to) => {
                Err(ConversationError::StatusRegression { from, to })
            }
            (from, to) if to < from => Err(ConversationError::StatusRegression { from, to }),
            (_, to) => Ok(Some(to)),
        }
    }
}

impl Aggregate for Conversation {
    const TYPE: &'static str = "Conversation";
    type Command = ConversationCommand;
    type Event = ConversationEvent;
    type Error = ConversationError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        use ConversationCommand as C;
        use ConversationEvent as E;

        let Some(status) = self.status else {
            if let C::StartWhatsapp {
                contact,
                channel_id,
                wa_id,
            } = command
            {
                let started = E::ConversationStarted {
                    source: Source::Whatsapp,
                    contact,
                    widget_id: None,
                };
                sink.write(started, self).await;
                sink.write(E::WhatsappContactLinked { channel_id, wa_id }, self)
                    .await;
                return Ok(());
            }
            let C::Start {
                source,
                contact,
                widget_id,
            } = command
            else {
                return Err(ConversationError::NotFound);
            };
            if (source == Source::Web) != widget_id.is_some() {
                return Err(ConversationError::WidgetMismatch);
            }
            sink.write(
                E::ConversationStarted {
                    source,
                    contact,
                    widget_id,
                },
                self,
            )
            .await;
            return Ok(());
        };

        match command {
            C::Start { .. } | C::StartWhatsapp { .. } => {
                return Err(ConversationError::AlreadyStarted);
            }
            C::ReceiveMessage {
                message_id,
                content,
                sent_at,
            } => {
                self.ensure_new_message(message_id)?;
                let received = E::MessageReceived {
                    message_id,
                    content,
                    sent_at,
                };
                self.receive(status, received, None, sink).await;
            }
            C::ReceiveWhatsappMessage {
                message_id,
                content,
                sent_at,
                wamid,
                kind,
                details,
            } => {
                if self.source != Some(Source::Whatsapp) {
                    return Err(ConversationError::NotWhatsapp);
                }
                self.ensure_new_message(message_id)?;
                let received = E::MessageReceived {
                    message_id,
                    content,
                    sent_at,
                };
                let linked = E::WhatsappMessageLinked {
                    message_id,
                    wamid,
                    direction: Direction::Incoming,
                    kind,
                    details,
                };
                self.receive(status, received, Some(linked), sink).await;
            }
            C::PostMessage {
                message_id,
                content,
                author,
                at,
            } => {
                if status == ConversationStatus::Resolved {
                    return Err(ConversationError::Resolved);
                }
                self.ensure_new_message(message_id)?;
                self.ensure_replyable(&content, at)?;
                let event = E::MessagePosted {
                    message_id,
                    content,
                    author,
                };
                sink.write(event, self).await;
                if self.source == Some(Source::Web) {
                    let sent = E::MessageStatusChanged {
                        message_id,
                        status: DeliveryStatus::Sent,
                        error: None,
                        at,
                    };
                    sink.write(sent, self).await;
                }
            }
            C::AcknowledgeByContact { up_to, status, at } => {
                if !matches!(status, DeliveryStatus::Delivered | DeliveryStatus::Read) {
                    return Err(ConversationError::NotAnAcknowledgement);
                }
                if !self.messages.contains_key(&up_to) {
                    return Err(ConversationError::MessageNotFound(up_to));
                }
                let behind: Vec<MessageId> = self
                    .messages
                    .range(..=up_to)
                    .filter(|(_, m)| {
                        m.direction == Direction::Outgoing
                            && m.status
                                .is_some_and(|s| s < status && s != DeliveryStatus::Failed)
                    })
                    .map(|(id, _)| *id)
                    .collect();
                for message_id in behind {
                    let event = E::MessageStatusChanged {
                        message_id,
                        status,
                        error: None,
                        at,
                    };
                    sink.write(event, self).await;
                }
            }
            C::PostTemplate {
                message_id,
                template,
                author,
            } => {
                if self.source != Some(Source::Whatsapp) {
                    return Err(ConversationError::NotWhatsapp);
                }
                if status == ConversationStatus::Resolved {
                    return Err(ConversationError::Resolved);
                }
                self.ensure_new_message(message_id)?;
                let content = crate::text::MessageContent::parse(&template.summary())
                    .expect("a template summary is never empty and is cut to a message's length");
                let event = E::WhatsappTemplatePosted {
                    message_id,
                    template,
                    content,
                    author,
                };
                sink.write(event, self).await;
            }
            C::LinkWhatsappMessage {
                message_id,
                wamid,
                kind,
                at,
            } => {
                if self.source != Some(Source::Whatsapp) {
                    return Err(ConversationError::NotWhatsapp);
                }
                let message = self
                    .messages
                    .get(&message_id)
                    .ok_or(ConversationError::MessageNotFound(message_id))?;
                if message.direction != Direction::Outgoing {
                    return Err(ConversationError::NotOutgoing(message_id));
                }
                let pending = message.status == Some(DeliveryStatus::Pending);
                let linked = E::WhatsappMessageLinked {
                    message_id,
                    wamid,
                    direction: Direction::Outgoing,
                    kind,
                    details: None,
                };
                sink.write(linked, self).await;
                // A status webhook may have overtaken the Graph API's answer; then `sent`
                // would go backwards and is left out.
                if pending {
                    let sent = E::MessageStatusChanged {
                        message_id,
                        status: DeliveryStatus::Sent,
                        error: None,
                        at,
                    };
                    sink.write(sent, self).await;
                }
            }
            C::AddNote {
                message_id,
                content,
                author,
            } => {
                self.ensure_new_message(message_id)?;
                let event = E::NoteAdded {
                    message_id,
                    content,
                    author,
                };
                sink.write(event, self).await;
            }
            C::UpdateMessageStatus {
                message_id,
                status,
                error,
                at,
            } => {
                if let Some(status) = self.next_status(message_id, status)? {
                    let error = error.filter(|_| status == DeliveryStatus::Failed);
                    let event = E::MessageStatusChanged {
                        message_id,
                        status,
                        error,
                        at,
                    };
                    sink.write(event, self).await;
                }
            }
            C::MarkRead { agent_id } => {
                if let Some(last) = self.last_message_id
                    && self.read_markers.get(&agent_id) != Some(&last)
                {
                    let event = E::ReadMarkerMoved {
                        agent_id,
                        last_read_message_id: last,
                    };
                    sink.write(event, self).await;
                }
            }
            C::Assign { agent_id, team_id } => {
                if (agent_id, team_id) != (self.assignee, self.team) {
                    let event = if agent_id.is_none() && team_id.is_none() {
                        E::ConversationUnassigned {}
                    } else {
                        E::ConversationAssigned { agent_id, team_id }
                    };
                    sink.write(event, self).await;
                }
            }
            C::ChangeStatus {
                status: to,
                snoozed_until,
                now,
            } => {
                match (to, snoozed_until) {
                    (ConversationStatus::Snoozed, Some(until)) if until > now => {}
                    (ConversationStatus::Snoozed, _) => {
                        return Err(ConversationError::SnoozeNeedsFutureTime);
                    }
                    (_, Some(_)) => return Err(ConversationError::SnoozeTimeWithoutSnooze),
                    (_, None) => {}
                }
                if (to, snoozed_until) != (status, self.snoozed_until) {
                    let event = E::ConversationStatusChanged {
                        status: to,
                        snoozed_until,
                        reopened_by_contact: false,
                    };
                    sink.write(event, self).await;
                }
            }
            C::AddLabel { label } => {
                if !self.labels.contains(&label) {
                    sink.write(E::LabelAdded { label }, self).await;
                }
            }
            C::RemoveLabel { label } => {
                if self.labels.contains(&label) {
                    sink.write(E::LabelRemoved { label }, self).await;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        if let ConversationEvent::MessageReceived { sent_at, .. } = &event {
            self.last_incoming_at = self.last_incoming_at.max(Some(*sent_at));
        }
        use ConversationEvent as E;
        let mut add_message = |id, direction, status| {
            self.messages.insert(id, MessageState { direction, status });
            self.last_message_id = Some(id);
        };
        match event {
            E::ConversationStarted {
                source,
                contact,
                widget_id,
            } => {
                self.source = Some(source);
                self.contact = contact;
                self.widget_id = widget_id;
                self.status = Some(ConversationStatus::Open);
            }
            E::MessageReceived { message_id, .. } => {
                add_message(message_id, Direction::Incoming, None);
            }
            E::MessagePosted { message_id, .. } => {
                add_message(
                    message_id,
                    Direction::Outgoing,
                    Some(DeliveryStatus::Pending),
                );
            }
            E::NoteAdded { message_id, .. } => add_message(message_id, Direction::Note, None),
            E::WhatsappTemplatePosted { message_id, .. } => {
                add_message(
                    message_id,
                    Direction::Outgoing,
                    Some(DeliveryStatus::Pending),
                );
            }
            E::WhatsappContactLinked { .. } | E::WhatsappMessageLinked { .. } => {}
            E::MessageStatusChanged {
                message_id, status, ..
            } => {
                if let Some(message) = self.messages.get_mut(&message_id) {
                    message.status = Some(status);
                }
            }
            E::ReadMarkerMoved {
                agent_id,
                last_read_message_id,
            } => {
                self.read_markers.insert(agent_id, last_read_message_id);
            }
            E::ConversationAssigned { agent_id, team_id } => {
                self.assignee = agent_id;
                self.team = team_id;
            }
            E::ConversationUnassigned {} => {
                self.assignee = None;
                self.team = None;
            }
            E::ConversationStatusChanged {
                status,
                snoozed_until,
                ..
            } => {
                self.status = Some(status);
                self.snoozed_until = snoozed_until;
            }
            E::LabelAdded { label } => {
                self.labels.insert(label);
            }
            E::LabelRemoved { label } => {
                self.labels.remove(&label);
            }
        }
    }
}

/// The snapshot form of the message table: per message, its id as 32 hex digits and one
/// letter for its direction and delivery status.
mod compact {
    use std::collections::BTreeMap;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::MessageState;
    use crate::conversation::{DeliveryStatus, Direction};
    use crate::ids::MessageId;

    const ENTRY: usize = 33;
    const CODES: [(char, Direction, Option<DeliveryStatus>); 7] = [
        ('i', Direction::Incoming, None),
        ('n', Direction::Note, None),
        ('p', Direction::Outgoing, Some(DeliveryStatus::Pending)),
        ('s', Direction::Outgoing, Some(DeliveryStatus::Sent)),
        ('d', Direction::Outgoing, Some(DeliveryStatus::Delivered)),
        ('r', Direction::Outgoing, Some(DeliveryStatus::Read)),
        ('f', Direction::Outgoing, Some(DeliveryStatus::Failed)),
    ];

    pub fn serialize<S: Serializer>(
        messages: &BTreeMap<MessageId, MessageState>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut text = String::with_capacity(messages.len() * ENTRY);
        for (id, state) in messages {
            let code = CODES
                .iter()
                .find(|(_, direction, status)| {
                    *direction == state.direction && *status == state.status
                })
                .map_or('?', |(code, ..)| *code);
            text.push_str(&id.as_uuid().simple().to_string());
            text.push(code);
        }
        serializer.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<MessageId, MessageState>, D::Error> {
        let text = String::deserialize(deserializer)?;
        if !text.is_ascii() || text.len() % ENTRY != 0 {
            return Err(D::Error::custom("not a compact message table"));
        }
        text.as_bytes()
            .chunks(ENTRY)
            .map(|entry| {
                let (hex, code) = entry.split_at(32);
                let id = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|hex| MessageId::parse(hex).ok())
                    .ok_or_else(|| D::Error::custom("bad message id in a snapshot"))?;
                let (_, direction, status) = CODES
                    .iter()
                    .find(|(c, ..)| *c as u8 == code[0])
                    .ok_or_else(|| D::Error::custom("bad message state in a snapshot"))?;
                Ok((
                    id,
                    MessageState {
                        direction: *direction,
                        status: *status,
                    },
                ))
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
