//! The widget aggregate.

use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::error::WidgetError;
use super::events::{WidgetEvent, WidgetPatch, WidgetSettings};
use crate::ids::{DomainId, TenantId};

/// Answers whether domains are verified domains of a tenant. The widget's rule "only verified
/// domains of its own tenant" needs it; the real implementation reads the Domain aggregates.
#[async_trait]
pub trait WidgetServices: Send + Sync {
    /// Of `domains`, the ones that are not verified domains of `tenant`.
    async fn unverified(
        &self,
        tenant: TenantId,
        domains: &[DomainId],
    ) -> Result<Vec<DomainId>, String>;
}

/// What can be asked of a widget.
#[derive(Debug, Clone, PartialEq)]
pub enum WidgetCommand {
    /// Create it.
    Create {
        /// Owner.
        tenant_id: TenantId,
        /// Settings.
        settings: WidgetSettings,
        /// Public key for the embed snippet.
        public_key: String,
    },
    /// Change some settings.
    /// Change settings and/or enable or disable it, all or nothing.
    Update {
        /// The changes.
        changes: WidgetPatch,
        /// `Some(true)` lets it run on sites, `Some(false)` stops it.
        enabled: Option<bool>,
    },
    /// Delete it.
    Delete,
}

/// A widget's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Widget {
    /// Owner; `None` until created.
    pub tenant_id: Option<TenantId>,
    /// Current settings.
    pub settings: Option<WidgetSettings>,
    /// Public key.
    pub public_key: String,
    /// Whether it renders on sites.
    pub enabled: bool,
    /// Deleted widgets answer nothing.
    pub deleted: bool,
}

impl Widget {
    /// True when the widget exists and was not deleted.
    pub fn is_live(&self) -> bool {
        self.settings.is_some() && !self.deleted
    }

    async fn ensure_verified(
        services: &Arc<dyn WidgetServices>,
        tenant: TenantId,
        domains: &[DomainId],
    ) -> Result<(), WidgetError> {
        let unverified = services
            .unverified(tenant, domains)
            .await
            .map_err(WidgetError::DirectoryUnavailable)?;
        match unverified.first() {
            Some(domain) => Err(WidgetError::DomainNotVerified(*domain)),
            None => Ok(()),
        }
    }
}

impl Aggregate for Widget {
    const TYPE: &'static str = "Widget";
    type Command = WidgetCommand;
    type Event = WidgetEvent;
    type Error = WidgetError;
    type Services = Arc<dyn WidgetServices>;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let WidgetCommand::Create {
            tenant_id,
            settings,
            public_key,
        } = command
        {
            if self.settings.is_some() {
                return Err(WidgetError::AlreadyExists);
            }
            Widget::ensure_verified(services, tenant_id, &settings.allowed_domains).await?;
            let event = WidgetEvent::WidgetCreated {
                tenant_id,
                settings,
                public_key,
            };
            sink.write(event, self).await;
            return Ok(());
        }
        let (Some(tenant_id), Some(settings), false) =
            (self.tenant_id, self.settings.clone(), self.deleted)
        else {
            return Err(WidgetError::NotFound);
        };
        match command {
            WidgetCommand::Create { .. } => unreachable!("handled above"),
            WidgetCommand::Update { changes, enabled } => {
                if !changes.is_noop_for(&settings) {
                    if let Some(domains) = &changes.allowed_domains {
                        Widget::ensure_verified(services, tenant_id, domains).await?;
                    }
                    sink.write(WidgetEvent::WidgetSettingsUpdated { changes }, self)
                        .await;
                }
                match enabled {
                    Some(true) if !self.enabled => {
                        sink.write(WidgetEvent::WidgetEnabled {}, self).await
                    }
                    Some(false) if self.enabled => {
                        sink.write(WidgetEvent::WidgetDisabled {}, self).await
                    }
                    _ => {}
                }
            }
            WidgetCommand::Delete => sink.write(WidgetEvent::WidgetDeleted {}, self).await,
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let state = self;
        match event {
            WidgetEvent::WidgetCreated {
                tenant_id,
                settings,
                public_key,
            } => {
                state.tenant_id = Some(tenant_id);
                state.settings = Some(settings);
                state.public_key = public_key;
                state.enabled = true;
            }
            WidgetEvent::WidgetSettingsUpdated { changes } => {
                if let Some(settings) = &mut state.settings {
                    changes.apply_to(settings);
                }
            }
            WidgetEvent::WidgetEnabled {} => state.enabled = true,
            WidgetEvent::WidgetDisabled {} => state.enabled = false,
            WidgetEvent::WidgetDeleted {} => state.deleted = true,
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
