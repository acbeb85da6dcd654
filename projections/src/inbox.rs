//! The inbox projector: turns conversation events into the inbox list, the message timeline
//! with delivery status, read markers and the maintained counters behind unread counts and
//! the mine / unassigned / all view sizes.
//!
//! A batch is applied in memory: the rows it touches are read once, every event of the batch
//! changes them in order, and the results go back in a handful of set-based statements. The
//! round trips per batch stay constant instead of growing with its events, which is what
//! makes catch-up and rebuild fast.
//!
//! Counters are kept per (status, assignee) bucket: the nil UUID stands for unassigned. A
//! conversation touched by a batch takes its old contribution (one conversation, its incoming
//! messages, each agent's read messages) out of its old bucket and puts the new one into its
//! new bucket, so each total stays exact without ever counting rows.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::conversation::{ConversationEvent, ConversationStatus, DeliveryStatus, Direction};
use serde::Deserialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::queries::Delivery;
use crate::reader::StoredEvent;
use crate::runtime::Projector;
use crate::wire;

/// The projector's stored name.
pub const NAME: &str = "inbox";

/// How much of the last message the list shows, in characters.
const PREVIEW_CHARS: usize = 140;

/// The inbox projector.
pub struct Inbox;

type ConversationKey = (Uuid, Uuid);
type MessageKey = (Uuid, Uuid, Uuid);
type ReadKey = (Uuid, Uuid, Uuid);
/// A counter bucket: tenant, status, assignee (nil when unassigned).
type Bucket = (Uuid, String, Uuid);
/// Per bucket, the change in conversations and in incoming messages.
type TotalDeltas = HashMap<Bucket, (i64, i64)>;
/// Per agent and bucket, the change in messages the agent has read.
type ReadDeltas = HashMap<(Uuid, Bucket), i64>;

/// A row of `inbox_conversations`.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Conversation {
    tenant_id: Uuid,
    conversation_id: Uuid,
    source: String,
    contact_name: Option<String>,
    contact_email: Option<String>,
    contact_phone: Option<String>,
    widget_id: Option<Uuid>,
    status: String,
    snoozed_until: Option<DateTime<Utc>>,
    assignee_id: Option<Uuid>,
    team_id: Option<Uuid>,
    labels: Vec<String>,
    last_message_preview: Option<String>,
    last_message_at: Option<DateTime<Utc>>,
    last_activity_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    message_count: i32,
    incoming_count: i32,
    waiting_since: Option<DateTime<Utc>>,
    last_outgoing_status: Option<String>,
    last_outgoing_message_id: Option<Uuid>,
}

impl Conversation {
    /// The contact's fields, as every search document of the conversation starts.
    fn contact_text(&self) -> String {
        [&self.contact_name, &self.contact_email, &self.contact_phone]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn bucket(&self) -> Bucket {
        (
            self.tenant_id,
            self.status.clone(),
            self.assignee_id.unwrap_or_default(),
        )
    }
}

/// A conversation as the batch found it and as the batch leaves it.
struct Touched {
    row: Conversation,
    /// Its bucket and incoming count before the batch; `None` if the batch started it.
    before: Option<(Bucket, i32)>,
}

/// A row of `inbox_search`: the text of one document, turned into a `tsvector` by the
/// statement that inserts it.
struct SearchDocument {
    key: ConversationKey,
    seq: i64,
    text: String,
}

/// A row of `inbox_reads`.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Read {
    tenant_id: Uuid,
    conversation_id: Uuid,
    agent_id: Uuid,
    read_incoming: i32,
    last_read_message_id: Uuid,
}

/// A read marker as the batch found it (`before`) and leaves it. Every marker of a touched
/// conversation is loaded (a conversation that changes bucket moves its readers' counts
/// too), but only the ones the batch `moved` are written back: rewriting the others would
/// leave a dead row version behind for every marker of every busy conversation.
struct TouchedRead {
    row: Read,
    before: Option<i32>,
    moved: bool,
}

/// A message the batch wrote, or a status change to one written before.
#[derive(Debug, Default)]
struct Message {
    /// Set for messages the batch wrote.
    new: Option<NewMessage>,
    /// For earlier messages, only what the batch changed.
    delivery: Delivery,
}

#[derive(Debug)]
struct NewMessage {
    seq: i64,
    direction: String,
    content: String,
    author: Option<String>,
    created_at: DateTime<Utc>,
}

/// Everything a batch changes, in memory.
#[derive(Default)]
struct Batch {
    conversations: HashMap<ConversationKey, Touched>,
    order: Vec<ConversationKey>,
    messages: HashMap<MessageKey, Message>,
    message_order: Vec<MessageKey>,
    reads: HashMap<ReadKey, TouchedRead>,
    search: Vec<SearchDocument>,
}

impl Batch {
    /// Reads the rows the events will touch.
    async fn load(tx: &mut PgConnection, keys: &[ConversationKey]) -> anyhow::Result<Self> {
        let (tenants, ids): (Vec<Uuid>, Vec<Uuid>) = keys.iter().copied().unzip();
        let rows: Vec<Conversation> = sqlx::query_as(
            "select c.tenant_id, c.conversation_id, source, contact_name, contact_email,
                    contact_phone, widget_id, status, snoozed_until, assignee_id, team_id, labels,
                    last_message_preview, last_message_at, last_activity_at, created_at,
                    message_count, incoming_count, waiting_since, last_outgoing_status,
                    last_outgoing_message_id
               from inbox_conversations c
               join unnest($1::uuid[], $2::uuid[]) k(tenant_id, conversation_id)
                 on c.tenant_id = k.tenant_id and c.conversation_id = k.conversation_id",
        )
        .bind(&tenants)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let reads: Vec<Read> = sqlx::query_as(
            "select r.tenant_id, r.conversation_id, agent_id, read_incoming, last_read_message_id
               from inbox_reads r
               join unnest($1::uuid[], $2::uuid[]) k(tenant_id, conversation_id)
                 on r.tenant_id = k.tenant_id and r.conversation_id = k.conversation_id",
        )
        .bind(&tenants)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let mut batch = Self::default();
        for row in rows {
            let key = (row.tenant_id, row.conversation_id);
            let before = Some((row.bucket(), row.incoming_count));
            batch.order.push(key);
            batch.conversations.insert(key, Touched { row, before });
        }
        for row in reads {
            let key = (row.tenant_id, row.conversation_id, row.agent_id);
            let before = Some(row.read_incoming);
            batch.reads.insert(
                key,
                TouchedRead {
                    row,
                    before,
                    moved: false,
                },
            );
        }
        Ok(batch)
    }

    /// The batch's entry for a message, remembering the order messages were first seen in.
    fn message<'a>(
        messages: &'a mut HashMap<MessageKey, Message>,
        order: &mut Vec<MessageKey>,
        key: MessageKey,
    ) -> &'a mut Message {
        if !messages.contains_key(&key) {
            order.push(key);
        }
        messages.entry(key).or_default()
    }

    /// Applies one event to the rows in memory.
    fn apply(&mut self, stored: &StoredEvent, event: ConversationEvent) -> anyhow::Result<()> {
        use ConversationEvent as C;
        let conversation = stored
            .resource_id()
            .ok_or_else(|| anyhow::anyhow!("malformed aggregate id {}", stored.aggregate_id))?;
        let key = (stored.tenant_id, conversation);
        let at = stored.recorded_at;
        if let C::ConversationStarted {
            source,
            contact,
            widget_id,
        } = event
        {
            if self.conversations.contains_key(&key) {
                return Ok(());
            }
            let row = Conversation {
                tenant_id: stored.tenant_id,
                conversation_id: conversation,
                source: wire(&source),
                contact_name: contact.name.as_ref().map(|v| v.as_str().to_owned()),
                contact_email: contact.email.as_ref().map(|v| v.as_str().to_owned()),
                contact_phone: contact.phone.as_ref().map(|v| v.as_str().to_owned()),
                widget_id: widget_id.map(|w| w.as_uuid()),
                status: wire(&ConversationStatus::Open),
                snoozed_until: None,
                assignee_id: None,
                team_id: None,
                labels: Vec::new(),
                last_message_preview: None,
                last_message_at: None,
                last_activity_at: at,
                created_at: at,
                message_count: 0,
                incoming_count: 0,
                waiting_since: None,
                last_outgoing_status: None,
                last_outgoing_message_id: None,
            };
            self.search.push(SearchDocument {
                key,
                seq: stored.sequence,
                text: row.contact_text(),
            });
            self.order.push(key);
            self.conversations
                .insert(key, Touched { row, before: None });
            return Ok(());
        }
        let Some(touched) = self.conversations.get_mut(&key) else {
            tracing::warn!(
                position = stored.position,
                "event for a conversation the inbox does not have"
            );
            return Ok(());
        };
        let row = &mut touched.row;
        let mut written = None;
        match event {
            C::ConversationStarted { .. } => unreachable!("handled above"),
            C::MessageReceived {
                message_id,
                content,
                sent_at,
            } => {
                row.incoming_count += 1;
                row.waiting_since = row.waiting_since.or(Some(sent_at));
                written = Some((message_id, Direction::Incoming, content, None, sent_at));
            }
            C::MessagePosted {
                message_id,
                content,
                author,
            }
            | C::WhatsappTemplatePosted {
                message_id,
                content,
                author,
                ..
            } => {
                row.waiting_since = None;
                row.last_outgoing_status = Some(wire(&DeliveryStatus::Pending));
                row.last_outgoing_message_id = Some(message_id.as_uuid());
                written = Some((
                    message_id,
                    Direction::Outgoing,
                    content,
                    Some(author.to_string()),
                    at,
                ));
            }
            C::NoteAdded {
                message_id,
                content,
                author,
            } => {
                written = Some((
                    message_id,
                    Direction::Note,
                    content,
                    Some(author.to_string()),
                    at,
                ));
            }
            C::MessageStatusChanged {
                message_id,
                status,
                error,
                at,
            } => {
                let message = Self::message(
                    &mut self.messages,
                    &mut self.message_order,
                    (key.0, key.1, message_id.as_uuid()),
                );
                message.delivery.record(status, error, at);
                if row.last_outgoing_message_id == Some(message_id.as_uuid()) {
                    row.last_outgoing_status = message.delivery.status.clone();
                }
            }
            C::ReadMarkerMoved {
                agent_id,
                last_read_message_id,
            } => {
                let read = Read {
                    tenant_id: key.0,
                    conversation_id: key.1,
                    agent_id: agent_id.as_uuid(),
                    // The marker is always the newest message when it moves, so the agent
                    // has read every incoming message so far.
                    read_incoming: row.incoming_count,
                    last_read_message_id: last_read_message_id.as_uuid(),
                };
                self.reads
                    .entry((key.0, key.1, agent_id.as_uuid()))
                    .and_modify(|r| {
                        r.row = read.clone();
                        r.moved = true;
                    })
                    .or_insert(TouchedRead {
                        row: read,
                        before: None,
                        moved: true,
                    });
            }
            C::ConversationAssigned { agent_id, team_id } => {
                row.assignee_id = agent_id.map(|a| a.as_uuid());
                row.team_id = team_id.map(|t| t.as_uuid());
            }
            C::ConversationUnassigned {} => {
                row.assignee_id = None;
                row.team_id = None;
            }
            C::ConversationStatusChanged {
                status,
                snoozed_until,
                ..
            } => {
                row.status = wire(&status);
                row.snoozed_until = snoozed_until;
            }
            C::LabelAdded { label } => {
                if !row.labels.iter().any(|l| l == label.as_str()) {
                    row.labels.push(label.as_str().to_owned());
                }
            }
            C::LabelRemoved { label } => row.labels.retain(|l| l != label.as_str()),
            // WhatsApp's ids and routing are the outbox's business, not the inbox's.
            C::WhatsappContactLinked { .. } | C::WhatsappMessageLinked { .. } => {}
        }
        if let Some((message_id, direction, content, author, created_at)) = written {
            row.message_count += 1;
            row.last_activity_at = at;
            if direction != Direction::Note {
                row.last_message_preview =
                    Some(content.as_str().chars().take(PREVIEW_CHARS).collect());
                row.last_message_at = Some(at);
            }
            self.search.push(SearchDocument {
                key,
                seq: stored.sequence,
                text: format!("{} {}", row.contact_text(), content.as_str()),
            });
            let message = Self::message(
                &mut self.messages,
                &mut self.message_order,
                (key.0, key.1, message_id.as_uuid()),
            );
            message.delivery = Delivery::of(direction);
            message.new = Some(NewMessage {
                seq: stored.sequence,
                direction: wire(&direction),
                content: content.as_str().to_owned(),
                author,
                created_at,
            });
        }
        Ok(())
    }

    /// The change each counter bucket gets: conversations and incoming messages, and per agent
    /// read messages.
    fn counter_deltas(&self) -> (TotalDeltas, ReadDeltas) {
        let mut totals = TotalDeltas::new();
        for touched in self.conversations.values() {
            if let Some((bucket, incoming)) = &touched.before {
                let entry = totals.entry(bucket.clone()).or_default();
                entry.0 -= 1;
                entry.1 -= i64::from(*incoming);
            }
            let entry = totals.entry(touched.row.bucket()).or_default();
            entry.0 += 1;
            entry.1 += i64::from(touched.row.incoming_count);
        }
        let mut reads = ReadDeltas::new();
        for read in self.reads.values() {
            let Some(conversation) = self
                .conversations
                .get(&(read.row.tenant_id, read.row.conversation_id))
            else {
                continue;
            };
            if let (Some(before), Some((bucket, _))) = (read.before, &conversation.before) {
                *reads
                    .entry((read.row.agent_id, bucket.clone()))
                    .or_default() -= i64::from(before);
            }
            *reads
                .entry((read.row.agent_id, conversation.row.bucket()))
                .or_default() += i64::from(read.row.read_incoming);
        }
        totals.retain(|_, (c, i)| *c != 0 || *i != 0);
        reads.retain(|_, n| *n != 0);
        (totals, reads)
    }

    /// Writes everything back.
    async fn save(self, tx: &mut PgConnection) -> anyhow::Result<()> {
        self.save_conversations(tx).await?;
        self.save_messages(tx).await?;
        self.save_reads_and_counters(tx).await
    }

    async fn save_conversations(&self, tx: &mut PgConnection) -> anyhow::Result<()> {
        let rows: Vec<&Touched> = self.order.iter().map(|k| &self.conversations[k]).collect();
        let column = |f: fn(&Conversation) -> Option<String>| -> Vec<Option<String>> {
            rows.iter().map(|t| f(&t.row)).collect()
        };
        let time = |f: fn(&Conversation) -> Option<DateTime<Utc>>| -> Vec<Option<DateTime<Utc>>> {
            rows.iter().map(|t| f(&t.row)).collect()
        };
        let id = |f: fn(&Conversation) -> Option<Uuid>| -> Vec<Option<Uuid>> {
            rows.iter().map(|t| f(&t.row)).collect()
        };
        sqlx::query(
            "insert into inbox_conversations
                 (tenant_id, conversation_id, source, contact_name, contact_email, contact_phone,
                  widget_id, status, snoozed_until, assignee_id, team_id, labels,
                  last_message_preview, last_message_at, last_activity_at, created_at,
                  message_count, incoming_count, waiting_since, last_outgoing_status,
                  last_outgoing_message_id)
             select u.tenant_id, u.conversation_id, u.source, u.contact_name, u.contact_email,
                    u.contact_phone, u.widget_id, u.status, u.snoozed_until, u.assignee_id,
                    u.team_id,
                    array(select jsonb_array_elements_text(u.labels)),
                    u.last_message_preview, u.last_message_at, u.last_activity_at, u.created_at,
                    u.message_count, u.incoming_count, u.waiting_since, u.last_outgoing_status,
                    u.last_outgoing_message_id
               from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                           $7::uuid[], $8::text[], $9::timestamptz[], $10::uuid[], $11::uuid[],
                           $12::jsonb[], $13::text[], $14::timestamptz[], $15::timestamptz[],
                           $16::timestamptz[], $17::int4[], $18::int4[], $19::timestamptz[],
                           $20::text[], $21::uuid[])
                    as u(tenant_id, conversation_id, source, contact_name, contact_email,
                         contact_phone, widget_id, status, snoozed_until, assignee_id, team_id,
                         labels, last_message_preview, last_message_at, last_activity_at,
                         created_at, message_count, incoming_count, waiting_since,
                         last_outgoing_status, last_outgoing_message_id)
             on conflict (tenant_id, conversation_id) do update set
                 status = excluded.status, snoozed_until = excluded.snoozed_until,
                 assignee_id = excluded.assignee_id, team_id = excluded.team_id,
                 labels = excluded.labels, last_message_preview = excluded.last_message_preview,
                 last_message_at = excluded.last_message_at,
                 last_activity_at = excluded.last_activity_at,
                 message_count = excluded.message_count, incoming_count = excluded.incoming_count,
                 waiting_since = excluded.waiting_since,
                 last_outgoing_status = excluded.last_outgoing_status,
                 last_outgoing_message_id = excluded.last_outgoing_message_id",
        )
        .bind(rows.iter().map(|t| t.row.tenant_id).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|t| t.row.conversation_id)
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|t| t.row.source.clone())
                .collect::<Vec<_>>(),
        )
        .bind(column(|r| r.contact_name.clone()))
        .bind(column(|r| r.contact_email.clone()))
        .bind(column(|r| r.contact_phone.clone()))
        .bind(id(|r| r.widget_id))
        .bind(
            rows.iter()
                .map(|t| t.row.status.clone())
                .collect::<Vec<_>>(),
        )
        .bind(time(|r| r.snoozed_until))
        .bind(id(|r| r.assignee_id))
        .bind(id(|r| r.team_id))
        .bind(
            rows.iter()
                .map(|t| serde_json::json!(t.row.labels))
                .collect::<Vec<_>>(),
        )
        .bind(column(|r| r.last_message_preview.clone()))
        .bind(time(|r| r.last_message_at))
        .bind(time(|r| Some(r.last_activity_at)))
        .bind(time(|r| Some(r.created_at)))
        .bind(rows.iter().map(|t| t.row.message_count).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|t| t.row.incoming_count)
                .collect::<Vec<_>>(),
        )
        .bind(time(|r| r.waiting_since))
        .bind(column(|r| r.last_outgoing_status.clone()))
        .bind(id(|r| r.last_outgoing_message_id))
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn save_messages(&self, tx: &mut PgConnection) -> anyhow::Result<()> {
        let messages: Vec<(&MessageKey, &Message)> = self
            .message_order
            .iter()
            .map(|k| (k, &self.messages[k]))
            .collect();
        let key = |n: usize| -> Vec<Uuid> {
            messages
                .iter()
                .map(|(k, _)| match n {
                    0 => k.0,
                    1 => k.1,
                    _ => k.2,
                })
                .collect()
        };
        let new = |f: fn(&NewMessage) -> Option<String>| -> Vec<Option<String>> {
            messages
                .iter()
                .map(|(_, m)| m.new.as_ref().and_then(f))
                .collect()
        };
        // New messages are inserted whole, with the search documents of the batch's messages
        // and new conversations; for earlier messages only the status columns change.
        if !self.search.is_empty() {
            let query = sqlx::query(
                "with search as (
                     insert into inbox_search (tenant_id, conversation_id, seq, document)
                     select tenant_id, conversation_id, seq, to_tsvector('simple', text)
                       from unnest($15::uuid[], $16::uuid[], $17::int8[], $18::text[])
                            as d(tenant_id, conversation_id, seq, text))
                 insert into inbox_messages
                     (tenant_id, conversation_id, message_id, seq, direction, content, author,
                      created_at, status, sent_at, delivered_at, read_at, failed_at, error)
                 select u.tenant_id, u.conversation_id, u.message_id, u.seq, u.direction, u.content,
                        u.author, u.created_at, u.status, u.sent_at, u.delivered_at, u.read_at,
                        u.failed_at, u.error
                   from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int8[], $5::text[], $6::text[],
                               $7::text[], $8::timestamptz[], $9::text[], $10::timestamptz[],
                               $11::timestamptz[], $12::timestamptz[], $13::timestamptz[], $14::text[])
                        as u(tenant_id, conversation_id, message_id, seq, direction, content, author,
                             created_at, status, sent_at, delivered_at, read_at, failed_at, error)
                 where u.seq is not null
                 on conflict (tenant_id, conversation_id, message_id) do nothing",
            )
            .bind(key(0))
            .bind(key(1))
            .bind(key(2))
            .bind(
                messages
                    .iter()
                    .map(|(_, m)| m.new.as_ref().map(|n| n.seq))
                    .collect::<Vec<_>>(),
            )
            .bind(new(|n| Some(n.direction.clone())))
            .bind(new(|n| Some(n.content.clone())))
            .bind(new(|n| n.author.clone()))
            .bind(
                messages
                    .iter()
                    .map(|(_, m)| m.new.as_ref().map(|n| n.created_at))
                    .collect::<Vec<_>>(),
            );
            bind_delivery(query, messages.iter().map(|(_, m)| &m.delivery))
                .bind(self.search.iter().map(|d| d.key.0).collect::<Vec<_>>())
                .bind(self.search.iter().map(|d| d.key.1).collect::<Vec<_>>())
                .bind(self.search.iter().map(|d| d.seq).collect::<Vec<_>>())
                .bind(
                    self.search
                        .iter()
                        .map(|d| d.text.as_str())
                        .collect::<Vec<_>>(),
                )
                .execute(&mut *tx)
                .await?;
        }
        let updates: Vec<&(&MessageKey, &Message)> =
            messages.iter().filter(|(_, m)| m.new.is_none()).collect();
        if updates.is_empty() {
            return Ok(());
        }
        let query = sqlx::query(
            "update inbox_messages m set
                 status = coalesce(u.status, m.status),
                 sent_at = coalesce(u.sent_at, m.sent_at),
                 delivered_at = coalesce(u.delivered_at, m.delivered_at),
                 read_at = coalesce(u.read_at, m.read_at),
                 failed_at = coalesce(u.failed_at, m.failed_at),
                 error = coalesce(u.error, m.error)
               from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[],
                           $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::text[])
                    as u(tenant_id, conversation_id, message_id, status, sent_at, delivered_at,
                         read_at, failed_at, error)
              where m.tenant_id = u.tenant_id and m.conversation_id = u.conversation_id
                and m.message_id = u.message_id",
        )
        .bind(updates.iter().map(|(k, _)| k.0).collect::<Vec<_>>())
        .bind(updates.iter().map(|(k, _)| k.1).collect::<Vec<_>>())
        .bind(updates.iter().map(|(k, _)| k.2).collect::<Vec<_>>());
        bind_delivery(query, updates.iter().map(|(_, m)| &m.delivery))
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    async fn save_reads_and_counters(&self, tx: &mut PgConnection) -> anyhow::Result<()> {
        let reads: Vec<&Read> = self
            .reads
            .values()
            .filter(|r| r.moved)
            .map(|r| &r.row)
            .collect();
        // Statements with nothing to write are not sent: each one is a round trip, and under a
        // steady load a batch holds a few dozen events.
        if !reads.is_empty() {
            sqlx::query(
                "insert into inbox_reads (tenant_id, conversation_id, agent_id, read_incoming, last_read_message_id)
                 select * from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int4[], $5::uuid[])
                 on conflict (tenant_id, conversation_id, agent_id) do update
                    set read_incoming = excluded.read_incoming,
                        last_read_message_id = excluded.last_read_message_id",
            )
            .bind(reads.iter().map(|r| r.tenant_id).collect::<Vec<_>>())
            .bind(reads.iter().map(|r| r.conversation_id).collect::<Vec<_>>())
            .bind(reads.iter().map(|r| r.agent_id).collect::<Vec<_>>())
            .bind(reads.iter().map(|r| r.read_incoming).collect::<Vec<_>>())
            .bind(reads.iter().map(|r| r.last_read_message_id).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        let (totals, agent_reads) = self.counter_deltas();
        let totals: Vec<(&Bucket, &(i64, i64))> = totals.iter().collect();
        if !totals.is_empty() {
            sqlx::query(
                "insert into inbox_totals (tenant_id, status, assignee_key, conversations, incoming)
                 select * from unnest($1::uuid[], $2::text[], $3::uuid[], $4::int8[], $5::int8[])
                 on conflict (tenant_id, status, assignee_key) do update
                    set conversations = inbox_totals.conversations + excluded.conversations,
                        incoming = inbox_totals.incoming + excluded.incoming",
            )
            .bind(totals.iter().map(|(b, _)| b.0).collect::<Vec<_>>())
            .bind(totals.iter().map(|(b, _)| b.1.clone()).collect::<Vec<_>>())
            .bind(totals.iter().map(|(b, _)| b.2).collect::<Vec<_>>())
            .bind(totals.iter().map(|(_, d)| d.0).collect::<Vec<_>>())
            .bind(totals.iter().map(|(_, d)| d.1).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        // An emptied bucket is removed, so the rows do not depend on how events were batched.
        // Only a bucket that lost something can have become empty.
        let shrunk: Vec<&Bucket> = totals
            .iter()
            .filter(|(_, (c, i))| *c < 0 || *i < 0)
            .map(|(b, _)| *b)
            .collect();
        if !shrunk.is_empty() {
            sqlx::query(
                "delete from inbox_totals t using unnest($1::uuid[], $2::text[], $3::uuid[]) k(tenant_id, status, assignee_key)
                  where t.tenant_id = k.tenant_id and t.status = k.status
                    and t.assignee_key = k.assignee_key and t.conversations = 0 and t.incoming = 0",
            )
            .bind(shrunk.iter().map(|b| b.0).collect::<Vec<_>>())
            .bind(shrunk.iter().map(|b| b.1.clone()).collect::<Vec<_>>())
            .bind(shrunk.iter().map(|b| b.2).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }

        let agent_reads: Vec<(&(Uuid, Bucket), &i64)> = agent_reads.iter().collect();
        if agent_reads.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "insert into inbox_agent_reads (tenant_id, agent_id, status, assignee_key, read_incoming)
             select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::int8[])
             on conflict (tenant_id, agent_id, status, assignee_key) do update
                set read_incoming = inbox_agent_reads.read_incoming + excluded.read_incoming",
        )
        .bind(agent_reads.iter().map(|((_, b), _)| b.0).collect::<Vec<_>>())
        .bind(agent_reads.iter().map(|((a, _), _)| *a).collect::<Vec<_>>())
        .bind(agent_reads.iter().map(|((_, b), _)| b.1.clone()).collect::<Vec<_>>())
        .bind(agent_reads.iter().map(|((_, b), _)| b.2).collect::<Vec<_>>())
        .bind(agent_reads.iter().map(|(_, n)| **n).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        let shrunk: Vec<&(Uuid, Bucket)> = agent_reads
            .iter()
            .filter(|(_, n)| **n < 0)
            .map(|(k, _)| *k)
            .collect();
        if !shrunk.is_empty() {
            sqlx::query(
                "delete from inbox_agent_reads r
                  using unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[]) k(tenant_id, agent_id, status, assignee_key)
                  where r.tenant_id = k.tenant_id and r.agent_id = k.agent_id and r.status = k.status
                    and r.assignee_key = k.assignee_key and r.read_incoming = 0",
            )
            .bind(shrunk.iter().map(|(_, b)| b.0).collect::<Vec<_>>())
            .bind(shrunk.iter().map(|(a, _)| *a).collect::<Vec<_>>())
            .bind(shrunk.iter().map(|(_, b)| b.1.clone()).collect::<Vec<_>>())
            .bind(shrunk.iter().map(|(_, b)| b.2).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Projector for Inbox {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "inbox_conversations",
            "inbox_messages",
            "inbox_search",
            "inbox_reads",
            "inbox_totals",
            "inbox_agent_reads",
        ]
    }

    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let conversations: Vec<&StoredEvent> = events
            .iter()
            .filter(|e| e.aggregate_type == "Conversation")
            .collect();
        let mut keys: Vec<ConversationKey> = conversations
            .iter()
            .filter_map(|e| Some((e.tenant_id, e.resource_id()?)))
            .collect();
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::load(tx, &keys).await?;
        for stored in conversations {
            let event = ConversationEvent::deserialize(&stored.payload)
                .map_err(|e| anyhow::anyhow!("event {} does not read: {e}", stored.position))?;
            batch.apply(stored, event)?;
        }
        batch.save(tx).await
    }
}

/// Binds the delivery columns (status, sent, delivered, read, failed, error), in that order,
/// of the messages a statement writes: new ones and status changes alike.
fn bind_delivery<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    deliveries: impl Iterator<Item = &'q Delivery> + Clone,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let time = |f: fn(&Delivery) -> Option<DateTime<Utc>>| -> Vec<Option<DateTime<Utc>>> {
        deliveries.clone().map(f).collect()
    };
    query
        .bind(
            deliveries
                .clone()
                .map(|d| d.status.clone())
                .collect::<Vec<_>>(),
        )
        .bind(time(|d| d.sent_at))
        .bind(time(|d| d.delivered_at))
        .bind(time(|d| d.read_at))
        .bind(time(|d| d.failed_at))
        .bind(deliveries.map(|d| d.error.clone()).collect::<Vec<_>>())
}
