//! The gap-free reader of the global event order.
//!
//! Positions are handed out when a transaction inserts, but transactions commit in any
//! order: a reader that trusted "the highest position seen" would skip an event whose
//! transaction committed late. This reader walks `(transaction_id, position)` and only up to
//! `pg_snapshot_xmin(pg_current_snapshot())`, the oldest transaction still running: every
//! event below it is committed or rolled back for good, so nothing can appear behind the
//! cursor later. The price: one long transaction anywhere on the PostgreSQL server holds
//! every reader back, which shows as lag rather than as a lost event.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

/// A point in the global order: everything at or before it has been read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
pub struct Cursor {
    /// The writing transaction's id (`xid8`, as a number).
    pub transaction_id: i64,
    /// The event's global position.
    pub position: i64,
}

/// A cursor as clients see it: `<transaction id>-<position>`. Opaque to them, but stable:
/// feeds, WebSocket resumes and SSE `Last-Event-ID` all speak it.
impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.transaction_id, self.position)
    }
}

/// A string that is not a cursor this service handed out.
#[derive(Debug, thiserror::Error)]
#[error("not a cursor this service handed out")]
pub struct InvalidCursor;

impl std::str::FromStr for Cursor {
    type Err = InvalidCursor;

    fn from_str(raw: &str) -> Result<Self, InvalidCursor> {
        let (transaction_id, position) = raw.split_once('-').ok_or(InvalidCursor)?;
        let parse = |part: &str| part.parse::<i64>().ok().filter(|n| *n >= 0);
        Ok(Self {
            transaction_id: parse(transaction_id).ok_or(InvalidCursor)?,
            position: parse(position).ok_or(InvalidCursor)?,
        })
    }
}

/// An event as stored, with its place in the global order.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    /// The writing transaction's id.
    pub transaction_id: i64,
    /// Global position.
    pub position: i64,
    /// Owner.
    pub tenant_id: Uuid,
    /// `Conversation`, `Widget` or `Domain`.
    pub aggregate_type: String,
    /// `<tenant>:<resource>`.
    pub aggregate_id: String,
    /// Sequence within the aggregate, from 1.
    pub sequence: i64,
    /// Event name.
    pub event_type: String,
    /// Event version.
    pub event_version: String,
    /// The event, as cqrs-es serialized it (`{"EventType": {...}}`).
    pub payload: Value,
    /// Who, why, when.
    pub metadata: Value,
    /// Commit time.
    pub recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    /// Where this event is in the global order.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            transaction_id: self.transaction_id,
            position: self.position,
        }
    }

    /// A text value of the metadata (`actor`, `request_id`, …), when the event carries it.
    pub fn meta(&self, key: &str) -> Option<String> {
        self.metadata
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// The resource id part of the aggregate id.
    pub fn resource_id(&self) -> Option<Uuid> {
        self.aggregate_id
            .rsplit(':')
            .next()
            .and_then(|id| Uuid::parse_str(id).ok())
    }
}

/// The columns of a [`StoredEvent`], and the condition that keeps a read gap-free: only
/// transactions older than every one still running.
macro_rules! read_events {
    ($filter:literal) => {
        concat!(
            "select transaction_id::text::bigint as transaction_id, position, tenant_id,
                    aggregate_type, aggregate_id, sequence, event_type, event_version,
                    payload, metadata, recorded_at
               from events
              where (events.transaction_id, position) > ($1::text::xid8, $2)
                and events.transaction_id < pg_snapshot_xmin(pg_current_snapshot()) ",
            $filter,
            // Qualified: the bare name would mean the output column, a number, and lose
            // the index order.
            " order by events.transaction_id, events.position limit $3"
        )
    };
}

/// The next events after `after`, in global order, at most `limit`, only from transactions
/// that can no longer change what lies behind the cursor.
pub async fn read_after<'e>(
    executor: impl PgExecutor<'e>,
    after: Cursor,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query_as(read_events!(""))
        .bind(after.transaction_id.to_string())
        .bind(after.position)
        .bind(limit)
        .fetch_all(executor)
        .await
}

/// [`read_after`] for one tenant's events: what its feeds and live connections follow.
pub async fn read_tenant_after<'e>(
    executor: impl PgExecutor<'e>,
    tenant_id: Uuid,
    after: Cursor,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query_as(read_events!("and tenant_id = $4"))
        .bind(after.transaction_id.to_string())
        .bind(after.position)
        .bind(limit)
        .bind(tenant_id)
        .fetch_all(executor)
        .await
}

/// The newest event every reader may see now: where a follower that only wants what
/// happens from now on starts.
pub async fn head<'e>(executor: impl PgExecutor<'e>) -> Result<Cursor, sqlx::Error> {
    sqlx::query_as(
        "select transaction_id::text::bigint as transaction_id, position
           from events
          where events.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          order by events.transaction_id desc, events.position desc
          limit 1",
    )
    .fetch_optional(executor)
    .await
    .map(Option::unwrap_or_default)
}

/// How far behind `cursor` is: events not yet read (counted up to a bound) and the age of
/// the oldest of them.
pub async fn lag<'e>(
    executor: impl PgExecutor<'e>,
    cursor: Cursor,
) -> Result<(i64, f64), sqlx::Error> {
    sqlx::query_as(
        "select count(*), coalesce(extract(epoch from now() - min(recorded_at))::float8, 0)
           from (select recorded_at from events
                  where (transaction_id, position) > ($1::text::xid8, $2)
                  limit 1000000) behind",
    )
    .bind(cursor.transaction_id.to_string())
    .bind(cursor.position)
    .fetch_one(executor)
    .await
}
