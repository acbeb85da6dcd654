-- The WhatsApp channel (docs/whatsapp.md).
--
-- Channels are account administration, like agents and tokens: a plain table, not events,
-- because their secrets must be replaceable and erasable, which an append-only log is not.
-- The other tables are the channel's durable plumbing around the event store: the webhook
-- inbox (what Meta delivered, kept until it is applied), the contact reservations (one
-- conversation per contact and number), parked statuses (statuses that overtook their
-- message) and the outbox (what must be sent to the Graph API, with its retries).

create table whatsapp_channels (
    id                  uuid primary key,
    tenant_id           uuid not null references tenants (id) on delete cascade,
    name                text not null,
    -- Meta's id of the number; webhooks name it in `metadata.phone_number_id`.
    phone_number_id     text not null,
    business_account_id text not null,
    -- AES-256-GCM under the server's secrets key: 12-byte nonce, then ciphertext and tag.
    -- The channel id and the column name are the associated data, so a value copied into
    -- another row or column does not decrypt.
    access_token        bytea not null,
    app_secret          bytea not null,
    -- SHA-256 of the verify token: it is only ever compared, never sent anywhere.
    verify_token_sha256 bytea not null,
    created_at          timestamptz not null default now(),
    -- A number belongs to one tenant only: its webhooks must land in exactly one account.
    constraint whatsapp_channels_phone_number_id_key unique (phone_number_id)
);
create index whatsapp_channels_tenant on whatsapp_channels (tenant_id, created_at);

-- Verified webhook deliveries, stored before Meta gets its 200 and applied by a worker, so
-- nothing acknowledged is lost if the server dies right after answering.
create table whatsapp_webhooks (
    id              bigint generated always as identity primary key,
    channel_id      uuid not null references whatsapp_channels (id) on delete cascade,
    tenant_id       uuid not null,
    payload         jsonb not null,
    received_at     timestamptz not null default now(),
    attempts        integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    -- Set once applied. While a worker applies a delivery it holds the session advisory
    -- lock (0x5741, id), which dies with its connection: no lease to wait out after a crash.
    processed_at    timestamptz,
    last_error      text
);
create index whatsapp_webhooks_due on whatsapp_webhooks (next_attempt_at, id)
    where processed_at is null;

-- Which conversation a contact of a number has. The primary key is what keeps two
-- deliveries of a new contact's first message from starting two conversations; the row is
-- reserved before the conversation is started, and starting it again is harmless.
create table whatsapp_contacts (
    channel_id      uuid not null references whatsapp_channels (id) on delete cascade,
    wa_id           text not null,
    tenant_id       uuid not null,
    conversation_id uuid not null,
    primary key (channel_id, wa_id)
);

-- Statuses for a wamid we have not sent yet (the webhook overtook the Graph API's answer,
-- or the message was sent from elsewhere): applied when the outbox records that wamid.
create table whatsapp_parked_statuses (
    channel_id  uuid not null references whatsapp_channels (id) on delete cascade,
    wamid       text not null,
    status      text not null,
    at          timestamptz not null,
    error       text,
    received_at timestamptz not null default now(),
    primary key (channel_id, wamid, status)
);

-- The outbox projector's routing table: where each WhatsApp conversation's replies go.
-- A read model: emptied and rebuilt from `WhatsappContactLinked` and `WhatsappMessageLinked`.
create table whatsapp_conversations (
    tenant_id           uuid not null,
    conversation_id     uuid not null,
    channel_id          uuid not null,
    wa_id               text not null,
    -- The contact's newest message, which a read receipt marks read.
    last_incoming_wamid text,
    primary key (tenant_id, conversation_id)
);

-- What must reach the Graph API. Rows are added by the outbox projector in its batch's
-- transaction and sent by the sender after that commit. Not a disposable read model: a
-- rebuild keeps it, and the unique key turns the re-projected rows into no-ops, so nothing
-- is sent twice.
create table whatsapp_outbox (
    id              bigint generated always as identity primary key,
    tenant_id       uuid not null,
    conversation_id uuid not null,
    -- The message id, or `read:<wamid>` for a read receipt.
    message_key     text not null,
    message_id      uuid,
    channel_id      uuid not null,
    kind            text not null check (kind in ('text', 'template', 'read')),
    -- The Graph API request body, `to` included.
    request         jsonb not null,
    state           text not null default 'pending' check (state in ('pending', 'sent', 'failed')),
    attempts        integer not null default 0,
    -- While a sender sends a row it holds the session advisory lock (0x574f, id).
    next_attempt_at timestamptz not null default now(),
    wamid           text,
    -- Why it failed, as the agent sees it.
    error           text,
    -- The outcome (wamid and `sent`, or `failed` and the reason) is in the event store.
    recorded        boolean not null default false,
    created_at      timestamptz not null default now(),
    unique (tenant_id, conversation_id, message_key)
);
create unique index whatsapp_outbox_wamid on whatsapp_outbox (channel_id, wamid)
    where wamid is not null;
create index whatsapp_outbox_due on whatsapp_outbox (next_attempt_at, id)
    where state = 'pending' or not recorded;
