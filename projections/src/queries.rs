//! Reads of the inbox read models, for the query API. Every query is keyed by tenant first.

use chrono::{DateTime, Utc};
use domain::conversation::{DeliveryStatus, Direction};
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::wire;

/// A conversation as the inbox lists it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, ToSchema)]
pub struct ConversationRow {
    /// Conversation id.
    #[sqlx(rename = "conversation_id")]
    pub id: Uuid,
    /// `web`, `whatsapp` or `api`.
    pub source: String,
    /// Contact's name.
    pub contact_name: Option<String>,
    /// Contact's e-mail address.
    pub contact_email: Option<String>,
    /// Contact's phone number.
    pub contact_phone: Option<String>,
    /// The widget, for `web`.
    pub widget_id: Option<Uuid>,
    /// `open`, `pending`, `resolved` or `snoozed`.
    pub status: String,
    /// Until when, while snoozed.
    pub snoozed_until: Option<DateTime<Utc>>,
    /// Responsible agent.
    pub assignee_id: Option<Uuid>,
    /// Responsible team.
    pub team_id: Option<Uuid>,
    /// Labels.
    pub labels: Vec<String>,
    /// The start of the last message (notes excluded).
    pub last_message_preview: Option<String>,
    /// When the last message was recorded.
    pub last_message_at: Option<DateTime<Utc>>,
    /// The newest message or the start, what the list sorts by.
    pub last_activity_at: DateTime<Utc>,
    /// When the conversation started.
    pub created_at: DateTime<Utc>,
    /// Messages and notes.
    pub message_count: i32,
    /// Since when the contact has been waiting for an answer, if it is.
    pub waiting_since: Option<DateTime<Utc>>,
    /// Delivery status of the last outgoing message.
    pub last_outgoing_status: Option<String>,
    /// Incoming messages the caller has not read.
    pub unread_count: i64,
}

/// Where an outgoing message's delivery stands, with the time of each step: what the
/// timeline shows, and what the audit fold rebuilds at a past point.
#[derive(Debug, Clone, Default, PartialEq, Serialize, sqlx::FromRow, ToSchema)]
pub struct Delivery {
    /// Delivery status of outgoing messages: `pending`, `sent`, `delivered`, `read`, `failed`.
    pub status: Option<String>,
    /// When the channel took it.
    pub sent_at: Option<DateTime<Utc>>,
    /// When it reached the contact's device.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When the contact read it.
    pub read_at: Option<DateTime<Utc>>,
    /// When it failed.
    pub failed_at: Option<DateTime<Utc>>,
    /// Why it failed.
    pub error: Option<String>,
}

impl Delivery {
    /// The delivery of a message just written: `pending` when it goes out, none otherwise.
    pub fn of(direction: Direction) -> Self {
        Self {
            status: (direction == Direction::Outgoing).then(|| wire(&DeliveryStatus::Pending)),
            ..Self::default()
        }
    }

    /// Records a status the message reached `at`, with the reason for a failure.
    pub fn record(&mut self, status: DeliveryStatus, error: Option<String>, at: DateTime<Utc>) {
        match status {
            DeliveryStatus::Pending => {}
            DeliveryStatus::Sent => self.sent_at = Some(at),
            DeliveryStatus::Delivered => self.delivered_at = Some(at),
            DeliveryStatus::Read => self.read_at = Some(at),
            DeliveryStatus::Failed => self.failed_at = Some(at),
        }
        self.status = Some(wire(&status));
        if error.is_some() {
            self.error = error;
        }
    }
}

/// A message with its delivery status.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, ToSchema)]
pub struct MessageRow {
    /// Message id.
    #[sqlx(rename = "message_id")]
    pub id: Uuid,
    /// Order in the conversation: the sequence of the event that wrote it.
    pub seq: i64,
    /// `incoming`, `outgoing` or `note`.
    pub direction: String,
    /// The text; always render as text, never as HTML.
    pub content: String,
    /// Who wrote it (`agent:<id>`, …), for outgoing messages and notes.
    pub author: Option<String>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// How far it got, for outgoing messages.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub delivery: Delivery,
}

/// Sizes of the three inbox views, or the caller's unread totals in them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Counts {
    /// Assigned to the caller.
    pub mine: i64,
    /// Assigned to nobody.
    pub unassigned: i64,
    /// Everything.
    pub all: i64,
}

impl From<(i64, i64, i64)> for Counts {
    fn from((mine, unassigned, all): (i64, i64, i64)) -> Self {
        Self {
            mine,
            unassigned,
            all,
        }
    }
}

/// Whose conversations to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignee {
    /// Everyone's.
    All,
    /// The caller's.
    Me,
    /// Nobody's.
    Unassigned,
    /// One agent's.
    Agent(Uuid),
}

/// The list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Newest activity first.
    LastActivity,
    /// Conversations waiting for an answer, longest waiting first.
    WaitingSince,
}

/// Where a page ends: the sort key and id of its last row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor {
    at: DateTime<Utc>,
    id: Uuid,
}

impl PageCursor {
    /// Parses a cursor given back by a client.
    pub fn parse(raw: &str) -> Option<Self> {
        let (micros, id) = raw.split_once('_')?;
        Some(Self {
            at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: Uuid::parse_str(id).ok()?,
        })
    }

    /// The cursor's text form.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.at.timestamp_micros(), self.id.simple())
    }
}

/// What to list.
#[derive(Debug, Clone)]
pub struct ListFilter {
    /// A status, or `None` for all.
    pub status: Option<String>,
    /// Whose.
    pub assignee: Assignee,
    /// Only this team's.
    pub team: Option<Uuid>,
    /// Only this channel's.
    pub source: Option<String>,
    /// Only with this label.
    pub label: Option<String>,
    /// Full-text search over contact fields and message text.
    pub q: Option<String>,
    /// Order.
    pub sort: Sort,
    /// After this row.
    pub cursor: Option<PageCursor>,
    /// Page size.
    pub limit: i64,
}

/// Up to this many matching documents, a search looks their conversations up by id.
const RARE_MATCHES: i64 = 10_000;

/// A search the planner expects to be common first walks this many conversations in the
/// list's order; most pages of a common word fill from them.
const FIRST_WALK: i64 = 250;

const COLUMNS: &str =
    "select c.conversation_id, c.source, c.contact_name, c.contact_email, c.contact_phone,
        c.widget_id, c.status, c.snoozed_until, c.assignee_id, c.team_id, c.labels,
        c.last_message_preview, c.last_message_at, c.last_activity_at, c.created_at,
        c.message_count, c.waiting_since, c.last_outgoing_status,
        (c.incoming_count - coalesce(r.read_incoming, 0))::int8 as unread_count";

const READS: &str = " left join inbox_reads r
     on r.tenant_id = c.tenant_id and r.conversation_id = c.conversation_id and r.agent_id = ";

/// Which conversations a search keeps, once the probe has told rare from common words.
enum Narrowing<'a> {
    /// Exactly these: every match was gathered.
    Ids(Vec<Uuid>),
    /// Those with a matching document, walking the list's order, through the first
    /// `within` conversations or all of them.
    Walk { q: &'a str, within: Option<i64> },
}

/// One page of the inbox and the cursor of the next one.
pub async fn list(
    pool: &PgPool,
    tenant: Uuid,
    me: Uuid,
    filter: &ListFilter,
) -> Result<(Vec<ConversationRow>, Option<String>), sqlx::Error> {
    let mut rows = match &filter.q {
        None => page(pool, tenant, me, filter, None).await?,
        Some(q) => search(pool, tenant, me, filter, q).await?,
    };
    let next = if rows.len() as i64 > filter.limit {
        rows.truncate(filter.limit as usize);
        rows.last().map(|last| {
            let at = match filter.sort {
                Sort::LastActivity => last.last_activity_at,
                Sort::WaitingSince => last.waiting_since.unwrap_or(last.last_activity_at),
            };
            PageCursor { at, id: last.id }.encode()
        })
    } else {
        None
    };
    Ok((rows, next))
}

/// A page of a search. Which plan is right depends on how many documents match: walking
/// the activity index until a page is full suits a common word and is a full scan for a
/// rare one, gathering every match suits a rare word and reads a common word's every
/// message. PostgreSQL cannot tell them apart from a tsvector's statistics alone, so:
/// a word its statistics call common gets a short walk first, which fills most pages;
/// otherwise the search index is asked for the matches, up to a bound, and a rare word's
/// conversations are looked up by id, a common one's filtered in order.
async fn search(
    pool: &PgPool,
    tenant: Uuid,
    me: Uuid,
    filter: &ListFilter,
    q: &str,
) -> Result<Vec<ConversationRow>, sqlx::Error> {
    if estimated_matches(pool, tenant, q).await? > RARE_MATCHES {
        let walk = Narrowing::Walk {
            q,
            within: Some(FIRST_WALK),
        };
        let rows = page(pool, tenant, me, filter, Some(walk)).await?;
        if rows.len() as i64 > filter.limit {
            return Ok(rows);
        }
    }
    let (documents, matches): (i64, Vec<Uuid>) = sqlx::query_as(
        "with m as (select conversation_id from inbox_search
                     where tenant_id = $1 and document @@ websearch_to_tsquery('simple', $2)
                     limit $3)
         select (select count(*) from m), array(select distinct conversation_id from m)",
    )
    .bind(tenant)
    .bind(q)
    .bind(RARE_MATCHES + 1)
    .persistent(false)
    .fetch_one(pool)
    .await?;
    let narrowing = if documents <= RARE_MATCHES {
        Narrowing::Ids(matches)
    } else {
        Narrowing::Walk { q, within: None }
    };
    page(pool, tenant, me, filter, Some(narrowing)).await
}

/// How many of the tenant's documents the planner expects to match: its statistics know
/// the common words, and put a word they do not list at most at 0.5% of the rows.
async fn estimated_matches(pool: &PgPool, tenant: Uuid, q: &str) -> Result<i64, sqlx::Error> {
    let plan: serde_json::Value = sqlx::query_scalar(
        "explain (format json) select 1 from inbox_search
          where tenant_id = $1 and document @@ websearch_to_tsquery('simple', $2)",
    )
    .bind(tenant)
    .bind(q)
    .persistent(false)
    .fetch_one(pool)
    .await?;
    Ok(plan[0]["Plan"]["Plan Rows"].as_i64().unwrap_or(0))
}

/// One page of the list, narrowed by a search or not, with one row more than the page
/// when there is a next page.
async fn page(
    pool: &PgPool,
    tenant: Uuid,
    me: Uuid,
    filter: &ListFilter,
    narrowing: Option<Narrowing<'_>>,
) -> Result<Vec<ConversationRow>, sqlx::Error> {
    let searching = narrowing.is_some();
    let mut query = QueryBuilder::<Postgres>::new(COLUMNS);
    match narrowing {
        Some(Narrowing::Walk {
            q,
            within: Some(within),
        }) => {
            query.push(" from (select * from inbox_conversations c");
            push_filters(&mut query, tenant, me, filter);
            push_order(&mut query, filter, within);
            query.push(") c").push(READS).push_bind(me).push(" where");
            push_has_match(&mut query, q);
        }
        narrowing => {
            query
                .push(" from inbox_conversations c")
                .push(READS)
                .push_bind(me);
            push_filters(&mut query, tenant, me, filter);
            match narrowing {
                Some(Narrowing::Ids(ids)) => {
                    query
                        .push(" and c.conversation_id = any(")
                        .push_bind(ids)
                        .push(")");
                }
                Some(Narrowing::Walk { q, .. }) => {
                    query.push(" and");
                    push_has_match(&mut query, q);
                }
                None => {}
            }
        }
    }
    push_order(&mut query, filter, filter.limit + 1);
    // A search is planned for the ids or words it carries; a cached generic plan would not
    // see them.
    query
        .build_query_as()
        .persistent(!searching)
        .fetch_all(pool)
        .await
}

/// ` where` and every filter of the list but the search, cursor included.
fn push_filters(
    query: &mut QueryBuilder<'_, Postgres>,
    tenant: Uuid,
    me: Uuid,
    filter: &ListFilter,
) {
    query.push(" where c.tenant_id = ").push_bind(tenant);
    if let Some(status) = &filter.status {
        query.push(" and c.status = ").push_bind(status.clone());
    }
    match filter.assignee {
        Assignee::All => {}
        Assignee::Me => {
            query.push(" and c.assignee_id = ").push_bind(me);
        }
        Assignee::Unassigned => {
            query.push(" and c.assignee_id is null");
        }
        Assignee::Agent(agent) => {
            query.push(" and c.assignee_id = ").push_bind(agent);
        }
    }
    if let Some(team) = filter.team {
        query.push(" and c.team_id = ").push_bind(team);
    }
    if let Some(source) = &filter.source {
        query.push(" and c.source = ").push_bind(source.clone());
    }
    if let Some(label) = &filter.label {
        query
            .push(" and c.labels @> array[")
            .push_bind(label.clone())
            .push("]::text[]");
    }
    if filter.sort == Sort::WaitingSince {
        query.push(" and c.waiting_since is not null");
    }
    if let Some(cursor) = filter.cursor {
        let (key, _, compare) = order_of(filter.sort);
        query
            .push(format!(" and ({key}, c.conversation_id) {compare} ("))
            .push_bind(cursor.at)
            .push(", ")
            .push_bind(cursor.id)
            .push(")");
    }
}

/// The list's order and a limit.
fn push_order(query: &mut QueryBuilder<'_, Postgres>, filter: &ListFilter, limit: i64) {
    let (key, direction, _) = order_of(filter.sort);
    query
        .push(format!(
            " order by {key} {direction}, c.conversation_id {direction} limit "
        ))
        .push_bind(limit);
}

/// The sort key, its direction and the comparison that pages after a cursor.
fn order_of(sort: Sort) -> (&'static str, &'static str, &'static str) {
    match sort {
        Sort::LastActivity => ("c.last_activity_at", "desc", "<"),
        Sort::WaitingSince => ("c.waiting_since", "asc", ">"),
    }
}

/// ` exists` a document of the conversation that matches the search.
fn push_has_match<'a>(query: &mut QueryBuilder<'a, Postgres>, q: &'a str) {
    query
        .push(
            " exists (select 1 from inbox_search s
                       where s.tenant_id = c.tenant_id and s.conversation_id = c.conversation_id
                         and s.document @@ (select websearch_to_tsquery('simple', ",
        )
        .push_bind(q)
        .push(")))");
}

/// One conversation, with the caller's unread count.
pub async fn get(
    pool: &PgPool,
    tenant: Uuid,
    me: Uuid,
    conversation: Uuid,
) -> Result<Option<ConversationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{COLUMNS} from inbox_conversations c{READS} $1
          where c.tenant_id = $2 and c.conversation_id = $3"
    ))
    .bind(me)
    .bind(tenant)
    .bind(conversation)
    .fetch_optional(pool)
    .await
}

/// The sizes of the mine / unassigned / all views for a status (`None`: every status).
pub async fn view_sizes(
    pool: &PgPool,
    tenant: Uuid,
    me: Uuid,
    status: Option<&str>,
) -> Result<Counts, sqlx::Error> {
    let counts: (i64, i64, i64) = sqlx::query_as(
        "select coalesce(sum(conversations) filter (where assignee_key = $2), 0)::int8,
                coalesce(sum(conversations) filter (where assignee_key = $3), 0)::int8,
                coalesce(sum(conversations), 0)::int8
           from inbox_totals
          where tenant_id = $1 and ($4::text is null or status = $4)",
    )
    .bind(tenant)
    .bind(me)
    .bind(Uuid::nil())
    .bind(status)
    .fetch_one(pool)
    .await?;
    Ok(counts.into())
}

/// The caller's unread incoming messages in open conversations, per view.
pub async fn unread(pool: &PgPool, tenant: Uuid, me: Uuid) -> Result<Counts, sqlx::Error> {
    let counts: (i64, i64, i64) = sqlx::query_as(
        "with received as (
             select assignee_key, incoming as n from inbox_totals
              where tenant_id = $1 and status = 'open'
             union all
             select assignee_key, -read_incoming from inbox_agent_reads
              where tenant_id = $1 and agent_id = $2 and status = 'open')
         select coalesce(sum(n) filter (where assignee_key = $2), 0)::int8,
                coalesce(sum(n) filter (where assignee_key = $3), 0)::int8,
                coalesce(sum(n), 0)::int8
           from received",
    )
    .bind(tenant)
    .bind(me)
    .bind(Uuid::nil())
    .fetch_one(pool)
    .await?;
    Ok(counts.into())
}

/// Which entries of a timeline a reader sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeline {
    /// The team's view: messages and private notes.
    WithNotes,
    /// The contact's view: messages only.
    MessagesOnly,
}

/// A page of a conversation's timeline, oldest first: the newest `limit` entries, or those
/// just before `before` or just after `after` (message ids).
pub async fn messages(
    pool: &PgPool,
    tenant: Uuid,
    conversation: Uuid,
    (before, after): (Option<Uuid>, Option<Uuid>),
    limit: i64,
    view: Timeline,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    let seq_of = "(select seq from inbox_messages
                    where tenant_id = $1 and conversation_id = $2 and message_id = $3)";
    let (bound, order) = match (before, after) {
        (_, Some(_)) => (format!("and seq > {seq_of}"), "asc"),
        (Some(_), None) => (format!("and seq < {seq_of}"), "desc"),
        (None, None) => ("and $3::uuid is null".to_owned(), "desc"),
    };
    let mut rows: Vec<MessageRow> = sqlx::query_as(&format!(
        "select message_id, seq, direction, content, author, created_at, status,
                sent_at, delivered_at, read_at, failed_at, error
           from inbox_messages
          where tenant_id = $1 and conversation_id = $2 {bound}
            and ($5 or direction <> 'note')
          order by seq {order}
          limit $4"
    ))
    .bind(tenant)
    .bind(conversation)
    .bind(after.or(before))
    .bind(limit)
    .bind(view == Timeline::WithNotes)
    .fetch_all(pool)
    .await?;
    rows.sort_by_key(|m| m.seq);
    Ok(rows)
}
