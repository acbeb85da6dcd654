-- Issue 8: the auditor role and the checkpoint of the broker relay.

-- Auditors read histories and the event feed and change nothing. The check named by
-- PostgreSQL for the inline constraint of 0002 is replaced by one that allows the new role.
alter table agents drop constraint agents_role_check;
alter table agents add constraint agents_role_check
    check (role in ('admin', 'agent', 'auditor'));

-- Where each relay to a broker is in the global order. A relay publishes a batch, waits for
-- the broker's acknowledgements, then moves this row; a crash in between publishes the batch
-- again, and the broker drops the repeats by message id. One row per relay target, so
-- relays to two streams keep their own places.
create table relay_checkpoints (
    name           text primary key,
    transaction_id xid8 not null default '0'::xid8,
    position       bigint not null default 0,
    events_relayed bigint not null default 0,
    updated_at     timestamptz not null default now()
);
