//! Health, readiness, metrics and the OpenAPI document.

use serde_json::json;

use crate::helpers::{answer, free_port, serve_args, spawn_app};

#[tokio::test]
async fn health_and_readiness_answer_ok() {
    let app = spawn_app().await;
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let got = answer(
            app.client
                .get(format!("{}{path}", app.address))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(got.expect(200)["status"], status);
    }
}

#[tokio::test]
async fn readiness_fails_when_postgres_is_unreachable() {
    let nowhere = format!("postgres://postgres@127.0.0.1:{}/nowhere", free_port());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect_lazy(&nowhere)
        .unwrap();
    let app = api::startup::Application::build(pool, &serve_args())
        .await
        .unwrap();
    let address = format!("http://{}", app.address());
    tokio::spawn(app.run_until(std::future::pending()));
    let got = answer(reqwest::get(format!("{address}/readyz")).await.unwrap()).await;
    got.problem(503, "not_ready");
    let got = answer(reqwest::get(format!("{address}/healthz")).await.unwrap()).await;
    assert_eq!(
        got.expect(200)["status"],
        "ok",
        "the process itself is alive"
    );
    let command = reqwest::Client::new()
        .post(format!("{address}/api/v1/conversations"))
        .bearer_auth("upz_any")
        .json(&serde_json::json!({"source": "api"}))
        .send()
        .await
        .unwrap();
    let got = answer(command).await;
    assert_eq!(got.headers["retry-after"], "1");
    got.problem(503, "service_unavailable");
}

#[tokio::test]
async fn metrics_count_requests_and_commands() {
    let app = spawn_app().await;
    app.new_conversation(&app.admin).await;
    let text = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(r#"upzento_http_requests_total{method="POST",route="/api/v1/conversations",status="201"}"#), "{text}");
    assert!(
        text.contains(r#"upzento_commands_total{aggregate="Conversation"}"#),
        "{text}"
    );
    assert!(
        text.contains("upzento_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_write_endpoint() {
    let app = spawn_app().await;
    let document = app.openapi().await;
    let paths = document["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/api/v1/agents", "post"),
        ("/api/v1/agents", "get"),
        ("/api/v1/teams", "post"),
        ("/api/v1/teams", "get"),
        ("/api/v1/teams/{id}/members", "post"),
        ("/api/v1/teams/{id}/members/{agent_id}", "delete"),
        ("/api/v1/agents/{id}", "patch"),
        ("/api/v1/agents/{id}/password", "put"),
        ("/api/v1/agents/{id}/invitation", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/session", "get"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/invitations/accept", "post"),
        ("/api/v1/domains", "post"),
        ("/api/v1/domains/{id}/verify", "post"),
        ("/api/v1/domains/{id}", "delete"),
        ("/api/v1/widgets", "post"),
        ("/api/v1/widgets", "get"),
        ("/api/v1/widgets/{id}", "get"),
        ("/api/v1/widgets/{id}", "patch"),
        ("/api/v1/widgets/{id}", "delete"),
        ("/api/v1/widgets/{id}/embed-code", "get"),
        ("/api/v1/conversations", "post"),
        ("/api/v1/conversations/{id}/messages", "post"),
        (
            "/api/v1/conversations/{id}/messages/{message_id}/status",
            "post",
        ),
        ("/api/v1/conversations/{id}/read", "post"),
        ("/api/v1/conversations/{id}/assignment", "post"),
        ("/api/v1/conversations/{id}/status", "post"),
        ("/api/v1/conversations/{id}/labels", "post"),
        ("/api/v1/conversations/{id}/labels/{label}", "delete"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not documented"
        );
    }
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    let session = &document["components"]["securitySchemes"]["session"];
    assert_eq!(session["in"], "cookie");
    assert_eq!(session["name"], "upzento_session");
    // Signing in and accepting an invitation take no credential; every token endpoint also
    // takes the session cookie.
    for path in ["/api/v1/auth/login", "/api/v1/auth/invitations/accept"] {
        assert!(paths[path]["post"].get("security").is_none(), "{path}");
    }
    let teams = &paths["/api/v1/teams"]["post"]["security"];
    assert_eq!(teams, &json!([{"bearer": []}, {"session": []}]));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_problems() {
    let app = spawn_app().await;
    let got = answer(
        app.client
            .get(format!("{}/api/v1/nope", app.address))
            .send()
            .await
            .unwrap(),
    )
    .await;
    got.problem(404, "route_not_found");
    let got = answer(
        app.client
            .put(format!("{}/api/v1/conversations", app.address))
            .send()
            .await
            .unwrap(),
    )
    .await;
    got.problem(405, "method_not_allowed");
}
