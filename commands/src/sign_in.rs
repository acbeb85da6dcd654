//! Passwords, sign-in and invitations of agents.
//!
//! Passwords are stored as Argon2id PHC strings (`agents.password_hash`) with the `argon2`
//! crate's default parameters; the string carries its parameters and salt, so they can be
//! raised later and old hashes still verify. Hashing is slow on purpose, so it runs on the
//! blocking pool, never on a runtime thread. Invitation tokens, like API tokens and session
//! secrets, are 32 random bytes stored only as their SHA-256.

use std::time::Duration;

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use domain::ids::{AgentId, TenantId};
use domain::text::Password;
use rand::RngCore;
use sqlx::PgPool;
use uuid::Uuid;

use crate::sessions::{self, NewSession};
use crate::tenancy::{self, IDENTITY_COLUMNS, Identity, TenancyError, hash_token, random_secret};

/// How long an invitation can be accepted.
pub const INVITATION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// A hash of a password nobody knows (64 random hex characters, thrown away), with the same
/// parameters as real ones. A sign-in for an address without a password verifies against
/// it, so it takes as long as a wrong password does and its timing does not tell whether the
/// address exists. A constant, so that nothing is hashed at start-up; the test
/// `the_dummy_hash_costs_what_a_real_one_does` keeps its parameters equal to the defaults.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$DWb+YEOVhDAPK11FqXqLAA$PCHjy7CxWx+IIiQUzqkTR4aiVTXCNrc1/HQIZdCjJV0";

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Hashes a password for storage, on the blocking pool.
pub async fn hash_password(password: &Password) -> Result<String, TenancyError> {
    let password = password.as_str().to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .context("the password hashing task failed")??;
    Ok(hash)
}

/// An agent who may be signing in, with its stored hash.
#[derive(sqlx::FromRow)]
struct Candidate {
    #[sqlx(flatten)]
    identity: Identity,
    password_hash: Option<String>,
}

/// The agents whose address is `email` (case-insensitive), in one tenant or in all, oldest
/// tenant first.
async fn candidates(
    pool: &PgPool,
    email: &str,
    tenant: Option<TenantId>,
) -> Result<Vec<Candidate>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {IDENTITY_COLUMNS}, a.password_hash
           from agents a join tenants t on t.id = a.tenant_id
          where lower(a.email) = lower($1) and ($2::uuid is null or a.tenant_id = $2)
          order by t.created_at, t.id"
    ))
    .bind(email.trim())
    .bind(tenant.map(|t| t.as_uuid()))
    .fetch_all(pool)
    .await
}

/// The agents whose address is `email`, in one tenant or in all: whom
/// `upzento agent set-password` may mean.
pub async fn agents_with_email(
    pool: &PgPool,
    email: &str,
    tenant: Option<TenantId>,
) -> Result<Vec<Identity>, sqlx::Error> {
    let found = candidates(pool, email, tenant).await?;
    Ok(found.into_iter().map(|c| c.identity).collect())
}

/// The agents, in one tenant or in all, whose address is `email` and whose password is
/// `password`. Every candidate with a password is verified, and when none has one the dummy
/// hash is, so the time taken does not tell whether the address is known.
pub async fn sign_in(
    pool: &PgPool,
    email: &str,
    password: &str,
    tenant: Option<TenantId>,
) -> Result<Vec<Identity>, TenancyError> {
    let found = candidates(pool, email, tenant).await?;
    let password = password.to_owned();
    let matched = tokio::task::spawn_blocking(move || {
        let with_hash: Vec<(Identity, String)> = found
            .into_iter()
            .filter_map(|c| c.password_hash.map(|hash| (c.identity, hash)))
            .collect();
        if with_hash.is_empty() {
            verify_blocking(&password, DUMMY_HASH);
        }
        with_hash
            .into_iter()
            .filter(|(_, hash)| verify_blocking(&password, hash))
            .map(|(identity, _)| identity)
            .collect()
    })
    .await
    .context("the password verification task failed")?;
    Ok(matched)
}

/// Sets an agent's password and ends its sessions, in one transaction: whoever signed in
/// with the old password is signed out.
pub async fn set_password(
    pool: &PgPool,
    tenant: TenantId,
    agent: AgentId,
    password: &Password,
) -> Result<(), TenancyError> {
    let hash = hash_password(password).await?;
    let mut tx = pool.begin().await?;
    let updated =
        sqlx::query("update agents set password_hash = $3 where tenant_id = $1 and id = $2")
            .bind(tenant.as_uuid())
            .bind(agent.as_uuid())
            .bind(hash)
            .execute(&mut *tx)
            .await?;
    if updated.rows_affected() == 0 {
        return Err(TenancyError::NoSuchAgent);
    }
    sessions::end_all(&mut *tx, agent).await?;
    tx.commit().await?;
    Ok(())
}

/// A new invitation: the token, shown once, and when it stops working.
#[derive(Debug)]
pub struct Invitation {
    /// The token for the invitation link.
    pub token: String,
    /// When it can no longer be accepted.
    pub expires_at: DateTime<Utc>,
}

/// Invites an agent of the tenant to set a password; a previous invitation of the agent
/// stops working.
pub async fn invite(
    pool: &PgPool,
    tenant: TenantId,
    agent: AgentId,
) -> Result<Invitation, TenancyError> {
    let token = random_secret();
    let expires_at: Option<DateTime<Utc>> = sqlx::query_scalar(
        "insert into agent_invitations (agent_id, tenant_id, token_hash, expires_at)
         select id, tenant_id, $3, now() + make_interval(secs => $4)
           from agents where tenant_id = $1 and id = $2
         on conflict (agent_id) do update
            set token_hash = excluded.token_hash, created_at = now(),
                expires_at = excluded.expires_at
         returning expires_at",
    )
    .bind(tenant.as_uuid())
    .bind(agent.as_uuid())
    .bind(hash_token(&token))
    .bind(INVITATION_LIFETIME.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    let expires_at = expires_at.ok_or(TenancyError::NoSuchAgent)?;
    Ok(Invitation { token, expires_at })
}

/// Accepts an invitation: consumes it, sets the password, ends the agent's other sessions
/// and starts one, all in one transaction. An unknown, used or expired token is refused
/// with [`TenancyError::InvitationNotFound`]; an expired one is deleted all the same.
pub async fn accept_invitation(
    pool: &PgPool,
    token: &str,
    password: &Password,
    idle: Duration,
) -> Result<(Identity, NewSession), TenancyError> {
    let hash = hash_password(password).await?;
    let mut tx = pool.begin().await?;
    let invited: Option<(Uuid, Uuid, bool)> = sqlx::query_as(
        "delete from agent_invitations where token_hash = $1
         returning tenant_id, agent_id, expires_at > now()",
    )
    .bind(hash_token(token))
    .fetch_optional(&mut *tx)
    .await?;
    let (tenant, agent) = match invited {
        Some((tenant, agent, true)) => (TenantId::from(tenant), AgentId::from(agent)),
        Some((_, _, false)) => {
            tx.commit().await?;
            return Err(TenancyError::InvitationNotFound);
        }
        None => return Err(TenancyError::InvitationNotFound),
    };
    sqlx::query("update agents set password_hash = $2 where id = $1")
        .bind(agent.as_uuid())
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    sessions::end_all(&mut *tx, agent).await?;
    let session = sessions::start(&mut *tx, tenant, agent, idle).await?;
    tx.commit().await?;
    let identity = tenancy::identity(pool, tenant, agent)
        .await?
        .ok_or(TenancyError::NoSuchAgent)?;
    Ok((identity, session))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let dummy = PasswordHash::new(DUMMY_HASH).expect("the dummy hash is a PHC string");
        let real_hash = hash_blocking("a password of an agent").unwrap();
        let real = PasswordHash::new(&real_hash).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert_eq!(dummy.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
        assert!(!verify_blocking("a password of an agent", DUMMY_HASH));
    }
}
