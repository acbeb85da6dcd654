//! `upzento agent set-password`: an operator sets an agent's password from the machine, for
//! the first admin of a tenant (who has no one to invite them) or when no admin can sign in.

use std::io::BufRead;

use anyhow::{Context, bail};
use commands::sign_in;
use domain::ids::TenantId;
use domain::text::Password;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// The environment variable a password may come from instead of standard input.
pub const PASSWORD_ENV: &str = "UPZENTO_PASSWORD";

/// Whose password was set: the line the command prints.
#[derive(Debug, Serialize)]
pub struct PasswordSet {
    /// The agent.
    pub agent_id: Uuid,
    /// Its tenant.
    pub tenant_id: Uuid,
    /// Its address.
    pub email: String,
}

/// The new password: `UPZENTO_PASSWORD` when set, else the first line of standard input
/// (without its line ending), checked like the API checks it.
pub fn read_password() -> anyhow::Result<Password> {
    let raw = match std::env::var(PASSWORD_ENV) {
        Ok(password) => password,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("could not read the password from standard input")?;
            line.trim_end_matches(['\n', '\r']).to_owned()
        }
    };
    Password::parse(&raw).context("the password")
}

/// Sets the password of the one agent with this address (in `tenant`, when given) and ends
/// its sessions. Several tenants with such an agent and no `tenant` is an error that names
/// them, so the operator can choose.
pub async fn run(
    pool: &PgPool,
    email: &str,
    tenant: Option<TenantId>,
    password: &Password,
) -> anyhow::Result<PasswordSet> {
    let found = sign_in::agents_with_email(pool, email, tenant).await?;
    let agent = match found.as_slice() {
        [] => bail!(
            "no agent has the address {email}{}",
            match tenant {
                Some(tenant) => format!(" in tenant {tenant}"),
                None => String::new(),
            }
        ),
        [one] => one,
        several => bail!(
            "agents with the address {email} exist in several tenants; choose one with --tenant: {}",
            several
                .iter()
                .map(|a| format!("{} ({})", a.tenant_id, a.tenant_name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    sign_in::set_password(
        pool,
        agent.tenant_id.into(),
        agent.agent.id.into(),
        password,
    )
    .await?;
    Ok(PasswordSet {
        agent_id: agent.agent.id,
        tenant_id: agent.tenant_id,
        email: agent.agent.email.clone(),
    })
}
