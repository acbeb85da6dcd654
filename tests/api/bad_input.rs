//! Bad input on every endpoint: a problem+json answer with a stable code and the field at
//! fault, never a 500, and nothing in the event store.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{answer, spawn_app};

struct Case {
    description: &'static str,
    method: Method,
    path: String,
    body: String,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

fn case(
    description: &'static str,
    method: Method,
    path: impl Into<String>,
    body: impl Into<String>,
    (status, code, field): (u16, &'static str, Option<&'static str>),
) -> Case {
    Case {
        description,
        method,
        path: path.into(),
        body: body.into(),
        status,
        code,
        field,
    }
}

#[tokio::test]
async fn bad_input_on_every_endpoint_is_refused_clearly_and_stores_nothing() {
    let app = spawn_app().await;
    let conversation = app.new_conversation(&app.admin).await;
    let message = app.new_message(&app.admin, &conversation, "outgoing").await;
    let widget = app
        .post(&app.admin, "/widgets", json!({"name": "Support"}))
        .await
        .expect(201);
    let widget = widget["id"].as_str().unwrap().to_owned();
    let team = app
        .post(&app.admin, "/teams", json!({"name": "Sales"}))
        .await
        .expect(201);
    let team = team["id"].as_str().unwrap().to_owned();
    let before = app.event_count().await;

    let c = format!("/conversations/{conversation}");
    let unprocessable = |code, field| (422, code, Some(field));
    let post = Method::POST;
    let cases = vec![
        case(
            "malformed JSON",
            post.clone(),
            "/conversations",
            r#"{"source": "api""#,
            (400, "malformed_json", None),
        ),
        case(
            "unknown field",
            post.clone(),
            "/conversations",
            r#"{"source": "api", "tenant_id": "x"}"#,
            unprocessable("invalid_body", "tenant_id"),
        ),
        case(
            "unknown source",
            post.clone(),
            "/conversations",
            r#"{"source": "fax"}"#,
            unprocessable("invalid_body", "source"),
        ),
        case(
            "web source through the API",
            post.clone(),
            "/conversations",
            r#"{"source": "web"}"#,
            unprocessable("invalid_source", "source"),
        ),
        case(
            "bad contact email",
            post.clone(),
            "/conversations",
            r#"{"source": "api", "contact": {"email": "nope"}}"#,
            unprocessable("invalid_email", "contact.email"),
        ),
        case(
            "bad contact phone",
            post.clone(),
            "/conversations",
            r#"{"source": "api", "contact": {"phone": "12"}}"#,
            unprocessable("invalid_phone", "contact.phone"),
        ),
        case(
            "wrong type",
            post.clone(),
            "/conversations",
            r#"{"source": "api", "contact": {"name": 7}}"#,
            unprocessable("invalid_body", "contact.name"),
        ),
        case(
            "empty message",
            post.clone(),
            format!("{c}/messages"),
            r#"{"content": "  ", "message_type": "incoming"}"#,
            unprocessable("blank", "content"),
        ),
        case(
            "missing message type",
            post.clone(),
            format!("{c}/messages"),
            r#"{"content": "hi"}"#,
            unprocessable("invalid_body", "message_type"),
        ),
        case(
            "private incoming message",
            post.clone(),
            format!("{c}/messages"),
            r#"{"content": "hi", "message_type": "incoming", "private": true}"#,
            unprocessable("invalid_private", "private"),
        ),
        case(
            "bad message id",
            post.clone(),
            format!("{c}/messages"),
            r#"{"id": "7", "content": "hi", "message_type": "incoming"}"#,
            unprocessable("invalid_id", "id"),
        ),
        case(
            "bad conversation id",
            post.clone(),
            "/conversations/not-a-uuid/messages",
            r#"{"content": "hi", "message_type": "incoming"}"#,
            (400, "invalid_id", Some("id")),
        ),
        case(
            "unknown conversation",
            post.clone(),
            format!("/conversations/{}/messages", uuid::Uuid::now_v7()),
            r#"{"content": "hi", "message_type": "incoming"}"#,
            (404, "conversation_not_found", None),
        ),
        case(
            "unknown status",
            post.clone(),
            format!("{c}/messages/{message}/status"),
            r#"{"status": "teleported"}"#,
            unprocessable("invalid_body", "status"),
        ),
        case(
            "pending is not reportable",
            post.clone(),
            format!("{c}/messages/{message}/status"),
            r#"{"status": "pending"}"#,
            unprocessable("invalid_status", "status"),
        ),
        case(
            "error without failure",
            post.clone(),
            format!("{c}/messages/{message}/status"),
            r#"{"status": "read", "error": "x"}"#,
            unprocessable("invalid_error", "error"),
        ),
        case(
            "bad message id in path",
            post.clone(),
            format!("{c}/messages/x/status"),
            r#"{"status": "read"}"#,
            (400, "invalid_id", Some("message_id")),
        ),
        case(
            "bad agent id",
            post.clone(),
            format!("{c}/assignment"),
            r#"{"agent_id": "x"}"#,
            unprocessable("invalid_id", "agent_id"),
        ),
        case(
            "unknown agent",
            post.clone(),
            format!("{c}/assignment"),
            r#"{"agent_id": "01a21372-8a3b-70fe-a209-f04ac8dc1c5d"}"#,
            unprocessable("agent_not_found", "agent_id"),
        ),
        case(
            "snooze without time",
            post.clone(),
            format!("{c}/status"),
            r#"{"status": "snoozed"}"#,
            unprocessable("invalid_snooze", "snoozed_until"),
        ),
        case(
            "time without snooze",
            post.clone(),
            format!("{c}/status"),
            r#"{"status": "open", "snoozed_until": "2099-01-01T00:00:00Z"}"#,
            unprocessable("invalid_snooze", "snoozed_until"),
        ),
        case(
            "bad time",
            post.clone(),
            format!("{c}/status"),
            r#"{"status": "snoozed", "snoozed_until": "tomorrow"}"#,
            unprocessable("invalid_body", "snoozed_until"),
        ),
        case(
            "bad label",
            post.clone(),
            format!("{c}/labels"),
            r#"{"label": "two words"}"#,
            unprocessable("invalid_label", "label"),
        ),
        case(
            "bad label in path",
            Method::DELETE,
            format!("{c}/labels/a%20b"),
            "",
            unprocessable("invalid_label", "label"),
        ),
        case(
            "agent without email",
            post.clone(),
            "/agents",
            r#"{"name": "Ann", "role": "agent"}"#,
            unprocessable("invalid_body", "email"),
        ),
        case(
            "agent with bad email",
            post.clone(),
            "/agents",
            r#"{"name": "Ann", "email": "ann", "role": "agent"}"#,
            unprocessable("invalid_email", "email"),
        ),
        case(
            "agent with unknown role",
            post.clone(),
            "/agents",
            r#"{"name": "Ann", "email": "ann@x.com", "role": "owner"}"#,
            unprocessable("invalid_body", "role"),
        ),
        case(
            "team without name",
            post.clone(),
            "/teams",
            r#"{"name": ""}"#,
            unprocessable("blank", "name"),
        ),
        case(
            "member with bad id",
            post.clone(),
            format!("/teams/{team}/members"),
            r#"{"agent_id": "x"}"#,
            unprocessable("invalid_id", "agent_id"),
        ),
        case(
            "bad team id",
            post.clone(),
            "/teams/x/members",
            r#"{"agent_id": "x"}"#,
            (400, "invalid_id", Some("id")),
        ),
        case(
            "team member with bad agent id",
            Method::DELETE,
            format!("/teams/{team}/members/x"),
            "",
            (400, "invalid_id", Some("agent_id")),
        ),
        case(
            "unknown role in an agent change",
            Method::PATCH,
            format!("/agents/{}", app.admin.agent_id),
            r#"{"role": "owner"}"#,
            unprocessable("invalid_body", "role"),
        ),
        case(
            "blank name in an agent change",
            Method::PATCH,
            format!("/agents/{}", app.admin.agent_id),
            r#"{"name": ""}"#,
            unprocessable("blank", "name"),
        ),
        case(
            "bad agent id",
            Method::PATCH,
            "/agents/x",
            r#"{"name": "Ann"}"#,
            (400, "invalid_id", Some("id")),
        ),
        case(
            "short password",
            Method::PUT,
            format!("/agents/{}/password", app.admin.agent_id),
            r#"{"password": "1234567"}"#,
            unprocessable("weak_password", "password"),
        ),
        case(
            "password over 1,024 characters",
            Method::PUT,
            format!("/agents/{}/password", app.admin.agent_id),
            format!(r#"{{"password": "{}"}}"#, "x".repeat(1025)),
            unprocessable("too_long", "password"),
        ),
        case(
            "sign-in without a password",
            post.clone(),
            "/auth/login",
            r#"{"email": "admin@example.com"}"#,
            unprocessable("invalid_body", "password"),
        ),
        case(
            "sign-in with an unknown field",
            post.clone(),
            "/auth/login",
            r#"{"email": "admin@example.com", "password": "x", "remember": true}"#,
            unprocessable("invalid_body", "remember"),
        ),
        case(
            "invitation accepted with a short password",
            post.clone(),
            "/auth/invitations/accept",
            r#"{"token": "x", "password": "short"}"#,
            unprocessable("weak_password", "password"),
        ),
        case(
            "invitation accepted with an unknown token",
            post.clone(),
            "/auth/invitations/accept",
            r#"{"token": "x", "password": "a good password"}"#,
            (404, "invitation_not_found", None),
        ),
        case(
            "IP address as domain",
            post.clone(),
            "/domains",
            r#"{"hostname": "10.0.0.1"}"#,
            unprocessable("invalid_hostname", "hostname"),
        ),
        case(
            "single-label domain",
            post.clone(),
            "/domains",
            r#"{"hostname": "localhost"}"#,
            unprocessable("invalid_hostname", "hostname"),
        ),
        case(
            "bad domain id",
            post.clone(),
            "/domains/x/verify",
            "",
            (400, "invalid_id", Some("id")),
        ),
        case(
            "unknown domain",
            post.clone(),
            format!("/domains/{}/verify", uuid::Uuid::now_v7()),
            "",
            (404, "domain_not_found", None),
        ),
        case(
            "widget with bad colour",
            post.clone(),
            "/widgets",
            r#"{"name": "W", "brand_color": "blue"}"#,
            unprocessable("invalid_color", "brand_color"),
        ),
        case(
            "widget with unknown display type",
            post.clone(),
            "/widgets",
            r#"{"name": "W", "display_type": "banner"}"#,
            unprocessable("invalid_body", "display_type"),
        ),
        case(
            "widget with bad domain id",
            post.clone(),
            "/widgets",
            r#"{"name": "W", "allowed_domains": ["x"]}"#,
            unprocessable("invalid_id", "allowed_domains[0]"),
        ),
        case(
            "widget with unknown domain",
            post.clone(),
            "/widgets",
            r#"{"name": "W", "allowed_domains": ["01a21372-8a3b-70fe-a209-f04ac8dc1c5d"]}"#,
            unprocessable("domain_not_verified", "allowed_domains"),
        ),
        case(
            "widget greeting too long",
            Method::PATCH,
            format!("/widgets/{widget}"),
            format!(r#"{{"greeting_title": "{}"}}"#, "x".repeat(501)),
            unprocessable("too_long", "greeting_title"),
        ),
        case(
            "widget patch with unknown field",
            Method::PATCH,
            format!("/widgets/{widget}"),
            r##"{"colour": "#fff"}"##,
            unprocessable("invalid_body", "colour"),
        ),
        case(
            "bad widget id",
            Method::GET,
            "/widgets/x",
            "",
            (400, "invalid_id", Some("id")),
        ),
    ];
    for case in cases {
        let mut request = app
            .client
            .request(
                case.method.clone(),
                format!("{}/api/v1{}", app.address, case.path),
            )
            .bearer_auth(&app.admin.token);
        if !case.body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(case.body.clone());
        }
        let got = answer(request.send().await.unwrap()).await;
        assert_eq!(
            got.status.as_u16(),
            case.status,
            "{}: {:#}",
            case.description,
            got.body
        );
        assert_eq!(
            got.body["code"], case.code,
            "{}: {:#}",
            case.description, got.body
        );
        let field = got.problem(case.status, case.code);
        if let Some(expected) = case.field {
            assert_eq!(field.as_deref(), Some(expected), "{}", case.description);
        }
    }
    assert_eq!(
        app.event_count().await,
        before,
        "bad input never reaches the event store"
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_or_too_large_is_refused() {
    let app = spawn_app().await;
    let url = format!("{}/api/v1/conversations", app.address);
    let request = || app.client.post(&url).bearer_auth(&app.admin.token);

    let got = answer(request().body(r#"{"source": "api"}"#).send().await.unwrap()).await;
    assert_eq!(
        got.problem(415, "unsupported_media_type").as_deref(),
        Some("Content-Type")
    );

    let huge = format!(
        r#"{{"source": "api", "contact": {{"name": "{}"}}}}"#,
        "x".repeat(200_000)
    );
    let got = answer(
        request()
            .header("content-type", "application/json")
            .body(huge)
            .send()
            .await
            .unwrap(),
    )
    .await;
    got.problem(413, "body_too_large");

    let got = answer(
        request()
            .header("Idempotency-Key", "")
            .json(&json!({"source": "api"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        got.problem(400, "invalid_idempotency_key").as_deref(),
        Some("Idempotency-Key")
    );
    assert_eq!(app.event_count().await, 0);
}
