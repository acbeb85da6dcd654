//! Tenants, agents, API tokens and teams. Plain tables: account administration, not the
//! history auditors replay.
//!
//! Tokens are 32 random bytes, shown once as `upz_` + hex and stored only as their SHA-256.

use domain::ids::{AgentId, TeamId, TenantId};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// What an agent may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Role {
    /// Manages agents, teams, widgets and domains, and does everything an agent does.
    Admin,
    /// Answers conversations.
    Agent,
    /// Reads conversation histories, past states and the event feed of its tenant, and
    /// changes nothing: the role for compliance reviews and analytics jobs.
    Auditor,
}

/// An agent as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Agent {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Sign-in address.
    pub email: String,
    /// Role.
    pub role: Role,
    /// When the agent was added.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Whether the agent can sign in with a password: an agent without one was invited, or
    /// works with an API token only.
    pub has_password: bool,
}

/// An agent and its tenant: who a session or a sign-in stands for.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Identity {
    /// The agent.
    #[sqlx(flatten)]
    pub agent: Agent,
    /// Its tenant's id.
    pub tenant_id: Uuid,
    /// Its tenant's name.
    pub tenant_name: String,
}

impl Identity {
    /// The principal the agent acts as.
    pub fn principal(&self) -> Principal {
        Principal {
            tenant_id: self.tenant_id.into(),
            agent_id: self.agent.id.into(),
            role: self.agent.role,
        }
    }
}

/// The columns of [`Identity`], for `select … from agents a join tenants t`.
pub(crate) const IDENTITY_COLUMNS: &str = "a.id, a.name, a.email, a.role, a.created_at,
     a.password_hash is not null as has_password, t.id as tenant_id, t.name as tenant_name";

/// A team as the API shows it, with its members.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Team {
    /// Id.
    pub id: Uuid,
    /// Name, unique in the tenant.
    pub name: String,
    /// Member agent ids.
    pub member_ids: Vec<Uuid>,
    /// When the team was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Who a valid token belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Principal {
    /// The tenant: the only source of the tenant for everything the request does.
    pub tenant_id: TenantId,
    /// The agent acting.
    pub agent_id: AgentId,
    /// What the agent may do.
    pub role: Role,
}

/// Why an account change was refused.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    /// 409: the e-mail address is taken in this tenant.
    #[error("an agent with this e-mail address already exists")]
    EmailTaken,
    /// 409: the team name is taken in this tenant.
    #[error("a team with this name already exists")]
    TeamNameTaken,
    /// 404: no such team in this tenant.
    #[error("team not found")]
    TeamNotFound,
    /// 422: no such agent in this tenant (an id in a request body).
    #[error("agent not found")]
    AgentNotFound,
    /// 404: the agent in the path is not an agent of this tenant.
    #[error("agent not found")]
    NoSuchAgent,
    /// 409: the change would leave the tenant without an admin.
    #[error("the tenant's last admin cannot be demoted; make another agent admin first")]
    LastAdmin,
    /// 404: the invitation token is unknown, used or expired.
    #[error("this invitation is unknown, used or expired; ask an admin for a new one")]
    InvitationNotFound,
    /// Password hashing failed: not expected with valid parameters.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A new token, to show once.
fn new_token() -> (String, Vec<u8>) {
    let token = format!("upz_{}", random_secret());
    let hash = hash_token(&token);
    (token, hash)
}

/// 32 random bytes in hex: API tokens, session cookies and invitation tokens.
pub(crate) fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What is stored of a random secret: its SHA-256. The secrets are 256-bit random values, so
/// a fast hash is enough, and a request finds its row by an index lookup.
pub(crate) fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub(crate) fn constraint_is(error: &sqlx::Error, name: &str) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.constraint() == Some(name))
}

/// What creating a tenant made.
#[derive(Debug, Serialize)]
pub struct NewTenant {
    /// The tenant.
    pub tenant_id: Uuid,
    /// Its first admin.
    pub admin_id: Uuid,
    /// The admin's API token; shown once, never stored.
    pub admin_token: String,
}

/// Creates a tenant with its first admin and the admin's token.
pub async fn create_tenant(
    pool: &PgPool,
    name: &str,
    admin_email: &str,
) -> Result<NewTenant, TenancyError> {
    let tenant_id = TenantId::new();
    let mut tx = pool.begin().await?;
    sqlx::query("insert into tenants (id, name) values ($1, $2)")
        .bind(tenant_id.as_uuid())
        .bind(name)
        .execute(&mut *tx)
        .await?;
    let (agent, token) = insert_agent(
        &mut tx,
        tenant_id,
        "Administrator",
        admin_email,
        Role::Admin,
    )
    .await?;
    tx.commit().await?;
    Ok(NewTenant {
        tenant_id: tenant_id.as_uuid(),
        admin_id: agent.id,
        admin_token: token,
    })
}

/// Adds an agent with a fresh token, shown once.
pub async fn create_agent(
    pool: &PgPool,
    tenant: TenantId,
    name: &str,
    email: &str,
    role: Role,
) -> Result<(Agent, String), TenancyError> {
    let mut tx = pool.begin().await?;
    let created = insert_agent(&mut tx, tenant, name, email, role).await?;
    tx.commit().await?;
    Ok(created)
}

async fn insert_agent(
    tx: &mut Transaction<'_, Postgres>,
    tenant: TenantId,
    name: &str,
    email: &str,
    role: Role,
) -> Result<(Agent, String), TenancyError> {
    let agent: Agent = sqlx::query_as(
        "insert into agents (id, tenant_id, name, email, role) values ($1, $2, $3, $4, $5)
         returning id, name, email, role, created_at, false as has_password",
    )
    .bind(AgentId::new().as_uuid())
    .bind(tenant.as_uuid())
    .bind(name)
    .bind(email)
    .bind(role)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| match constraint_is(&e, "agents_tenant_email") {
        true => TenancyError::EmailTaken,
        false => TenancyError::Database(e),
    })?;
    let (token, hash) = new_token();
    sqlx::query("insert into api_tokens (token_hash, agent_id, tenant_id) values ($1, $2, $3)")
        .bind(hash)
        .bind(agent.id)
        .bind(tenant.as_uuid())
        .execute(&mut **tx)
        .await?;
    Ok((agent, token))
}

/// The principal a bearer token stands for, if it is a token we issued.
pub async fn authenticate(pool: &PgPool, token: &str) -> Result<Option<Principal>, sqlx::Error> {
    let row: Option<(Uuid, Uuid, Role)> = sqlx::query_as(
        "select a.tenant_id, a.id, a.role from api_tokens t join agents a on a.id = t.agent_id
          where t.token_hash = $1",
    )
    .bind(hash_token(token))
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(tenant, agent, role)| Principal {
        tenant_id: tenant.into(),
        agent_id: agent.into(),
        role,
    }))
}

/// Recent token lookups, kept for a few seconds: every request authenticates, and the lookup
/// is a round trip that would otherwise precede every command. Only tokens that were valid are
/// kept, so an unknown token always goes to the database; a token's agent or role change is
/// seen within `ttl`.
pub struct TokenCache {
    ttl: std::time::Duration,
    entries: std::sync::Mutex<std::collections::HashMap<Vec<u8>, (Principal, std::time::Instant)>>,
}

impl TokenCache {
    /// Tokens remembered at most this many at once; the cache is emptied when it is full.
    const CAPACITY: usize = 10_000;

    /// A cache that keeps a lookup for `ttl`.
    pub fn new(ttl: std::time::Duration) -> Self {
        Self {
            ttl,
            entries: Default::default(),
        }
    }

    /// Like [`authenticate`], answered from memory when the token was seen within `ttl`.
    pub async fn authenticate(
        &self,
        pool: &PgPool,
        token: &str,
    ) -> Result<Option<Principal>, sqlx::Error> {
        let hash = hash_token(token);
        let cached = self
            .entries
            .lock()
            .expect("the token cache lock is never poisoned")
            .get(&hash)
            .filter(|(_, seen)| seen.elapsed() < self.ttl)
            .map(|(principal, _)| *principal);
        if cached.is_some() {
            return Ok(cached);
        }
        let principal = authenticate(pool, token).await?;
        if let Some(principal) = principal {
            let mut entries = self
                .entries
                .lock()
                .expect("the token cache lock is never poisoned");
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
            entries.insert(hash, (principal, std::time::Instant::now()));
        }
        Ok(principal)
    }
}

/// The columns of [`Agent`], for `select … from agents`.
const AGENT_COLUMNS: &str =
    "id, name, email, role, created_at, password_hash is not null as has_password";

/// The tenant's agents, oldest first.
pub async fn list_agents(pool: &PgPool, tenant: TenantId) -> Result<Vec<Agent>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {AGENT_COLUMNS} from agents where tenant_id = $1 order by created_at, id"
    ))
    .bind(tenant.as_uuid())
    .fetch_all(pool)
    .await
}

/// An agent of the tenant and the tenant itself, if the agent is one of the tenant's.
pub async fn identity(
    pool: &PgPool,
    tenant: TenantId,
    agent: AgentId,
) -> Result<Option<Identity>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {IDENTITY_COLUMNS} from agents a join tenants t on t.id = a.tenant_id
          where a.tenant_id = $1 and a.id = $2"
    ))
    .bind(tenant.as_uuid())
    .bind(agent.as_uuid())
    .fetch_optional(pool)
    .await
}

/// What an admin may change of an agent; `None` keeps the value.
#[derive(Debug, Default)]
pub struct AgentChanges<'a> {
    /// New role.
    pub role: Option<Role>,
    /// New display name.
    pub name: Option<&'a str>,
}

/// Changes an agent's role or name. The tenant's admins are locked first, so two admins
/// demoting each other at once cannot leave the tenant without one: the second sees the
/// first's change and is refused with [`TenancyError::LastAdmin`].
pub async fn update_agent(
    pool: &PgPool,
    tenant: TenantId,
    agent: AgentId,
    changes: AgentChanges<'_>,
) -> Result<Agent, TenancyError> {
    let mut tx = pool.begin().await?;
    let admins: Vec<Uuid> = sqlx::query_scalar(
        "select id from agents where tenant_id = $1 and role = 'admin' order by id for update",
    )
    .bind(tenant.as_uuid())
    .fetch_all(&mut *tx)
    .await?;
    let demoted = changes.role.is_some_and(|role| role != Role::Admin);
    if demoted && admins == [agent.as_uuid()] {
        return Err(TenancyError::LastAdmin);
    }
    let updated: Option<Agent> = sqlx::query_as(&format!(
        "update agents set role = coalesce($3, role), name = coalesce($4, name)
          where tenant_id = $1 and id = $2 returning {AGENT_COLUMNS}"
    ))
    .bind(tenant.as_uuid())
    .bind(agent.as_uuid())
    .bind(changes.role)
    .bind(changes.name)
    .fetch_optional(&mut *tx)
    .await?;
    let updated = updated.ok_or(TenancyError::NoSuchAgent)?;
    tx.commit().await?;
    Ok(updated)
}

/// True when `id` is a row of `table` (`agents` or `teams`) in `tenant`.
async fn exists_in(
    pool: &PgPool,
    table: &str,
    tenant: TenantId,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "select exists (select 1 from {table} where tenant_id = $1 and id = $2)"
    ))
    .bind(tenant.as_uuid())
    .bind(id)
    .fetch_one(pool)
    .await
}

/// True when `agent` is an agent of `tenant`.
pub async fn agent_exists(
    pool: &PgPool,
    tenant: TenantId,
    agent: AgentId,
) -> Result<bool, sqlx::Error> {
    exists_in(pool, "agents", tenant, agent.as_uuid()).await
}

/// True when `team` is a team of `tenant`.
pub async fn team_exists(
    pool: &PgPool,
    tenant: TenantId,
    team: TeamId,
) -> Result<bool, sqlx::Error> {
    exists_in(pool, "teams", tenant, team.as_uuid()).await
}

/// Creates a team.
pub async fn create_team(
    pool: &PgPool,
    tenant: TenantId,
    name: &str,
) -> Result<Team, TenancyError> {
    sqlx::query_as(
        "insert into teams (id, tenant_id, name) values ($1, $2, $3)
         returning id, name, '{}'::uuid[] as member_ids, created_at",
    )
    .bind(TeamId::new().as_uuid())
    .bind(tenant.as_uuid())
    .bind(name)
    .fetch_one(pool)
    .await
    .map_err(|e| match constraint_is(&e, "teams_tenant_name") {
        true => TenancyError::TeamNameTaken,
        false => TenancyError::Database(e),
    })
}

/// Adds an agent of the tenant to a team of the tenant; adding a member twice is harmless.
pub async fn add_team_member(
    pool: &PgPool,
    tenant: TenantId,
    team: TeamId,
    agent: AgentId,
) -> Result<Team, TenancyError> {
    let add = "insert into team_members (team_id, agent_id) values ($1, $2) on conflict do nothing";
    change_members(pool, (tenant, team, agent), add, true).await
}

/// Takes an agent off a team of the tenant; removing a non-member is harmless.
pub async fn remove_team_member(
    pool: &PgPool,
    tenant: TenantId,
    team: TeamId,
    agent: AgentId,
) -> Result<Team, TenancyError> {
    let remove = "delete from team_members where team_id = $1 and agent_id = $2";
    change_members(pool, (tenant, team, agent), remove, false).await
}

/// Runs `statement` (`$1` the team, `$2` the agent) on a team of the tenant and answers the
/// team; the agent must belong to the tenant when `agent_must_exist`.
async fn change_members(
    pool: &PgPool,
    (tenant, team, agent): (TenantId, TeamId, AgentId),
    statement: &str,
    agent_must_exist: bool,
) -> Result<Team, TenancyError> {
    if !team_exists(pool, tenant, team).await? {
        return Err(TenancyError::TeamNotFound);
    }
    if agent_must_exist && !agent_exists(pool, tenant, agent).await? {
        return Err(TenancyError::AgentNotFound);
    }
    sqlx::query(statement)
        .bind(team.as_uuid())
        .bind(agent.as_uuid())
        .execute(pool)
        .await?;
    team_of(pool, tenant, team).await
}

/// One team of the tenant with its members.
async fn team_of(pool: &PgPool, tenant: TenantId, team: TeamId) -> Result<Team, TenancyError> {
    let teams = list_teams(pool, tenant).await?;
    teams
        .into_iter()
        .find(|t| t.id == team.as_uuid())
        .ok_or(TenancyError::TeamNotFound)
}

/// The tenant's teams with their members, oldest first.
pub async fn list_teams(pool: &PgPool, tenant: TenantId) -> Result<Vec<Team>, sqlx::Error> {
    sqlx::query_as(
        "select t.id, t.name, t.created_at,
                coalesce(array_agg(m.agent_id order by m.added_at) filter (where m.agent_id is not null),
                         '{}') as member_ids
           from teams t left join team_members m on m.team_id = t.id
          where t.tenant_id = $1
          group by t.id
          order by t.created_at, t.id",
    )
    .bind(tenant.as_uuid())
    .fetch_all(pool)
    .await
}
