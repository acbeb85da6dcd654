//! Another tenant's resources do not exist for the caller: every endpoint answers 404, and
//! nothing is stored.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn another_tenants_resources_are_not_found_on_every_endpoint() {
    let app = spawn_app().await;
    let owner = &app.admin;
    let conversation = app.new_conversation(owner).await;
    let message = app.new_message(owner, &conversation, "outgoing").await;
    let widget = app
        .post(owner, "/widgets", json!({"name": "Support"}))
        .await
        .expect(201);
    let widget = widget["id"].as_str().unwrap();
    let domain = app
        .post(owner, "/domains", json!({"hostname": "shop.example.com"}))
        .await
        .expect(201);
    let domain = domain["id"].as_str().unwrap();
    let team = app
        .post(owner, "/teams", json!({"name": "Sales"}))
        .await
        .expect(201);
    let team = team["id"].as_str().unwrap();
    let before = app.event_count().await;

    let intruder = app.new_tenant("Globex").await;
    let c = format!("/conversations/{conversation}");
    let cases: Vec<(Method, String, Option<Value>, &str)> = vec![
        (
            Method::POST,
            format!("{c}/messages"),
            Some(json!({"content": "hi", "message_type": "incoming"})),
            "conversation_not_found",
        ),
        (
            Method::POST,
            format!("{c}/messages/{message}/status"),
            Some(json!({"status": "read"})),
            "conversation_not_found",
        ),
        (
            Method::GET,
            format!("{c}/activity"),
            None,
            "conversation_not_found",
        ),
        (
            Method::POST,
            format!("{c}/read"),
            Some(json!({})),
            "conversation_not_found",
        ),
        (
            Method::POST,
            format!("{c}/assignment"),
            Some(json!({"agent_id": null})),
            "conversation_not_found",
        ),
        (
            Method::POST,
            format!("{c}/status"),
            Some(json!({"status": "resolved"})),
            "conversation_not_found",
        ),
        (
            Method::POST,
            format!("{c}/labels"),
            Some(json!({"label": "x"})),
            "conversation_not_found",
        ),
        (
            Method::DELETE,
            format!("{c}/labels/x"),
            None,
            "conversation_not_found",
        ),
        (
            Method::GET,
            format!("/widgets/{widget}"),
            None,
            "widget_not_found",
        ),
        (
            Method::PATCH,
            format!("/widgets/{widget}"),
            Some(json!({"name": "Mine"})),
            "widget_not_found",
        ),
        (
            Method::DELETE,
            format!("/widgets/{widget}"),
            None,
            "widget_not_found",
        ),
        (
            Method::GET,
            format!("/widgets/{widget}/embed-code"),
            None,
            "widget_not_found",
        ),
        (
            Method::GET,
            format!("/domains/{domain}"),
            None,
            "domain_not_found",
        ),
        (
            Method::POST,
            format!("/domains/{domain}/verify"),
            Some(json!({})),
            "domain_not_found",
        ),
        (
            Method::DELETE,
            format!("/domains/{domain}"),
            None,
            "domain_not_found",
        ),
        (
            Method::POST,
            format!("/teams/{team}/members"),
            Some(json!({"agent_id": intruder.agent_id})),
            "team_not_found",
        ),
        (
            Method::DELETE,
            format!("/teams/{team}/members/{}", owner.agent_id),
            None,
            "team_not_found",
        ),
        (
            Method::PATCH,
            format!("/agents/{}", owner.agent_id),
            Some(json!({"role": "agent"})),
            "agent_not_found",
        ),
        (
            Method::PUT,
            format!("/agents/{}/password", owner.agent_id),
            Some(json!({"password": "a good password"})),
            "agent_not_found",
        ),
        (
            Method::POST,
            format!("/agents/{}/invitation", owner.agent_id),
            None,
            "agent_not_found",
        ),
    ];
    for (method, path, body, code) in cases {
        let got = app.call(&intruder, method.clone(), &path, body).await;
        assert_eq!(got.status, 404, "{method} {path}: {:#}", got.body);
        got.problem(404, code);
    }
    for list in ["/widgets", "/domains", "/teams"] {
        assert_eq!(
            app.get(&intruder, list).await.expect(200),
            json!([]),
            "{list}"
        );
    }
    let agents = app.get(&intruder, "/agents").await.expect(200);
    assert_eq!(
        agents.as_array().unwrap().len(),
        1,
        "only the intruder's own admin"
    );
    assert_eq!(app.event_count().await, before, "nothing was stored");
    let owner_account: (String, bool, i64) = sqlx::query_as(
        "select role, password_hash is null,
                (select count(*) from agent_invitations where agent_id = a.id)
           from agents a where id = $1::uuid",
    )
    .bind(&owner.agent_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        owner_account,
        ("admin".into(), true, 0),
        "nor was the account"
    );
}

#[tokio::test]
async fn assigning_to_another_tenants_agent_or_team_is_refused() {
    let app = spawn_app().await;
    let conversation = app.new_conversation(&app.admin).await;
    let other = app.new_tenant("Globex").await;
    let team = app
        .post(&other, "/teams", json!({"name": "Sales"}))
        .await
        .expect(201);
    let path = format!("/conversations/{conversation}/assignment");
    let field = app
        .post(&app.admin, &path, json!({"agent_id": other.agent_id}))
        .await
        .problem(422, "agent_not_found");
    assert_eq!(field.as_deref(), Some("agent_id"));
    let field = app
        .post(&app.admin, &path, json!({"team_id": team["id"]}))
        .await
        .problem(422, "team_not_found");
    assert_eq!(field.as_deref(), Some("team_id"));
}
