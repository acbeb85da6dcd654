//! The inbox projector: turns conversation events into the inbox list, the message timeline
//! with delivery status, read markers and the maintained counters behind unread counts and
//! the mine / unassigned / all view sizes.
//!
//! Counters are kept per (status, assignee) bucket. When a conversation changes status or
//! assignee, its conversation count, its incoming messages and every agent's read messages
//! move from the old bucket to the new one, so each total stays exact without counting.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::conversation::{ConversationEvent, ConversationStatus, DeliveryStatus, Direction};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::reader::StoredEvent;
use crate::runtime::Projector;

/// The projector's stored name.
pub const NAME: &str = "inbox";

/// How much of the last message the list shows.
const PREVIEW_CHARS: i32 = 140;

/// The inbox projector.
pub struct Inbox;

/// The text form of an enum that serializes as a bare string.
fn text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A conversation's counter bucket.
#[derive(Clone, PartialEq)]
struct Bucket {
    status: String,
    assignee_key: Uuid,
}

struct Event<'a> {
    tenant: Uuid,
    conversation: Uuid,
    at: DateTime<Utc>,
    sequence: i64,
    tx: &'a mut PgConnection,
}

impl Event<'_> {
    async fn bucket(&mut self) -> anyhow::Result<Option<(Bucket, i32)>> {
        let row: Option<(String, Option<Uuid>, i32)> = sqlx::query_as(
            "select status, assignee_id, incoming_count from inbox_conversations
              where tenant_id = $1 and conversation_id = $2",
        )
        .bind(self.tenant)
        .bind(self.conversation)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(|(status, assignee, incoming)| {
            let bucket = Bucket {
                status,
                assignee_key: assignee.unwrap_or_default(),
            };
            (bucket, incoming)
        }))
    }

    async fn add_to_totals(
        &mut self,
        bucket: &Bucket,
        conversations: i64,
        incoming: i64,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "insert into inbox_totals (tenant_id, status, assignee_key, conversations, incoming)
             values ($1, $2, $3, $4, $5)
             on conflict (tenant_id, status, assignee_key) do update
                set conversations = inbox_totals.conversations + excluded.conversations,
                    incoming = inbox_totals.incoming + excluded.incoming",
        )
        .bind(self.tenant)
        .bind(&bucket.status)
        .bind(bucket.assignee_key)
        .bind(conversations)
        .bind(incoming)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Moves the conversation, its incoming messages and its readers' read counts from one
    /// bucket to another.
    async fn move_bucket(
        &mut self,
        from: &Bucket,
        to: &Bucket,
        incoming: i32,
    ) -> anyhow::Result<()> {
        if from == to {
            return Ok(());
        }
        self.add_to_totals(from, -1, -i64::from(incoming)).await?;
        self.add_to_totals(to, 1, i64::from(incoming)).await?;
        for (bucket, sign) in [(from, -1i64), (to, 1)] {
            sqlx::query(
                "insert into inbox_agent_reads (tenant_id, agent_id, status, assignee_key, read_incoming)
                 select tenant_id, agent_id, $3, $4, $5 * read_incoming
                   from inbox_reads where tenant_id = $1 and conversation_id = $2
                 on conflict (tenant_id, agent_id, status, assignee_key) do update
                    set read_incoming = inbox_agent_reads.read_incoming + excluded.read_incoming",
            )
            .bind(self.tenant)
            .bind(self.conversation)
            .bind(&bucket.status)
            .bind(bucket.assignee_key)
            .bind(sign)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn add_message(
        &mut self,
        message: Uuid,
        direction: Direction,
        content: &str,
        author: Option<String>,
        created_at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let status = (direction == Direction::Outgoing).then(|| text(&DeliveryStatus::Pending));
        sqlx::query(
            "insert into inbox_messages
                 (tenant_id, conversation_id, message_id, seq, direction, content, author, created_at, status)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(self.tenant)
        .bind(self.conversation)
        .bind(message)
        .bind(self.sequence)
        .bind(text(&direction))
        .bind(content)
        .bind(author)
        .bind(created_at)
        .bind(&status)
        .execute(&mut *self.tx)
        .await?;
        let incoming = i32::from(direction == Direction::Incoming);
        let preview = (direction != Direction::Note).then_some(content);
        sqlx::query(
            "update inbox_conversations
                set message_count = message_count + 1,
                    incoming_count = incoming_count + $3,
                    last_message_preview = coalesce(left($4, $5), last_message_preview),
                    last_message_at = case when $4 is null then last_message_at else $6 end,
                    last_activity_at = $6,
                    waiting_since = case $7 when 'incoming' then coalesce(waiting_since, $8)
                                            when 'outgoing' then null
                                            else waiting_since end,
                    last_outgoing_status = case $7 when 'outgoing' then $9 else last_outgoing_status end,
                    search = search || to_tsvector('simple', $10)
              where tenant_id = $1 and conversation_id = $2",
        )
        .bind(self.tenant)
        .bind(self.conversation)
        .bind(incoming)
        .bind(preview)
        .bind(PREVIEW_CHARS)
        .bind(self.at)
        .bind(text(&direction))
        .bind(created_at)
        .bind(&status)
        .bind(content)
        .execute(&mut *self.tx)
        .await?;
        if incoming == 1
            && let Some((bucket, _)) = self.bucket().await?
        {
            self.add_to_totals(&bucket, 0, 1).await?;
        }
        Ok(())
    }

    /// Moves the conversation to the bucket `change` makes of its current one.
    async fn rebucket(&mut self, change: impl FnOnce(&Bucket) -> Bucket) -> anyhow::Result<()> {
        if let Some((from, incoming)) = self.bucket().await? {
            let to = change(&from);
            self.move_bucket(&from, &to, incoming).await?;
        }
        Ok(())
    }

    async fn set_assignment(
        &mut self,
        agent: Option<Uuid>,
        team: Option<Uuid>,
    ) -> anyhow::Result<()> {
        self.rebucket(|from| Bucket {
            status: from.status.clone(),
            assignee_key: agent.unwrap_or_default(),
        })
        .await?;
        sqlx::query(
            "update inbox_conversations set assignee_id = $3, team_id = $4
              where tenant_id = $1 and conversation_id = $2",
        )
        .bind(self.tenant)
        .bind(self.conversation)
        .bind(agent)
        .bind(team)
        .execute(&mut *self.tx)
        .await?;
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
            "inbox_reads",
            "inbox_totals",
            "inbox_agent_reads",
        ]
    }

    async fn apply(&self, tx: &mut PgConnection, stored: &StoredEvent) -> anyhow::Result<()> {
        if stored.aggregate_type != "Conversation" {
            return Ok(());
        }
        let event: ConversationEvent = serde_json::from_value(stored.payload.clone())?;
        let conversation = stored
            .resource_id()
            .ok_or_else(|| anyhow::anyhow!("malformed aggregate id {}", stored.aggregate_id))?;
        let mut e = Event {
            tenant: stored.tenant_id,
            conversation,
            at: stored.recorded_at,
            sequence: stored.sequence,
            tx,
        };
        use ConversationEvent as C;
        match event {
            C::ConversationStarted {
                source,
                contact,
                widget_id,
            } => {
                let name = contact.name.as_ref().map(|v| v.as_str().to_owned());
                let email = contact.email.as_ref().map(|v| v.as_str().to_owned());
                let phone = contact.phone.as_ref().map(|v| v.as_str().to_owned());
                sqlx::query(
                    "insert into inbox_conversations
                         (tenant_id, conversation_id, source, contact_name, contact_email, contact_phone,
                          widget_id, status, last_activity_at, created_at, search)
                     values ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $8,
                             to_tsvector('simple', concat_ws(' ', $4, $5, $6)))",
                )
                .bind(e.tenant)
                .bind(e.conversation)
                .bind(text(&source))
                .bind(name)
                .bind(email)
                .bind(phone)
                .bind(widget_id.map(|w| w.as_uuid()))
                .bind(e.at)
                .execute(&mut *e.tx)
                .await?;
                let open = Bucket {
                    status: text(&ConversationStatus::Open),
                    assignee_key: Uuid::nil(),
                };
                e.add_to_totals(&open, 1, 0).await?;
            }
            C::MessageReceived {
                message_id,
                content,
                sent_at,
            } => {
                e.add_message(
                    message_id.as_uuid(),
                    Direction::Incoming,
                    content.as_str(),
                    None,
                    sent_at,
                )
                .await?;
            }
            C::MessagePosted {
                message_id,
                content,
                author,
            } => {
                let at = e.at;
                e.add_message(
                    message_id.as_uuid(),
                    Direction::Outgoing,
                    content.as_str(),
                    Some(author.to_string()),
                    at,
                )
                .await?;
            }
            C::NoteAdded {
                message_id,
                content,
                author,
            } => {
                let at = e.at;
                e.add_message(
                    message_id.as_uuid(),
                    Direction::Note,
                    content.as_str(),
                    Some(author.to_string()),
                    at,
                )
                .await?;
            }
            C::MessageStatusChanged {
                message_id,
                status,
                error,
                at,
            } => {
                let column = match status {
                    DeliveryStatus::Pending => return Ok(()),
                    DeliveryStatus::Sent => "sent_at",
                    DeliveryStatus::Delivered => "delivered_at",
                    DeliveryStatus::Read => "read_at",
                    DeliveryStatus::Failed => "failed_at",
                };
                let seq: Option<i64> = sqlx::query_scalar(&format!(
                    "update inbox_messages set status = $4, {column} = $5, error = coalesce($6, error)
                      where tenant_id = $1 and conversation_id = $2 and message_id = $3
                      returning seq"
                ))
                .bind(e.tenant)
                .bind(e.conversation)
                .bind(message_id.as_uuid())
                .bind(text(&status))
                .bind(at)
                .bind(error)
                .fetch_optional(&mut *e.tx)
                .await?;
                sqlx::query(
                    "update inbox_conversations set last_outgoing_status = $4
                      where tenant_id = $1 and conversation_id = $2
                        and $3 = (select max(seq) from inbox_messages
                                   where tenant_id = $1 and conversation_id = $2 and direction = 'outgoing')",
                )
                .bind(e.tenant)
                .bind(e.conversation)
                .bind(seq)
                .bind(text(&status))
                .execute(&mut *e.tx)
                .await?;
            }
            C::ReadMarkerMoved {
                agent_id,
                last_read_message_id,
            } => {
                let Some((bucket, _)) = e.bucket().await? else {
                    return Ok(());
                };
                let (seq, read_incoming): (i64, i64) = sqlx::query_as(
                    "select m.seq, (select count(*) from inbox_messages i
                                     where i.tenant_id = $1 and i.conversation_id = $2
                                       and i.direction = 'incoming' and i.seq <= m.seq)
                       from inbox_messages m
                      where m.tenant_id = $1 and m.conversation_id = $2 and m.message_id = $3",
                )
                .bind(e.tenant)
                .bind(e.conversation)
                .bind(last_read_message_id.as_uuid())
                .fetch_one(&mut *e.tx)
                .await?;
                let previous: i64 = sqlx::query_scalar(
                    "select coalesce((select read_incoming from inbox_reads
                                       where tenant_id = $1 and conversation_id = $2 and agent_id = $3), 0)::int8",
                )
                .bind(e.tenant)
                .bind(e.conversation)
                .bind(agent_id.as_uuid())
                .fetch_one(&mut *e.tx)
                .await?;
                sqlx::query(
                    "insert into inbox_reads (tenant_id, conversation_id, agent_id, last_read_seq, read_incoming)
                     values ($1, $2, $3, $4, $5)
                     on conflict (tenant_id, conversation_id, agent_id) do update
                        set last_read_seq = excluded.last_read_seq, read_incoming = excluded.read_incoming",
                )
                .bind(e.tenant)
                .bind(e.conversation)
                .bind(agent_id.as_uuid())
                .bind(seq)
                .bind(read_incoming as i32)
                .execute(&mut *e.tx)
                .await?;
                sqlx::query(
                    "insert into inbox_agent_reads (tenant_id, agent_id, status, assignee_key, read_incoming)
                     values ($1, $2, $3, $4, $5)
                     on conflict (tenant_id, agent_id, status, assignee_key) do update
                        set read_incoming = inbox_agent_reads.read_incoming + excluded.read_incoming",
                )
                .bind(e.tenant)
                .bind(agent_id.as_uuid())
                .bind(&bucket.status)
                .bind(bucket.assignee_key)
                .bind(read_incoming - previous)
                .execute(&mut *e.tx)
                .await?;
            }
            C::ConversationAssigned { agent_id, team_id } => {
                e.set_assignment(agent_id.map(|a| a.as_uuid()), team_id.map(|t| t.as_uuid()))
                    .await?;
            }
            C::ConversationUnassigned {} => e.set_assignment(None, None).await?,
            C::ConversationStatusChanged {
                status,
                snoozed_until,
                ..
            } => {
                let status = text(&status);
                e.rebucket(|from| Bucket {
                    status: status.clone(),
                    assignee_key: from.assignee_key,
                })
                .await?;
                sqlx::query(
                    "update inbox_conversations set status = $3, snoozed_until = $4
                      where tenant_id = $1 and conversation_id = $2",
                )
                .bind(e.tenant)
                .bind(e.conversation)
                .bind(&status)
                .bind(snoozed_until)
                .execute(&mut *e.tx)
                .await?;
            }
            C::LabelAdded { label } => {
                sqlx::query(
                    "update inbox_conversations set labels = array_append(labels, $3)
                      where tenant_id = $1 and conversation_id = $2 and not ($3 = any(labels))",
                )
                .bind(e.tenant)
                .bind(e.conversation)
                .bind(label.as_str())
                .execute(&mut *e.tx)
                .await?;
            }
            C::LabelRemoved { label } => {
                sqlx::query(
                    "update inbox_conversations set labels = array_remove(labels, $3)
                      where tenant_id = $1 and conversation_id = $2",
                )
                .bind(e.tenant)
                .bind(e.conversation)
                .bind(label.as_str())
                .execute(&mut *e.tx)
                .await?;
            }
        }
        Ok(())
    }
}
