-- One event appended in one transaction: the floor under a message append. The row is like
-- the ones the service writes (same table, same indexes and trigger, a payload and metadata
-- of the usual size); the aggregate id is random so that appends do not collide.
\set n random(1, 2000000000)
insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                    payload, metadata, tenant_id)
values ('Conversation', 'pgbench:' || :client_id || ':' || :n, 1, 'MessageReceived', '1',
        '{"MessageReceived": {"message_id": "01a21398-8b7a-704e-8a4c-cf99356af261", "content": "Hello, where is my order?", "sent_at": "2026-11-25T16:44:54.012385Z"}}',
        '{"actor": "agent:01a21398-8a74-731a-b505-9d9ccb925d04", "tenant_id": "01a21398-8a73-779c-a45a-89ba04abdd66", "request_id": "0b0bd1c3-523a-4bf6-8071-0438e9bc201e", "correlation_id": "0b0bd1c3-523a-4bf6-8071-0438e9bc201e", "timestamp": "2026-11-25T16:44:54.012385+00:00"}',
        '01a21398-8a73-779c-a45a-89ba04abdd66');
