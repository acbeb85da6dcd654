//! The event feed for analytics: the caller's tenant's events in the global order, in
//! CloudEvents form, page by page (`GET /events`) or live as Server-Sent Events
//! (`GET /events/stream`).
//!
//! Both read through the one gap-free reader (DESIGN.md, decision 2), so every consumer sees
//! the same order, and a consumer that resumes from a cursor it was given gets every later
//! event exactly once.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use futures::stream::{Stream, StreamExt};
use projections::feed::CloudEvent;
use projections::reader::{Cursor, StoredEvent, read_tenant_after};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{AppQuery, Auth};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/events", get(list_events))
        .route("/events/stream", get(stream_events))
}

/// Page size when the client gives none, and the largest it may ask for.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
/// Seconds between heartbeats on an idle stream when the client gives none: short enough
/// for proxies that cut idle connections at 30 s or more.
const DEFAULT_HEARTBEAT: u64 = 15;

/// Where to start and what to keep.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct FeedParams {
    /// A `cursor` (or `next_cursor`) this feed gave out: start after that event. From the
    /// first event when absent.
    after: Option<String>,
    /// Events read per page, 1 to 1000, default 100.
    limit: Option<i64>,
    /// Comma-separated event types to keep (e.g. `MessageReceived,MessagePosted`); all when
    /// absent.
    types: Option<String>,
}

/// Where to start, what to keep and how often to show the connection is alive.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StreamParams {
    /// A cursor to start after, when no `Last-Event-ID` header is sent (the header wins:
    /// it is what a reconnecting `EventSource` sends).
    after: Option<String>,
    /// Comma-separated event types to keep; all when absent.
    types: Option<String>,
    /// Seconds between heartbeat comments while no event comes, 1 to 300, default 15.
    heartbeat: Option<u64>,
}

/// A page of the feed.
#[derive(Serialize, ToSchema)]
pub(crate) struct FeedPage {
    /// The events, in the global order.
    data: Vec<CloudEvent>,
    /// Pass as `after` for the next page. It moves past every event this page read, kept or
    /// filtered out by `types`, and stays where it was when nothing new was readable.
    next_cursor: String,
    /// True when the page was full: more events may be readable at once. False means the
    /// feed has caught up; poll again later (or use the stream).
    has_more: bool,
}

fn invalid(field: &str, detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_query", detail).at(field)
}

/// A cursor from a query parameter; none means the start of the order.
pub(crate) fn cursor(field: &str, raw: Option<&str>) -> Result<Cursor, ApiError> {
    match raw {
        None => Ok(Cursor::default()),
        Some(raw) => raw.parse().map_err(|_| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_cursor",
                "not a cursor this feed gave out; start without one, or from a `cursor` of an event",
            )
            .at(field)
        }),
    }
}

/// The event types to keep; `None` keeps all.
fn types(raw: Option<&str>) -> Result<Option<HashSet<String>>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let names: HashSet<String> = raw.split(',').map(|t| t.trim().to_owned()).collect();
    if let Some(bad) = names
        .iter()
        .find(|t| t.is_empty() || t.len() > 100 || !t.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(invalid(
            "types",
            format!("`{bad}` is not an event type name (letters and digits, e.g. `MessagePosted`)"),
        ));
    }
    Ok(Some(names))
}

fn kept(types: &Option<HashSet<String>>, event: &StoredEvent) -> bool {
    types.as_ref().is_none_or(|t| t.contains(&event.event_type))
}

/// The tenant's events after a cursor, in the global order, in CloudEvents form.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(FeedParams),
    security(("bearer" = [])),
    responses((status = 200, body = FeedPage),
              (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub(crate) async fn list_events(
    State(state): State<AppState>,
    auth: Auth,
    AppQuery(params): AppQuery<FeedParams>,
) -> Result<Json<FeedPage>, ApiError> {
    auth.require_event_reader()?;
    let after = cursor("after", params.after.as_deref())?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(invalid("limit", format!("`limit` is 1 to {MAX_LIMIT}")));
    }
    let types = types(params.types.as_deref())?;
    let events = read_tenant_after(
        &state.pool,
        auth.principal.tenant_id.as_uuid(),
        after,
        limit,
    )
    .await?;
    let next_cursor = events.last().map_or(after, StoredEvent::cursor);
    Ok(Json(FeedPage {
        has_more: events.len() as i64 == limit,
        data: events
            .iter()
            .filter(|e| kept(&types, e))
            .map(CloudEvent::from_stored)
            .collect(),
        next_cursor: next_cursor.to_string(),
    }))
}

/// The tenant's events as Server-Sent Events: those after the cursor, then live ones as they
/// commit. Each event's SSE `id` is its cursor, so a reconnecting `EventSource` resumes by
/// itself with `Last-Event-ID`. Heartbeats are SSE comments (`: heartbeat`).
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events", params(StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event's cursor")),
    security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream",
               description = "`data:` is one CloudEvent (the same JSON as in `GET /events`), `id:` its cursor"),
              (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub(crate) async fn stream_events(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    AppQuery(params): AppQuery<StreamParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    auth.require_event_reader()?;
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| invalid("Last-Event-ID", "`Last-Event-ID` is not text"))
        })
        .transpose()?;
    let after = match last_event_id {
        Some(id) => cursor("Last-Event-ID", Some(id))?,
        None => cursor("after", params.after.as_deref())?,
    };
    let types = types(params.types.as_deref())?;
    let heartbeat = params.heartbeat.unwrap_or(DEFAULT_HEARTBEAT);
    if !(1..=300).contains(&heartbeat) {
        return Err(invalid("heartbeat", "`heartbeat` is 1 to 300 seconds"));
    }
    let mut closing = state.closing.clone();
    let shutdown = async move {
        // A dropped sender means the server is gone: close too.
        let _ = closing.wait_for(|closing| *closing).await;
    };
    let events = state
        .tail
        .subscribe(auth.principal.tenant_id.as_uuid(), after)
        .take_until(shutdown)
        // A database failure ends the stream; the client resumes from its last event.
        .take_while(|item| {
            if let Err(error) = item {
                tracing::warn!(error.message = %error, "an event stream ended on a database error");
            }
            std::future::ready(item.is_ok())
        })
        .filter_map(move |item| {
            let event = item.ok().filter(|e| kept(&types, e)).map(|e| {
                let data = serde_json::to_string(&CloudEvent::from_stored(&e))
                    .expect("a CloudEvent serializes");
                Ok(Event::default().id(e.cursor().to_string()).data(data))
            });
            std::future::ready(event)
        });
    Ok(Sse::new(events).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(heartbeat))
            .text("heartbeat"),
    ))
}
