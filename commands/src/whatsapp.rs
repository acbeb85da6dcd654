//! The WhatsApp channel's write side: channels and their secrets, the webhook (signature,
//! durable inbox, ingestion), and the sender that delivers the outbox to the Graph API.
//!
//! - [`secrets`]: AES-256-GCM for the secrets at rest, and where its key comes from.
//! - [`channels`]: the `whatsapp_channels` table: register, list, look up for a webhook.
//! - [`signature`]: `X-Hub-Signature-256`, checked in constant time on the raw body.
//! - [`wire`]: the Cloud API's JSON, read leniently so no message type is dropped.
//! - [`ingest`]: stores verified deliveries, and the worker that applies them to conversations.
//! - [`sender`]: the worker that sends the outbox with retries and records the outcome.

pub mod channels;
pub mod ingest;
pub mod secrets;
pub mod sender;
pub mod signature;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use domain::conversation::Conversation;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::bus::CommandBus;
use secrets::SecretBox;

/// How the channel reaches Meta.
#[derive(Debug, Clone)]
pub struct GraphSettings {
    /// The Graph API's base URL without a trailing slash: `https://graph.facebook.com` in
    /// production, a local stand-in in tests.
    pub base_url: String,
    /// The Graph API version in paths, e.g. `v21.0`.
    pub version: String,
    /// The first retry's delay after a 429, a 5xx or a network error; it doubles per attempt.
    pub retry_base: Duration,
}

/// What the WhatsApp workers share with the HTTP handlers.
#[derive(Clone)]
pub struct Whatsapp {
    /// The database.
    pub pool: PgPool,
    /// Encrypts and decrypts channel secrets.
    pub secrets: Arc<SecretBox>,
    /// Runs conversation commands for incoming messages, statuses and send outcomes.
    pub conversations: Arc<CommandBus<Conversation>>,
    /// The Graph API.
    pub graph: GraphSettings,
    /// Woken when a webhook delivery was stored, so it is applied without waiting for a poll.
    pub deliveries: Arc<Notify>,
}

/// The background workers of the channel; stopped with [`Workers::stop`].
pub struct Workers {
    tasks: JoinSet<()>,
}

/// Webhook workers per instance: several, so deliveries (and duplicates of one delivery)
/// are applied concurrently, as they are across instances.
const INGEST_WORKERS: usize = 4;

impl Whatsapp {
    /// Starts the webhook workers and the sender.
    pub fn start(&self) -> Workers {
        let mut tasks = JoinSet::new();
        for _ in 0..INGEST_WORKERS {
            tasks.spawn(ingest::run(self.clone()));
        }
        tasks.spawn(sender::run(self.clone()));
        Workers { tasks }
    }
}

impl Workers {
    /// Stops the workers; a delivery or send in progress is taken up again when its lease
    /// runs out.
    pub async fn stop(mut self) {
        self.tasks.shutdown().await;
    }
}

/// Runs `work` on row `id` of a work table while `conn` (a connection of the worker's own)
/// holds the row's advisory lock in `space`: another worker, here or on another instance,
/// skips the row meanwhile, and if this process dies the lock goes with its connection.
/// `None`, without running `work`, when another worker holds the row.
async fn while_locked<T>(
    conn: &mut sqlx::PgConnection,
    space: i32,
    id: i64,
    work: impl Future<Output = T>,
) -> Result<Option<T>, sqlx::Error> {
    let locked: bool = sqlx::query_scalar("select pg_try_advisory_lock($1, $2)")
        .bind(space)
        .bind(id as i32)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(None);
    }
    let done = work.await;
    sqlx::query("select pg_advisory_unlock($1, $2)")
        .bind(space)
        .bind(id as i32)
        .execute(&mut *conn)
        .await?;
    Ok(Some(done))
}
