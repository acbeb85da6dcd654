//! `upzento relay nats`: every event, in the global order, published to NATS JetStream for
//! analytics at scale.
//!
//! The relay follows the gap-free reader like a projector (DESIGN.md, decisions 2 and 3): it
//! publishes a batch, waits for JetStream to acknowledge each message, then moves its
//! checkpoint in `relay_checkpoints`. A crash after publishing and before moving the
//! checkpoint publishes that batch again; every message carries `Nats-Msg-Id` = the event's
//! id, so the stream drops the repeats inside its duplicate window. One relay per stream runs
//! at a time across all instances: the one holding a PostgreSQL advisory lock on its own
//! connection; others wait and take over when that connection goes.
//!
//! Messages are published one at a time, each acknowledged before the next is sent. Pipelining
//! would be faster, but if one message of a pipelined run were refused and a later one
//! stored, the retry would store the refused one after it, out of order.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, message::PublishMessage, stream};
use projections::feed::CloudEvent;
use projections::reader::{Cursor, StoredEvent, read_after};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};

use crate::config::NatsRelayArgs;

/// Events per checkpoint move: at most this many are published again after a crash.
const BATCH: i64 = 500;
/// How long an idle relay waits for a notification before looking anyway (a transaction that
/// held the reader back may end without notifying).
const IDLE_POLL: Duration = Duration::from_millis(250);
/// The stream's duplicate window, when the relay creates the stream: a relay that restarts
/// within it publishes no duplicate into the stream.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

/// The NATS subject of an event: `<prefix>.<tenant>.<aggregate>.<EventType>`, e.g.
/// `upzento.0193….conversation.MessagePosted`, so consumers can subscribe to one tenant, one
/// kind of aggregate or one event type with wildcards.
pub fn subject(prefix: &str, event: &StoredEvent) -> String {
    format!(
        "{prefix}.{}.{}.{}",
        event.tenant_id,
        event.aggregate_type.to_ascii_lowercase(),
        event.event_type
    )
}

/// The checkpoint's row name: one per stream.
fn checkpoint_name(stream: &str) -> String {
    format!("nats:{stream}")
}

/// The advisory lock key of a relay: FNV-1a of its checkpoint name, stable across builds, in
/// a different key space from the projectors' only by name ("nats:" never names a projector).
fn lock_key(name: &str) -> i64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Runs the relay until `shutdown` resolves; a failure (NATS or PostgreSQL gone) is logged and
/// the relay starts over from its checkpoint after a second.
pub async fn run(
    pool: PgPool,
    args: NatsRelayArgs,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let relay = async {
        loop {
            if let Err(error) = lead(&pool, &args).await {
                tracing::error!(error.cause_chain = ?error, error.message = %error,
                    "the NATS relay stopped; retrying");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    tokio::select! {
        () = relay => Ok(()),
        () = shutdown => Ok(()),
    }
}

/// Connects, creates the stream if it is missing, waits for the relay's lock, then relays
/// until an error.
async fn lead(pool: &PgPool, args: &NatsRelayArgs) -> anyhow::Result<()> {
    let client = async_nats::connect(&args.url)
        .await
        .with_context(|| format!("could not connect to NATS at {}", args.url))?;
    let js = jetstream::new(client);
    js.get_or_create_stream(stream::Config {
        name: args.stream.clone(),
        subjects: vec![format!("{}.>", args.subject_prefix)],
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    })
    .await
    .with_context(|| {
        format!(
            "could not find or create the JetStream stream {}",
            args.stream
        )
    })?;

    let name = checkpoint_name(&args.stream);
    sqlx::query("insert into relay_checkpoints (name) values ($1) on conflict do nothing")
        .bind(&name)
        .execute(pool)
        .await?;
    let mut conn = pool.acquire().await?.detach();
    while !sqlx::query_scalar::<_, bool>("select pg_try_advisory_lock($1)")
        .bind(lock_key(&name))
        .fetch_one(&mut conn)
        .await?
    {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tracing::info!(stream = %args.stream, "NATS relay leading");
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen("upzento_events").await?;
    loop {
        let relayed = relay_batch(&mut conn, &js, &name, &args.subject_prefix).await?;
        // Idle: wait for a notification or the poll; a broken listener ends the lead.
        if relayed == 0
            && let Ok(Err(error)) = tokio::time::timeout(IDLE_POLL, listener.try_recv()).await
        {
            return Err(error.into());
        }
    }
}

/// Publishes the next batch after the checkpoint and moves the checkpoint past it.
async fn relay_batch(
    conn: &mut PgConnection,
    js: &jetstream::Context,
    name: &str,
    prefix: &str,
) -> anyhow::Result<usize> {
    let checkpoint: Cursor = sqlx::query_as(
        "select transaction_id::text::bigint as transaction_id, position
           from relay_checkpoints where name = $1",
    )
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    let events = read_after(&mut *conn, checkpoint, BATCH).await?;
    let Some(last) = events.last().map(StoredEvent::cursor) else {
        return Ok(0);
    };
    for event in &events {
        let cloud = CloudEvent::from_stored(event);
        let payload = serde_json::to_vec(&cloud)?;
        let message = PublishMessage::build()
            .payload(payload.into())
            .message_id(cloud.id.to_string())
            .header("Content-Type", "application/cloudevents+json")
            .header("Upzento-Cursor", cloud.cursor.as_str());
        js.send_publish(subject(prefix, event), message)
            .await
            .with_context(|| format!("could not publish the event at position {}", event.position))?
            .await
            .with_context(|| {
                format!(
                    "JetStream did not acknowledge the event at position {}",
                    event.position
                )
            })?;
    }
    sqlx::query(
        "update relay_checkpoints
            set transaction_id = $2::text::xid8, position = $3,
                events_relayed = events_relayed + $4, updated_at = now()
          where name = $1",
    )
    .bind(name)
    .bind(last.transaction_id.to_string())
    .bind(last.position)
    .bind(events.len() as i64)
    .execute(&mut *conn)
    .await?;
    Ok(events.len())
}
