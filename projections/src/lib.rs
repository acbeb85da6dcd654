//! The read side of Upzento Chat.
//!
//! - [`reader`]: the one gap-free reader of the global event order (DESIGN.md, decision 2).
//! - [`runtime`]: runs projectors durably: checkpoint in the same transaction as the rows,
//!   one instance per projector across servers (advisory lock), lag made visible.
//! - [`rebuild`]: rebuilding a projector's read models, its secondary indexes built once at
//!   the end.
//! - [`inbox`]: the inbox projector (conversation list, messages and delivery status, read
//!   markers, maintained counters).
//! - [`notifications`]: the instance's one `LISTEN` connection: events appended, for the
//!   projectors and the live tail; projector batches committed, for read-your-writes waits.
//! - [`queries`]: what the query API reads from those tables.
//! - [`activity`]: a conversation's activity lines (assignment, status, labels, …), read from
//!   the event store for the agents' timeline.
//! - [`audit`]: one aggregate's history and a conversation's state at a past point.
//! - [`feed`]: the CloudEvents form of events and the cursor external consumers resume from.
//! - [`tail`]: the live tail of the global order that WebSocket clients and feeds follow.
//! - [`whatsapp`]: the WhatsApp outbox projector (what must be sent to the Graph API).
#![forbid(unsafe_code)]

pub mod activity;
pub mod audit;
pub mod feed;
pub mod inbox;
pub mod notifications;
pub mod queries;
pub mod reader;
pub mod rebuild;
pub mod runtime;
pub mod tail;
pub mod whatsapp;

use std::sync::Arc;

/// The name an enum that serializes as a bare string has on the wire and in the read models
/// (`"open"`, `"delivered"`).
pub(crate) fn wire<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Every projector the service runs, in one place so the server, the CLI and the tests agree.
pub fn all() -> Vec<Arc<dyn runtime::Projector>> {
    vec![Arc::new(inbox::Inbox), Arc::new(whatsapp::WhatsappOutbox)]
}
