//! A local stand-in for Meta's side of WhatsApp: the Graph API the server sends to, and the
//! webhook deliveries Meta makes to the server.
//!
//! It speaks the Cloud API's own JSON: it records every request it receives (path, bearer
//! token, body), answers sends with a `wamid` (or, when a test scripts it, with Meta's error
//! answers and 429s), and signs webhook deliveries the way Meta does (HMAC-SHA256 of the
//! raw body under the app secret) or forges them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// A request the stand-in received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `/{version}/{phone_number_id}/messages`.
    pub path: String,
    /// The bearer token it carried.
    pub token: Option<String>,
    /// The JSON body.
    pub body: Value,
}

/// A scripted answer: status, JSON body and an optional `Retry-After`.
#[derive(Debug, Clone)]
struct Scripted {
    status: StatusCode,
    body: Value,
    retry_after: Option<u32>,
}

#[derive(Default)]
struct Inner {
    received: Vec<Recorded>,
    script: VecDeque<Scripted>,
    wamids: VecDeque<String>,
    sent: usize,
}

/// The Graph API stand-in.
#[derive(Clone, Default)]
pub struct GraphStandIn {
    inner: Arc<Mutex<Inner>>,
    url: String,
}

impl GraphStandIn {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds HTTP");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stand_in = Self {
            inner: Arc::default(),
            url,
        };
        let app = Router::new()
            .route("/{version}/{phone_number_id}/messages", post(messages))
            .with_state(stand_in.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        stand_in
    }

    /// The base URL to configure as the Graph API.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Answers the next send with `status` and `body` (e.g. one of Meta's error answers).
    pub fn answer_next(&self, status: u16, body: Value, retry_after: Option<u32>) {
        self.inner.lock().unwrap().script.push_back(Scripted {
            status: StatusCode::from_u16(status).unwrap(),
            body,
            retry_after,
        });
    }

    /// Gives the next accepted message this `wamid` instead of a generated one.
    pub fn next_wamid(&self, wamid: &str) {
        self.inner
            .lock()
            .unwrap()
            .wamids
            .push_back(wamid.to_owned());
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap().received.clone()
    }

    /// Waits until `n` requests have arrived (at most 15 s) and answers them.
    pub async fn wait_for(&self, n: usize) -> Vec<Recorded> {
        for _ in 0..150 {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the Graph API stand-in received {:?}, not {n} requests",
            self.received()
        );
    }
}

async fn messages(
    State(stand_in): State<GraphStandIn>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let mut inner = stand_in.inner.lock().unwrap();
    inner.received.push(Recorded {
        path: format!("/{version}/{phone_number_id}/messages"),
        token,
        body: body.clone(),
    });
    if let Some(scripted) = inner.script.pop_front() {
        let mut response = (scripted.status, axum::Json(scripted.body)).into_response();
        if let Some(seconds) = scripted.retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(seconds));
        }
        return response;
    }
    if body["status"] == "read" {
        return axum::Json(json!({"success": true})).into_response();
    }
    inner.sent += 1;
    let sent = inner.sent;
    let wamid = inner
        .wamids
        .pop_front()
        .unwrap_or_else(|| format!("wamid.STANDIN{sent:04}"));
    let to = body["to"].clone();
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": wamid}],
    }))
    .into_response()
}

/// How a webhook delivery is signed.
pub enum Signature<'a> {
    /// As Meta signs: HMAC-SHA256 of this body under the app secret.
    Valid(&'a str),
    /// Signed under another secret.
    Forged,
    /// No header at all.
    Missing,
    /// A genuine signature, but of an earlier body (a replayed header).
    Stale(&'a [u8]),
}

/// The `X-Hub-Signature-256` value for `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delivers a webhook POST the way Meta does; answers the status and body.
pub async fn deliver(url: &str, body: &[u8], signature: Signature<'_>) -> (u16, Value) {
    let header = match signature {
        Signature::Valid(secret) => Some(sign(secret, body)),
        Signature::Forged => Some(sign("not-the-app-secret", body)),
        Signature::Missing => None,
        Signature::Stale(earlier) => Some(sign(super::whatsapp::APP_SECRET, earlier)),
    };
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(header) = header {
        request = request.header("x-hub-signature-256", header);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
