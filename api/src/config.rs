//! Command-line interface and configuration. Every option can also come from the environment,
//! so the same binary runs from a terminal, a service manager or a container.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Upzento Chat: the unified inbox for website chat and WhatsApp.
#[derive(Debug, Parser)]
#[command(name = "upzento", version, about)]
pub struct Cli {
    /// Where the data lives.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How to reach PostgreSQL.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL to use. Without it, a private cluster runs under `--data-dir`.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory of the private PostgreSQL cluster, used when no `DATABASE_URL` is set.
    #[arg(long, env = "UPZENTO_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve(ServeArgs),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage agents.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Apply database migrations and exit (the server also applies them on start).
    Migrate,
    /// Inspect and rebuild the read models.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Publish every event to a message broker, for analytics at scale.
    #[command(subcommand)]
    Relay(RelayCommand),
}

/// Relays of the event feed to brokers.
#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Publish every event, in the global order, to NATS JetStream, until stopped.
    Nats(NatsRelayArgs),
}

/// Where and how the NATS relay publishes.
#[derive(Debug, Clone, Args)]
pub struct NatsRelayArgs {
    /// The NATS server, e.g. `nats://127.0.0.1:4222`.
    #[arg(long, env = "UPZENTO_NATS_URL")]
    pub url: String,
    /// The JetStream stream; created (subjects `<subject-prefix>.>`) if it does not exist.
    /// Each stream has its own checkpoint, so relays to two streams do not share progress.
    #[arg(long, env = "UPZENTO_NATS_STREAM", default_value = "UPZENTO_EVENTS")]
    pub stream: String,
    /// First token of every subject: `<prefix>.<tenant>.<aggregate>.<EventType>`.
    #[arg(long, env = "UPZENTO_NATS_SUBJECT_PREFIX", default_value = "upzento")]
    pub subject_prefix: String,
}

/// Read-model administration.
#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Each projector's checkpoint and lag.
    Status,
    /// Empty read models and rebuild them from the events, with progress. A running server
    /// keeps serving; if it leads the projector, this waits for it to finish the rebuild.
    Rebuild {
        /// One projector; all when omitted.
        name: Option<String>,
    },
}

/// Tenant administration.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and its first admin; prints one line of JSON with the admin's token.
    Create {
        /// The tenant's name.
        name: String,
        /// The first admin's e-mail address.
        #[arg(long, default_value = "admin@example.com")]
        admin_email: String,
    },
}

/// Agent administration.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Set an agent's password and end its sessions. The password is read from
    /// `UPZENTO_PASSWORD`, or else from the first line of standard input, never from the
    /// command line, where other users of the machine could see it.
    SetPassword {
        /// The agent's e-mail address (case-insensitive).
        #[arg(long)]
        email: String,
        /// The agent's tenant; needed only when several tenants have an agent with this
        /// address.
        #[arg(long)]
        tenant: Option<uuid::Uuid>,
    },
}

/// Reads a duration given as seconds (`43200`) or in words (`12h`, `30min`, `1h 30m`).
fn duration(raw: &str) -> Result<Duration, String> {
    match raw.trim().parse::<u64>() {
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => humantime::parse_duration(raw.trim()).map_err(|e| e.to_string()),
    }
    .and_then(|d| match d.is_zero() {
        true => Err("the duration must be longer than zero".to_owned()),
        false => Ok(d),
    })
}

/// Options of the HTTP server.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "UPZENTO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The URL this server is reached at from browsers, for embed snippets. Defaults to
    /// `http://<listen>`.
    #[arg(long, env = "UPZENTO_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// DNS server for domain verification, `ip:port`. Defaults to the system's resolvers.
    #[arg(long, env = "UPZENTO_DNS_RESOLVER")]
    pub dns_resolver: Option<SocketAddr>,
    /// Port of the HTTPS domain proof.
    #[arg(long, env = "UPZENTO_PROOF_HTTPS_PORT", default_value_t = 443)]
    pub proof_https_port: u16,
    /// Port of the plain HTTP domain proof.
    #[arg(long, env = "UPZENTO_PROOF_HTTP_PORT", default_value_t = 80)]
    pub proof_http_port: u16,
    /// Let domain proofs be fetched from loopback, private and link-local addresses. Never
    /// in production: it lets tenants make the server fetch from internal networks.
    #[arg(long, env = "UPZENTO_ALLOW_PRIVATE_PROOF_TARGETS")]
    pub allow_private_proof_targets: bool,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "UPZENTO_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// The key that encrypts WhatsApp access tokens and app secrets at rest: 64 hex
    /// characters (32 bytes). Every instance on one database needs the same key.
    #[arg(long, env = "UPZENTO_SECRETS_KEY", hide_env_values = true)]
    pub secrets_key: Option<String>,
    /// A file holding that key; created with a random key (mode 0600) when missing. Without
    /// either option the server uses `<data-dir>/secrets.key`.
    #[arg(long, env = "UPZENTO_SECRETS_KEY_FILE")]
    pub secrets_key_file: Option<PathBuf>,
    /// Base URL of Meta's Graph API; a local stand-in in tests.
    #[arg(
        long,
        env = "UPZENTO_WHATSAPP_GRAPH_URL",
        default_value = "https://graph.facebook.com"
    )]
    pub whatsapp_graph_url: String,
    /// Graph API version used in request paths.
    #[arg(long, env = "UPZENTO_WHATSAPP_GRAPH_VERSION", default_value = "v21.0")]
    pub whatsapp_graph_version: String,
    /// First retry delay after a 429, 5xx or network error from the Graph API, in
    /// milliseconds; it doubles with each attempt.
    #[arg(long, env = "UPZENTO_WHATSAPP_RETRY_MS", default_value_t = 1000)]
    pub whatsapp_retry_ms: u64,
    /// How long an agent's browser session lasts without being used: seconds, or a duration
    /// such as `12h` or `30min`. A session also ends 7 days after sign-in however active.
    #[arg(long, env = "UPZENTO_SESSION_IDLE_TIMEOUT", default_value = "12h", value_parser = duration)]
    pub session_idle_timeout: Duration,
    /// Always mark the session cookie `Secure`. Set it when browsers reach the service over
    /// HTTPS through a proxy that does not send `X-Forwarded-Proto: https` (with that header,
    /// the cookie is marked `Secure` anyway).
    #[arg(long, env = "UPZENTO_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Memory, in MiB, for conversations kept between commands as their last commit left
    /// them: a conversation in use then commands without reading the store, however long its
    /// history. 0 turns it off, and every command reads the snapshot and the later events.
    #[arg(long, env = "UPZENTO_CONVERSATION_MEMORY_MB", default_value_t = 64)]
    pub conversation_memory_mb: u64,
}

impl Default for ServeArgs {
    fn default() -> Self {
        Self::parse_from_empty()
    }
}

impl ServeArgs {
    fn parse_from_empty() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            serve: ServeArgs,
        }
        Only::parse_from(["upzento"]).serve
    }

    /// The public URL, without a trailing slash.
    pub fn public_url(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
            .trim_end_matches('/')
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_seconds_or_words() {
        assert_eq!(duration("43200"), Ok(Duration::from_secs(43_200)));
        assert_eq!(duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5_400)));
        assert!(duration("0").is_err());
        assert!(duration("soon").is_err());
        assert_eq!(
            ServeArgs::default().session_idle_timeout,
            Duration::from_secs(12 * 3600)
        );
    }
}
