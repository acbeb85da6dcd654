-- Issue 9: a conversation's activity lines (`GET /api/v1/conversations/{id}/activity`),
-- read straight from the event store (docs/decisions.md, 48).
--
-- The primary key reaches a conversation's events, but a page of activity lines would walk
-- past every message of the conversation to find them: about 11 ms for a conversation of
-- 20,000 events. This partial index holds only the events that are activity lines, a small
-- share of the store, and answers a page in well under a millisecond however many messages
-- the conversation has. Its condition is, word for word, the query's filter
-- (`projections::activity::FILTER`; a unit test checks that the two agree), so the planner
-- can use it; an event that becomes a line later needs a new index.
create index events_conversation_activity on events (aggregate_id, sequence)
    where aggregate_type = 'Conversation'
      and event_type in ('ConversationStarted', 'WhatsappContactLinked', 'ConversationAssigned', 'ConversationUnassigned', 'ConversationStatusChanged', 'LabelAdded', 'LabelRemoved');
