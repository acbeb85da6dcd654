//! Which widget a public key names, and which sites may run it.
//!
//! Every visitor request passes here: the key names the widget (its id is inside the key),
//! the widget must be live and enabled, and the request's `Origin` must be one of the
//! widget's verified domains, exactly (a subdomain needs its own verified domain). Answers
//! are kept for a few seconds, so disabling a widget or revoking a domain takes effect
//! within that time on every instance.
//!
//! What this protects: another site embedding the widget in browsers, which send `Origin`
//! and cannot forge it. What it does not: a script outside a browser can send any `Origin`;
//! the rate limits and the per-visitor token bound what such a client can do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use commands::context::stream_id;
use commands::store::EventStore;
use domain::ids::{TenantId, WidgetId};
use domain::web_domain::{Domain, DomainState};
use domain::widget::{Widget, WidgetSettings};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::ApiError;

/// A widget that may start sessions, with the hosts it may run on.
#[derive(Debug)]
pub struct Admission {
    /// The widget's tenant: every visitor request runs in it.
    pub tenant_id: TenantId,
    /// The widget.
    pub widget_id: WidgetId,
    /// Its settings, for the widget script.
    pub settings: WidgetSettings,
    /// Hostnames of its verified domains.
    pub hosts: Vec<String>,
    public_key: String,
}

impl Admission {
    /// Refuses a request whose `Origin` is not one of the widget's verified hosts.
    pub fn check_origin(&self, origin: Option<&str>) -> Result<(), ApiError> {
        let host = origin.and_then(origin_host).ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_required",
                "the widget runs only in pages of its verified domains; no `Origin` was sent",
            )
            .at("Origin")
        })?;
        if self.hosts.contains(&host) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                format!("`{host}` is not a verified domain of this widget"),
            )
            .at("Origin"))
        }
    }
}

/// The host of an `Origin` header (`scheme://host[:port]`), lower-cased; `None` for `null`
/// and anything that is not an origin.
pub fn origin_host(origin: &str) -> Option<String> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))?;
    let host = match rest.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => rest,
    };
    (!host.is_empty() && !host.contains(['/', '@', '[']))
        .then(|| host.trim_end_matches('.').to_ascii_lowercase())
}

type Cached = (Instant, Option<Arc<Admission>>);

/// Resolves public keys, with a short-lived cache.
pub struct WidgetGate {
    store: EventStore,
    ttl: Duration,
    cache: Mutex<HashMap<Uuid, Cached>>,
}

/// The widget id inside a public key (`pk_` + 32 hex digits of the id + random hex).
fn widget_id_of(public_key: &str) -> Option<Uuid> {
    let hex = public_key.strip_prefix("pk_")?;
    Uuid::try_parse(hex.get(..32)?).ok()
}

fn unknown_widget() -> ApiError {
    ApiError::not_found(
        "widget_not_found",
        "no live widget has this key; copy the embed snippet again",
    )
    .at("public_key")
}

impl WidgetGate {
    /// A gate over the store, keeping answers for `ttl`.
    pub fn new(store: EventStore, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The enabled, live widget with this key; a 404 for anything else.
    pub async fn admit(&self, public_key: &str) -> Result<Arc<Admission>, ApiError> {
        let id = widget_id_of(public_key).ok_or_else(unknown_widget)?;
        let cached = {
            let cache = self.cache.lock().expect("gate cache lock");
            cache
                .get(&id)
                .filter(|(at, _)| at.elapsed() < self.ttl)
                .map(|(_, admission)| admission.clone())
        };
        let admission = match cached {
            Some(admission) => admission,
            None => {
                let fresh = self.resolve(id).await?;
                let mut cache = self.cache.lock().expect("gate cache lock");
                cache.retain(|_, (at, _)| at.elapsed() < self.ttl);
                cache.insert(id, (Instant::now(), fresh.clone()));
                fresh
            }
        };
        let admission = admission.ok_or_else(unknown_widget)?;
        // The random part of the key is what makes it unguessable: compare it in full.
        if bool::from(admission.public_key.as_bytes().ct_eq(public_key.as_bytes())) {
            Ok(admission)
        } else {
            Err(unknown_widget())
        }
    }

    async fn resolve(&self, id: Uuid) -> Result<Option<Arc<Admission>>, ApiError> {
        let Some(tenant) = self.store.tenant_of_stream("Widget", id).await? else {
            return Ok(None);
        };
        let tenant = TenantId::from(tenant);
        let widget_id = WidgetId::from(id);
        let widget = self
            .store
            .load::<Widget>(&stream_id(tenant, widget_id))
            .await?
            .aggregate;
        let (Some(settings), true, true) = (widget.settings, widget.enabled, !widget.deleted)
        else {
            return Ok(None);
        };
        let mut hosts = Vec::new();
        for domain in &settings.allowed_domains {
            let domain = self
                .store
                .load::<Domain>(&stream_id(tenant, domain))
                .await?
                .aggregate;
            if let (DomainState::Verified, Some(hostname)) = (domain.state, domain.hostname) {
                hosts.push(hostname.to_string());
            }
        }
        Ok(Some(Arc::new(Admission {
            tenant_id: tenant,
            widget_id,
            settings,
            hosts,
            public_key: widget.public_key,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_reduced_to_its_host() {
        assert_eq!(
            origin_host("https://Shop.Example.com").as_deref(),
            Some("shop.example.com")
        );
        assert_eq!(
            origin_host("http://shop.test:8080").as_deref(),
            Some("shop.test")
        );
        assert_eq!(origin_host("null"), None);
        assert_eq!(origin_host("file://"), None);
        assert_eq!(origin_host("https://user@evil.test"), None);
        assert_eq!(origin_host("https://"), None);
    }

    #[test]
    fn the_widget_id_is_read_from_its_public_key() {
        let id = Uuid::now_v7();
        let key = format!("pk_{}{}", id.simple(), "ab".repeat(12));
        assert_eq!(widget_id_of(&key), Some(id));
        assert_eq!(widget_id_of("pk_short"), None);
        assert_eq!(widget_id_of(&key[3..]), None);
    }
}
