-- Issue 9: agents sign in to the console with a password; a browser session is a cookie.

-- An Argon2id PHC string (the parameters and salt travel with it, so they can be raised
-- later without a migration). Null until the agent accepts an invitation or an admin, or
-- `upzento agent set-password`, sets one: API tokens keep working without it.
alter table agents add column password_hash text;

-- Sign-in looks an address up across tenants (the tenant is not known yet); the unique
-- index `agents_tenant_email` leads with the tenant and cannot serve that.
create index agents_email on agents (lower(email));

-- Browser sessions. The cookie holds 32 random bytes; only their SHA-256 is stored, as for
-- API tokens, so a copy of this table signs nobody in. `expires_at` is the earlier of the
-- idle deadline (moved forward at most once a minute) and `created_at` plus the absolute
-- lifetime.
create table agent_sessions (
    token_hash   bytea primary key,
    tenant_id    uuid not null references tenants (id) on delete cascade,
    agent_id     uuid not null references agents (id) on delete cascade,
    created_at   timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    expires_at   timestamptz not null
);
-- Ending every session of one agent (a new password), and dropping its expired ones when it
-- signs in again.
create index agent_sessions_agent on agent_sessions (agent_id);

-- Invitations: one live invitation per agent (a new one replaces it), stored hashed.
create table agent_invitations (
    agent_id   uuid primary key references agents (id) on delete cascade,
    tenant_id  uuid not null references tenants (id) on delete cascade,
    token_hash bytea not null unique,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null
);
