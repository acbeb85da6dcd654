//! The WhatsApp values a conversation keeps: who the contact is on WhatsApp, what WhatsApp
//! calls a message, and the approved templates a team may send outside the 24-hour window.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::text::InvalidValue;

/// How long after the contact's last message the team may write freely: WhatsApp's
/// customer-service window. Outside it only approved templates are delivered.
pub const REPLY_WINDOW: Duration = Duration::hours(24);

/// The longest text body the Cloud API accepts, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;

/// True when a free-form reply at `now` is inside the window the contact's last message
/// (`last_incoming_at`) opened.
pub fn window_open(last_incoming_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_incoming_at.is_some_and(|last| now < last + REPLY_WINDOW)
}

/// A WhatsApp user id (`wa_id`): the contact's phone number in digits, without `+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WaId(String);

impl WaId {
    /// Checks the id: 5 to 20 digits (WhatsApp ids are phone numbers).
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let raw = raw.trim();
        if (5..=20).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidValue::new(
                "invalid_wa_id",
                format!("`{raw}` is not a WhatsApp id (5 to 20 digits)"),
            ))
        }
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// WhatsApp's id of one message (`wamid.…`), the key that statuses and redeliveries carry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Wamid(String);

impl Wamid {
    /// Checks the id: 1 to 256 visible ASCII characters (Meta documents no stricter form).
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        if (1..=256).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidValue::new(
                "invalid_wamid",
                "a WhatsApp message id is 1 to 256 visible ASCII characters",
            ))
        }
    }

    /// The id as WhatsApp wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An approved message template and the values of its body parameters, as the team asked
/// for it. Meta approves templates per business account; the Graph API refuses unknown ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// The template's name, e.g. `order_follow_up`.
    pub name: String,
    /// Its language code, e.g. `en_US`.
    pub language: String,
    /// The body parameters `{{1}}`, `{{2}}`, … in order.
    pub parameters: Vec<String>,
}

impl Template {
    /// Checks a template as Meta names them: lower-case letters, digits and `_` (at most
    /// 512), a language code such as `en` or `en_US`, and at most 20 non-empty parameters.
    /// Errors name the field at fault.
    pub fn parse(
        name: &str,
        language: &str,
        parameters: Vec<String>,
    ) -> Result<Self, (&'static str, InvalidValue)> {
        let name_ok = (1..=512).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !name_ok {
            return Err((
                "name",
                InvalidValue::new(
                    "invalid_template_name",
                    "a template name is 1 to 512 lower-case letters, digits and `_`",
                ),
            ));
        }
        let language_ok = (2..=15).contains(&language.len())
            && language
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'-');
        if !language_ok {
            return Err((
                "language",
                InvalidValue::new(
                    "invalid_template_language",
                    "a template language is a code such as `en` or `en_US`",
                ),
            ));
        }
        if parameters.len() > 20 {
            return Err((
                "parameters",
                InvalidValue::new(
                    "too_many_parameters",
                    "a template takes at most 20 parameters",
                ),
            ));
        }
        if parameters
            .iter()
            .any(|p| p.trim().is_empty() || p.chars().count() > 1024)
        {
            return Err((
                "parameters",
                InvalidValue::new(
                    "invalid_template_parameter",
                    "each template parameter is 1 to 1,024 characters",
                ),
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            language: language.to_owned(),
            parameters,
        })
    }

    /// How the template shows in the inbox and its search: its name, language and values,
    /// cut to the 10,000 characters a message may hold.
    pub fn summary(&self) -> String {
        let mut text = format!("[template {} ({})]", self.name, self.language);
        for parameter in &self.parameters {
            text.push(' ');
            text.push_str(parameter);
        }
        text.chars().take(10_000).collect()
    }
}

#[cfg(test)]
#[path = "whatsapp_tests.rs"]
mod tests;
