//! Agents' browser sessions, kept server-side in `agent_sessions` (docs/decisions.md, 45).
//!
//! The browser holds the session's secret (32 random bytes in hex) in a cookie; the table
//! holds only its SHA-256, so a copy of the table signs nobody in, and ending a session is
//! deleting its row. A session ends when it has been idle for the configured timeout, or at
//! the latest [`ABSOLUTE_LIFETIME`] after it started, whichever comes first.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::ids::{AgentId, TenantId};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::tenancy::{Principal, Role, hash_token, random_secret};

/// However active a session is, it ends this long after it started: a stolen cookie is not
/// good forever.
pub const ABSOLUTE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// A session's idle deadline is moved forward at most this often, so that a busy console
/// costs one write a minute rather than one per request. The idle timeout is therefore
/// honoured to within this much.
pub const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A session just started: the secret for the cookie, shown once.
#[derive(Debug)]
pub struct NewSession {
    /// The cookie's value.
    pub secret: String,
    /// When it ends unless used.
    pub expires_at: DateTime<Utc>,
}

/// A live session.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    /// Who it signs in; the role is read with the session, so a role change applies at once.
    pub principal: Principal,
    /// When it ends unless used.
    pub expires_at: DateTime<Utc>,
}

/// What a cookie's secret stands for.
#[derive(Debug)]
pub enum Lookup {
    /// A live session.
    Active(Session),
    /// A session that has ended by time; its row is gone now.
    Expired,
    /// No session: never issued, signed out, or ended by a password change.
    Unknown,
}

/// Starts a session for an agent, and drops that agent's sessions that have expired.
pub async fn start(
    executor: impl PgExecutor<'_>,
    tenant: TenantId,
    agent: AgentId,
    idle: Duration,
) -> Result<NewSession, sqlx::Error> {
    let secret = random_secret();
    let expires_at = sqlx::query_scalar(
        "with swept as (delete from agent_sessions where agent_id = $3 and expires_at <= now())
         insert into agent_sessions (token_hash, tenant_id, agent_id, expires_at)
         values ($1, $2, $3, now() + make_interval(secs => least($4, $5)))
         returning expires_at",
    )
    .bind(hash_token(&secret))
    .bind(tenant.as_uuid())
    .bind(agent.as_uuid())
    .bind(idle.as_secs_f64())
    .bind(ABSOLUTE_LIFETIME.as_secs_f64())
    .fetch_one(executor)
    .await?;
    Ok(NewSession { secret, expires_at })
}

/// The session behind a cookie's secret. An expired one is deleted; a live one not seen for
/// [`TOUCH_EVERY`] has its idle deadline moved forward.
pub async fn find(pool: &PgPool, secret: &str, idle: Duration) -> Result<Lookup, sqlx::Error> {
    let hash = hash_token(secret);
    let row: Option<(Uuid, Uuid, Role, DateTime<Utc>, bool, bool)> = sqlx::query_as(
        "select s.tenant_id, s.agent_id, a.role, s.expires_at,
                s.expires_at <= now(), s.last_seen_at <= now() - make_interval(secs => $2)
           from agent_sessions s join agents a on a.id = s.agent_id
          where s.token_hash = $1",
    )
    .bind(&hash)
    .bind(TOUCH_EVERY.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    let Some((tenant, agent, role, mut expires_at, expired, stale)) = row else {
        return Ok(Lookup::Unknown);
    };
    if expired {
        end(pool, secret).await?;
        return Ok(Lookup::Expired);
    }
    if stale {
        expires_at = sqlx::query_scalar(
            "update agent_sessions
                set last_seen_at = now(),
                    expires_at = least(now() + make_interval(secs => $2),
                                       created_at + make_interval(secs => $3))
              where token_hash = $1
          returning expires_at",
        )
        .bind(&hash)
        .bind(idle.as_secs_f64())
        .bind(ABSOLUTE_LIFETIME.as_secs_f64())
        .fetch_optional(pool)
        .await?
        // Signed out between the two statements: the old deadline is as good as any.
        .unwrap_or(expires_at);
    }
    Ok(Lookup::Active(Session {
        principal: Principal {
            tenant_id: tenant.into(),
            agent_id: agent.into(),
            role,
        },
        expires_at,
    }))
}

/// Ends one session: signing out, or an expired session found.
pub async fn end(pool: &PgPool, secret: &str) -> Result<(), sqlx::Error> {
    sqlx::query("delete from agent_sessions where token_hash = $1")
        .bind(hash_token(secret))
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends every session of an agent, as a new password must.
pub async fn end_all(executor: impl PgExecutor<'_>, agent: AgentId) -> Result<(), sqlx::Error> {
    sqlx::query("delete from agent_sessions where agent_id = $1")
        .bind(agent.as_uuid())
        .execute(executor)
        .await?;
    Ok(())
}
