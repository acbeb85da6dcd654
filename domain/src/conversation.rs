//! A conversation: one contact, one channel, the messages between them and the team, and
//! the inbox state around them (status, assignment, labels, read markers).

mod aggregate;
mod commands;
mod error;
mod events;
mod whatsapp;

pub use aggregate::{Conversation, MessageState};
pub use commands::ConversationCommand;
pub use error::ConversationError;
pub use events::{
    Contact, ConversationEvent, ConversationStatus, DeliveryStatus, Direction, Source,
};
pub use whatsapp::{MAX_TEXT_CHARS, REPLY_WINDOW, Template, WaId, Wamid, window_open};
