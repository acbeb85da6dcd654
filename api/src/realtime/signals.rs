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
    /// An agent's console is connected (no conversation).
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
    /// The connection that sent it, so an agent's several tabs count separately.
    pub connection: Uuid,
}

/// The instance's signal hub: publish through PostgreSQL, receive from every instance.
#[derive(Clone)]
pub struct Signals {
    pool: PgPool,
    local: broadcast::Sender<Arc<Signal>>,
    online: Arc<Mutex<HashMap<Uuid, (Uuid, Instant)>>>,
}

impl Signals {
    /// Starts listening, for the life of the process; the listener reconnects by itself.
    pub fn start(pool: PgPool) -> Self {
        let (local, _) = broadcast::channel(BACKLOG);
        let signals = Self {
            pool,
            local,
            online: Arc::default(),
        };
        tokio::spawn(signals.clone().listen());
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

    /// Signals from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Signal>> {
        self.local.subscribe()
    }

    /// True when an agent of the tenant has had a console connected lately.
    pub fn agents_online(&self, tenant_id: Uuid) -> bool {
        let online = self.online.lock().expect("online lock");
        online
            .values()
            .any(|(tenant, seen)| *tenant == tenant_id && seen.elapsed() < ONLINE_FOR)
    }

    fn note_presence(&self, signal: &Signal) {
        if signal.kind != SignalKind::Online {
            return;
        }
        let mut online = self.online.lock().expect("online lock");
        online.retain(|_, (_, seen)| seen.elapsed() < ONLINE_FOR);
        if signal.on {
            online.insert(signal.connection, (signal.tenant_id, Instant::now()));
        } else {
            online.remove(&signal.connection);
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
                Ok(signal) => {
                    self.note_presence(&signal);
                    let _ = self.local.send(Arc::new(signal));
                }
                Err(error) => tracing::warn!(error = %error, "ignoring a malformed signal"),
            }
        }
    }
}
