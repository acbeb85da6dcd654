-- Search documents leave the conversation row (decision 57 in docs/decisions.md). Every
-- event rewrites its conversation's row with a new last activity, so the update is never
-- HOT, and a GIN index takes every word of the new row version again: a conversation's
-- whole vocabulary per event, status and read events included. A document per message,
-- inserted once and never updated, costs each message its own words only.
--
-- `seq` is the event's sequence in the conversation: the message's, or for the contact's
-- own document the conversation start's (always 1: it is the stream's first event). A
-- message's document holds the contact's fields too, so "alice refund" finds Alice's
-- message about a refund.
drop index inbox_search;
alter table inbox_conversations drop column search;

create table inbox_search (
    tenant_id       uuid not null,
    conversation_id uuid not null,
    seq             bigint not null,
    document        tsvector not null
);
-- A unique index rather than a primary key: nothing upserts these rows, and a rebuild
-- drops the indexes that back no constraint and builds them once at the end.
create unique index inbox_search_order on inbox_search (tenant_id, conversation_id, seq);
create index inbox_search_documents on inbox_search using gin (document);

-- The same documents the projector writes, from the rows it wrote before.
insert into inbox_search (tenant_id, conversation_id, seq, document)
select tenant_id, conversation_id, 1,
       to_tsvector('simple', concat_ws(' ', contact_name, contact_email, contact_phone))
  from inbox_conversations;
insert into inbox_search (tenant_id, conversation_id, seq, document)
select m.tenant_id, m.conversation_id, m.seq,
       to_tsvector('simple', concat_ws(' ', c.contact_name, c.contact_email, c.contact_phone, m.content))
  from inbox_messages m
  join inbox_conversations c using (tenant_id, conversation_id);
