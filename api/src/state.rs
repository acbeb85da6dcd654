//! What every handler shares.

use std::sync::Arc;

use commands::bus::CommandBus;
use commands::tenancy::TokenCache;
use commands::whatsapp::Whatsapp;
use domain::conversation::Conversation;
use domain::web_domain::Domain;
use domain::widget::Widget;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

/// Application state, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub pool: PgPool,
    /// Recent token lookups.
    pub tokens: Arc<TokenCache>,
    /// Runs conversation commands.
    pub conversations: Arc<CommandBus<Conversation>>,
    /// Runs widget commands.
    pub widgets: Arc<CommandBus<Widget>>,
    /// Runs domain commands.
    pub domains: Arc<CommandBus<Domain>>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Where browsers reach this server, for embed snippets.
    pub public_url: Arc<str>,
    /// The WhatsApp channel: secrets, Graph API settings, the webhook workers' wake-up.
    pub whatsapp: Whatsapp,
}
