//! Ephemeral signals: who is typing, which agents are viewing a conversation, which agents
//! are online. They are not events (nothing about them is worth replaying), so they travel
//! by PostgreSQL `NOTIFY` between instances and are forgotten: every instance listens, and
//! hands each signal to its own connections.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use uuid::Uuid;

/// The `NOTIFY` channel.
const CHANNEL: &str = "upzento_signals";
/// How long an agent counts as online after its connection last said so.
pub const ONLINE_FOR: Duration = Duration::from_secs(45);
/// Signals a slow connection may fall behind before it misses some (they are ephemeral:
/// a missed one is corrected by the next).
const BACKLOG: usize = 1024;

/// Who a signal is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Participant {
    /// An agent of the tenant.
    Agent(Uuid),
    /// The conversation's visitor.
    Visitor,
}

/// What a signal says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// Typing in a conversation.
    Typing,
    /// An agent has the conversation open.
    Viewing,
    /// An instance has a console of the tenant connected (no conversation).
    Online,
}

/// One signal, as it crosses instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    /// Whose.
    pub tenant_id: Uuid,
    /// The conversation, for typing and viewing.
    pub conversation_id: Option<Uuid>,
    /// What.
    pub kind: SignalKind,
    /// Who.
    pub who: Participant,
    /// Started (true) or stopped (false).
    pub on: bool,
    /// The connection that sent it (for presence: the instance), so a connection can skip
    /// its own signals.
    pub connection: Uuid,
}

/// The instance's signal hub: publish through PostgreSQL, receive from every instance.
///
/// Presence is kept per instance, not per connection: the instance says "tenant T has an
/// agent connected here" when its first agent of T connects, again every [`RENEW_EVERY`],
/// and "no longer" when the last one leaves. Presence never reaches connections, so ten
/// thousand idle consoles cost one signal per tenant and instance, not one each.
#[derive(Clone)]
pub struct Signals {
    pool: PgPool,
    instance: Uuid,
    local: broadcast::Sender<Arc<Signal>>,
    /// Agents connected to this instance, per tenant.
    here: Arc<Mutex<HashMap<Uuid, usize>>>,
    /// Per (instance, tenant), when that instance last said an agent of the tenant is there.
    online: Arc<Mutex<HashMap<(Uuid, Uuid), Instant>>>,
}

/// How often an instance renews its presence: well inside [`ONLINE_FOR`].
pub const RENEW_EVERY: Duration = Duration::from_secs(ONLINE_FOR.as_secs() / 3);

impl Signals {
    /// Starts listening and renewing presence, for the life of the process; the listener
    /// reconnects by itself.
    pub fn start(pool: PgPool) -> Self {
        let (local, _) = broadcast::channel(BACKLOG);
        let signals = Self {
            pool,
            instance: Uuid::new_v4(),
            local,
            here: Arc::default(),
            online: Arc::default(),
        };
        tokio::spawn(signals.clone().listen());
        tokio::spawn(signals.clone().renew());
        signals
    }

    /// Sends a signal to every instance (this one included).
    pub async fn publish(&self, signal: &Signal) -> Result<(), sqlx::Error> {
        let payload = serde_json::to_string(signal).expect("signals serialize");
        sqlx::query("select pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await
            .map(drop)
    }

    /// Signals from now on (typing and viewing; presence is answered by [`Self::agents_online`]).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Signal>> {
        self.local.subscribe()
    }

    /// True when an agent of the tenant has a console connected to any instance.
    pub fn agents_online(&self, tenant_id: Uuid) -> bool {
        let online = self.online.lock().expect("online lock");
        online
            .iter()
            .any(|((_, tenant), seen)| *tenant == tenant_id && seen.elapsed() < ONLINE_FOR)
    }

    fn presence(&self, tenant_id: Uuid, on: bool) -> Signal {
        Signal {
            tenant_id,
            conversation_id: None,
            kind: SignalKind::Online,
            who: Participant::Visitor,
            on,
            connection: self.instance,
        }
    }

    /// An agent of `tenant_id` connected here (`true`) or left (`false`).
    pub async fn agent_here(&self, tenant_id: Uuid, on: bool) {
        let changed = {
            let mut here = self.here.lock().expect("presence lock");
            let count = here.entry(tenant_id).or_default();
            let before = *count;
            *count = if on {
                before + 1
            } else {
                before.saturating_sub(1)
            };
            let now = *count;
            if now == 0 {
                here.remove(&tenant_id);
            }
            (before == 0) != (now == 0)
        };
        if changed && let Err(error) = self.publish(&self.presence(tenant_id, on)).await {
            tracing::warn!(error = %error, "could not publish presence");
        }
    }

    async fn renew(self) {
        let mut tick = tokio::time::interval(RENEW_EVERY);
        loop {
            tick.tick().await;
            let tenants: Vec<Uuid> = self
                .here
                .lock()
                .expect("presence lock")
                .keys()
                .copied()
                .collect();
            for tenant in tenants {
                if let Err(error) = self.publish(&self.presence(tenant, true)).await {
                    tracing::warn!(error = %error, "could not renew presence");
                }
            }
        }
    }

    fn note_presence(&self, signal: &Signal) {
        let mut online = self.online.lock().expect("online lock");
        online.retain(|_, seen| seen.elapsed() < ONLINE_FOR);
        let key = (signal.connection, signal.tenant_id);
        if signal.on {
            online.insert(key, Instant::now());
        } else {
            online.remove(&key);
        }
    }

    async fn listen(self) {
        loop {
            if let Err(error) = self.relay().await {
                tracing::warn!(error = %error, "signal listener interrupted; reconnecting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn relay(&self) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        loop {
            let notification = listener.recv().await?;
            match serde_json::from_str::<Signal>(notification.payload()) {
                Ok(signal) if signal.kind == SignalKind::Online => self.note_presence(&signal),
                Ok(signal) => {
                    let _ = self.local.send(Arc::new(signal));
                }
                Err(error) => tracing::warn!(error = %error, "ignoring a malformed signal"),
            }
        }
    }
}
