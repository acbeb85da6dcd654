-- The event store: the only source of truth (DESIGN.md, decision 1).
--
-- The first seven columns are postgres-es 0.5's `events` schema, so its repository can read
-- aggregates from this table. The rest are ours:
--   tenant_id       every event belongs to one tenant; the feed and audits filter on it.
--   recorded_at     when the event was committed, for auditors.
--   transaction_id  the writing transaction, filled in by PostgreSQL.
--   position        the global order. Positions are handed out before commit, so they commit
--                   out of order; readers follow (transaction_id, position) and only read
--                   below pg_snapshot_xmin(pg_current_snapshot()) (DESIGN.md, decision 2).
create table events (
    aggregate_type text not null,
    aggregate_id   text not null,
    sequence       bigint not null check (sequence >= 1),
    event_type     text not null,
    event_version  text not null,
    payload        jsonb not null,
    metadata       jsonb not null,
    tenant_id      uuid not null,
    recorded_at    timestamptz not null default now(),
    transaction_id xid8 not null default pg_current_xact_id(),
    position       bigint generated always as identity,
    -- One writer wins per aggregate version: the loser gets a unique violation and retries.
    primary key (aggregate_type, aggregate_id, sequence)
);

-- The gap-free reader walks this index.
create unique index events_global_order on events (transaction_id, position);
-- A tenant's feed, and "the events of this tenant's widgets".
create index events_tenant_order on events (tenant_id, transaction_id, position);
-- Listing a tenant's widgets or domains: the first event of each of its streams.
create index events_stream_starts on events (tenant_id, aggregate_type, position) where sequence = 1;
-- Looking an event up by the position a command answered with.
create unique index events_position on events (position);

-- One snapshot per aggregate, replaced as the aggregate grows. postgres-es reads the same
-- columns; unlike postgres-es's own table, the key is the aggregate alone so it can be upserted.
create table snapshots (
    aggregate_type   text not null,
    aggregate_id     text not null,
    last_sequence    bigint not null check (last_sequence >= 1),
    current_snapshot bigint not null check (current_snapshot >= 1),
    payload          jsonb not null,
    primary key (aggregate_type, aggregate_id)
);

-- The first answer to a request sent with an `Idempotency-Key`, written in the same
-- transaction as its events, so a retry after a crash between commit and answer gets it back.
create table idempotency_keys (
    tenant_id           uuid not null,
    key                 text not null,
    -- sha256 of method, path and body: the same key with another request is refused.
    request_fingerprint text not null,
    response            jsonb not null,
    created_at          timestamptz not null default now(),
    primary key (tenant_id, key)
);
