-- The inbox projector runs as two partitions, each with its own checkpoint and connection
-- (decisions.md, "The inbox projector in two partitions"). A conversation belongs to one
-- partition; the per-tenant counters get a row per partition, and readers sum them.
alter table inbox_totals add column part smallint not null default 0;
alter table inbox_totals drop constraint inbox_totals_pkey;
alter table inbox_totals add primary key (tenant_id, status, assignee_key, part);

alter table inbox_agent_reads add column part smallint not null default 0;
alter table inbox_agent_reads drop constraint inbox_agent_reads_pkey;
alter table inbox_agent_reads add primary key (tenant_id, agent_id, status, assignee_key, part);

-- The read models were built by the single projector: the partitions rebuild them.
truncate inbox_conversations, inbox_messages, inbox_reads, inbox_totals, inbox_agent_reads;
delete from projector_checkpoints where name = 'inbox';
