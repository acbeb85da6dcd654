//! Conversation events. Their names (`event_type`) and versions are stored with every
//! event and read by auditors and analytics: never rename one; add a version instead.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::whatsapp::{Template, WaId, Wamid};
use crate::actor::Actor;
use crate::ids::{AgentId, ChannelId, MessageId, TeamId, WidgetId};
use crate::text::{Email, Label, MessageContent, Name, Phone};

/// The channel a conversation came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The website chat widget.
    Web,
    /// WhatsApp Business Cloud API.
    Whatsapp,
    /// An integration speaking for its contacts through the REST API.
    Api,
}

/// Who the conversation is with. Every field is optional: a website visitor may be anonymous.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Display name.
    pub name: Option<Name>,
    /// E-mail address.
    pub email: Option<Email>,
    /// Phone number in E.164 form.
    pub phone: Option<Phone>,
}

/// Where a conversation stands in the team's workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// Needs the team's attention.
    Open,
    /// Waiting on something outside the conversation.
    Pending,
    /// Done; a new incoming message reopens it.
    Resolved,
    /// Hidden until `snoozed_until`, or until the contact writes again.
    Snoozed,
}

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the contact to the team.
    Incoming,
    /// From the team to the contact.
    Outgoing,
    /// A private note between agents; the contact never sees it.
    Note,
}

/// How far an outgoing message got. Moves forward only: `sent` → `delivered` → `read`;
/// `failed` ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Accepted by us, not yet confirmed sent by the channel.
    Pending,
    /// Handed to the channel.
    Sent,
    /// On the contact's device.
    Delivered,
    /// Seen by the contact.
    Read,
    /// The channel gave up on it.
    Failed,
}

/// Everything that can happen to a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConversationEvent {
    /// v1. A conversation began.
    ConversationStarted {
        /// The channel.
        source: Source,
        /// Who it is with.
        contact: Contact,
        /// The widget it came through, for `web`.
        widget_id: Option<WidgetId>,
    },
    /// v1. The contact wrote.
    MessageReceived {
        /// Unique within the conversation.
        message_id: MessageId,
        /// The text.
        content: MessageContent,
        /// When the contact sent it (the channel's clock where it gives one).
        sent_at: DateTime<Utc>,
    },
    /// v1. The team answered the contact.
    MessagePosted {
        /// Unique within the conversation.
        message_id: MessageId,
        /// The text.
        content: MessageContent,
        /// Who wrote it.
        author: Actor,
    },
    /// v1. An agent left a private note.
    NoteAdded {
        /// Unique within the conversation (notes share the message id space).
        message_id: MessageId,
        /// The text.
        content: MessageContent,
        /// Who wrote it.
        author: Actor,
    },
    /// v1. An outgoing message moved forward in delivery.
    MessageStatusChanged {
        /// The outgoing message.
        message_id: MessageId,
        /// Its new status.
        status: DeliveryStatus,
        /// Why it failed, for `failed`.
        error: Option<String>,
        /// When the channel says it happened.
        at: DateTime<Utc>,
    },
    /// v1. An agent has read the conversation up to a message.
    ReadMarkerMoved {
        /// The reader.
        agent_id: AgentId,
        /// The newest message the agent has seen.
        last_read_message_id: MessageId,
    },
    /// v1. The conversation was given to an agent and/or a team.
    ConversationAssigned {
        /// The agent, if one.
        agent_id: Option<AgentId>,
        /// The team, if one.
        team_id: Option<TeamId>,
    },
    /// v1. Nobody is responsible for the conversation any more.
    ConversationUnassigned {},
    /// v1. The workflow status changed.
    ConversationStatusChanged {
        /// The new status.
        status: ConversationStatus,
        /// Until when, for `snoozed`.
        snoozed_until: Option<DateTime<Utc>>,
        /// True when an incoming message reopened the conversation rather than a person.
        reopened_by_contact: bool,
    },
    /// v1. A label was put on the conversation.
    LabelAdded {
        /// The label.
        label: Label,
    },
    /// v1. A label was taken off.
    LabelRemoved {
        /// The label.
        label: Label,
    },
    /// v1. The conversation is with this WhatsApp user through this channel (phone number).
    /// Written in the same commit as `ConversationStarted`, so replies know where to go.
    WhatsappContactLinked {
        /// The tenant's WhatsApp number the contact wrote to.
        channel_id: ChannelId,
        /// The contact's WhatsApp id.
        wa_id: WaId,
    },
    /// v1. A message of this conversation is this WhatsApp message. For an incoming message
    /// it follows `MessageReceived` in the same commit and keeps what WhatsApp said about it;
    /// for an outgoing one it is written when the Graph API accepted it, so statuses match.
    WhatsappMessageLinked {
        /// The message in this conversation.
        message_id: MessageId,
        /// WhatsApp's id of it.
        wamid: Wamid,
        /// `incoming` (from the contact) or `outgoing` (sent by the team).
        direction: Direction,
        /// WhatsApp's message type: `text`, `image`, `reaction`, `template`, …
        kind: String,
        /// For incoming messages, WhatsApp's object for that type (media id, caption,
        /// location, reply, reaction, …), kept as received; `null` when there is none.
        details: Option<serde_json::Value>,
    },
    /// v1. The team sent an approved WhatsApp template: the only message WhatsApp delivers
    /// outside the 24-hour window. Starts with delivery status `pending`, like `MessagePosted`.
    WhatsappTemplatePosted {
        /// Unique within the conversation.
        message_id: MessageId,
        /// The template and its parameters.
        template: Template,
        /// How the inbox shows it (`Template::summary`).
        content: MessageContent,
        /// Who sent it.
        author: Actor,
    },
}

impl DomainEvent for ConversationEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ConversationStarted { .. } => "ConversationStarted",
            Self::MessageReceived { .. } => "MessageReceived",
            Self::MessagePosted { .. } => "MessagePosted",
            Self::NoteAdded { .. } => "NoteAdded",
            Self::MessageStatusChanged { .. } => "MessageStatusChanged",
            Self::ReadMarkerMoved { .. } => "ReadMarkerMoved",
            Self::ConversationAssigned { .. } => "ConversationAssigned",
            Self::ConversationUnassigned { .. } => "ConversationUnassigned",
            Self::ConversationStatusChanged { .. } => "ConversationStatusChanged",
            Self::LabelAdded { .. } => "LabelAdded",
            Self::LabelRemoved { .. } => "LabelRemoved",
            Self::WhatsappContactLinked { .. } => "WhatsappContactLinked",
            Self::WhatsappMessageLinked { .. } => "WhatsappMessageLinked",
            Self::WhatsappTemplatePosted { .. } => "WhatsappTemplatePosted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
