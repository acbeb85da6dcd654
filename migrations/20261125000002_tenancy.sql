-- Tenants, agents, API tokens and teams: plain tables, not event-sourced, because they are
-- account administration rather than the conversation history auditors replay.
create table tenants (
    id         uuid primary key,
    name       text not null,
    created_at timestamptz not null default now()
);

create table agents (
    id         uuid primary key,
    tenant_id  uuid not null references tenants (id) on delete cascade,
    name       text not null,
    -- Stored as given, compared lower-cased: one address is one agent per tenant.
    email      text not null,
    role       text not null check (role in ('admin', 'agent')),
    created_at timestamptz not null default now()
);
create unique index agents_tenant_email on agents (tenant_id, lower(email));
create index agents_tenant on agents (tenant_id, created_at);

-- Tokens are shown once and stored as their SHA-256: they are 256-bit random values, so a
-- fast hash is enough and lets a request find its token by an index lookup.
create table api_tokens (
    token_hash bytea primary key,
    agent_id   uuid not null references agents (id) on delete cascade,
    tenant_id  uuid not null references tenants (id) on delete cascade,
    created_at timestamptz not null default now()
);

create table teams (
    id         uuid primary key,
    tenant_id  uuid not null references tenants (id) on delete cascade,
    name       text not null,
    created_at timestamptz not null default now()
);
create unique index teams_tenant_name on teams (tenant_id, lower(name));

create table team_members (
    team_id  uuid not null references teams (id) on delete cascade,
    agent_id uuid not null references agents (id) on delete cascade,
    added_at timestamptz not null default now(),
    primary key (team_id, agent_id)
);
