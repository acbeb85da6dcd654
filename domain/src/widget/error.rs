//! Why a widget command was refused.

use crate::ids::DomainId;
use crate::rejection::{Rejection, RejectionKind};

/// A refused widget command. Each variant's doc names its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WidgetError {
    /// 404: no such widget (for this tenant), or it was deleted.
    #[error("widget not found")]
    NotFound,
    /// 409: a widget with this id exists.
    #[error("the widget already exists")]
    AlreadyExists,
    /// 422: an allowed domain is not a verified domain of this tenant.
    #[error("domain {0} is not a verified domain of this account")]
    DomainNotVerified(DomainId),
    /// 503: the domain directory could not be asked.
    #[error("could not check the allowed domains: {0}")]
    DirectoryUnavailable(String),
}

impl Rejection for WidgetError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::NotFound => RejectionKind::NotFound,
            Self::AlreadyExists => RejectionKind::Conflict,
            Self::DomainNotVerified(_) => RejectionKind::Unprocessable,
            Self::DirectoryUnavailable(_) => RejectionKind::Unavailable,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "widget_not_found",
            Self::AlreadyExists => "widget_exists",
            Self::DomainNotVerified(_) => "domain_not_verified",
            Self::DirectoryUnavailable(_) => "service_unavailable",
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::DomainNotVerified(_) => Some("allowed_domains"),
            _ => None,
        }
    }
}
