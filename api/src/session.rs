//! The agent console's browser session: the `upzento_session` cookie, and the checks that
//! keep other sites from using it (docs/api.md, "Sessions and CSRF"; docs/decisions.md, 45
//! and 46).
//!
//! A browser sends the cookie with every request to this server, including requests that
//! another site's page makes it send. So a request authenticated by the cookie that may
//! change something must also prove it comes from the console: it carries `X-CSRF-Token`,
//! a value derived from the session's secret that only a page which read it from this
//! server knows, and its `Origin`, when the browser sends one, is this server.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use commands::sessions::{self, Lookup, Session};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "upzento_session";
/// The header that carries the CSRF token on requests that may change something.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How sessions behave on this instance.
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// A session unused for this long ends.
    pub idle_timeout: Duration,
    /// Mark the cookie `Secure` even without `X-Forwarded-Proto: https`.
    pub secure_cookies: bool,
}

/// The value of the session cookie, if the request carries one.
pub fn cookie_secret(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// The CSRF token of a session: HMAC-SHA256 of a fixed label under the session's secret, in
/// hex. It cannot be computed without the cookie, which other sites cannot read, and it
/// needs no storage of its own.
pub fn csrf_token(secret: &str) -> String {
    hex::encode(csrf_mac(secret).finalize().into_bytes())
}

fn csrf_mac(secret: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(b"upzento csrf v1");
    mac
}

fn csrf_failed(detail: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "csrf_failed", detail)
}

/// Refuses a request whose `Origin` header, when there is one, is not this server: its
/// `host[:port]` must equal the `Host` header. Browsers always send `Origin` on cross-site
/// requests and WebSocket upgrades, so a page of another site is refused here; clients that
/// are not browsers send none and cannot be tricked into sending the cookie anyway.
pub fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, authority)| authority);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin_host, host) {
        (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(csrf_failed(
            "the request comes from another site (its Origin is not this server's Host)",
        )
        .at("Origin")),
    }
}

/// The checks on a cookie-authenticated request that may change something: the CSRF token
/// of the session in `X-CSRF-Token`, compared in constant time, and the origin.
pub fn check_csrf(headers: &HeaderMap, secret: &str) -> Result<(), ApiError> {
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| hex::decode(v.trim()).ok())
        .ok_or_else(|| {
            csrf_failed("send the session's `csrf_token` as the `X-CSRF-Token` header")
                .at("X-CSRF-Token")
        })?;
    let expected = csrf_mac(secret).finalize().into_bytes();
    if !bool::from(expected.as_slice().ct_eq(&given)) {
        return Err(
            csrf_failed("`X-CSRF-Token` is not this session's CSRF token").at("X-CSRF-Token"),
        );
    }
    check_origin(headers)
}

/// Whether the browser reached us over TLS, so the cookie must be `Secure`: configured, or
/// said by the TLS-terminating proxy in `X-Forwarded-Proto`.
fn secure(settings: &SessionSettings, headers: &HeaderMap) -> bool {
    settings.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

fn cookie(
    value: &str,
    extra: &str,
    settings: &SessionSettings,
    headers: &HeaderMap,
) -> HeaderValue {
    let secure = if secure(settings, headers) {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::try_from(format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/{extra}{secure}"
    ))
    .expect("hex and fixed attributes make a valid header value")
}

/// The `Set-Cookie` value that starts a session. It has no `Max-Age`: the browser drops it
/// when it closes, and the server ends it by time whatever the browser keeps.
pub fn set_cookie(secret: &str, settings: &SessionSettings, headers: &HeaderMap) -> HeaderValue {
    cookie(secret, "", settings, headers)
}

/// The `Set-Cookie` value that removes the session cookie from the browser.
pub fn clear_cookie(settings: &SessionSettings, headers: &HeaderMap) -> HeaderValue {
    cookie("", "; Max-Age=0", settings, headers)
}

/// A request's live session, found by its cookie. It checks nothing about CSRF: callers do,
/// according to what the request may change.
pub struct CookieSession {
    /// The cookie's value.
    pub secret: String,
    /// The session.
    pub session: Session,
}

/// The live session behind a cookie's value: 401 `session_expired` for one that ended by
/// time, 401 `unauthorized` for one that does not exist (or no longer does).
pub async fn session_of(state: &AppState, secret: &str) -> Result<Session, ApiError> {
    match sessions::find(&state.pool, secret, state.sessions.idle_timeout).await? {
        Lookup::Active(session) => Ok(session),
        Lookup::Expired => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "session_expired",
            "the session has ended; sign in again",
        )),
        Lookup::Unknown => Err(ApiError::unauthorized(
            "the session is not valid; sign in again",
        )),
    }
}

impl FromRequestParts<AppState> for CookieSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let secret = cookie_secret(&parts.headers).ok_or_else(|| {
            ApiError::unauthorized(
                "send `Authorization: Bearer <token>`, or sign in for a session cookie",
            )
        })?;
        let session = session_of(state, secret).await?;
        Ok(Self {
            secret: secret.to_owned(),
            session,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; upzento_session=abc ; b=2")]);
        assert_eq!(cookie_secret(&h), Some("abc"));
        assert_eq!(cookie_secret(&headers(&[("cookie", "a=1")])), None);
    }

    #[test]
    fn the_csrf_token_belongs_to_its_session() {
        let token = csrf_token("secret");
        let ok = headers(&[("x-csrf-token", &token)]);
        assert!(check_csrf(&ok, "secret").is_ok());
        assert!(check_csrf(&ok, "other").is_err());
        assert!(check_csrf(&headers(&[]), "secret").is_err());
    }

    #[test]
    fn the_origin_must_be_this_server() {
        let same = headers(&[
            ("origin", "http://chat.example:8080"),
            ("host", "chat.example:8080"),
        ]);
        assert!(check_origin(&same).is_ok());
        let other = headers(&[("origin", "https://evil.example"), ("host", "chat.example")]);
        assert!(check_origin(&other).is_err());
        assert!(check_origin(&headers(&[("origin", "null"), ("host", "chat.example")])).is_err());
        assert!(check_origin(&headers(&[("host", "chat.example")])).is_ok());
    }
}
