//! The agent console at `/app`: static files embedded in the binary, served with a strict
//! Content-Security-Policy. The console is plain JavaScript modules with no build step; it
//! talks to the public API and the agent WebSocket only, so whatever it does an integration
//! can do too (docs/console.md).

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::error::ApiError;
use crate::state::AppState;

/// Only the console's own files and connections: no inline script, no other origin, no
/// framing. Message content is inserted as text, and this is the second line of defence.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// The files, by name under `/app/assets/`, with their media types.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", JS, include_str!("../../console/app.js")),
    ("api.js", JS, include_str!("../../console/api.js")),
    ("dom.js", JS, include_str!("../../console/dom.js")),
    ("live.js", JS, include_str!("../../console/live.js")),
    (
        "directory.js",
        JS,
        include_str!("../../console/directory.js"),
    ),
    ("inbox.js", JS, include_str!("../../console/inbox.js")),
    (
        "conversation.js",
        JS,
        include_str!("../../console/conversation.js"),
    ),
    ("widgets.js", JS, include_str!("../../console/widgets.js")),
    ("domains.js", JS, include_str!("../../console/domains.js")),
    ("agents.js", JS, include_str!("../../console/agents.js")),
    ("history.js", JS, include_str!("../../console/history.js")),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../../console/console.css"),
    ),
];
const JS: &str = "text/javascript; charset=utf-8";
const INDEX: &str = include_str!("../../console/index.html");

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/app", get(index))
        .route("/app/", get(|| async { Redirect::permanent("/app") }))
        .route("/app/assets/{file}", get(asset))
}

async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(file, _, _)| *file == name) {
        Some((_, media_type, body)) => file(media_type, body),
        None => {
            ApiError::not_found("route_not_found", "the console has no such file").into_response()
        }
    }
}

/// A console file. `no-cache` makes browsers revalidate, so a new release is picked up at
/// the next load; the files are small.
fn file(media_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
