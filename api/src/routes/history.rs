//! The auditors' reads: every event of a conversation, widget or domain in order, with who
//! did what and when, and a conversation's state as it was at a past point.
//!
//! Histories come straight from the event store, not from a read model: they are the
//! record itself. They are streamed page by page (JSON, or NDJSON with
//! `Accept: application/x-ndjson`), so a history of any length is answered in bounded memory.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use commands::context::stream_id;
use domain::ids::{ConversationId, DomainId, InvalidId, WidgetId};
use futures::stream::{self, Stream, StreamExt};
use projections::audit::{self, ConversationState, HISTORY_PAGE, HistoryEvent, StateError, Until};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{AppQuery, Auth, path_id};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/conversations/{id}/history", get(conversation_history))
        .route("/widgets/{id}/history", get(widget_history))
        .route("/domains/{id}/history", get(domain_history))
        .route("/conversations/{id}/state", get(conversation_state))
}

/// The media type of a history streamed one event per line.
const NDJSON: &str = "application/x-ndjson";

/// A history takes no query parameters; any given is refused, as everywhere in the API.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoParams {}

/// A whole history, as JSON. Only describes the streamed answer in the OpenAPI document:
/// the handler writes the same shape piece by piece instead of building it.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct History {
    /// Every event, by sequence.
    data: Vec<HistoryEvent>,
}

/// The point of a past state: at most one of the two; the current state without either.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StateParams {
    /// RFC 3339 time: the state after every event recorded at or before it.
    as_of: Option<String>,
    /// Aggregate version (an event's `sequence`): the state right after that event.
    version: Option<i64>,
}

/// Which aggregate a history is of.
struct Kind {
    aggregate_type: &'static str,
    not_found: &'static str,
    detail: &'static str,
}

const CONVERSATION: Kind = Kind {
    aggregate_type: "Conversation",
    not_found: "conversation_not_found",
    detail: "conversation not found",
};
const WIDGET: Kind = Kind {
    aggregate_type: "Widget",
    not_found: "widget_not_found",
    detail: "widget not found",
};
const DOMAIN: Kind = Kind {
    aggregate_type: "Domain",
    not_found: "domain_not_found",
    detail: "domain not found",
};

/// Every event of a conversation, in order.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/history", tag = "audit",
    params(("id" = String, Path, description = "Conversation id")),
    security(("bearer" = [])),
    responses((status = 200, body = History, content_type = "application/json",
               description = "Every event; with `Accept: application/x-ndjson`, one event per line"),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub(crate) async fn conversation_history(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    AppQuery(_none): AppQuery<NoParams>,
) -> Result<Response, ApiError> {
    history(
        state,
        auth,
        &id,
        ConversationId::parse,
        CONVERSATION,
        &headers,
    )
    .await
}

/// Every event of a widget, in order, deleted widgets included.
#[utoipa::path(get, path = "/api/v1/widgets/{id}/history", tag = "audit",
    params(("id" = String, Path, description = "Widget id")),
    security(("bearer" = [])),
    responses((status = 200, body = History, content_type = "application/json",
               description = "Every event; with `Accept: application/x-ndjson`, one event per line"),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub(crate) async fn widget_history(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    AppQuery(_none): AppQuery<NoParams>,
) -> Result<Response, ApiError> {
    history(state, auth, &id, WidgetId::parse, WIDGET, &headers).await
}

/// Every event of a domain, in order, revoked domains included.
#[utoipa::path(get, path = "/api/v1/domains/{id}/history", tag = "audit",
    params(("id" = String, Path, description = "Domain id")),
    security(("bearer" = [])),
    responses((status = 200, body = History, content_type = "application/json",
               description = "Every event; with `Accept: application/x-ndjson`, one event per line"),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub(crate) async fn domain_history(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    AppQuery(_none): AppQuery<NoParams>,
) -> Result<Response, ApiError> {
    history(state, auth, &id, DomainId::parse, DOMAIN, &headers).await
}

async fn history<T: std::fmt::Display>(
    state: AppState,
    auth: Auth,
    raw_id: &str,
    parse: fn(&str) -> Result<T, InvalidId>,
    kind: Kind,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    auth.require_event_reader()?;
    let id = path_id("id", raw_id, parse)?;
    let aggregate_id = stream_id(auth.principal.tenant_id, id);
    if !audit::exists(&state.pool, kind.aggregate_type, &aggregate_id).await? {
        return Err(ApiError::not_found(kind.not_found, kind.detail));
    }
    let ndjson = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(NDJSON));
    let events = events(state.pool, kind.aggregate_type, aggregate_id);
    let (content_type, body) = if ndjson {
        let lines = events.map(|event| {
            event.map(|event| {
                let mut line = serde_json::to_vec(&HistoryEvent::from_stored(&event))
                    .expect("a history event serializes");
                line.push(b'\n');
                Bytes::from(line)
            })
        });
        (NDJSON, Body::from_stream(lines))
    } else {
        let items = events.enumerate().map(|(index, event)| {
            event.map(|event| {
                let mut item = if index == 0 { Vec::new() } else { vec![b','] };
                serde_json::to_writer(&mut item, &HistoryEvent::from_stored(&event))
                    .expect("a history event serializes");
                Bytes::from(item)
            })
        });
        let open = stream::once(async { Ok(Bytes::from_static(b"{\"data\":[")) });
        let close = stream::once(async { Ok(Bytes::from_static(b"]}")) });
        (
            "application/json",
            Body::from_stream(open.chain(items).chain(close)),
        )
    };
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response())
}

/// An aggregate's events, read a page at a time as the client takes them. A failure after
/// the answer has started cannot become a problem+json any more: it is logged and ends the
/// body early, which the client sees as a cut-off answer (no closing `]}` in JSON).
fn events(
    pool: PgPool,
    aggregate_type: &'static str,
    aggregate_id: String,
) -> impl Stream<Item = Result<projections::reader::StoredEvent, sqlx::Error>> + Send + 'static {
    stream::unfold(Some(0_i64), move |after| {
        let pool = pool.clone();
        let aggregate_id = aggregate_id.clone();
        async move {
            let after = after?;
            let page = audit::history_page(
                &pool,
                aggregate_type,
                &aggregate_id,
                after,
                Until::End,
                HISTORY_PAGE,
            )
            .await;
            match page {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    let next = (page.len() as i64 == HISTORY_PAGE)
                        .then(|| page.last().map(|e| e.sequence))
                        .flatten();
                    Some((stream::iter(page.into_iter().map(Ok)).left_stream(), next))
                }
                Err(error) => {
                    tracing::error!(error.cause_chain = ?error, error.message = %error,
                        "a history stream failed after it had started");
                    Some((stream::iter([Err(error)]).right_stream(), None))
                }
            }
        }
    })
    .flatten()
}

fn invalid(field: &str, detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_query", detail).at(field)
}

/// A conversation's state at a past point, rebuilt by replaying its events up to it.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/state", tag = "audit",
    params(("id" = String, Path, description = "Conversation id"), StateParams),
    security(("bearer" = [])),
    responses((status = 200, body = ConversationState),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub(crate) async fn conversation_state(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<StateParams>,
) -> Result<Json<ConversationState>, ApiError> {
    auth.require_event_reader()?;
    let id = path_id("id", &id, ConversationId::parse)?;
    let until = match (params.as_of, params.version) {
        (Some(_), Some(_)) => {
            return Err(invalid("version", "give `as_of` or `version`, not both"));
        }
        (Some(as_of), None) => DateTime::parse_from_rfc3339(&as_of)
            .map(|t| Until::Time(t.with_timezone(&Utc)))
            .map_err(|e| invalid("as_of", format!("`as_of` is not an RFC 3339 time: {e}")))?,
        (None, Some(version)) if version < 1 => {
            return Err(invalid("version", "`version` starts at 1"));
        }
        (None, Some(version)) => Until::Version(version),
        (None, None) => Until::End,
    };
    let aggregate_id = stream_id(auth.principal.tenant_id, id);
    if !audit::exists(&state.pool, CONVERSATION.aggregate_type, &aggregate_id).await? {
        return Err(ApiError::not_found(
            CONVERSATION.not_found,
            CONVERSATION.detail,
        ));
    }
    let found = audit::conversation_state(&state.pool, &aggregate_id, until)
        .await
        .map_err(|error| match error {
            StateError::NotStarted => ApiError::not_found(
                "conversation_not_started",
                "the conversation had not started at `as_of`",
            )
            .at("as_of"),
            StateError::Database(e) => e.into(),
            corrupt @ StateError::Corrupt(_) => ApiError::internal(corrupt),
        })?;
    if let Until::Version(version) = until
        && found.version < version
    {
        return Err(invalid(
            "version",
            format!(
                "the conversation has {} events; `version` {version} is in its future",
                found.version
            ),
        ));
    }
    Ok(Json(found))
}
