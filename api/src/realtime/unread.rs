//! Unread counts for live agent connections, shared within an instance.
//!
//! Every agent connection wants its agent's counts after each change that reached the inbox.
//! Asked one by one, a thousand consoles would cost thousands of queries a second; here the
//! inbox's checkpoint is read at most every [`CHECKPOINT_FRESH_FOR`] for all of them, and one
//! agent's counts once per checkpoint for all of that agent's connections.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use projections::queries::Counts;
use projections::reader::Cursor;
use projections::runtime::checkpoint;
use sqlx::PgPool;
use uuid::Uuid;

/// How long a read of the inbox checkpoint is reused.
const CHECKPOINT_FRESH_FOR: Duration = Duration::from_millis(50);

/// The instance's shared view of the inbox's progress and of agents' counts.
pub struct UnreadCounts {
    pool: PgPool,
    checkpoint: Mutex<Option<(Instant, Cursor)>>,
    counts: Mutex<HashMap<(Uuid, Uuid), (Cursor, Counts)>>,
}

impl UnreadCounts {
    /// Counts over `pool`'s inbox.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            checkpoint: Mutex::new(None),
            counts: Mutex::new(HashMap::new()),
        }
    }

    async fn inbox_checkpoint(&self) -> Result<Cursor, sqlx::Error> {
        let fresh = *self.checkpoint.lock().expect("checkpoint lock");
        if let Some((at, cursor)) = fresh
            && at.elapsed() < CHECKPOINT_FRESH_FOR
        {
            return Ok(cursor);
        }
        let cursor = checkpoint(&self.pool, projections::inbox::NAME).await?;
        *self.checkpoint.lock().expect("checkpoint lock") = Some((Instant::now(), cursor));
        Ok(cursor)
    }

    /// The agent's counts once the inbox shows everything up to `seen`; `None` while it
    /// does not yet.
    pub async fn after(
        &self,
        tenant: Uuid,
        agent: Uuid,
        seen: Cursor,
    ) -> Result<Option<Counts>, sqlx::Error> {
        let inbox = self.inbox_checkpoint().await?;
        if inbox < seen {
            return Ok(None);
        }
        let key = (tenant, agent);
        let cached = self.counts.lock().expect("counts lock").get(&key).copied();
        if let Some((at, counts)) = cached
            && at >= seen
        {
            return Ok(Some(counts));
        }
        let counts = projections::queries::unread(&self.pool, tenant, agent).await?;
        let mut all = self.counts.lock().expect("counts lock");
        if all.len() > 100_000 {
            all.clear();
        }
        all.insert(key, (inbox, counts));
        Ok(Some(counts))
    }
}
