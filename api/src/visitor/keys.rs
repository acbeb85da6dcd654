//! The keys the website channel signs with: visitor tokens, and each widget's secret for
//! identity verification.
//!
//! A visitor token is `base64url(claims) "." base64url(HMAC-SHA256(claims))`. It is the
//! visitor's only credential: it names the tenant, the widget and the visitor, so nothing a
//! visitor sends can point a request at another tenant or another visitor's conversation.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use domain::ids::{ConversationId, TenantId, WidgetId};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::PgPool;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// How long a visitor token lasts; the widget renews it at every page load.
pub const VISITOR_TOKEN_LIFETIME: Duration = Duration::days(30);

/// Namespace of the conversation ids derived from visitors (a UUIDv5 namespace).
const CONVERSATION_NAMESPACE: Uuid = Uuid::from_u128(0x6a0f_1d1e_5b7c_4c1a_9d55_2f0e_8b3a_7c41);

/// Who a visitor is, as far as this service can tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum VisitorIdentity {
    /// A browser, known by the random id it keeps in `localStorage`.
    Anonymous(Uuid),
    /// A user of the tenant's own site, proven by the identity hash: the same on every device.
    User(String),
}

/// What a visitor token asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorClaims {
    /// The widget's tenant.
    pub tenant: TenantId,
    /// The widget the session was started through.
    pub widget: WidgetId,
    /// The visitor.
    pub visitor: VisitorIdentity,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

impl VisitorClaims {
    /// Claims for `visitor` on `widget`, valid from `now` for the token lifetime.
    pub fn new(
        tenant: TenantId,
        widget: WidgetId,
        visitor: VisitorIdentity,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            tenant,
            widget,
            visitor,
            exp: (now + VISITOR_TOKEN_LIFETIME).timestamp(),
        }
    }

    /// The visitor's one conversation on this widget. Derived, not stored: two first
    /// messages racing each other start the same conversation, and one of them wins.
    pub fn conversation_id(&self) -> ConversationId {
        let name = match &self.visitor {
            VisitorIdentity::Anonymous(id) => {
                format!("{}/{}/anonymous/{id}", self.tenant, self.widget)
            }
            VisitorIdentity::User(id) => format!("{}/{}/user/{id}", self.tenant, self.widget),
        };
        Uuid::new_v5(&CONVERSATION_NAMESPACE, name.as_bytes()).into()
    }

    /// How the visitor appears as an actor in event metadata.
    pub fn actor_id(&self) -> String {
        match &self.visitor {
            VisitorIdentity::Anonymous(id) => id.to_string(),
            VisitorIdentity::User(id) => format!("user:{id}"),
        }
    }
}

/// The keys, read from the database on first use: the server starts (and answers 503)
/// while PostgreSQL is away, like every other part.
pub struct KeyRing {
    pool: PgPool,
    keys: tokio::sync::OnceCell<Keys>,
}

impl KeyRing {
    /// A ring that reads the keys from `pool` when first asked.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            keys: tokio::sync::OnceCell::new(),
        }
    }

    /// The keys, read (or made) on first use.
    pub async fn get(&self) -> Result<&Keys, sqlx::Error> {
        self.keys.get_or_try_init(|| Keys::load(&self.pool)).await
    }
}

/// The service's signing keys, shared by every instance through the database.
#[derive(Clone)]
pub struct Keys {
    visitor: Vec<u8>,
    identity: Vec<u8>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

async fn key(pool: &PgPool, name: &str) -> Result<Vec<u8>, sqlx::Error> {
    let mut fresh = [0u8; 32];
    rand::rng().fill_bytes(&mut fresh);
    // Whoever inserts first wins; everyone reads the winner.
    sqlx::query("insert into signing_keys (name, key) values ($1, $2) on conflict do nothing")
        .bind(name)
        .bind(&fresh[..])
        .execute(pool)
        .await?;
    sqlx::query_scalar("select key from signing_keys where name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
}

fn mac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length")
}

impl Keys {
    /// Reads the keys, making them on the first start.
    pub async fn load(pool: &PgPool) -> Result<Self, sqlx::Error> {
        Ok(Self {
            visitor: key(pool, "visitor").await?,
            identity: key(pool, "identity").await?,
        })
    }

    /// Signs `claims` into a token.
    pub fn sign(&self, claims: &VisitorClaims) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let mut signer = mac(&self.visitor);
        signer.update(body.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(signer.finalize().into_bytes());
        format!("{body}.{signature}")
    }

    /// The claims of a token this service signed and that has not expired; `None` for
    /// anything else. The signature is compared in constant time.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<VisitorClaims> {
        let (body, signature) = token.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut verifier = mac(&self.visitor);
        verifier.update(body.as_bytes());
        verifier.verify_slice(&signature).ok()?;
        let claims: VisitorClaims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        (claims.exp > now.timestamp()).then_some(claims)
    }

    /// The widget's identity-verification secret, shown to its admins: the tenant's server
    /// computes `hex(HMAC-SHA256(secret, user_id))` for a logged-in user. Derived from the
    /// service key and the widget id, so there is nothing more to store or leak.
    pub fn identity_secret(&self, widget: WidgetId) -> String {
        let mut secret = mac(&self.identity);
        secret.update(widget.as_uuid().as_bytes());
        hex::encode(secret.finalize().into_bytes())
    }

    /// True when `hash` is the identity hash of `user_id` under the widget's secret,
    /// compared in constant time.
    pub fn identity_matches(&self, widget: WidgetId, user_id: &str, hash: &str) -> bool {
        let Ok(hash) = hex::decode(hash.trim()) else {
            return false;
        };
        let mut expected = mac(self.identity_secret(widget).as_bytes());
        expected.update(user_id.as_bytes());
        expected.verify_slice(&hash).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys {
            visitor: vec![7; 32],
            identity: vec![9; 32],
        }
    }

    fn claims(now: DateTime<Utc>) -> VisitorClaims {
        VisitorClaims::new(
            TenantId::new(),
            WidgetId::new(),
            VisitorIdentity::Anonymous(Uuid::new_v4()),
            now,
        )
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let now = Utc::now();
        let claims = claims(now);
        let token = keys().sign(&claims);
        assert_eq!(keys().verify(&token, now), Some(claims));
        assert_eq!(keys().verify(&token, now + VISITOR_TOKEN_LIFETIME), None);
    }

    #[test]
    fn a_token_changed_in_any_way_is_refused() {
        let now = Utc::now();
        let token = keys().sign(&claims(now));
        let (body, signature) = token.split_once('.').unwrap();
        let mut other = claims(now);
        other.visitor = VisitorIdentity::User("ceo".into());
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        assert_eq!(
            keys().verify(&format!("{forged_body}.{signature}"), now),
            None
        );
        assert_eq!(keys().verify(&format!("{body}.AAAA"), now), None);
        assert_eq!(keys().verify(body, now), None);
        let other_keys = Keys {
            visitor: vec![8; 32],
            identity: vec![9; 32],
        };
        assert_eq!(other_keys.verify(&token, now), None);
    }

    #[test]
    fn the_identity_hash_is_the_hmac_of_the_user_id_under_the_widget_secret() {
        let widget = WidgetId::new();
        let secret = keys().identity_secret(widget);
        let mut mac = mac(secret.as_bytes());
        mac.update(b"user-42");
        let hash = hex::encode(mac.finalize().into_bytes());
        assert!(keys().identity_matches(widget, "user-42", &hash));
        assert!(!keys().identity_matches(widget, "user-43", &hash));
        assert!(!keys().identity_matches(WidgetId::new(), "user-42", &hash));
        assert!(!keys().identity_matches(widget, "user-42", "not hex"));
    }

    #[test]
    fn a_visitor_keeps_one_conversation_per_widget() {
        let now = Utc::now();
        let first = claims(now);
        let mut again = first.clone();
        again.exp += 10;
        assert_eq!(first.conversation_id(), again.conversation_id());
        let mut elsewhere = first.clone();
        elsewhere.widget = WidgetId::new();
        assert_ne!(first.conversation_id(), elsewhere.conversation_id());
    }
}
