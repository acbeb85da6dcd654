//! Rebuilding a projector's read models from the first event.
//!
//! A rebuild refills tables from empty, where maintaining every secondary index row by row
//! costs more than building each once from the finished rows. So the instance that rebuilds
//! (and holds the projector's lock) drops them when it empties the tables and creates them
//! again when it has caught up. Their definitions wait in `projector_deferred_indexes`,
//! written in the same transaction as the drop: if the rebuild dies half-way, a server that
//! leads the projector next creates them before applying anything ([`restore_indexes`]), and
//! another rebuild creates them with its own at the end. Primary
//! keys and constraints stay: the projectors' upserts need them. Queries keep working during
//! a rebuild, only without those indexes, on read models that are incomplete anyway.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use sqlx::{Connection, PgConnection, PgPool};

use crate::runtime::{Projector, apply_batch, ensure_checkpoint, status_of, try_lead};

/// How often a rebuild that has read everything readable looks again.
const STALL_POLL: Duration = Duration::from_millis(200);

/// Rebuilds the projector here, reporting each applied batch's size to `progress`; answers
/// how long creating the indexes again took, or `None`, having changed nothing, when another
/// instance leads the projector.
pub async fn rebuild(
    pool: &PgPool,
    projector: &dyn Projector,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<Option<Duration>> {
    ensure_checkpoint(pool, projector.name()).await?;
    let mut conn = crate::runtime::connection(pool).await?;
    if !try_lead(&mut conn, projector).await? {
        return Ok(None);
    }
    // Indexes an earlier rebuild left deferred stay deferred: they are created with the
    // others at the end, not over tables about to be emptied.
    empty_deferring_indexes(&mut conn, projector).await?;
    loop {
        let applied = apply_batch(&mut conn, projector).await?;
        if applied > 0 {
            progress(applied);
            continue;
        }
        // Events behind a transaction still open elsewhere cannot be read yet: wait for
        // them, a stall the progress shows, rather than call a partial rebuild done.
        if status_of(&mut conn, projector.name()).await?.lag_events == 0 {
            break;
        }
        tokio::time::sleep(STALL_POLL).await;
    }
    let started = Instant::now();
    restore_indexes(pool, projector.name()).await?;
    let indexing = started.elapsed();
    conn.close().await?;
    Ok(Some(indexing))
}

/// Empties the projector's tables, resets its checkpoint and drops the tables' secondary
/// indexes, keeping their definitions, in one transaction.
async fn empty_deferring_indexes(
    conn: &mut PgConnection,
    projector: &dyn Projector,
) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    crate::runtime::empty_tables(&mut tx, projector).await?;
    let tables: Vec<String> = projector.tables().iter().map(|t| t.to_string()).collect();
    let deferred: Vec<String> = sqlx::query_scalar(
        "insert into projector_deferred_indexes (projector, name, definition)
         select $1, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
           from pg_index i
          where i.indrelid = any(select t::regclass from unnest($2::text[]) t)
            and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)
         returning name",
    )
    .bind(projector.name())
    .bind(&tables)
    .fetch_all(&mut *tx)
    .await?;
    for name in deferred {
        sqlx::query(&format!("drop index {name}"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// Creates the indexes a rebuild of this projector deferred, if any are still waiting, two
/// at a time on connections of `pool`. Each is created in a transaction of its own that also
/// takes it off the list, so one that fails stays waiting without holding back the others.
/// GIN indexes go first: a GIN build runs on one core and is the longest (3.3 s over the
/// read-path benchmark's messages), while the btree builds fit beside it.
pub(crate) async fn restore_indexes(pool: &PgPool, projector: &str) -> Result<(), sqlx::Error> {
    let waiting: Vec<String> = sqlx::query_scalar(
        "select name from projector_deferred_indexes where projector = $1
          order by definition ilike '% using gin %' desc, name",
    )
    .bind(projector)
    .fetch_all(pool)
    .await?;
    if waiting.is_empty() {
        return Ok(());
    }
    tracing::info!(
        projector,
        indexes = waiting.len(),
        "creating the indexes a rebuild deferred"
    );
    futures::stream::iter(waiting)
        .map(|name| restore_index(pool, projector, name))
        .buffer_unordered(INDEX_BUILDS_AT_ONCE)
        .try_collect::<()>()
        .await
}

/// Deferred indexes built at once: one per core of the standard machine.
const INDEX_BUILDS_AT_ONCE: usize = 2;

async fn restore_index(pool: &PgPool, projector: &str, name: String) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let definition: Option<String> = sqlx::query_scalar(
        "delete from projector_deferred_indexes where projector = $1 and name = $2
         returning definition",
    )
    .bind(projector)
    .bind(&name)
    .fetch_optional(&mut *tx)
    .await?;
    // Another instance may have built it in the meantime.
    if let Some(definition) = definition {
        // PostgreSQL's 64 MB default spills a GIN build over a large tenant to disk.
        sqlx::query("set local maintenance_work_mem = '256MB'")
            .execute(&mut *tx)
            .await?;
        sqlx::query(&definition).execute(&mut *tx).await?;
    }
    tx.commit().await
}
