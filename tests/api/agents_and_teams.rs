//! Agents, roles, tokens and teams.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Caller, spawn_app};

#[tokio::test]
async fn an_admin_adds_agents_whose_tokens_work_and_are_stored_hashed() {
    let app = spawn_app().await;
    let agent = app
        .post(
            &app.admin,
            "/agents",
            json!({"name": "Ann", "email": "ann@acme.com", "role": "agent"}),
        )
        .await
        .expect(201);
    assert_eq!(agent["role"], "agent");
    let token = agent["token"].as_str().unwrap();
    assert!(token.starts_with("upz_") && token.len() > 60);

    let stored: i64 =
        sqlx::query_scalar("select count(*) from api_tokens where token_hash = $1::bytea")
            .bind(token.as_bytes())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, 0, "the plain token is not what is stored");

    let ann = Caller {
        token: token.to_owned(),
        tenant_id: app.admin.tenant_id.clone(),
        agent_id: agent["id"].as_str().unwrap().to_owned(),
    };
    let agents = app.get(&ann, "/agents").await.expect(200);
    let emails: Vec<&str> = agents
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["admin@example.com", "ann@acme.com"]);
    assert!(agents[1].get("token").is_none(), "tokens are shown once");
}

#[tokio::test]
async fn agents_cannot_do_what_only_admins_may() {
    let app = spawn_app().await;
    let ann = app.new_agent(&app.admin, "ann@acme.com", "agent").await;
    for (path, body) in [
        (
            "/agents",
            json!({"name": "Eve", "email": "eve@acme.com", "role": "admin"}),
        ),
        ("/teams", json!({"name": "Sales"})),
        ("/domains", json!({"hostname": "shop.example.com"})),
        ("/widgets", json!({"name": "Support"})),
    ] {
        app.post(&ann, path, body).await.problem(403, "forbidden");
    }
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn a_missing_or_unknown_token_is_unauthorized() {
    let app = spawn_app().await;
    let nobody = Caller {
        token: "upz_nope".into(),
        tenant_id: String::new(),
        agent_id: String::new(),
    };
    app.get(&nobody, "/agents")
        .await
        .problem(401, "unauthorized");
    let got = crate::helpers::answer(
        app.client
            .get(format!("{}/api/v1/agents", app.address))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got.headers["www-authenticate"], "Bearer");
    got.problem(401, "unauthorized");
}

#[tokio::test]
async fn one_email_is_one_agent_per_tenant() {
    let app = spawn_app().await;
    app.new_agent(&app.admin, "ann@acme.com", "agent").await;
    let field = app
        .post(
            &app.admin,
            "/agents",
            json!({"name": "Ann", "email": "ANN@acme.com", "role": "agent"}),
        )
        .await
        .problem(409, "email_taken");
    assert_eq!(field.as_deref(), Some("email"));
    let other = app.new_tenant("Globex").await;
    app.new_agent(&other, "ann@acme.com", "agent").await;
}

#[tokio::test]
async fn teams_gather_agents_of_the_same_tenant() {
    let app = spawn_app().await;
    let ann = app.new_agent(&app.admin, "ann@acme.com", "agent").await;
    let team = app
        .post(&app.admin, "/teams", json!({"name": "Billing"}))
        .await
        .expect(201);
    let id = team["id"].as_str().unwrap();
    app.post(&app.admin, "/teams", json!({"name": "billing"}))
        .await
        .problem(409, "team_name_taken");

    let path = format!("/teams/{id}/members");
    for _ in 0..2 {
        let team = app
            .post(&app.admin, &path, json!({"agent_id": ann.agent_id}))
            .await
            .expect(200);
        assert_eq!(team["member_ids"], json!([ann.agent_id]));
    }
    let teams = app.get(&ann, "/teams").await.expect(200);
    assert_eq!(teams[0]["name"], "Billing");

    let other = app.new_tenant("Globex").await;
    let stranger = app.new_agent(&other, "eve@globex.com", "agent").await;
    let field = app
        .post(&app.admin, &path, json!({"agent_id": stranger.agent_id}))
        .await
        .problem(422, "agent_not_found");
    assert_eq!(field.as_deref(), Some("agent_id"));
    app.post(&other, &path, json!({"agent_id": stranger.agent_id}))
        .await
        .problem(404, "team_not_found");
    let seen = app
        .call(&other, Method::GET, "/teams", None)
        .await
        .expect(200);
    assert_eq!(seen, json!([]), "another tenant sees no teams");
}
