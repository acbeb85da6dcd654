//! Domain events. Stored names and versions: never rename.

use serde::{Deserialize, Serialize};

use super::hostname::Hostname;
use super::proof::{ProofMethod, VerificationToken};

/// Everything that can happen to a registered domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DomainEvent {
    /// v1. A tenant registered a hostname.
    DomainRegistered {
        /// The normalised hostname.
        hostname: Hostname,
    },
    /// v1. A token to publish was issued; a new one replaces the old.
    VerificationTokenIssued {
        /// The token.
        token: VerificationToken,
    },
    /// v1. The proof was found: the tenant owns the domain.
    DomainVerified {
        /// Which proof.
        method: ProofMethod,
    },
    /// v1. A verification attempt found no proof.
    DomainVerificationFailed {
        /// What was looked for and what was found instead.
        reason: String,
    },
    /// v1. The domain was withdrawn; widgets no longer run there.
    DomainRevoked {},
}

impl cqrs_es::DomainEvent for DomainEvent {
    fn event_type(&self) -> String {
        match self {
            Self::DomainRegistered { .. } => "DomainRegistered",
            Self::VerificationTokenIssued { .. } => "VerificationTokenIssued",
            Self::DomainVerified { .. } => "DomainVerified",
            Self::DomainVerificationFailed { .. } => "DomainVerificationFailed",
            Self::DomainRevoked { .. } => "DomainRevoked",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
