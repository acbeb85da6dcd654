//! The query API: the inbox list, one conversation, its timeline and unread totals, read
//! from the inbox read model, and the conversation's activity lines, read from the event
//! store. A read-model query may pass `min_position` (a command's answer) to wait, briefly,
//! until the read model has caught up with that command (read-your-writes); the activity
//! needs no such wait, since the store is the record itself.

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use commands::context::stream_id;
use domain::ids::{AgentId, ConversationId, MessageId, TeamId};
use domain::text::Label;
use projections::activity::{self, ActivityError, ActivityLine};
use projections::queries::{
    self, Assignee, ConversationRow, Counts, ListFilter, MessageRow, PageCursor, Sort,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{AppQuery, Auth, path_id};
use crate::state::AppState;

/// How long a query waits for `min_position` before answering 503.
const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(5);
/// How often a waiting query looks again without word of a projector commit.
const READ_YOUR_WRITES_POLL: Duration = Duration::from_millis(50);

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/conversations", get(list_conversations))
        .route("/conversations/{id}", get(get_conversation))
        .route("/conversations/{id}/messages", get(list_messages))
        .route("/conversations/{id}/activity", get(list_activity))
        .route("/unread", get(unread))
}

/// Filters of the inbox list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// `open` (default), `pending`, `resolved`, `snoozed` or `all`.
    status: Option<String>,
    /// `all` (default), `me`, `unassigned` or an agent id.
    assignee: Option<String>,
    /// A team id.
    team: Option<String>,
    /// `web`, `whatsapp` or `api`.
    source: Option<String>,
    /// A label.
    label: Option<String>,
    /// Words to find in contact fields and message text.
    q: Option<String>,
    /// `last_activity` (default, newest first) or `waiting_since` (waiting conversations,
    /// longest waiting first).
    sort: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 100, default 25.
    limit: Option<i64>,
    /// Wait until the read model has reached this position (a command's answer).
    min_position: Option<i64>,
}

/// Only `min_position`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConsistencyParams {
    /// Wait until the read model has reached this position (a command's answer).
    min_position: Option<i64>,
}

/// Paging of a conversation's timeline.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct MessageParams {
    /// Messages before this message id.
    before: Option<String>,
    /// Messages after this message id.
    after: Option<String>,
    /// Page size, 1 to 100, default 50.
    limit: Option<i64>,
    /// Wait until the read model has reached this position (a command's answer).
    min_position: Option<i64>,
}

/// Paging of a conversation's activity, like its timeline's but by `seq`, which both share.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ActivityParams {
    /// Lines with a smaller `seq` than this (a line's or a message's `seq`).
    before: Option<i64>,
    /// Page size, 1 to 200, default 200.
    limit: Option<i64>,
}

/// What the list answers besides the rows.
#[derive(Serialize, ToSchema)]
pub(crate) struct ListMeta {
    /// Sizes of the mine / unassigned / all views for the requested status.
    counts: Counts,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// A page of the inbox.
#[derive(Serialize, ToSchema)]
pub(crate) struct ConversationPage {
    data: Vec<ConversationRow>,
    meta: ListMeta,
}

/// A page of a timeline.
#[derive(Serialize, ToSchema)]
pub(crate) struct MessagePage {
    data: Vec<MessageRow>,
}

/// A page of a conversation's activity lines, oldest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct ActivityPage {
    data: Vec<ActivityLine>,
}

fn invalid(field: &str, detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_query", detail).at(field)
}

fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("`{value}` is not one of {allowed:?}"),
        ))
    }
}

/// A page size: `default` when none is given, otherwise 1 to `max`.
fn limit(raw: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    match raw.unwrap_or(default) {
        n if (1..=max).contains(&n) => Ok(n),
        n => Err(invalid(
            "limit",
            format!("limit is {n}; it must be between 1 and {max}"),
        )),
    }
}

/// Waits until the inbox read model has applied the event at `position`.
async fn reach(state: &AppState, position: Option<i64>) -> Result<(), ApiError> {
    let Some(position) = position else {
        return Ok(());
    };
    let deadline = Instant::now() + READ_YOUR_WRITES_WAIT;
    loop {
        let advanced = state.notifications.projected();
        tokio::pin!(advanced);
        advanced.as_mut().enable();
        if projections::runtime::has_reached(&state.pool, projections::inbox::NAME, position)
            .await?
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "projection_lagging",
                format!("the inbox has not reached position {position} yet; retry shortly"),
            )
            .at("min_position"));
        }
        // The next batch the inbox commits, or a look anyway in case word of it was lost.
        let _ = tokio::time::timeout(READ_YOUR_WRITES_POLL, advanced).await;
    }
}

fn filter(params: ListParams) -> Result<ListFilter, ApiError> {
    let status = params.status.unwrap_or_else(|| "open".into());
    one_of(
        "status",
        &status,
        &["open", "pending", "resolved", "snoozed", "all"],
    )?;
    let assignee = match params.assignee.as_deref().unwrap_or("all") {
        "all" => Assignee::All,
        "me" => Assignee::Me,
        "unassigned" => Assignee::Unassigned,
        other => Assignee::Agent(
            AgentId::parse(other)
                .map_err(|_| invalid("assignee", "use `me`, `unassigned`, `all` or an agent id"))?
                .as_uuid(),
        ),
    };
    let team = params
        .team
        .as_deref()
        .map(|t| TeamId::parse(t).map_err(|e| invalid("team", e.to_string())))
        .transpose()?
        .map(|t| t.as_uuid());
    if let Some(source) = &params.source {
        one_of("source", source, &["web", "whatsapp", "api"])?;
    }
    let label = params
        .label
        .as_deref()
        .map(|l| Label::parse(l).map_err(|e| invalid("label", e.to_string())))
        .transpose()?
        .map(|l| l.as_str().to_owned());
    let q = params
        .q
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty());
    if q.as_ref().is_some_and(|q| q.chars().count() > 200) {
        return Err(invalid("q", "a search is at most 200 characters"));
    }
    let sort = match params.sort.as_deref().unwrap_or("last_activity") {
        "last_activity" => Sort::LastActivity,
        "waiting_since" => Sort::WaitingSince,
        other => {
            return Err(invalid(
                "sort",
                format!("`{other}` is not `last_activity` or `waiting_since`"),
            ));
        }
    };
    let cursor = params
        .cursor
        .as_deref()
        .map(|c| {
            PageCursor::parse(c).ok_or_else(|| invalid("cursor", "not a cursor this API gave out"))
        })
        .transpose()?;
    Ok(ListFilter {
        status: (status != "all").then_some(status),
        assignee,
        team,
        source: params.source,
        label,
        q,
        sort,
        cursor,
        limit: limit(params.limit, 25, 100)?,
    })
}

/// The inbox: conversations by view, status and filters, newest activity first, page by page.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "inbox", params(ListParams),
    security(("bearer" = [])),
    responses((status = 200, body = ConversationPage), (status = 422, body = crate::error::Problem),
              (status = 503, description = "`min_position` not reached in time", body = crate::error::Problem)))]
pub(crate) async fn list_conversations(
    State(state): State<AppState>,
    auth: Auth,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<Json<ConversationPage>, ApiError> {
    let me = auth.principal.agent_id;
    let min_position = params.min_position;
    let filter = filter(params)?;
    reach(&state, min_position).await?;
    let tenant = auth.principal.tenant_id.as_uuid();
    let (data, next_cursor) = queries::list(&state.pool, tenant, me.as_uuid(), &filter).await?;
    let counts =
        queries::view_sizes(&state.pool, tenant, me.as_uuid(), filter.status.as_deref()).await?;
    Ok(Json(ConversationPage {
        data,
        meta: ListMeta {
            counts,
            next_cursor,
        },
    }))
}

/// One conversation, with the caller's unread count.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "inbox",
    params(("id" = String, Path, description = "Conversation id"), ConsistencyParams),
    security(("bearer" = [])),
    responses((status = 200, body = ConversationRow), (status = 404, body = crate::error::Problem)))]
pub(crate) async fn get_conversation(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<ConsistencyParams>,
) -> Result<Json<ConversationRow>, ApiError> {
    let id = path_id("id", &id, ConversationId::parse)?;
    reach(&state, params.min_position).await?;
    let p = auth.principal;
    queries::get(
        &state.pool,
        p.tenant_id.as_uuid(),
        p.agent_id.as_uuid(),
        id.as_uuid(),
    )
    .await?
    .map(Json)
    .ok_or_else(conversation_not_found)
}

fn conversation_not_found() -> ApiError {
    ApiError::not_found("conversation_not_found", "conversation not found")
}

/// A conversation's timeline, oldest first, with each message's delivery status.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "inbox",
    params(("id" = String, Path, description = "Conversation id"), MessageParams),
    security(("bearer" = [])),
    responses((status = 200, body = MessagePage), (status = 404, body = crate::error::Problem)))]
pub(crate) async fn list_messages(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<MessageParams>,
) -> Result<Json<MessagePage>, ApiError> {
    let id = path_id("id", &id, ConversationId::parse)?;
    let message = |field: &str, raw: Option<String>| {
        raw.map(|m| {
            MessageId::parse(&m)
                .map(|m| m.as_uuid())
                .map_err(|e| invalid(field, e.to_string()))
        })
        .transpose()
    };
    let before: Option<Uuid> = message("before", params.before)?;
    let after: Option<Uuid> = message("after", params.after)?;
    let limit = limit(params.limit, 50, 100)?;
    reach(&state, params.min_position).await?;
    let p = auth.principal;
    let tenant = p.tenant_id.as_uuid();
    if queries::get(&state.pool, tenant, p.agent_id.as_uuid(), id.as_uuid())
        .await?
        .is_none()
    {
        return Err(conversation_not_found());
    }
    let data = queries::messages(
        &state.pool,
        tenant,
        id.as_uuid(),
        (before, after),
        limit,
        queries::Timeline::WithNotes,
    )
    .await?;
    Ok(Json(MessagePage { data }))
}

/// A conversation's activity lines (started, assigned, status changed, labels, WhatsApp
/// number), oldest first: the newest `limit` before `before`. Numbered by `seq` like the
/// timeline, so the console merges both. Any caller of the tenant may read it: unlike the
/// full history (admins and auditors), it shows only changes to what the inbox already
/// shows, and who made them; no message, request or causation ids.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/activity", tag = "inbox",
    params(("id" = String, Path, description = "Conversation id"), ActivityParams),
    security(("bearer" = [])),
    responses((status = 200, body = ActivityPage), (status = 400, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub(crate) async fn list_activity(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<ActivityParams>,
) -> Result<Json<ActivityPage>, ApiError> {
    let id = path_id("id", &id, ConversationId::parse)?;
    if let Some(before) = params.before.filter(|b| *b < 1) {
        return Err(invalid(
            "before",
            format!("before is {before}; sequences start at 1"),
        ));
    }
    let limit = limit(params.limit, activity::MAX_PAGE, activity::MAX_PAGE)?;
    // The stream id holds the caller's tenant: another tenant's conversation is not found.
    let aggregate_id = stream_id(auth.principal.tenant_id, id);
    let data = activity::page(&state.pool, &aggregate_id, params.before, limit)
        .await
        .map_err(|error| match error {
            ActivityError::Database(e) => e.into(),
            corrupt @ ActivityError::Corrupt(_) => ApiError::internal(corrupt),
        })?;
    // A conversation's first event is always a line, so only an empty page needs to ask
    // whether the conversation exists.
    if data.is_empty()
        && !projections::audit::exists(&state.pool, "Conversation", &aggregate_id).await?
    {
        return Err(conversation_not_found());
    }
    Ok(Json(ActivityPage { data }))
}

/// The caller's unread incoming messages in open conversations: assigned to them, to nobody,
/// and in all.
#[utoipa::path(get, path = "/api/v1/unread", tag = "inbox", params(ConsistencyParams),
    security(("bearer" = [])), responses((status = 200, body = Counts)))]
pub(crate) async fn unread(
    State(state): State<AppState>,
    auth: Auth,
    AppQuery(params): AppQuery<ConsistencyParams>,
) -> Result<Json<Counts>, ApiError> {
    reach(&state, params.min_position).await?;
    let p = auth.principal;
    Ok(Json(
        queries::unread(&state.pool, p.tenant_id.as_uuid(), p.agent_id.as_uuid()).await?,
    ))
}
