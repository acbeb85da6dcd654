//! The event feed for external consumers: the stored events in the CloudEvents 1.0 JSON form,
//! with the cursor that resumes after them.
//!
//! One shape serves the paged feed, the Server-Sent Events stream and the broker relay, so a
//! consumer can move between them and keep its dedupe keys and cursors: an event has the same
//! `id` and `cursor` wherever it is read.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::reader::StoredEvent;

/// The namespace of event ids (UUIDv5 over aggregate type, aggregate id and sequence).
/// Never change it: consumers and the broker deduplicate by these ids.
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x0193_a8f0_5e1d_7c2b_9f4a_3d6e_8b7c_1a20);

/// The stable id of a stored event: the same on every read, in every form (feed, stream,
/// broker), and unique across tenants, because its aggregate id holds the tenant.
pub fn event_id(event: &StoredEvent) -> Uuid {
    Uuid::new_v5(
        &EVENT_ID_NAMESPACE,
        format!(
            "{}/{}/{}",
            event.aggregate_type, event.aggregate_id, event.sequence
        )
        .as_bytes(),
    )
}

/// The path segment of an aggregate type in subjects and sources: `conversations`,
/// `widgets`, `domains`.
pub fn collection(aggregate_type: &str) -> String {
    format!("{}s", aggregate_type.to_ascii_lowercase())
}

/// The event's fields: the payload without its `{"EventType": …}` wrapper.
pub fn event_data(event: &StoredEvent) -> Value {
    match &event.payload {
        Value::Object(map) if map.len() == 1 && map.contains_key(&event.event_type) => {
            map[&event.event_type].clone()
        }
        other => other.clone(),
    }
}

/// An event in CloudEvents 1.0 JSON form (structured mode), with this service's extension
/// attributes. Extension names are lower-case letters only, as the specification asks.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CloudEvent {
    /// Always `1.0`.
    pub specversion: &'static str,
    /// Stable, unique id (UUID): deduplicate by it.
    pub id: Uuid,
    /// `/tenants/<tenant id>`: the producer's context.
    pub source: String,
    /// The event name, e.g. `MessagePosted` (the catalogue in `docs/events.md`).
    #[serde(rename = "type")]
    pub kind: String,
    /// `<collection>/<resource id>`, e.g. `conversations/0193…`.
    pub subject: String,
    /// When the event was recorded (the store's commit time).
    pub time: DateTime<Utc>,
    /// Always `application/json`.
    pub datacontenttype: &'static str,
    /// The event's fields, as catalogued in `docs/events.md`.
    #[schema(value_type = Object)]
    pub data: Value,
    /// Resume after this event by handing it back (`after`, `Last-Event-ID`). Opaque.
    pub cursor: String,
    /// Global position: increasing in the feed's order, not gap-free.
    pub position: i64,
    /// Sequence of the event within its aggregate, from 1.
    pub sequence: i64,
    /// `Conversation`, `Widget` or `Domain`.
    pub aggregatetype: String,
    /// Version of the event's schema.
    pub eventversion: String,
    /// Who did it: `agent:<id>`, `visitor:<id>`, `contact:<id>` or `system`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The chain of causes the event belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlationid: Option<String>,
    /// The event or request that directly caused it, where one is recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causationid: Option<String>,
}

impl CloudEvent {
    /// The feed form of a stored event.
    pub fn from_stored(event: &StoredEvent) -> Self {
        let resource = event
            .resource_id()
            .map(|id| id.to_string())
            .unwrap_or_else(|| event.aggregate_id.clone());
        Self {
            specversion: "1.0",
            id: event_id(event),
            source: format!("/tenants/{}", event.tenant_id),
            kind: event.event_type.clone(),
            subject: format!("{}/{resource}", collection(&event.aggregate_type)),
            time: event.recorded_at,
            datacontenttype: "application/json",
            data: event_data(event),
            cursor: event.cursor().to_string(),
            position: event.position,
            sequence: event.sequence,
            aggregatetype: event.aggregate_type.clone(),
            eventversion: event.event_version.clone(),
            actor: event.meta("actor"),
            correlationid: event.meta("correlation_id"),
            causationid: event.meta("causation_id"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored() -> StoredEvent {
        StoredEvent {
            transaction_id: 7_700,
            position: 42,
            tenant_id: Uuid::nil(),
            aggregate_type: "Conversation".into(),
            aggregate_id: format!("{}:{}", Uuid::nil(), Uuid::max()),
            sequence: 3,
            event_type: "LabelAdded".into(),
            event_version: "1".into(),
            payload: json!({"LabelAdded": {"label": "vip"}}),
            metadata: json!({"actor": "system", "correlation_id": "c"}),
            recorded_at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn an_event_keeps_its_id_across_reads_and_events_differ() {
        let event = stored();
        assert_eq!(event_id(&event), event_id(&event.clone()));
        let mut next = stored();
        next.sequence = 4;
        assert_ne!(event_id(&event), event_id(&next));
    }

    #[test]
    fn the_cloud_event_names_its_tenant_resource_and_position() {
        let event = CloudEvent::from_stored(&stored());
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "LabelAdded");
        assert_eq!(json["source"], format!("/tenants/{}", Uuid::nil()));
        assert_eq!(json["subject"], format!("conversations/{}", Uuid::max()));
        assert_eq!(json["data"], json!({"label": "vip"}));
        assert_eq!(json["position"], 42);
        assert_eq!(json["actor"], "system");
        assert!(json.get("causationid").is_none());
        assert_eq!(
            event.cursor.parse::<crate::reader::Cursor>().unwrap(),
            stored().cursor()
        );
    }
}
