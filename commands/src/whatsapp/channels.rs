//! The `whatsapp_channels` table: a tenant's WhatsApp numbers and their credentials.
//!
//! The access token and app secret are sealed with the server's secrets key before they
//! are written and are only opened where they are used (sending, checking a signature);
//! nothing here returns them to an API caller or logs them. The verify token is kept as its
//! SHA-256, since it is only ever compared.

use domain::ids::{ChannelId, TenantId};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq;

use super::secrets::{SecretBox, Unreadable};

/// What an admin registers.
pub struct NewChannel<'a> {
    /// A name for the team, e.g. "Support DE".
    pub name: &'a str,
    /// Meta's phone number id.
    pub phone_number_id: &'a str,
    /// Meta's WhatsApp Business Account id.
    pub business_account_id: &'a str,
    /// The system user's access token for the Graph API.
    pub access_token: &'a str,
    /// The Meta app's secret, which signs webhooks.
    pub app_secret: &'a str,
    /// The token Meta echoes in the webhook verification handshake.
    pub verify_token: &'a str,
}

/// A channel as the API shows it: no secret in it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Channel {
    /// The channel id; the webhook URL ends with it.
    pub id: uuid::Uuid,
    /// Its name.
    pub name: String,
    /// Meta's phone number id.
    pub phone_number_id: String,
    /// Meta's WhatsApp Business Account id.
    pub business_account_id: String,
    /// When it was registered.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// What the webhook and the sender need of a channel, secrets opened.
pub struct ChannelKeys {
    /// The owner.
    pub tenant_id: TenantId,
    /// Meta's phone number id: changes naming another number are not this channel's.
    pub phone_number_id: String,
    /// Checks webhook signatures.
    pub app_secret: String,
    /// Authorizes Graph API calls.
    pub access_token: String,
    verify_token_sha256: Vec<u8>,
}

impl ChannelKeys {
    /// True when `token` is the channel's verify token (compared as digests, in constant time).
    pub fn verify_token_matches(&self, token: &str) -> bool {
        Sha256::digest(token.as_bytes())
            .as_slice()
            .ct_eq(&self.verify_token_sha256)
            .into()
    }
}

/// Why a channel could not be registered or read.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// 409: the phone number id is registered already (by this tenant or another).
    #[error("this phone number id is already registered")]
    PhoneNumberTaken,
    /// 500: a stored secret does not open with the configured key.
    #[error(transparent)]
    Unreadable(#[from] Unreadable),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn context(id: ChannelId, column: &str) -> String {
    format!("whatsapp_channels/{id}/{column}")
}

/// Registers a channel for `tenant`.
pub async fn create(
    pool: &PgPool,
    secrets: &SecretBox,
    tenant: TenantId,
    new: &NewChannel<'_>,
) -> Result<Channel, ChannelError> {
    let id = ChannelId::new();
    let access_token = secrets.seal(new.access_token, &context(id, "access_token"));
    let app_secret = secrets.seal(new.app_secret, &context(id, "app_secret"));
    let verify = Sha256::digest(new.verify_token.as_bytes()).to_vec();
    sqlx::query_as(
        "insert into whatsapp_channels
             (id, tenant_id, name, phone_number_id, business_account_id,
              access_token, app_secret, verify_token_sha256)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         returning id, name, phone_number_id, business_account_id, created_at",
    )
    .bind(id.as_uuid())
    .bind(tenant.as_uuid())
    .bind(new.name)
    .bind(new.phone_number_id)
    .bind(new.business_account_id)
    .bind(access_token)
    .bind(app_secret)
    .bind(verify)
    .fetch_one(pool)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db)
            if db.constraint() == Some("whatsapp_channels_phone_number_id_key") =>
        {
            ChannelError::PhoneNumberTaken
        }
        _ => ChannelError::Database(e),
    })
}

/// The tenant's channels, oldest first.
pub async fn list(pool: &PgPool, tenant: TenantId) -> Result<Vec<Channel>, sqlx::Error> {
    sqlx::query_as(
        "select id, name, phone_number_id, business_account_id, created_at
           from whatsapp_channels where tenant_id = $1 order by created_at, id",
    )
    .bind(tenant.as_uuid())
    .fetch_all(pool)
    .await
}

/// One of the tenant's channels; `None` for another tenant's or an unknown id.
pub async fn get(
    pool: &PgPool,
    tenant: TenantId,
    id: ChannelId,
) -> Result<Option<Channel>, sqlx::Error> {
    sqlx::query_as(
        "select id, name, phone_number_id, business_account_id, created_at
           from whatsapp_channels where tenant_id = $1 and id = $2",
    )
    .bind(tenant.as_uuid())
    .bind(id.as_uuid())
    .fetch_optional(pool)
    .await
}

/// Removes one of the tenant's channels, with its pending webhooks and contact reservations;
/// answers whether there was one. Its conversations stay in the inbox.
pub async fn delete(pool: &PgPool, tenant: TenantId, id: ChannelId) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("delete from whatsapp_channels where tenant_id = $1 and id = $2")
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// A channel's keys as stored, still sealed.
#[derive(sqlx::FromRow)]
struct SealedKeys {
    tenant_id: uuid::Uuid,
    phone_number_id: String,
    app_secret: Vec<u8>,
    access_token: Vec<u8>,
    verify_token_sha256: Vec<u8>,
}

/// A channel's keys by its id alone: the webhook URL carries nothing else, and Meta has no
/// bearer token. `None` for an unknown id.
pub async fn keys(
    pool: &PgPool,
    secrets: &SecretBox,
    id: ChannelId,
) -> Result<Option<ChannelKeys>, ChannelError> {
    let row: Option<SealedKeys> = sqlx::query_as(
        "select tenant_id, phone_number_id, app_secret, access_token, verify_token_sha256
           from whatsapp_channels where id = $1",
    )
    .bind(id.as_uuid())
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(ChannelKeys {
        tenant_id: row.tenant_id.into(),
        phone_number_id: row.phone_number_id,
        app_secret: secrets.open(&row.app_secret, &context(id, "app_secret"))?,
        access_token: secrets.open(&row.access_token, &context(id, "access_token"))?,
        verify_token_sha256: row.verify_token_sha256,
    }))
}
