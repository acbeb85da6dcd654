//! What every handler shares.

use std::sync::Arc;

use commands::bus::CommandBus;
use commands::tenancy::TokenCache;
use commands::whatsapp::Whatsapp;
use domain::conversation::Conversation;
use domain::web_domain::Domain;
use domain::widget::Widget;
use metrics_exporter_prometheus::PrometheusHandle;
use projections::notifications::Notifications;
use projections::tail::Tail;
use sqlx::PgPool;
use tokio::sync::watch;

use crate::login_limits::LoginLimits;
use crate::realtime::signals::Signals;
use crate::realtime::unread::UnreadCounts;
use crate::session::SessionSettings;
use crate::visitor::gate::WidgetGate;
use crate::visitor::keys::KeyRing;
use crate::visitor::limits::VisitorLimits;

/// Application state, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub pool: PgPool,
    /// Recent token lookups.
    pub tokens: Arc<TokenCache>,
    /// How agents' browser sessions last and how their cookie is marked.
    pub sessions: SessionSettings,
    /// Recent failed sign-ins, to refuse guessing.
    pub login_limits: Arc<LoginLimits>,
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
    /// Typing, viewing and online signals between instances.
    pub signals: Signals,
    /// Agents' unread counts, shared by their live connections.
    pub unread: Arc<UnreadCounts>,
    /// The instance's one `LISTEN` connection: wakes the projectors and the live tail when
    /// events are appended, and read-your-writes waits when a projector commits a batch.
    pub notifications: Arc<Notifications>,
    /// Signs visitor tokens and derives widget identity secrets.
    pub keys: Arc<KeyRing>,
    /// Lets widgets run only on their verified domains.
    pub gate: Arc<WidgetGate>,
    /// Visitor rate limits.
    pub limits: Arc<VisitorLimits>,
    /// Turns true when the server begins to shut down, so long-lived connections (WebSocket,
    /// SSE) close and let the graceful shutdown finish.
    pub closing: watch::Receiver<bool>,
    /// The WhatsApp channel: secrets, Graph API settings, the webhook workers' wake-up.
    pub whatsapp: Whatsapp,
}
