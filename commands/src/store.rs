//! The event store on PostgreSQL, over postgres-es's `events` and `snapshots` tables.
//!
//! A command costs two statements: one reads the snapshot and the events after it, one writes
//! the new events, the snapshot when one is due (taken from the aggregate exactly as the
//! events left it: cqrs-es 0.5's own snapshot path stores the new events twice, DESIGN.md)
//! and the idempotency record, atomically, answering the global position reached.
//! postgres-es's repository, which commits one `INSERT` per event in a transaction of its own,
//! is used where a plain replay is wanted: auditors' full replays and the fallback when a
//! snapshot no longer reads.

use cqrs_es::persist::PersistedEventRepository;
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::PgPool;

use crate::context::CommandContext;

/// An aggregate as loaded for a command.
#[derive(Debug)]
pub struct Loaded<A> {
    /// The state.
    pub aggregate: A,
    /// The sequence of its last event; 0 for an aggregate with no events.
    pub version: usize,
    /// The version the stored snapshot was taken at, 0 if none.
    pub snapshot_version: usize,
}

/// Where a commit landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The aggregate's version after the commit.
    pub version: usize,
    /// The global position of the last event written.
    pub position: i64,
}

/// The first answer to an idempotent request, stored with the events it produced.
pub struct IdempotencyRecord<'a> {
    /// The client's key.
    pub key: &'a str,
    /// Hash of what was asked, to refuse the key's reuse for something else.
    pub fingerprint: &'a str,
    /// Builds the answer from the commit's version; the store writes the position the events
    /// reached into the answer's top-level `position` field.
    pub response: &'a (dyn Fn(Committed) -> Value + Sync),
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another command wrote this aggregate first; reload and decide again.
    #[error("another command changed the aggregate first")]
    Conflict,
    /// Another request with the same idempotency key committed first.
    #[error("another request with the same idempotency key committed first")]
    IdempotencyRace,
    /// A stored event or snapshot does not deserialize: a bug or a missing upcaster.
    #[error("stored data does not deserialize: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error(transparent)]
    Database(sqlx::Error),
    /// postgres-es could not reach or read the database.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
}

/// The PostgreSQL event store.
#[derive(Clone)]
pub struct EventStore {
    pool: PgPool,
}

impl EventStore {
    /// A store over the migrated database behind `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Loads an aggregate from its snapshot, if it has a readable one, and the events after
    /// it, in one round trip. A snapshot that no longer deserializes (the aggregate's shape
    /// changed) is ignored, and the aggregate is replayed from its first event.
    pub async fn load<A: Aggregate>(&self, aggregate_id: &str) -> Result<Loaded<A>, StoreError> {
        let rows: Vec<(bool, i64, Value)> = sqlx::query_as(
            "with s as (select last_sequence, payload from snapshots
                         where aggregate_type = $1 and aggregate_id = $2)
             select true, last_sequence, payload from s
             union all
             select false, sequence, payload from events
              where aggregate_type = $1 and aggregate_id = $2
                and sequence > coalesce((select last_sequence from s), 0)
             order by 1 desc, 2",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .fetch_all(&self.pool)
        .await?;
        let mut rows = rows.into_iter().peekable();
        let snapshot = rows.next_if(|(is_snapshot, _, _)| *is_snapshot);
        let (mut aggregate, snapshot_version) = match snapshot {
            None => (A::default(), 0),
            Some((_, version, state)) => match serde_json::from_value::<A>(state) {
                Ok(aggregate) => (aggregate, version as usize),
                Err(_) => {
                    let (aggregate, version) = self.replay_with_version(aggregate_id).await?;
                    return Ok(Loaded {
                        aggregate,
                        version,
                        snapshot_version: 0,
                    });
                }
            },
        };
        let mut version = snapshot_version;
        for (_, sequence, payload) in rows {
            version = sequence as usize;
            let event =
                serde_json::from_value(payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            aggregate.apply(event);
        }
        Ok(Loaded {
            aggregate,
            version,
            snapshot_version,
        })
    }

    /// Replays an aggregate from its first event, ignoring snapshots: what auditors trust,
    /// and what tests compare snapshots against.
    pub async fn replay<A: Aggregate>(&self, aggregate_id: &str) -> Result<A, StoreError> {
        Ok(self.replay_with_version(aggregate_id).await?.0)
    }

    /// The replayed aggregate and the sequence of its last event, from one read.
    async fn replay_with_version<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<(A, usize), StoreError> {
        let repo = PostgresEventRepository::new(self.pool.clone());
        let mut aggregate = A::default();
        let mut version = 0;
        for event in repo
            .get_events::<A>(aggregate_id)
            .await
            .map_err(persistence)?
        {
            version = event.sequence;
            let envelope = EventEnvelope::<A>::try_from(event)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            aggregate.apply(envelope.payload);
        }
        Ok((aggregate, version))
    }

    /// Commits `events`, produced from `loaded`, in one statement, together with a new
    /// snapshot when `snapshot_every` events have passed since the last one and with the
    /// idempotency record if there is one. `loaded.aggregate` must already have the events
    /// applied (cqrs-es's sink does that), so the snapshot is exactly the new state.
    pub async fn commit<A: Aggregate>(
        &self,
        aggregate_id: &str,
        loaded: &Loaded<A>,
        events: &[A::Event],
        context: &CommandContext,
        snapshot_every: usize,
        idempotency: Option<&IdempotencyRecord<'_>>,
    ) -> Result<Committed, StoreError> {
        let metadata = context.metadata(chrono::Utc::now());
        let first = loaded.version + 1;
        let sequences: Vec<i64> = (first..first + events.len()).map(|s| s as i64).collect();
        let types: Vec<String> = events.iter().map(DomainEvent::event_type).collect();
        let versions: Vec<String> = events.iter().map(DomainEvent::event_version).collect();
        let payloads = events
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<Value>, _>>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let version = loaded.version + events.len();

        let snapshot = snapshot_due(loaded, version, snapshot_every)
            .then(|| serde_json::to_value(&loaded.aggregate))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let response = idempotency.map(|record| {
            (record.response)(Committed {
                version,
                position: 0,
            })
        });
        // One statement, so one round trip and atomic without an explicit transaction: the
        // events, the snapshot when one is due, the idempotency record when there is a key.
        let position: Option<i64> = sqlx::query_scalar(
            "with appended as (
                 insert into events
                     (aggregate_type, aggregate_id, sequence, event_type, event_version,
                      payload, metadata, tenant_id)
                 select $1, $2, e.sequence, e.event_type, e.event_version, e.payload, $7, $8
                   from unnest($3::bigint[], $4::text[], $5::text[], $6::jsonb[])
                        as e(sequence, event_type, event_version, payload)
                 returning position),
             snapshot as (
                 insert into snapshots
                     (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
                 select $1, $2, $9, 1, $10 where $10::jsonb is not null
                 on conflict (aggregate_type, aggregate_id) do update
                    set last_sequence = excluded.last_sequence,
                        current_snapshot = snapshots.current_snapshot + 1,
                        payload = excluded.payload
                  where snapshots.last_sequence < excluded.last_sequence),
             idempotency as (
                 insert into idempotency_keys (tenant_id, key, request_fingerprint, response)
                 select $8, $11, $12,
                        jsonb_set($13, '{position}', to_jsonb((select max(position) from appended)))
                  where $11::text is not null)
             select max(position) from appended",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .bind(&sequences)
        .bind(&types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&metadata)
        .bind(context.tenant_id.as_uuid())
        .bind(version as i64)
        .bind(snapshot)
        .bind(idempotency.map(|record| record.key))
        .bind(idempotency.map(|record| record.fingerprint))
        .bind(response)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| match unique_violation(&e) {
            Some("events_pkey") => StoreError::Conflict,
            Some("idempotency_keys_pkey") => StoreError::IdempotencyRace,
            _ => StoreError::Database(e),
        })?;
        let position =
            position.ok_or_else(|| StoreError::Corrupt("no event was written".into()))?;
        Ok(Committed { version, position })
    }

    /// The stored answer for an idempotency key: its request fingerprint and response.
    pub async fn idempotent_response(
        &self,
        tenant: domain::ids::TenantId,
        key: &str,
    ) -> Result<Option<(String, Value)>, StoreError> {
        Ok(sqlx::query_as(
            "select request_fingerprint, response from idempotency_keys
              where tenant_id = $1 and key = $2",
        )
        .bind(tenant.as_uuid())
        .bind(key)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The ids of a tenant's resources of one aggregate type, oldest first (the part of
    /// each stream id after the tenant).
    pub async fn resource_ids<A: Aggregate, Id: std::str::FromStr>(
        &self,
        tenant: domain::ids::TenantId,
    ) -> Result<Vec<Id>, StoreError> {
        let streams: Vec<String> = sqlx::query_scalar(
            "select aggregate_id from events
              where tenant_id = $1 and aggregate_type = $2 and sequence = 1
              order by position",
        )
        .bind(tenant.as_uuid())
        .bind(A::TYPE)
        .fetch_all(&self.pool)
        .await?;
        Ok(streams
            .iter()
            .filter_map(|stream| stream.rsplit(':').next()?.parse().ok())
            .collect())
    }

    /// The tenant that owns resource `id` of an aggregate type, found by the id alone: for
    /// callers that hold a public identifier (a widget's key) and no credential of a tenant.
    pub async fn tenant_of_stream(
        &self,
        aggregate_type: &str,
        id: uuid::Uuid,
    ) -> Result<Option<uuid::Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "select tenant_id from events
              where split_part(aggregate_id, ':', 2) = $1 and aggregate_type = $2
                and sequence = 1",
        )
        .bind(id.to_string())
        .bind(aggregate_type)
        .fetch_optional(&self.pool)
        .await?)
    }
}

/// True when a commit that brings `loaded` to `version` also writes a snapshot.
pub(crate) fn snapshot_due<A>(loaded: &Loaded<A>, version: usize, snapshot_every: usize) -> bool {
    version - loaded.snapshot_version >= snapshot_every
}

impl From<sqlx::Error> for StoreError {
    /// A database that cannot be reached is `Unavailable` (the client may retry); any other
    /// database error is unexpected.
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(error.to_string()),
            other => Self::Database(other),
        }
    }
}

/// The name of the unique constraint `error` violated, if it is a unique violation.
fn unique_violation(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => db.constraint(),
        _ => None,
    }
}

fn persistence(error: cqrs_es::persist::PersistenceError) -> StoreError {
    use cqrs_es::persist::PersistenceError as P;
    match error {
        P::OptimisticLockError => StoreError::Conflict,
        P::ConnectionError(e) | P::UnknownError(e) => StoreError::Unavailable(e.to_string()),
        P::DeserializationError(e) => StoreError::Corrupt(e.to_string()),
    }
}
