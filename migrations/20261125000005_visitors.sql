-- The website channel (issue 6).

-- Keys the service signs with, made on first start so that it needs no configuration and
-- every instance on this database agrees on them. Visitor tokens are signed with `visitor`;
-- each widget's identity-verification secret is derived from `identity`. Whoever can read
-- this table can mint visitor tokens: it is as sensitive as the database itself.
create table signing_keys (
    name       text primary key,
    key        bytea not null check (length(key) >= 32),
    created_at timestamptz not null default now()
);

-- A visitor session names its widget by the id inside the public key; the widget's stream
-- is found by that id alone (the tenant comes from the stream, never from the visitor).
create index events_stream_resource on events ((split_part(aggregate_id, ':', 2)), aggregate_type)
    where sequence = 1;
