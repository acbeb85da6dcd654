//! Command metadata: who asked, on whose behalf, in answer to what (DESIGN.md, decision 5).
//! Auditors read it from every event; nothing else records who did what.

use chrono::{DateTime, Utc};
use domain::actor::Actor;
use domain::ids::TenantId;
use serde_json::{Map, Value, json};

/// The circumstances of one command.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// Whose data this is; taken from the credential, never from the request body.
    pub tenant_id: TenantId,
    /// Who did it.
    pub actor: Actor,
    /// The HTTP request (or job) that carried the command, for log correlation.
    pub request_id: String,
    /// The conversation of causes this command belongs to; a fresh request starts one.
    pub correlation_id: String,
    /// The event or request that directly caused this command, when it was not a person.
    pub causation_id: Option<String>,
}

impl CommandContext {
    /// A context for a request with no upstream cause: it correlates with itself.
    pub fn new(tenant_id: TenantId, actor: Actor, request_id: String) -> Self {
        Self {
            tenant_id,
            actor,
            correlation_id: request_id.clone(),
            request_id,
            causation_id: None,
        }
    }

    /// The metadata stored with each event the command produces.
    pub fn metadata(&self, at: DateTime<Utc>) -> Value {
        let mut map = Map::new();
        map.insert("tenant_id".into(), json!(self.tenant_id));
        map.insert("actor".into(), json!(self.actor.to_string()));
        map.insert("request_id".into(), json!(self.request_id));
        map.insert("correlation_id".into(), json!(self.correlation_id));
        if let Some(causation) = &self.causation_id {
            map.insert("causation_id".into(), json!(causation));
        }
        map.insert("timestamp".into(), json!(at.to_rfc3339()));
        Value::Object(map)
    }
}

/// The event-store stream of a tenant's resource. The tenant is part of the id, so a
/// resource of another tenant is simply not there (DESIGN.md, decision 4).
pub fn stream_id(tenant: TenantId, resource: impl std::fmt::Display) -> String {
    format!("{tenant}:{resource}")
}
