//! Hostnames as a tenant types them, normalised to the one form we compare and resolve.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::rejection::{Rejection, RejectionKind};

/// A public DNS hostname in lower-case ASCII (IDNA), without scheme, port, path or trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hostname(String);

/// Why a hostname was refused; the message says what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a public hostname: {reason}")]
pub struct InvalidHostname {
    input: String,
    reason: &'static str,
}

impl Rejection for InvalidHostname {
    fn kind(&self) -> RejectionKind {
        RejectionKind::Unprocessable
    }
    fn code(&self) -> &'static str {
        "invalid_hostname"
    }
    fn field(&self) -> Option<&'static str> {
        Some("hostname")
    }
}

/// Top-level names that never resolve on the public internet (RFC 2606, 6761, 6762, 8375).
const RESERVED_TLDS: [&str; 8] = [
    "localhost",
    "local",
    "test",
    "invalid",
    "example",
    "internal",
    "home.arpa",
    "lan",
];

impl Hostname {
    /// Accepts what people paste (`https://Shop.Example.com:443/path`, `bücher.de.`) and keeps
    /// only the hostname, lower case and IDNA-encoded; refuses IP addresses, single labels and
    /// names under reserved top-level domains.
    pub fn parse(raw: &str) -> Result<Self, InvalidHostname> {
        let input = raw.trim();
        let invalid = |reason| InvalidHostname {
            input: input.to_owned(),
            reason,
        };
        let without_scheme = input.split_once("://").map_or(input, |(_, rest)| rest);
        let authority = without_scheme
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        if authority.contains('@') {
            return Err(invalid("user information is not part of a hostname"));
        }
        if authority.starts_with('[') || authority.parse::<IpAddr>().is_ok() {
            return Err(invalid("IP addresses cannot be verified, use a hostname"));
        }
        let host = match authority.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            Some(_) => return Err(invalid("it contains a `:`")),
            None => authority,
        };
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.is_empty() {
            return Err(invalid("it is empty"));
        }
        let ascii =
            idna::domain_to_ascii(host).map_err(|_| invalid("it is not a valid domain name"))?;
        if ascii.parse::<IpAddr>().is_ok() {
            return Err(invalid("IP addresses cannot be verified, use a hostname"));
        }
        if ascii.len() > 253 {
            return Err(invalid("it is longer than 253 characters"));
        }
        let labels: Vec<&str> = ascii.split('.').collect();
        if labels.len() < 2 {
            return Err(invalid("it needs at least two labels, like example.com"));
        }
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if !labels.iter().all(label_ok) {
            return Err(invalid(
                "each label must be 1 to 63 letters, digits or inner hyphens",
            ));
        }
        let tld = labels[labels.len() - 1];
        if tld.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid("the top-level domain cannot be numeric"));
        }
        if RESERVED_TLDS
            .iter()
            .any(|reserved| ascii == *reserved || ascii.ends_with(&format!(".{reserved}")))
        {
            return Err(invalid("it is under a reserved top-level domain"));
        }
        Ok(Self(ascii))
    }

    /// The normalised hostname.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_urls_are_reduced_to_their_hostname() {
        for (input, expected) in [
            ("Shop.Example.com", "shop.example.com"),
            ("https://shop.example.com:8443/path?q=1", "shop.example.com"),
            ("shop.example.com.", "shop.example.com"),
            ("bücher.de", "xn--bcher-kva.de"),
        ] {
            assert_eq!(
                Hostname::parse(input).unwrap().as_str(),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn non_public_names_are_refused() {
        for input in [
            "",
            "localhost",
            "intranet",
            "127.0.0.1",
            "[::1]",
            "10.1.2.3",
            "printer.local",
            "app.internal",
            "-bad.example.com",
            "a..b.com",
            "user@example.com",
            "example.123",
            "under_score.example.com",
        ] {
            assert!(Hostname::parse(input).is_err(), "{input} was accepted");
        }
    }
}
