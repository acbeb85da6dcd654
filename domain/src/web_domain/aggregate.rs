//! The domain aggregate.

use std::sync::Arc;

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::error::DomainError;
use super::events::DomainEvent;
use super::hostname::Hostname;
use super::proof::{DomainProofs, ProofMethod, VerificationToken};

/// What can be asked of a domain.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainCommand {
    /// Register a hostname with the token its owner must publish.
    Register {
        /// The hostname.
        hostname: Hostname,
        /// A fresh random token.
        token: VerificationToken,
    },
    /// Look for the proof now.
    Verify,
    /// Withdraw the domain.
    Revoke,
}

/// Where a domain stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainState {
    /// Not registered.
    #[default]
    Unknown,
    /// Registered, proof not yet found.
    Pending,
    /// Owned: widgets may run there.
    Verified,
    /// The last attempt found no proof; the owner may try again.
    Failed,
    /// Withdrawn.
    Revoked,
}

/// A domain's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    /// The hostname, once registered.
    pub hostname: Option<Hostname>,
    /// The token to publish.
    pub token: Option<VerificationToken>,
    /// Where it stands.
    pub state: DomainState,
    /// The proof that verified it.
    pub method: Option<ProofMethod>,
    /// Why the last attempt failed.
    pub failure: Option<String>,
}

impl Aggregate for Domain {
    const TYPE: &'static str = "Domain";
    type Command = DomainCommand;
    type Event = DomainEvent;
    type Error = DomainError;
    type Services = Arc<dyn DomainProofs>;

    async fn handle(
        &mut self,
        command: Self::Command,
        proofs: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match (command, self.state) {
            (DomainCommand::Register { hostname, token }, DomainState::Unknown) => {
                sink.write(DomainEvent::DomainRegistered { hostname }, self)
                    .await;
                sink.write(DomainEvent::VerificationTokenIssued { token }, self)
                    .await;
            }
            (DomainCommand::Register { .. }, _) => return Err(DomainError::AlreadyExists),
            (_, DomainState::Unknown | DomainState::Revoked) => {
                return Err(DomainError::NotFound);
            }
            (DomainCommand::Verify, DomainState::Verified) => {}
            (DomainCommand::Verify, _) => {
                let (Some(hostname), Some(token)) = (&self.hostname, &self.token) else {
                    return Err(DomainError::NotFound);
                };
                let event = match proofs.check(hostname, token).await {
                    Ok(method) => DomainEvent::DomainVerified { method },
                    Err(reason) => DomainEvent::DomainVerificationFailed { reason },
                };
                sink.write(event, self).await;
            }
            (DomainCommand::Revoke, _) => sink.write(DomainEvent::DomainRevoked {}, self).await,
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            DomainEvent::DomainRegistered { hostname } => {
                self.hostname = Some(hostname);
                self.state = DomainState::Pending;
            }
            DomainEvent::VerificationTokenIssued { token } => self.token = Some(token),
            DomainEvent::DomainVerified { method } => {
                self.state = DomainState::Verified;
                self.method = Some(method);
                self.failure = None;
            }
            DomainEvent::DomainVerificationFailed { reason } => {
                self.state = DomainState::Failed;
                self.failure = Some(reason);
            }
            DomainEvent::DomainRevoked {} => self.state = DomainState::Revoked,
        }
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use cqrs_es::test::TestFramework;

    use super::*;

    /// Proofs as the world would answer them: found by one method, or missing with a reason.
    struct World(Result<ProofMethod, String>);

    #[async_trait]
    impl DomainProofs for World {
        async fn check(&self, _: &Hostname, _: &VerificationToken) -> Result<ProofMethod, String> {
            self.0.clone()
        }
    }

    fn world(answer: Result<ProofMethod, String>) -> TestFramework<Domain> {
        TestFramework::with(Arc::new(World(answer)) as Arc<dyn DomainProofs>)
    }

    fn registered() -> Vec<DomainEvent> {
        vec![
            DomainEvent::DomainRegistered {
                hostname: Hostname::parse("shop.example.com").unwrap(),
            },
            DomainEvent::VerificationTokenIssued {
                token: VerificationToken::new("t0k3n".into()),
            },
        ]
    }

    #[test]
    fn registering_issues_a_token() {
        world(Ok(ProofMethod::Dns))
            .given_no_previous_events()
            .when(DomainCommand::Register {
                hostname: Hostname::parse("shop.example.com").unwrap(),
                token: VerificationToken::new("t0k3n".into()),
            })
            .then_expect_events(registered());
    }

    #[test]
    fn a_found_proof_verifies_and_a_missing_one_records_why() {
        world(Ok(ProofMethod::Https))
            .given(registered())
            .when(DomainCommand::Verify)
            .then_expect_events(vec![DomainEvent::DomainVerified {
                method: ProofMethod::Https,
            }]);
        world(Err("no TXT record".into()))
            .given(registered())
            .when(DomainCommand::Verify)
            .then_expect_events(vec![DomainEvent::DomainVerificationFailed {
                reason: "no TXT record".into(),
            }]);
    }

    #[test]
    fn verifying_a_verified_domain_changes_nothing() {
        let mut given = registered();
        given.push(DomainEvent::DomainVerified {
            method: ProofMethod::Dns,
        });
        world(Err("gone".into()))
            .given(given)
            .when(DomainCommand::Verify)
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_revoked_domain_is_gone() {
        let mut given = registered();
        given.push(DomainEvent::DomainRevoked {});
        world(Ok(ProofMethod::Dns))
            .given(given.clone())
            .when(DomainCommand::Verify)
            .then_expect_error(DomainError::NotFound);
        world(Ok(ProofMethod::Dns))
            .given(given)
            .when(DomainCommand::Revoke)
            .then_expect_error(DomainError::NotFound);
    }
}
