//! Why a conversation command was refused.

use super::events::DeliveryStatus;
use crate::ids::MessageId;
use crate::rejection::{Rejection, RejectionKind};

/// A refused conversation command. Each variant's doc names its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversationError {
    /// 404: there is no such conversation (for this tenant).
    #[error("conversation not found")]
    NotFound,
    /// 409: the conversation was already started.
    #[error("the conversation already exists")]
    AlreadyStarted,
    /// 409: a message with this id is already in the conversation.
    #[error("message {0} is already in this conversation")]
    DuplicateMessage(MessageId),
    /// 404: the message is not in the conversation.
    #[error("message {0} is not in this conversation")]
    MessageNotFound(MessageId),
    /// 422: only outgoing messages have a delivery status.
    #[error("message {0} is not an outgoing message, so it has no delivery status")]
    NotOutgoing(MessageId),
    /// 409: delivery status moves forward only.
    #[error("message status cannot go from `{from:?}` back to `{to:?}`")]
    StatusRegression {
        /// The message's current status.
        from: DeliveryStatus,
        /// The refused status.
        to: DeliveryStatus,
    },
    /// 422: `pending` is where messages start, not a status to report.
    #[error("`pending` is not a status a channel can report")]
    PendingNotReportable,
    /// 409: a resolved conversation must be reopened before the team replies in it.
    #[error("the conversation is resolved; reopen it before replying")]
    Resolved,
    /// 422: `snoozed` needs a `snoozed_until` in the future.
    #[error("snoozing needs a `snoozed_until` in the future")]
    SnoozeNeedsFutureTime,
    /// 422: `snoozed_until` is only for `snoozed`.
    #[error("`snoozed_until` can only be given with status `snoozed`")]
    SnoozeTimeWithoutSnooze,
    /// 422: a contact acknowledges messages as `delivered` or `read`, nothing else.
    #[error("a contact acknowledges messages as `delivered` or `read`")]
    NotAnAcknowledgement,
    /// 422: a web conversation needs its widget; other channels have none.
    #[error("a conversation from the web needs a widget, and only one from the web has one")]
    WidgetMismatch,
    /// 409: WhatsApp delivers a free-form reply only within 24 hours of the contact's last
    /// message; outside it the team may send an approved template.
    #[error(
        "the contact last wrote more than 24 hours ago, so WhatsApp would not deliver a free-form reply; send an approved template instead (POST /api/v1/conversations/{{id}}/whatsapp/templates)"
    )]
    ReplyWindowClosed,
    /// 422: WhatsApp accepts at most 4,096 characters of text.
    #[error("WhatsApp accepts at most 4,096 characters in a text message")]
    WhatsappTextTooLong,
    /// 422: templates and WhatsApp ids belong to WhatsApp conversations.
    #[error("this is not a WhatsApp conversation")]
    NotWhatsapp,
}

impl Rejection for ConversationError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::NotFound | Self::MessageNotFound(_) => RejectionKind::NotFound,
            Self::AlreadyStarted
            | Self::DuplicateMessage(_)
            | Self::StatusRegression { .. }
            | Self::Resolved
            | Self::ReplyWindowClosed => RejectionKind::Conflict,
            Self::NotOutgoing(_)
            | Self::PendingNotReportable
            | Self::NotAnAcknowledgement
            | Self::SnoozeNeedsFutureTime
            | Self::SnoozeTimeWithoutSnooze
            | Self::WidgetMismatch
            | Self::WhatsappTextTooLong
            | Self::NotWhatsapp => RejectionKind::Unprocessable,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "conversation_not_found",
            Self::AlreadyStarted => "conversation_exists",
            Self::DuplicateMessage(_) => "duplicate_message",
            Self::MessageNotFound(_) => "message_not_found",
            Self::NotOutgoing(_) => "not_outgoing",
            Self::StatusRegression { .. } => "status_regression",
            Self::PendingNotReportable | Self::NotAnAcknowledgement => "invalid_status",
            Self::Resolved => "conversation_resolved",
            Self::SnoozeNeedsFutureTime | Self::SnoozeTimeWithoutSnooze => "invalid_snooze",
            Self::WidgetMismatch => "widget_mismatch",
            Self::ReplyWindowClosed => "whatsapp_window_closed",
            Self::WhatsappTextTooLong => "too_long",
            Self::NotWhatsapp => "not_whatsapp",
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::DuplicateMessage(_) => Some("id"),
            Self::StatusRegression { .. }
            | Self::PendingNotReportable
            | Self::NotAnAcknowledgement => Some("status"),
            Self::SnoozeNeedsFutureTime | Self::SnoozeTimeWithoutSnooze => Some("snoozed_until"),
            Self::WidgetMismatch => Some("widget_id"),
            Self::WhatsappTextTooLong => Some("content"),
            _ => None,
        }
    }
}
