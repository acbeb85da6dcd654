//! The widget's view of domains: which of them are verified domains of a tenant. Read from
//! the Domain aggregates in the event store, the truth, not from a projection that may lag.

use async_trait::async_trait;
use domain::ids::{DomainId, TenantId};
use domain::web_domain::{Domain, DomainState};
use domain::widget::WidgetServices;

use crate::context::stream_id;
use crate::store::EventStore;

/// Answers from the event store.
pub struct DomainDirectory {
    store: EventStore,
}

impl DomainDirectory {
    /// A directory over `store`.
    pub fn new(store: EventStore) -> Self {
        Self { store }
    }
}

#[async_trait]
impl WidgetServices for DomainDirectory {
    async fn unverified(
        &self,
        tenant: TenantId,
        domains: &[DomainId],
    ) -> Result<Vec<DomainId>, String> {
        let mut unverified = Vec::new();
        for id in domains {
            let loaded = self
                .store
                .load::<Domain>(&stream_id(tenant, id))
                .await
                .map_err(|e| e.to_string())?;
            if loaded.aggregate.state != DomainState::Verified {
                unverified.push(*id);
            }
        }
        Ok(unverified)
    }
}
