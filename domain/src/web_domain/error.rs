//! Why a domain command was refused.

use crate::rejection::{Rejection, RejectionKind};

/// A refused domain command. Each variant's doc names its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// 404: no such domain (for this tenant), or it was revoked.
    #[error("domain not found")]
    NotFound,
    /// 409: a domain with this id exists.
    #[error("the domain already exists")]
    AlreadyExists,
}

impl Rejection for DomainError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::NotFound => RejectionKind::NotFound,
            Self::AlreadyExists => RejectionKind::Conflict,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "domain_not_found",
            Self::AlreadyExists => "domain_exists",
        }
    }
}
