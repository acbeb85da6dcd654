//! The chat widget a tenant embeds on its verified domains: how it looks, what it says and
//! where it may run.

mod aggregate;
mod error;
mod events;

pub use aggregate::{Widget, WidgetCommand, WidgetServices};
pub use error::WidgetError;
pub use events::{DisplayType, Position, Theme, WidgetEvent, WidgetPatch, WidgetSettings};
