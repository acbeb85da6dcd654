//! Liveness, readiness, metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up")))]
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The process can serve: PostgreSQL answers. The detail lists each projector's checkpoint
/// and lag, so a stalled read model is visible here.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready"),
              (status = 503, description = "PostgreSQL is unreachable", body = crate::error::Problem)))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let names: Vec<&str> = projections::all().iter().map(|p| p.name()).collect();
    let projectors = projections::runtime::statuses(&state.pool, &names)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "not ready");
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "PostgreSQL is unreachable",
            )
        })?;
    Ok(Json(
        json!({"status": "ready", "checks": {"postgres": "ok"}, "projectors": projectors}),
    ))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::document())
}
