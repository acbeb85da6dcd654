//! A web domain a tenant registers and proves it owns, so its widgets may run there.

mod aggregate;
mod error;
mod events;
mod hostname;
mod proof;

pub use aggregate::{Domain, DomainCommand, DomainState};
pub use error::DomainError;
pub use events::DomainEvent;
pub use hostname::{Hostname, InvalidHostname};
pub use proof::{DomainProofs, ProofMethod, VerificationToken};
