//! Identifier newtypes. Parsing is the only way in, so an id that reached the domain is
//! well-formed; ids are UUIDv7 so that they sort by creation time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A string that was supposed to be an id and is not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid id (expected a UUID)")]
pub struct InvalidId(pub String);

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses an id from its textual form.
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                Uuid::parse_str(s.trim()).map(Self).map_err(|_| InvalidId(s.to_owned()))
            }

            /// The underlying UUID, for storage.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A customer of Upzento: every other id lives inside exactly one tenant.
    TenantId
);
id_type!(
    /// A member of a tenant's team who answers conversations.
    AgentId
);
id_type!(
    /// A group of agents a conversation can be assigned to.
    TeamId
);
id_type!(
    /// A conversation with one contact.
    ConversationId
);
id_type!(
    /// A message or private note inside a conversation; unique within it.
    MessageId
);
id_type!(
    /// A chat widget.
    WidgetId
);
id_type!(
    /// A web domain a tenant registered.
    DomainId
);
id_type!(
    /// A WhatsApp channel: one of a tenant's WhatsApp Business phone numbers.
    ChannelId
);
