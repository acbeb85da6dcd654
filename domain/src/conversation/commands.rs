//! What can be asked of a conversation.

use chrono::{DateTime, Utc};

use super::events::{Contact, ConversationStatus, DeliveryStatus, Source};
use super::whatsapp::{Template, WaId, Wamid};
use crate::actor::Actor;
use crate::ids::{AgentId, ChannelId, MessageId, TeamId, WidgetId};
use crate::text::{Label, MessageContent};

/// A request to change a conversation. Times that rules depend on (`now`) come in with the
/// command, so the aggregate stays a pure function of its history.
#[derive(Debug, Clone, PartialEq)]
pub enum ConversationCommand {
    /// Begin a conversation.
    Start {
        /// The channel.
        source: Source,
        /// Who it is with.
        contact: Contact,
        /// The widget, for `web`.
        widget_id: Option<WidgetId>,
    },
    /// Record a message from the contact.
    ReceiveMessage {
        /// Unique within the conversation.
        message_id: MessageId,
        /// The text.
        content: MessageContent,
        /// When the contact sent it.
        sent_at: DateTime<Utc>,
    },
    /// Record the team's reply to the contact.
    PostMessage {
        /// Unique within the conversation.
        message_id: MessageId,
        /// The text.
        content: MessageContent,
        /// Who wrote it.
        author: Actor,
        /// When it was posted: on the website channel, storing a reply is sending it.
        at: DateTime<Utc>,
    },
    /// Record a private note.
    AddNote {
        /// Unique within the conversation.
        message_id: MessageId,
        /// The text.
        content: MessageContent,
        /// Who wrote it.
        author: Actor,
    },
    /// Move an outgoing message's delivery status forward.
    UpdateMessageStatus {
        /// The outgoing message.
        message_id: MessageId,
        /// The new status.
        status: DeliveryStatus,
        /// Why it failed, for `failed`.
        error: Option<String>,
        /// When the channel says it happened.
        at: DateTime<Utc>,
    },
    /// The contact's client confirms it has the team's messages up to one (`delivered`) or
    /// has shown them (`read`): each outgoing message up to it moves forward, none back.
    /// Message ids order messages (they are UUIDv7), so "up to" means "with an id no greater".
    AcknowledgeByContact {
        /// The newest message acknowledged.
        up_to: MessageId,
        /// `delivered` or `read`.
        status: DeliveryStatus,
        /// When the client saw it.
        at: DateTime<Utc>,
    },
    /// Mark everything up to the newest message as read by an agent.
    MarkRead {
        /// The reader.
        agent_id: AgentId,
    },
    /// Give the conversation to an agent and/or a team; neither means unassign.
    Assign {
        /// The agent, if one.
        agent_id: Option<AgentId>,
        /// The team, if one.
        team_id: Option<TeamId>,
    },
    /// Change the workflow status.
    ChangeStatus {
        /// The new status.
        status: ConversationStatus,
        /// Until when, required for `snoozed` and refused otherwise.
        snoozed_until: Option<DateTime<Utc>>,
        /// The time the request was made, to refuse a snooze into the past.
        now: DateTime<Utc>,
    },
    /// Put a label on.
    AddLabel {
        /// The label.
        label: Label,
    },
    /// Take a label off.
    RemoveLabel {
        /// The label.
        label: Label,
    },
    /// Begin a conversation with a WhatsApp user who wrote to one of the tenant's numbers.
    StartWhatsapp {
        /// The profile name WhatsApp gave, and the number.
        contact: Contact,
        /// The tenant's number.
        channel_id: ChannelId,
        /// The contact's WhatsApp id.
        wa_id: WaId,
    },
    /// Record a message that came in through WhatsApp.
    ReceiveWhatsappMessage {
        /// Unique within the conversation.
        message_id: MessageId,
        /// The text, or a description of a message that is not text.
        content: MessageContent,
        /// When the contact sent it, by WhatsApp's clock.
        sent_at: DateTime<Utc>,
        /// WhatsApp's id of it.
        wamid: Wamid,
        /// WhatsApp's message type.
        kind: String,
        /// WhatsApp's object for that type, as received.
        details: Option<serde_json::Value>,
    },
    /// Send an approved WhatsApp template.
    PostTemplate {
        /// Unique within the conversation.
        message_id: MessageId,
        /// The template and its parameters.
        template: Template,
        /// Who sent it.
        author: Actor,
    },
    /// Record that the Graph API accepted an outgoing message under this `wamid`.
    LinkWhatsappMessage {
        /// The outgoing message.
        message_id: MessageId,
        /// WhatsApp's id of it.
        wamid: Wamid,
        /// `text` or `template`.
        kind: String,
        /// When the Graph API accepted it.
        at: DateTime<Utc>,
    },
}
