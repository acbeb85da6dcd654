//! The HTTP surface: `/api/v1` resources, health, metrics and the OpenAPI document.

pub(crate) mod agents;
pub(crate) mod auth;
pub(crate) mod console;
pub(crate) mod conversations;
pub(crate) mod domains;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod history;
pub(crate) mod inbox;
pub(crate) mod teams;
pub(crate) mod visitor;
pub(crate) mod whatsapp;
pub(crate) mod widgets;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use axum::{Router, middleware};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::state::AppState;
use crate::telemetry;

/// Loads each resource and keeps the live ones: a resource that answers not found (deleted,
/// revoked) is left out, any other failure fails the whole list.
pub(crate) async fn live<Id, V, F>(ids: Vec<Id>, load: impl Fn(Id) -> F) -> Result<Vec<V>, ApiError>
where
    F: Future<Output = Result<V, ApiError>>,
{
    let mut views = Vec::with_capacity(ids.len());
    for id in ids {
        match load(id).await {
            Ok(view) => views.push(view),
            Err(gone) if gone.status() == StatusCode::NOT_FOUND => {}
            Err(other) => return Err(other),
        }
    }
    Ok(views)
}

/// Every route, with request ids, tracing, metrics and the body limit.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let api = Router::new()
        .merge(auth::router())
        .merge(agents::router())
        .merge(teams::router())
        .merge(domains::router())
        .merge(widgets::router())
        .merge(conversations::router())
        .merge(inbox::router())
        .merge(crate::realtime::router())
        .merge(visitor::router(state.clone()))
        .merge(whatsapp::router())
        .merge(history::router())
        .merge(events::router());
    Router::new()
        .nest("/api/v1", api)
        .merge(visitor::script())
        .merge(console::router())
        .merge(health::router())
        .merge(whatsapp::webhooks())
        .fallback(|| async {
            ApiError::not_found(
                "route_not_found",
                "there is no such endpoint; see /api/openapi.json",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not accept this method; see /api/openapi.json",
            )
        })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn(telemetry::track_requests))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
                let route = request
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map(|p| p.as_str().to_owned());
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    matched_path = route,
                    request_id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok()),
                    tenant_id = tracing::field::Empty,
                )
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}
