-- The inbox projector applies whole batches in memory and writes them back in a few
-- set-based statements. It needs to know the last outgoing message by id (not by a lookup
-- over messages) and records read markers by message id.
--
-- Read models are disposable: rather than convert rows, empty them and reset the checkpoint,
-- and the projector rebuilds them from the events.
truncate inbox_conversations, inbox_messages, inbox_reads, inbox_totals, inbox_agent_reads;
update projector_checkpoints set transaction_id = '0'::xid8, position = 0, events_applied = 0
 where name = 'inbox';
alter table inbox_conversations add column last_outgoing_message_id uuid;
alter table inbox_conversations alter column search set default ''::tsvector;
alter table inbox_reads drop column last_read_seq;
alter table inbox_reads add column last_read_message_id uuid not null;
