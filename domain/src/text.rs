//! Validated text values. Each type can only be built by parsing, so an aggregate never sees
//! an empty message, a label with spaces or a colour that is not a colour.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::rejection::{Rejection, RejectionKind};

/// A value that failed validation; the API names the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidValue {
    /// Stable code, e.g. `too_long`.
    pub code: &'static str,
    /// What is wrong and what would be right.
    pub message: String,
}

impl InvalidValue {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl Rejection for InvalidValue {
    fn kind(&self) -> RejectionKind {
        RejectionKind::Unprocessable
    }
    fn code(&self) -> &'static str {
        self.code
    }
}

/// Trims `raw` and checks it is between 1 and `max` characters.
fn bounded(raw: &str, max: usize, what: &str) -> Result<String, InvalidValue> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(InvalidValue::new(
            "blank",
            format!("{what} must not be empty"),
        ));
    }
    let len = text.chars().count();
    if len > max {
        return Err(InvalidValue::new(
            "too_long",
            format!("{what} is {len} characters long; at most {max} are allowed"),
        ));
    }
    Ok(text.to_owned())
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $max:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The longest value accepted, in characters.
            pub const MAX_CHARS: usize = $max;

            /// Trims and checks the value.
            pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
                bounded(raw, $max, $what).map(Self)
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_type!(
    /// The body of a message or note. Always shown as text, never as HTML.
    MessageContent, 10_000, "message content"
);
text_type!(
    /// A person's display name, or a widget's or team's name.
    Name, 200, "a name"
);
text_type!(
    /// A short sentence shown in the widget (greeting, offline message).
    WidgetText, 500, "widget text"
);

/// A conversation label: lower-case letters, digits, `-` and `_`, up to 50 characters, so it
/// can appear in a URL path and a filter without escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Label(String);

impl Label {
    /// Lower-cases and checks the label.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let label = bounded(raw, 50, "a label")?.to_lowercase();
        if !label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(InvalidValue::new(
                "invalid_label",
                "a label may contain only letters, digits, `-` and `_`",
            ));
        }
        Ok(Self(label))
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address, checked for shape only (one `@`, a dotted domain, no spaces): deliverability
/// is not ours to judge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Trims, lower-cases the domain part and checks the shape.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let text = bounded(raw, 254, "an e-mail address")?;
        let invalid = || {
            InvalidValue::new(
                "invalid_email",
                format!("`{text}` is not an e-mail address"),
            )
        };
        let (local, host) = text.split_once('@').ok_or_else(invalid)?;
        let well_formed = !local.is_empty()
            && host.contains('.')
            && !host.starts_with('.')
            && !host.ends_with('.')
            && !host.contains('@')
            && !text.chars().any(char::is_whitespace);
        if !well_formed {
            return Err(invalid());
        }
        Ok(Self(format!("{local}@{}", host.to_lowercase())))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password an agent signs in with: 8 to 1,024 characters, kept exactly as typed (no
/// trimming: spaces may be part of it). The upper bound keeps one sign-in from making the
/// server hash megabytes. Its `Debug` never shows the text, so it cannot leak into a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The shortest password accepted, in characters.
    pub const MIN_CHARS: usize = 8;
    /// The longest password accepted, in characters.
    pub const MAX_CHARS: usize = 1024;

    /// Checks the length.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let len = raw.chars().count();
        if len < Self::MIN_CHARS {
            return Err(InvalidValue::new(
                "weak_password",
                format!(
                    "a password needs at least {} characters; this one has {len}",
                    Self::MIN_CHARS
                ),
            ));
        }
        if len > Self::MAX_CHARS {
            return Err(InvalidValue::new(
                "too_long",
                format!(
                    "a password is {len} characters long; at most {} are allowed",
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The password as typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// A phone number in international form: `+` and 8 to 15 digits (E.164). Spaces, dashes,
/// dots and parentheses are dropped; a missing `+` is added, as WhatsApp ids come without one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    /// Normalises and checks the number.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let text = bounded(raw, 32, "a phone number")?;
        let digits: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = digits.strip_prefix('+').unwrap_or(&digits);
        if !(8..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(InvalidValue::new(
                "invalid_phone",
                format!(
                    "`{text}` is not an international phone number (E.164, e.g. +4915112345678)"
                ),
            ));
        }
        Ok(Self(format!("+{digits}")))
    }

    /// The number, `+` first.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A colour as `#rrggbb`, lower case. Three-digit forms are expanded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BrandColor(String);

impl BrandColor {
    /// Checks and normalises the colour.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let text = raw.trim();
        let invalid = || {
            InvalidValue::new(
                "invalid_color",
                format!("`{text}` is not a hex colour such as #1f93ff"),
            )
        };
        let hex = text.strip_prefix('#').ok_or_else(invalid)?;
        if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let full = match hex.len() {
            6 => hex.to_owned(),
            3 => hex.chars().flat_map(|c| [c, c]).collect(),
            _ => return Err(invalid()),
        };
        Ok(Self(format!("#{}", full.to_lowercase())))
    }

    /// The colour, `#rrggbb`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_content_is_trimmed_and_bounded() {
        assert_eq!(MessageContent::parse("  hi ").unwrap().as_str(), "hi");
        assert_eq!(MessageContent::parse("   ").unwrap_err().code, "blank");
        let long = "x".repeat(MessageContent::MAX_CHARS + 1);
        assert_eq!(MessageContent::parse(&long).unwrap_err().code, "too_long");
    }

    #[test]
    fn passwords_are_bounded_and_kept_as_typed() {
        assert_eq!(Password::parse(" 8 chars").unwrap().as_str(), " 8 chars");
        assert_eq!(
            Password::parse("7 chars").unwrap_err().code,
            "weak_password"
        );
        let long = "x".repeat(Password::MAX_CHARS + 1);
        assert_eq!(Password::parse(&long).unwrap_err().code, "too_long");
        let secret = Password::parse("correct horse").unwrap();
        assert!(!format!("{secret:?}").contains("horse"));
    }

    #[test]
    fn labels_are_lower_case_slugs() {
        assert_eq!(Label::parse("VIP").unwrap().as_str(), "vip");
        assert_eq!(Label::parse("billing-2").unwrap().as_str(), "billing-2");
        assert!(Label::parse("has space").is_err());
        assert!(Label::parse("a/b").is_err());
    }

    #[test]
    fn emails_need_a_dotted_domain() {
        assert_eq!(
            Email::parse("Ann@Example.COM").unwrap().as_str(),
            "Ann@example.com"
        );
        for bad in [
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn phones_are_normalised_to_e164() {
        assert_eq!(
            Phone::parse("+49 151 1234-5678").unwrap().as_str(),
            "+4915112345678"
        );
        assert_eq!(
            Phone::parse("4915112345678").unwrap().as_str(),
            "+4915112345678"
        );
        assert!(Phone::parse("12345").is_err());
        assert!(Phone::parse("+49 151 abc").is_err());
    }

    #[test]
    fn colours_are_hex() {
        assert_eq!(BrandColor::parse("#1F93FF").unwrap().as_str(), "#1f93ff");
        assert_eq!(BrandColor::parse("#abc").unwrap().as_str(), "#aabbcc");
        for bad in ["1f93ff", "#12345", "#ggg", "red"] {
            assert!(BrandColor::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
