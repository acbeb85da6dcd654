//! The query API: the inbox list, one conversation, its timeline and unread totals, all read
//! from the inbox read model. A query may pass `min_position` (a command's answer) to wait,
//! briefly, until the read model has caught up with that command (read-your-writes).

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use domain::ids::{AgentId, ConversationId, MessageId, TeamId};
use domain::text::Label;
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

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/conversations", get(list_conversations))
        .route("/conversations/{id}", get(get_conversation))
        .route("/conversations/{id}/messages", get(list_messages))
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

fn limit(raw: Option<i64>, default: i64) -> Result<i64, ApiError> {
    match raw.unwrap_or(default) {
        n @ 1..=100 => Ok(n),
        n => Err(invalid(
            "limit",
            format!("limit is {n}; it must be between 1 and 100"),
        )),
    }
}

/// Waits until the inbox read model has applied the event at `position`.
async fn reach(state: &AppState, position: Option<i64>) -> Result<(), ApiError> {
    let Some(position) = position else {
        return Ok(());
    };
    let deadline = Instant::now() + READ_YOUR_WRITES_WAIT;
    let mut pause = Duration::from_millis(2);
    while !projections::runtime::has_reached(&state.pool, projections::inbox::NAME, position)
        .await?
    {
        if Instant::now() >= deadline {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "projection_lagging",
                format!("the inbox has not reached position {position} yet; retry shortly"),
            )
            .at("min_position"));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    Ok(())
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
        limit: limit(params.limit, 25)?,
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
    let limit = limit(params.limit, 50)?;
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
