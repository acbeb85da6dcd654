//! Start-up: find the database, migrate it, build the state and serve until told to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use commands::bus::CommandBus;
use commands::directory::DomainDirectory;
use commands::proofs::{NetworkProofs, ProofSettings};
use commands::store::EventStore;
use commands::tenancy::TokenCache;
use commands::whatsapp::secrets::SecretBox;
use commands::whatsapp::{GraphSettings, Whatsapp};
use domain::conversation::Conversation;
use domain::web_domain::DomainProofs;
use domain::widget::WidgetServices;
use projections::notifications::Notifications;
use projections::runtime::Projectors;
use projections::tail::Tail;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Executor, PgPool};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::cluster::{self, PrivateCluster};
use crate::config::{DatabaseArgs, ServeArgs};
use crate::login_limits::LoginLimits;
use crate::realtime::signals::Signals;
use crate::realtime::unread::UnreadCounts;
use crate::session::SessionSettings;
use crate::state::AppState;
use crate::visitor::gate::WidgetGate;
use crate::visitor::keys::KeyRing;
use crate::visitor::limits::VisitorLimits;
use crate::{routes, telemetry};

/// Events between two snapshots of a conversation. Snapshots make a long conversation cost
/// about what a short one costs to command; more often would make every write heavier.
const CONVERSATION_SNAPSHOT_EVERY: usize = 100;
/// How long a conversation nobody commands stays in memory (`--conversation-memory-mb`).
const REMEMBERED_CONVERSATION_IDLE: Duration = Duration::from_secs(600);
/// How long a token lookup is remembered.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);
/// How long a widget's admission (enabled, verified hosts) is reused: disabling a widget or
/// revoking a domain stops new visitor requests within this time.
const WIDGET_GATE_TTL: Duration = Duration::from_secs(10);
/// Widgets and domains have short histories; snapshots rarely matter for them.
const SMALL_AGGREGATE_SNAPSHOT_EVERY: usize = 50;

/// The database the process works on, and the private cluster behind it if there is one.
pub struct Database {
    /// Connections.
    pub pool: PgPool,
    cluster: Option<PrivateCluster>,
}

impl Database {
    /// Connects to `DATABASE_URL`, or starts (or attaches to) the private cluster, then
    /// applies pending migrations.
    pub async fn open(args: &DatabaseArgs) -> anyhow::Result<Self> {
        let (options, cluster) = match &args.database_url {
            Some(url) => (
                url.parse::<PgConnectOptions>()
                    .context("DATABASE_URL is not a PostgreSQL URL")?,
                None,
            ),
            None => {
                let data_dir = args.data_dir.clone();
                let cluster =
                    tokio::task::spawn_blocking(move || PrivateCluster::start(&data_dir, true))
                        .await??;
                create_database_if_missing(&cluster).await?;
                (cluster.connect_options(cluster::DATABASE), Some(cluster))
            }
        };
        let pool = connect(options).await?;
        commands::MIGRATOR
            .run(&pool)
            .await
            .context("could not apply database migrations")?;
        Ok(Self { pool, cluster })
    }

    /// Closes the connections and stops the private cluster if this process started it.
    pub async fn close(self) {
        self.pool.close().await;
        let Some(cluster) = self.cluster.filter(PrivateCluster::started_here) else {
            return;
        };
        let stopped = tokio::task::spawn_blocking(move || cluster.stop())
            .await
            .map_err(anyhow::Error::from)
            .and_then(|stopped| stopped.map_err(anyhow::Error::from));
        if let Err(error) = stopped {
            tracing::warn!(%error, "could not stop the private PostgreSQL cluster");
        }
    }
}

async fn create_database_if_missing(cluster: &PrivateCluster) -> anyhow::Result<()> {
    let mut admin = cluster
        .connect_options("postgres")
        .connect()
        .await
        .context("could not connect to the private PostgreSQL cluster")?;
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(cluster::DATABASE)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        admin
            .execute(format!("create database {}", cluster::DATABASE).as_str())
            .await?;
    }
    Ok(())
}

/// The pool every part of the service shares. Idle transactions are cut short because a
/// forgotten one would stall every gap-free reader (DESIGN.md, the spike's findings), and
/// connections are not pinged before use, which the spike measured as 15% of throughput.
pub async fn connect(options: PgConnectOptions) -> anyhow::Result<PgPool> {
    let options = options
        .options([("idle_in_transaction_session_timeout", "30s")])
        .log_statements(tracing::log::LevelFilter::Trace);
    PgPoolOptions::new()
        .max_connections(32)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .context("could not connect to PostgreSQL")
}

/// Builds the application state over a migrated database.
pub fn state(
    pool: PgPool,
    args: &ServeArgs,
    bound: SocketAddr,
    closing: watch::Receiver<bool>,
) -> anyhow::Result<AppState> {
    let store = EventStore::new(pool.clone());
    let proofs = NetworkProofs::new(ProofSettings {
        resolver: args.dns_resolver,
        https_port: args.proof_https_port,
        http_port: args.proof_http_port,
        allow_private_targets: args.allow_private_proof_targets,
    })
    .context("could not set up the DNS resolver for domain verification")?;
    let mut conversations = CommandBus::new(store.clone(), (), CONVERSATION_SNAPSHOT_EVERY);
    if args.conversation_memory_mb > 0 {
        conversations = conversations.remembering(
            args.conversation_memory_mb * 1024 * 1024,
            REMEMBERED_CONVERSATION_IDLE,
            Conversation::approximate_size,
        );
    }
    let conversations = Arc::new(conversations);
    let whatsapp = Whatsapp {
        pool: pool.clone(),
        secrets: Arc::new(secrets_box(args)?),
        conversations: conversations.clone(),
        graph: GraphSettings {
            base_url: args.whatsapp_graph_url.trim_end_matches('/').to_owned(),
            version: args.whatsapp_graph_version.clone(),
            retry_base: Duration::from_millis(args.whatsapp_retry_ms),
        },
        deliveries: Arc::new(Notify::new()),
    };
    let notifications = Notifications::start(pool.clone());
    Ok(AppState {
        conversations,
        whatsapp,
        widgets: Arc::new(CommandBus::new(
            store.clone(),
            Arc::new(DomainDirectory::new(store.clone())) as Arc<dyn WidgetServices>,
            SMALL_AGGREGATE_SNAPSHOT_EVERY,
        )),
        gate: Arc::new(WidgetGate::new(store.clone(), WIDGET_GATE_TTL)),
        domains: Arc::new(CommandBus::new(
            store,
            Arc::new(proofs) as Arc<dyn DomainProofs>,
            SMALL_AGGREGATE_SNAPSHOT_EVERY,
        )),
        tail: Tail::start(pool.clone(), &notifications),
        signals: Signals::start(pool.clone()),
        unread: Arc::new(UnreadCounts::new(pool.clone())),
        notifications,
        keys: Arc::new(KeyRing::new(pool.clone())),
        limits: Arc::new(VisitorLimits::default()),
        closing,
        pool,
        tokens: Arc::new(TokenCache::new(TOKEN_CACHE_TTL)),
        sessions: SessionSettings {
            idle_timeout: args.session_idle_timeout,
            secure_cookies: args.secure_cookies,
        },
        login_limits: Arc::new(LoginLimits::default()),
        metrics: telemetry::metrics_handle(),
        public_url: args.public_url(bound).into(),
    })
}

/// The key for channel secrets: given, or read from (and first created in) its file. With
/// neither, as when the server is embedded in tests, a key for this process only.
fn secrets_box(args: &ServeArgs) -> anyhow::Result<SecretBox> {
    match (&args.secrets_key, &args.secrets_key_file) {
        (Some(key), _) => SecretBox::from_hex(key).context("UPZENTO_SECRETS_KEY"),
        (None, Some(path)) => SecretBox::from_file(path),
        (None, None) => {
            tracing::warn!(
                "no secrets key configured: WhatsApp secrets stored now will not be readable after a restart"
            );
            Ok(SecretBox::ephemeral())
        }
    }
}

/// A server bound to its port, ready to run.
pub struct Application {
    listener: TcpListener,
    router: Router,
    pool: PgPool,
    closing: watch::Sender<bool>,
    whatsapp: Whatsapp,
    notifications: Arc<Notifications>,
}

impl Application {
    /// Binds `args.listen` (port 0 picks a free port) and builds the routes.
    pub async fn build(pool: PgPool, args: &ServeArgs) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("could not listen on {}", args.listen))?;
        let bound = listener.local_addr()?;
        let (closing, closing_seen) = watch::channel(false);
        let state = state(pool.clone(), args, bound, closing_seen)?;
        let whatsapp = state.whatsapp.clone();
        let notifications = state.notifications.clone();
        let router = routes::router(state, args.max_body_bytes);
        Ok(Self {
            listener,
            router,
            pool,
            closing,
            whatsapp,
            notifications,
        })
    }

    /// The address actually bound.
    pub fn address(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Runs the projectors and serves until `shutdown` completes, then lets in-flight
    /// requests finish and stops the projectors.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let projectors = Projectors::start(self.pool, projections::all(), self.notifications);
        let whatsapp = self.whatsapp.start();
        let closing = self.closing;
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, service)
            .with_graceful_shutdown(async move {
                shutdown.await;
                closing.send_replace(true);
            })
            .await;
        whatsapp.stop().await;
        projectors.stop().await;
        served
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    tokio::select! {
        _ = interrupt => {},
        _ = terminate.recv() => {},
    }
    tracing::info!("shutting down");
}
