//! What every handler shares.

use std::sync::Arc;

use commands::bus::CommandBus;
use commands::tenancy::TokenCache;
use domain::conversation::Conversation;
use domain::web_domain::Domain;
use domain::widget::Widget;
use metrics_exporter_prometheus::PrometheusHandle;
use projections::tail::Tail;
use sqlx::PgPool;
use tokio::sync::watch;

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
    /// The live tail of the global order that WebSocket clients and feeds follow.
    pub tail: Tail,
    /// Turns true when the server begins to shut down, so long-lived connections (WebSocket,
    /// SSE) close and let the graceful shutdown finish.
    pub closing: watch::Receiver<bool>,
}
