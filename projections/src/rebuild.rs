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
    restore_indexes(&mut conn, projector.name()).await?;
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

/// Creates the indexes a rebuild of this projector deferred, if any are still waiting.
pub(crate) async fn restore_indexes(
    conn: &mut PgConnection,
    projector: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    let waiting: Vec<String> = sqlx::query_scalar(
        "delete from projector_deferred_indexes where projector = $1 returning definition",
    )
    .bind(projector)
    .fetch_all(&mut *tx)
    .await?;
    if !waiting.is_empty() {
        tracing::info!(
            projector,
            indexes = waiting.len(),
            "creating the indexes a rebuild deferred"
        );
        // PostgreSQL's 64 MB default spills a GIN build over a large tenant to disk.
        sqlx::query("set local maintenance_work_mem = '256MB'")
            .execute(&mut *tx)
            .await?;
    }
    for definition in waiting {
        sqlx::query(&definition).execute(&mut *tx).await?;
    }
    tx.commit().await
}
