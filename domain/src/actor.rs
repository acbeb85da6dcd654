//! Who did something. Recorded on every event's metadata and on messages' authors, because
//! auditors must be able to tell an agent's reply from an integration's or a bot's.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::AgentId;

/// The author of a change, written `agent:<id>`, `visitor:<id>`, `contact:<id>` or `system`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A signed-in agent, or an integration acting through an agent's API token.
    Agent(AgentId),
    /// A website visitor, by the visitor id the widget session carries.
    Visitor(String),
    /// A messaging contact (for example a WhatsApp number).
    Contact(String),
    /// The service itself (timers, automations).
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Agent(id) => write!(f, "agent:{id}"),
            Actor::Visitor(id) => write!(f, "visitor:{id}"),
            Actor::Contact(id) => write!(f, "contact:{id}"),
            Actor::System => f.write_str("system"),
        }
    }
}

/// A string that is not one of the actor forms.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an actor (agent:<id>, visitor:<id>, contact:<id> or system)")]
pub struct InvalidActor(String);

impl std::str::FromStr for Actor {
    type Err = InvalidActor;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidActor(s.to_owned());
        match s.split_once(':') {
            None if s == "system" => Ok(Actor::System),
            Some(("agent", id)) => AgentId::parse(id).map(Actor::Agent).map_err(|_| invalid()),
            Some(("visitor", id)) if !id.is_empty() => Ok(Actor::Visitor(id.to_owned())),
            Some(("contact", id)) if !id.is_empty() => Ok(Actor::Contact(id.to_owned())),
            _ => Err(invalid()),
        }
    }
}

impl Serialize for Actor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_actor_form_survives_its_text_form() {
        for actor in [
            Actor::Agent(AgentId::new()),
            Actor::Visitor("v-1".into()),
            Actor::Contact("4915112345678".into()),
            Actor::System,
        ] {
            assert_eq!(actor.to_string().parse::<Actor>().unwrap(), actor);
        }
        assert!("agent:nope".parse::<Actor>().is_err());
        assert!("robot".parse::<Actor>().is_err());
    }
}
