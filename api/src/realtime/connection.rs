//! One WebSocket connection, agent's or visitor's: pushes its events and the signals it may
//! see, takes typing and viewing signals from the client, keeps the connection alive, and
//! closes when the server shuts down.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use projections::reader::Cursor;
use projections::tail::TailEvent;
use uuid::Uuid;

use super::protocol::{ClientMessage, EventView, ServerMessage, for_agent, for_visitor};
use super::signals::{Participant, RENEW_EVERY, Signal, SignalKind};
use crate::state::AppState;

/// How long a typing signal lasts unless the client renews it.
pub const TYPING_EXPIRES: Duration = Duration::from_secs(6);
/// The shortest interval between two typing signals a client may send on; more often is
/// dropped (the client is told in docs/realtime.md to send every few seconds).
const TYPING_MIN_INTERVAL: Duration = Duration::from_secs(2);
/// How often the server pings; a client that stops answering is dropped by TCP timeouts.
const PING_EVERY: Duration = Duration::from_secs(25);
/// The shortest interval between two unread-count pushes to one connection: a busy tenant
/// changes them many times a second, and nobody reads a badge that fast.
const UNREAD_EVERY: Duration = Duration::from_secs(2);

/// Who is on the other end.
#[derive(Debug, Clone, Copy)]
pub enum Peer {
    /// An agent of the tenant: every conversation.
    Agent {
        /// The tenant.
        tenant_id: Uuid,
        /// The agent.
        agent_id: Uuid,
        /// An auditor watches; it sends no typing or viewing signals.
        read_only: bool,
    },
    /// A visitor: their conversation only.
    Visitor {
        /// The tenant.
        tenant_id: Uuid,
        /// The visitor's conversation.
        conversation_id: Uuid,
    },
}

impl Peer {
    fn tenant_id(&self) -> Uuid {
        match *self {
            Self::Agent { tenant_id, .. } | Self::Visitor { tenant_id, .. } => tenant_id,
        }
    }

    fn participant(&self) -> Participant {
        match *self {
            Self::Agent { agent_id, .. } => Participant::Agent(agent_id),
            Self::Visitor { .. } => Participant::Visitor,
        }
    }

    /// The event as this peer is sent it, if at all. Every agent of a tenant is sent the
    /// same text: the first connection renders it, the others reuse it.
    fn render(&self, event: &TailEvent) -> Option<Arc<str>> {
        let text = |view: EventView| -> Arc<str> {
            serde_json::to_string(&ServerMessage::Event(view))
                .expect("server messages serialize")
                .into()
        };
        match *self {
            Self::Agent { .. } => event
                .rendered
                .get_or_init(|| for_agent(event).map(text))
                .clone(),
            Self::Visitor {
                conversation_id, ..
            } => for_visitor(event, conversation_id).map(text),
        }
    }

    /// Whether this peer may see a signal from another connection, and how.
    fn sees(&self, signal: &Signal) -> Option<ServerMessage> {
        if signal.tenant_id != self.tenant_id() {
            return None;
        }
        let conversation_id = signal.conversation_id?;
        match (self, signal.kind) {
            (
                Self::Visitor {
                    conversation_id: mine,
                    ..
                },
                SignalKind::Typing,
            ) if *mine == conversation_id && signal.who != Participant::Visitor => {
                // The visitor sees that the team is typing, not which agent.
                Some(ServerMessage::Typing {
                    conversation_id,
                    who: Participant::Agent(Uuid::nil()),
                    on: signal.on,
                })
            }
            (Self::Agent { .. }, SignalKind::Typing) => Some(ServerMessage::Typing {
                conversation_id,
                who: signal.who.clone(),
                on: signal.on,
            }),
            (Self::Agent { .. }, SignalKind::Viewing) => match signal.who {
                Participant::Agent(agent_id) => Some(ServerMessage::Viewing {
                    conversation_id,
                    agent_id,
                    on: signal.on,
                }),
                Participant::Visitor => None,
            },
            _ => None,
        }
    }
}

/// What one connection keeps.
struct Connection {
    state: AppState,
    peer: Peer,
    id: Uuid,
    /// Typing others do, with when it expires.
    typing: HashMap<(Uuid, Participant), Instant>,
    /// When this client last sent typing, per conversation.
    typed: HashMap<Uuid, Instant>,
    /// Conversations this agent has open.
    viewing: Vec<Uuid>,
    /// The newest event pushed since the unread counts were last sent (agents).
    unread_stale_at: Option<Cursor>,
    /// When the unread counts were last sent.
    unread_sent: Option<Instant>,
}

/// Runs the connection until the client leaves or the server shuts down.
pub async fn run(socket: WebSocket, state: AppState, peer: Peer, after: Cursor) {
    let (mut outgoing, mut incoming) = socket.split();
    let mut events = pin!(state.tail.subscribe(peer.tenant_id(), after));
    let mut signals = state.signals.subscribe();
    let mut closing = state.closing.clone();
    let mut connection = Connection {
        state: state.clone(),
        peer,
        id: Uuid::new_v4(),
        typing: HashMap::new(),
        typed: HashMap::new(),
        viewing: Vec::new(),
        unread_stale_at: None,
        unread_sent: None,
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_ping = Instant::now();
    let mut last_renewal = Instant::now();
    if let Peer::Agent {
        tenant_id,
        read_only: false,
        ..
    } = peer
    {
        state.signals.agent_here(tenant_id, true).await;
    }
    let ready = ServerMessage::Ready {
        cursor: after.to_string(),
    };
    if send(&mut outgoing, &ready).await.is_err() {
        return;
    }
    loop {
        let sent = tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => match connection.peer.render(&event) {
                    Some(text) => {
                        connection.unread_stale_at = Some(event.cursor());
                        outgoing.send(Message::Text(text.as_ref().into())).await
                    }
                    None => Ok(()),
                },
                Some(Err(error)) => {
                    tracing::warn!(error = %error, "live events interrupted; catching up again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Ok(())
                }
                None => break,
            },
            signal = signals.recv() => match signal {
                Ok(signal) if signal.connection != connection.id => {
                    match connection.take_signal(&signal) {
                        Some(message) => send(&mut outgoing, &message).await,
                        None => Ok(()),
                    }
                }
                _ => Ok(()),
            },
            message = incoming.next() => match message {
                Some(Ok(Message::Text(text))) => match connection.take_client(&text).await {
                    Some(reply) => send(&mut outgoing, &reply).await,
                    None => Ok(()),
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => Ok(()),
            },
            _ = tick.tick() => {
                let mut result = Ok(());
                for message in connection.expire_typing() {
                    result = result.and(send(&mut outgoing, &message).await);
                }
                if let Some(counts) = connection.unread_if_stale().await {
                    result = result.and(send(&mut outgoing, &counts).await);
                }
                if last_ping.elapsed() >= PING_EVERY {
                    last_ping = Instant::now();
                    result = result.and(outgoing.send(Message::Ping(Vec::new().into())).await);
                }
                if last_renewal.elapsed() >= RENEW_EVERY {
                    last_renewal = Instant::now();
                    connection.announce(true).await;
                }
                result
            },
            _ = closing.changed() => {
                let frame = CloseFrame { code: 1012, reason: "server restarting".into() };
                let _ = outgoing.send(Message::Close(Some(frame))).await;
                break;
            }
        };
        if sent.is_err() {
            break;
        }
    }
    connection.announce(false).await;
    if let Peer::Agent {
        tenant_id,
        read_only: false,
        ..
    } = peer
    {
        state.signals.agent_here(tenant_id, false).await;
    }
}

async fn send(
    outgoing: &mut (impl SinkExt<Message, Error = axum::Error> + Unpin),
    message: &ServerMessage,
) -> Result<(), axum::Error> {
    let text = serde_json::to_string(message).expect("server messages serialize");
    outgoing.send(Message::Text(text.into())).await
}

impl Connection {
    fn signal(&self, kind: SignalKind, conversation_id: Option<Uuid>, on: bool) -> Signal {
        Signal {
            tenant_id: self.peer.tenant_id(),
            conversation_id,
            kind,
            who: self.peer.participant(),
            on,
            connection: self.id,
        }
    }

    async fn publish(&self, signal: Signal) {
        if let Err(error) = self.state.signals.publish(&signal).await {
            tracing::warn!(error = %error, "could not publish a signal");
        }
    }

    /// Agents: the conversations open, renewed while connected, withdrawn at the end.
    /// Typing is withdrawn at the end too.
    async fn announce(&self, on: bool) {
        if let Peer::Agent { .. } = self.peer {
            for conversation in &self.viewing {
                self.publish(self.signal(SignalKind::Viewing, Some(*conversation), on))
                    .await;
            }
        }
        if !on {
            for conversation in self.typed.keys() {
                self.publish(self.signal(SignalKind::Typing, Some(*conversation), false))
                    .await;
            }
        }
    }

    fn take_signal(&mut self, signal: &Signal) -> Option<ServerMessage> {
        let message = self.peer.sees(signal)?;
        if let (SignalKind::Typing, Some(conversation)) = (signal.kind, signal.conversation_id) {
            let key = (conversation, signal.who.clone());
            if signal.on {
                self.typing.insert(key, Instant::now() + TYPING_EXPIRES);
            } else if self.typing.remove(&key).is_none() {
                return None;
            }
        }
        Some(message)
    }

    /// Typing nobody renewed in time ends here, whatever became of its sender.
    fn expire_typing(&mut self) -> Vec<ServerMessage> {
        let now = Instant::now();
        let expired: Vec<(Uuid, Participant)> = self
            .typing
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(key, _)| key.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|key| {
                self.typing.remove(&key);
                let (conversation_id, who) = key;
                let signal = Signal {
                    tenant_id: self.peer.tenant_id(),
                    conversation_id: Some(conversation_id),
                    kind: SignalKind::Typing,
                    who,
                    on: false,
                    connection: Uuid::nil(),
                };
                self.peer.sees(&signal)
            })
            .collect()
    }

    async fn take_client(&mut self, text: &str) -> Option<ServerMessage> {
        if let Peer::Agent {
            read_only: true, ..
        } = self.peer
        {
            return Some(ServerMessage::Error {
                code: "forbidden",
                detail: "auditors watch; they send no signals".into(),
            });
        }
        let message = match serde_json::from_str::<ClientMessage>(text) {
            Ok(message) => message,
            Err(error) => {
                return Some(ServerMessage::Error {
                    code: "invalid_message",
                    detail: error.to_string(),
                });
            }
        };
        match (message, self.peer) {
            (
                ClientMessage::Typing {
                    conversation_id,
                    on,
                    ..
                },
                peer,
            ) => {
                let conversation = match (peer, conversation_id) {
                    (
                        Peer::Visitor {
                            conversation_id, ..
                        },
                        None,
                    ) => conversation_id,
                    (Peer::Agent { .. }, Some(conversation)) => conversation,
                    _ => {
                        return Some(ServerMessage::Error {
                            code: "invalid_message",
                            detail: "agents name the conversation; visitors do not".into(),
                        });
                    }
                };
                let now = Instant::now();
                let recent = self
                    .typed
                    .get(&conversation)
                    .is_some_and(|at| now.duration_since(*at) < TYPING_MIN_INTERVAL);
                if on && recent {
                    return None;
                }
                if on {
                    self.typed.insert(conversation, now);
                } else {
                    self.typed.remove(&conversation);
                }
                self.publish(self.signal(SignalKind::Typing, Some(conversation), on))
                    .await;
                None
            }
            (
                ClientMessage::Viewing {
                    conversation_id,
                    on,
                },
                Peer::Agent { .. },
            ) => {
                self.viewing.retain(|c| *c != conversation_id);
                if on {
                    self.viewing.push(conversation_id);
                }
                self.publish(self.signal(SignalKind::Viewing, Some(conversation_id), on))
                    .await;
                None
            }
            (ClientMessage::Viewing { .. }, Peer::Visitor { .. }) => Some(ServerMessage::Error {
                code: "invalid_message",
                detail: "only agents report viewing".into(),
            }),
        }
    }

    /// The agent's unread counts once the inbox has caught up with what was pushed.
    async fn unread_if_stale(&mut self) -> Option<ServerMessage> {
        let Peer::Agent {
            tenant_id,
            agent_id,
            ..
        } = self.peer
        else {
            return None;
        };
        let seen = self.unread_stale_at?;
        if self
            .unread_sent
            .is_some_and(|at| at.elapsed() < UNREAD_EVERY)
        {
            return None;
        }
        let counts = self
            .state
            .unread
            .after(tenant_id, agent_id, seen)
            .await
            .ok()??;
        self.unread_stale_at = None;
        self.unread_sent = Some(Instant::now());
        Some(ServerMessage::Unread(counts))
    }
}
