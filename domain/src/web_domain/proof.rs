//! How a tenant proves it owns a domain, and the port through which the aggregate asks.
//!
//! Two proofs are accepted, either one enough: a DNS TXT record, or a file served over HTTPS
//! (or HTTP) under `/.well-known/`. Both carry the domain's verification token.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::hostname::Hostname;

/// The random value a tenant publishes to prove ownership. Not a secret: it is public in DNS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VerificationToken(String);

impl VerificationToken {
    /// Wraps a token made by the caller from a secure random source.
    pub fn new(token: String) -> Self {
        Self(token)
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the TXT record to publish.
    pub fn dns_name(hostname: &Hostname) -> String {
        format!("_upzento-verification.{hostname}")
    }

    /// The TXT record's value.
    pub fn dns_value(&self) -> String {
        format!("upzento-verification={}", self.0)
    }

    /// The path of the file to serve; its body is the token itself.
    pub const HTTP_PATH: &'static str = "/.well-known/upzento-verification.txt";
}

/// Which proof succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofMethod {
    /// The TXT record.
    Dns,
    /// The file, over HTTPS.
    Https,
    /// The file, over plain HTTP.
    Http,
}

/// Looks for a domain's proof in the world. Implemented in `commands` with a real resolver and
/// a real HTTP client; `Err` carries a reason a person can act on.
#[async_trait]
pub trait DomainProofs: Send + Sync {
    /// The first proof found, or why none was.
    async fn check(
        &self,
        hostname: &Hostname,
        token: &VerificationToken,
    ) -> Result<ProofMethod, String>;
}
