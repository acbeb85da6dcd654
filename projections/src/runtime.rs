//! The projector runtime.
//!
//! Each projector applies events in batches, in one transaction per batch that also moves
//! its checkpoint, so a crash loses or doubles nothing. Across server instances each
//! projector runs once: the instance that holds its PostgreSQL advisory lock (on a connection
//! of its own) applies events; the others wait on the lock and take over when the holder's
//! connection goes away. Every batch reads the checkpoint under `FOR UPDATE`, so even two
//! instances that both believed they led could not apply one event twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::task::JoinSet;

use crate::notifications::Notifications;
use crate::reader::{Cursor, StoredEvent, lag, read_after};

/// Events applied per transaction.
const BATCH: i64 = 2000;
/// How often an idle projector looks again without a notification: events of a transaction
/// that was blocked behind another one become readable when that other one ends, which
/// sends no notification if it was not ours.
const IDLE_POLL: Duration = Duration::from_millis(250);

/// How often a busy projector updates its lag gauges.
const LAG_REPORT_EVERY: Duration = Duration::from_secs(5);
/// How often one that has caught up does: under a steady load a projector catches up after
/// nearly every batch, and counting the lag each time cost more than the batches' reads.
const IDLE_LAG_REPORT_EVERY: Duration = Duration::from_secs(1);

/// A read model builder.
#[async_trait]
pub trait Projector: Send + Sync + 'static {
    /// Stored with its checkpoint: never rename.
    fn name(&self) -> &'static str;
    /// The tables it owns, emptied on rebuild.
    fn tables(&self) -> &'static [&'static str];
    /// Applies a batch of events, in order, inside the batch's transaction.
    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> anyhow::Result<()>;
    /// How long to let events gather after a batch that did not fill up. Zero for read
    /// models that people wait for; more for work that is not urgent, so that a steady
    /// stream of commits costs the projector a few transactions a second, not one per commit.
    fn gather(&self) -> Duration {
        Duration::ZERO
    }
}

/// A projector's checkpoint and lag, as `/readyz` and `upzento projections status` show it.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectorStatus {
    /// Projector name.
    pub name: String,
    /// Global position of the last event applied.
    pub position: i64,
    /// Events applied since the last rebuild.
    pub events_applied: i64,
    /// Events not yet applied.
    pub lag_events: i64,
    /// Age of the oldest event not yet applied, in seconds.
    pub lag_seconds: f64,
}

fn lock_key(name: &str) -> i64 {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

pub(crate) async fn ensure_checkpoint(pool: &PgPool, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("insert into projector_checkpoints (name) values ($1) on conflict do nothing")
        .bind(name)
        .execute(pool)
        .await
        .map(drop)
}

/// Applies the next batch after the projector's checkpoint; answers how many events it applied.
pub async fn apply_batch(
    conn: &mut PgConnection,
    projector: &dyn Projector,
) -> anyhow::Result<usize> {
    let mut tx = conn.begin().await?;
    let checkpoint: Cursor = sqlx::query_as(
        "select transaction_id::text::bigint as transaction_id, position
           from projector_checkpoints where name = $1 for update",
    )
    .bind(projector.name())
    .fetch_one(&mut *tx)
    .await?;
    let events = read_after(&mut *tx, checkpoint, BATCH).await?;
    let Some(last) = events.last().map(StoredEvent::cursor) else {
        return Ok(0);
    };
    projector.apply(&mut tx, &events).await.map_err(|error| {
        error.context(format!(
            "projector {} failed on the events from position {} to {}",
            projector.name(),
            events[0].position,
            last.position
        ))
    })?;
    // Readers waiting for a position hear of the batch when it commits (`notifications`).
    sqlx::query(
        "with moved as (
             update projector_checkpoints
                set transaction_id = $2::text::xid8, position = $3,
                    events_applied = events_applied + $4
              where name = $1
             returning name)
         select pg_notify($5, name) from moved",
    )
    .bind(projector.name())
    .bind(last.transaction_id.to_string())
    .bind(last.position)
    .bind(events.len() as i64)
    .bind(crate::notifications::PROJECTED)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(events.len())
}

/// Runs projectors in the background until stopped.
///
/// They run on a thread of their own, with a runtime and a small pool of their own: a batch
/// is a dozen round trips to PostgreSQL, and on a busy server each of them used to wait for a
/// turn behind every request task of the shared runtime, which is what clients saw as
/// projection lag.
pub struct Projectors {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

/// Connections of the projectors' pool: one per projector, and spares.
const PROJECTOR_CONNECTIONS: u32 = 4;

impl Projectors {
    /// Starts one task per projector; each waits for its lock, then follows the events, on
    /// connections to the database `pool` connects to, woken by the instance's
    /// `notifications`.
    pub fn start(
        pool: PgPool,
        projectors: Vec<Arc<dyn Projector>>,
        notifications: Arc<Notifications>,
    ) -> Self {
        let options = pool.connect_options().as_ref().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("projectors".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the projectors");
                runtime.block_on(async move {
                    let pool = sqlx::postgres::PgPoolOptions::new()
                        .max_connections(PROJECTOR_CONNECTIONS)
                        .connect_lazy_with(options);
                    let mut tasks = JoinSet::new();
                    for projector in projectors {
                        tasks.spawn(supervise(pool.clone(), projector, notifications.clone()));
                    }
                    let _ = stopped.await;
                    tasks.shutdown().await;
                    pool.close().await;
                });
            })
            .expect("a thread for the projectors");
        Self { stop, thread }
    }

    /// Stops every projector; an open batch rolls back and is applied again later.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

async fn supervise(pool: PgPool, projector: Arc<dyn Projector>, notifications: Arc<Notifications>) {
    loop {
        if let Err(error) = lead(&pool, projector.as_ref(), &notifications).await {
            tracing::error!(
                projector = projector.name(),
                error.cause_chain = ?error,
                error.message = %error,
                "projector stopped; retrying"
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Waits for the projector's lock, then applies events until an error.
async fn lead(
    pool: &PgPool,
    projector: &dyn Projector,
    notifications: &Notifications,
) -> anyhow::Result<()> {
    ensure_checkpoint(pool, projector.name()).await?;
    let mut conn = connection(pool).await?;
    while !try_lead(&mut conn, projector).await? {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tracing::info!(projector = projector.name(), "projector leading");
    crate::rebuild::restore_indexes(pool, projector.name()).await?;
    let mut appended = notifications.appended();
    let mut reported = Instant::now() - LAG_REPORT_EVERY;
    loop {
        let applied = apply_batch(&mut conn, projector).await?;
        // Counting the lag costs a scan of what is behind: not after every batch.
        let every = if applied == 0 {
            IDLE_LAG_REPORT_EVERY
        } else {
            LAG_REPORT_EVERY
        };
        if reported.elapsed() >= every {
            report_lag(&mut conn, projector.name()).await?;
            reported = Instant::now();
        }
        if applied > 0 && applied < BATCH as usize && !projector.gather().is_zero() {
            tokio::time::sleep(projector.gather()).await;
        }
        if applied == 0 {
            // A timeout is the poll.
            let _ = tokio::time::timeout(IDLE_POLL, appended.changed()).await;
        }
    }
}

/// A connection of the projector's own, planning every statement for its values.
///
/// A projector's statements join the batch's keys to tables that grow from empty. A
/// prepared statement's generic plan, made when a table was small, kept a sequential scan
/// as the table grew to thousands of rows and the batch's rows were still a handful: the
/// status update of earlier messages took 4 ms a batch under load instead of a fraction of
/// one (docs/performance.md). A custom plan costs a little planning per statement and
/// follows the tables' current size.
pub(crate) async fn connection(pool: &PgPool) -> Result<PgConnection, sqlx::Error> {
    let mut conn = pool.acquire().await?.detach();
    sqlx::query("set plan_cache_mode = force_custom_plan")
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

async fn report_lag(conn: &mut PgConnection, name: &'static str) -> Result<(), sqlx::Error> {
    let status = status_of(conn, name).await?;
    metrics::gauge!("upzento_projector_lag_events", "projector" => name)
        .set(status.lag_events as f64);
    metrics::gauge!("upzento_projector_lag_seconds", "projector" => name).set(status.lag_seconds);
    metrics::gauge!("upzento_projector_position", "projector" => name).set(status.position as f64);
    Ok(())
}

pub(crate) async fn status_of(
    conn: &mut PgConnection,
    name: &str,
) -> Result<ProjectorStatus, sqlx::Error> {
    let (cursor, events_applied): (Cursor, i64) = sqlx::query_as::<_, (i64, i64, i64)>(
        "select transaction_id::text::bigint, position, events_applied
           from projector_checkpoints where name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?
    .map(|(transaction_id, position, applied)| {
        (
            Cursor {
                transaction_id,
                position,
            },
            applied,
        )
    })
    .unwrap_or_default();
    let (lag_events, lag_seconds) = lag(&mut *conn, cursor).await?;
    Ok(ProjectorStatus {
        name: name.to_owned(),
        position: cursor.position,
        events_applied,
        lag_events,
        lag_seconds,
    })
}

/// The status of each named projector.
pub async fn statuses(pool: &PgPool, names: &[&str]) -> Result<Vec<ProjectorStatus>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let mut statuses = Vec::with_capacity(names.len());
    for name in names {
        statuses.push(status_of(&mut conn, name).await?);
    }
    Ok(statuses)
}

/// Where a projector stands: its read models show every event up to this cursor. A client
/// that reads those models, then follows the live tail from here, misses nothing.
pub async fn checkpoint(pool: &PgPool, name: &str) -> Result<Cursor, sqlx::Error> {
    sqlx::query_as(
        "select transaction_id::text::bigint as transaction_id, position
           from projector_checkpoints where name = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await
    .map(Option::unwrap_or_default)
}

/// True once the projector has applied the event at global `position` (read-your-writes).
pub async fn has_reached(pool: &PgPool, name: &str, position: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (
             select 1 from events e, projector_checkpoints c
              where c.name = $1 and e.position = $2
                and (e.transaction_id, e.position) <= (c.transaction_id, c.position))
             or not exists (select 1 from events where position = $2)",
    )
    .bind(name)
    .bind(position)
    .fetch_one(pool)
    .await
}

/// Empties the projector's tables and resets its checkpoint, in one transaction: the
/// projector (here or in a running server) then rebuilds from the first event.
pub async fn reset(pool: &PgPool, projector: &dyn Projector) -> Result<(), sqlx::Error> {
    ensure_checkpoint(pool, projector.name()).await?;
    let mut tx = pool.begin().await?;
    empty_tables(&mut tx, projector).await?;
    tx.commit().await
}

/// Inside the caller's transaction: empties the projector's tables and moves its checkpoint
/// back before the first event.
pub(crate) async fn empty_tables(
    tx: &mut PgConnection,
    projector: &dyn Projector,
) -> Result<(), sqlx::Error> {
    sqlx::query("select 1 from projector_checkpoints where name = $1 for update")
        .bind(projector.name())
        .execute(&mut *tx)
        .await?;
    for table in projector.tables() {
        sqlx::query(&format!("truncate {table}"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "update projector_checkpoints set transaction_id = '0'::xid8, position = 0, events_applied = 0
          where name = $1",
    )
    .bind(projector.name())
    .execute(&mut *tx)
    .await
    .map(drop)
}

/// Tries to take the projector's lock on `conn`; false when another instance leads.
pub async fn try_lead(
    conn: &mut PgConnection,
    projector: &dyn Projector,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select pg_try_advisory_lock($1)")
        .bind(lock_key(projector.name()))
        .fetch_one(conn)
        .await
}
