//! The WhatsApp Cloud API's JSON, as Meta sends and answers it.
//!
//! Webhooks are read leniently: unknown fields are kept or ignored, never refused, because
//! Meta adds fields and message types over time, and a refused delivery is retried by Meta
//! until it disables the webhook. Every message keeps its type and WhatsApp's object for it,
//! whatever the type, so nothing is dropped silently.

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The `object` every WhatsApp webhook carries.
pub const OBJECT: &str = "whatsapp_business_account";

/// A webhook POST body.
#[derive(Debug, Deserialize)]
pub struct Webhook {
    /// Always [`OBJECT`] for WhatsApp.
    pub object: String,
    /// One per business account with news; a delivery may batch several.
    #[serde(default)]
    pub entry: Vec<Entry>,
}

/// News for one business account.
#[derive(Debug, Deserialize)]
pub struct Entry {
    /// The changes, each for one webhook field.
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// One change; only `messages` changes carry messages and statuses.
#[derive(Debug, Deserialize)]
pub struct Change {
    /// The webhook field, e.g. `messages`.
    #[serde(default)]
    pub field: String,
    /// Its value; its shape depends on `field`.
    #[serde(default)]
    pub value: Value,
}

/// The value of a `messages` change.
#[derive(Debug, Deserialize)]
pub struct MessagesValue {
    /// Which of the business's numbers this is about.
    pub metadata: Metadata,
    /// The senders of `messages`, with their profile names.
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// Messages from contacts.
    #[serde(default)]
    pub messages: Vec<Message>,
    /// Delivery statuses of messages the business sent.
    #[serde(default)]
    pub statuses: Vec<Status>,
}

/// Which number a change concerns.
#[derive(Debug, Deserialize)]
pub struct Metadata {
    /// Meta's phone number id.
    pub phone_number_id: String,
}

/// A contact as WhatsApp presents it.
#[derive(Debug, Deserialize)]
pub struct Contact {
    /// The contact's WhatsApp id (its number in digits).
    pub wa_id: String,
    /// The profile the contact set.
    #[serde(default)]
    pub profile: Option<Profile>,
}

/// A contact's WhatsApp profile.
#[derive(Debug, Deserialize)]
pub struct Profile {
    /// The display name the contact chose.
    #[serde(default)]
    pub name: Option<String>,
}

/// One message from a contact.
#[derive(Debug, Deserialize)]
pub struct Message {
    /// The sender's WhatsApp id.
    pub from: String,
    /// The `wamid`.
    pub id: String,
    /// Unix seconds, as a string.
    pub timestamp: String,
    /// `text`, `image`, `document`, `audio`, `video`, `sticker`, `location`, `contacts`,
    /// `interactive`, `button`, `reaction`, `unsupported`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Everything else: the object named by `kind`, `context` for replies, `errors`.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A delivery status of a message the business sent.
#[derive(Debug, Deserialize)]
pub struct Status {
    /// The `wamid` of the business's message.
    pub id: String,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: String,
    /// Unix seconds, as a string.
    pub timestamp: String,
    /// For `failed`: why.
    #[serde(default)]
    pub errors: Vec<GraphError>,
}

/// An error as the Cloud API reports it, in statuses and in answers.
#[derive(Debug, Clone, Deserialize)]
pub struct GraphError {
    /// Meta's error code, e.g. 131047.
    #[serde(default)]
    pub code: i64,
    /// Short title.
    #[serde(default)]
    pub title: Option<String>,
    /// Message.
    #[serde(default)]
    pub message: Option<String>,
    /// Longer explanation.
    #[serde(default)]
    pub error_data: Option<ErrorData>,
}

/// The explanation part of a [`GraphError`].
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorData {
    /// What happened, in words.
    #[serde(default)]
    pub details: Option<String>,
}

impl GraphError {
    /// The reason an agent reads: code, title and details.
    pub fn reason(&self) -> String {
        let title = self
            .title
            .as_deref()
            .or(self.message.as_deref())
            .unwrap_or("error");
        let mut reason = if title.starts_with("(#") {
            title.to_owned()
        } else {
            format!("(#{}) {title}", self.code)
        };
        if let Some(details) = self.error_data.as_ref().and_then(|d| d.details.as_deref()) {
            reason.push_str(": ");
            reason.push_str(details);
        }
        reason
    }
}

/// The Graph API's error answer: `{"error": {...}}`.
#[derive(Debug, Deserialize)]
pub struct ErrorAnswer {
    /// The error.
    pub error: GraphError,
}

/// The Graph API's answer to a sent message.
#[derive(Debug, Deserialize)]
pub struct SendAnswer {
    /// The message, with its `wamid`.
    #[serde(default)]
    pub messages: Vec<SentMessage>,
}

/// One sent message in a [`SendAnswer`].
#[derive(Debug, Deserialize)]
pub struct SentMessage {
    /// The `wamid` later statuses carry.
    pub id: String,
}

/// A Unix-seconds string as a time; `None` when it is not one.
pub fn unix_time(seconds: &str) -> Option<DateTime<Utc>> {
    let seconds: i64 = seconds.trim().parse().ok()?;
    Utc.timestamp_opt(seconds, 0).single()
}

fn text_of(object: Option<&Value>, key: &str) -> Option<String> {
    object?
        .get(key)?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl Message {
    /// WhatsApp's object for this message's type, if it has one.
    fn body(&self) -> Option<&Value> {
        self.rest.get(&self.kind)
    }

    /// The metadata kept with the message: everything besides sender, id, time and type.
    pub fn details(&self) -> Option<Value> {
        (!self.rest.is_empty()).then(|| Value::Object(self.rest.clone()))
    }

    /// How the message shows in the inbox: the text of a text message; for other types the
    /// type in brackets and what can be said in words (caption, file name, place, choice,
    /// emoji), so a picture is visibly a picture rather than missing.
    pub fn display_text(&self) -> String {
        let body = self.body();
        let words = match self.kind.as_str() {
            "text" => return text_of(body, "body").unwrap_or_else(|| "[text]".to_owned()),
            "image" | "video" | "sticker" | "audio" => text_of(body, "caption"),
            "document" => {
                let name = text_of(body, "filename");
                let caption = text_of(body, "caption");
                match (name, caption) {
                    (Some(n), Some(c)) => Some(format!("{n}: {c}")),
                    (n, c) => n.or(c),
                }
            }
            "location" => {
                let place = [text_of(body, "name"), text_of(body, "address")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", ");
                let at = body.and_then(|b| Some((b.get("latitude")?, b.get("longitude")?)));
                match at {
                    Some((lat, lon)) if place.is_empty() => Some(format!("{lat}, {lon}")),
                    Some((lat, lon)) => Some(format!("{place} ({lat}, {lon})")),
                    None => Some(place).filter(|p| !p.is_empty()),
                }
            }
            "interactive" => body.and_then(|b| {
                ["button_reply", "list_reply"]
                    .iter()
                    .find_map(|k| text_of(b.get(*k), "title"))
            }),
            "button" => text_of(body, "text"),
            "reaction" => Some(
                text_of(body, "emoji")
                    .map_or_else(|| "removed".to_owned(), |emoji| emoji.to_string()),
            ),
            "contacts" => self
                .rest
                .get("contacts")
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .filter_map(|c| text_of(c.get("name"), "formatted_name"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }),
            _ => None,
        };
        match words.filter(|w| !w.is_empty()) {
            Some(words) => format!("[{}] {words}", self.kind),
            None => format!("[{}]", self.kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(json: &str) -> Message {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn every_type_shows_as_itself() {
        let cases = [
            (
                "text",
                r#"{"from":"1","id":"w","timestamp":"1","type":"text","text":{"body":"Hi"}}"#,
                "Hi",
            ),
            (
                "image with caption",
                r#"{"from":"1","id":"w","timestamp":"1","type":"image","image":{"caption":"This one","id":"9"}}"#,
                "[image] This one",
            ),
            (
                "reaction",
                r#"{"from":"1","id":"w","timestamp":"1","type":"reaction","reaction":{"message_id":"x","emoji":"👍"}}"#,
                "[reaction] 👍",
            ),
            (
                "location",
                r#"{"from":"1","id":"w","timestamp":"1","type":"location","location":{"latitude":52.5,"longitude":13.4,"name":"Office"}}"#,
                "[location] Office (52.5, 13.4)",
            ),
            (
                "interactive reply",
                r#"{"from":"1","id":"w","timestamp":"1","type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"b1","title":"Yes please"}}}"#,
                "[interactive] Yes please",
            ),
            (
                "unknown type",
                r#"{"from":"1","id":"w","timestamp":"1","type":"unsupported","errors":[{"code":131051}]}"#,
                "[unsupported]",
            ),
        ];
        for (description, json, shown) in cases {
            assert_eq!(message(json).display_text(), shown, "{description}");
        }
    }

    #[test]
    fn a_failure_reason_names_code_title_and_details() {
        let error: GraphError = serde_json::from_str(
            r#"{"code":131047,"title":"Re-engagement message","error_data":{"details":"More than 24 hours have passed."}}"#,
        )
        .unwrap();
        assert_eq!(
            error.reason(),
            "(#131047) Re-engagement message: More than 24 hours have passed."
        );
    }
}
