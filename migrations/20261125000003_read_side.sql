-- The read side: projector checkpoints and the inbox read models. Every row here can be
-- dropped and rebuilt from the events (DESIGN.md, decision 1); nothing here is written
-- with now(): every time comes from an event, so a rebuild gives the same rows.

-- Wake readers when events commit (the notification is delivered at commit).
create function notify_events() returns trigger language plpgsql as $$
begin
    perform pg_notify('upzento_events', '');
    return null;
end $$;
create trigger events_notify after insert on events
    for each statement execute function notify_events();

-- Where each projector is in the global order, written in the same transaction as its rows.
create table projector_checkpoints (
    name           text primary key,
    transaction_id xid8 not null default '0'::xid8,
    position       bigint not null default 0,
    events_applied bigint not null default 0
);

-- One row per conversation: the inbox list.
create table inbox_conversations (
    tenant_id            uuid not null,
    conversation_id      uuid not null,
    source               text not null,
    contact_name         text,
    contact_email        text,
    contact_phone        text,
    widget_id            uuid,
    status               text not null,
    snoozed_until        timestamptz,
    assignee_id          uuid,
    team_id              uuid,
    labels               text[] not null default '{}',
    last_message_preview text,
    last_message_at      timestamptz,
    last_activity_at     timestamptz not null,
    created_at           timestamptz not null,
    message_count        integer not null default 0,
    incoming_count       integer not null default 0,
    -- The oldest incoming message no outgoing message has answered yet.
    waiting_since        timestamptz,
    last_outgoing_status text,
    -- Contact fields and message text, for full-text search with one GIN index
    -- (a per-conversation document: DESIGN.md, what the read path can reach).
    search               tsvector not null default ''::tsvector,
    primary key (tenant_id, conversation_id)
);
create index inbox_by_status_activity
    on inbox_conversations (tenant_id, status, last_activity_at desc, conversation_id desc);
create index inbox_by_activity
    on inbox_conversations (tenant_id, last_activity_at desc, conversation_id desc);
create index inbox_by_assignee
    on inbox_conversations (tenant_id, assignee_id, status, last_activity_at desc, conversation_id desc);
create index inbox_by_waiting
    on inbox_conversations (tenant_id, status, waiting_since, conversation_id)
    where waiting_since is not null;
create index inbox_labels on inbox_conversations using gin (labels);
create index inbox_search on inbox_conversations using gin (search);

-- Every message and note, with its delivery status and the time of each transition.
create table inbox_messages (
    tenant_id       uuid not null,
    conversation_id uuid not null,
    message_id      uuid not null,
    -- Order within the conversation: the event's sequence in the conversation's stream.
    seq             bigint not null,
    direction       text not null,
    content         text not null,
    author          text,
    created_at      timestamptz not null,
    status          text,
    sent_at         timestamptz,
    delivered_at    timestamptz,
    read_at         timestamptz,
    failed_at       timestamptz,
    error           text,
    primary key (tenant_id, conversation_id, message_id)
);
create unique index inbox_messages_order on inbox_messages (tenant_id, conversation_id, seq);

-- Per agent and conversation: how many incoming messages the agent had seen at its marker.
create table inbox_reads (
    tenant_id       uuid not null,
    conversation_id uuid not null,
    agent_id        uuid not null,
    last_read_seq   bigint not null,
    read_incoming   integer not null,
    primary key (tenant_id, conversation_id, agent_id)
);
create index inbox_reads_by_agent on inbox_reads (tenant_id, agent_id);

-- Maintained counters (counting at query time is too slow on large tenants: DESIGN.md).
-- Per status and assignee (the nil UUID for unassigned): conversations and incoming messages.
create table inbox_totals (
    tenant_id     uuid not null,
    status        text not null,
    assignee_key  uuid not null,
    conversations bigint not null default 0,
    incoming      bigint not null default 0,
    primary key (tenant_id, status, assignee_key)
);
-- Per agent, status and assignee: incoming messages the agent has read.
create table inbox_agent_reads (
    tenant_id    uuid not null,
    agent_id     uuid not null,
    status       text not null,
    assignee_key uuid not null,
    read_incoming bigint not null default 0,
    primary key (tenant_id, agent_id, status, assignee_key)
);
