//! Conversation commands through the API, as an integration would send them.

use chrono::{Duration, Utc};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, answer, spawn_app};

#[tokio::test]
async fn an_integration_runs_a_whole_conversation() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let started = app
        .post(
            admin,
            "/conversations",
            json!({"source": "api", "contact": {"name": "Bob", "email": "bob@example.com", "phone": "+49 151 1234 5678"}}),
        )
        .await
        .expect(201);
    let id = started["id"].as_str().unwrap();
    assert_eq!(started["version"], 1);
    let first_position = started["position"].as_i64().unwrap();

    let path = format!("/conversations/{id}");
    app.post(
        admin,
        &format!("{path}/messages"),
        json!({"content": "My order is late", "message_type": "incoming"}),
    )
    .await
    .expect(201);
    let reply = app
        .post(
            admin,
            &format!("{path}/messages"),
            json!({"content": "Sorry! Checking.", "message_type": "outgoing"}),
        )
        .await
        .expect(201);
    assert!(reply["position"].as_i64().unwrap() > first_position);
    let reply_id = reply["message_id"].as_str().unwrap();
    app.post(
        admin,
        &format!("{path}/messages"),
        json!({"content": "VIP customer", "message_type": "outgoing", "private": true}),
    )
    .await
    .expect(201);
    for status in ["delivered", "read"] {
        app.post(
            admin,
            &format!("{path}/messages/{reply_id}/status"),
            json!({"status": status}),
        )
        .await
        .expect(200);
    }
    app.post(admin, &format!("{path}/read"), json!({}))
        .await
        .expect(200);
    let ann = app.new_agent(admin, "ann@acme.com", "agent").await;
    let team = app
        .post(admin, "/teams", json!({"name": "Support"}))
        .await
        .expect(201);
    app.post(
        admin,
        &format!("{path}/assignment"),
        json!({"agent_id": ann.agent_id, "team_id": team["id"]}),
    )
    .await
    .expect(200);
    app.post(admin, &format!("{path}/labels"), json!({"label": "VIP"}))
        .await
        .expect(200);
    app.call(admin, Method::DELETE, &format!("{path}/labels/vip"), None)
        .await
        .expect(200);
    let snooze = Utc::now() + Duration::hours(2);
    app.post(
        admin,
        &format!("{path}/status"),
        json!({"status": "snoozed", "snoozed_until": snooze}),
    )
    .await
    .expect(200);
    app.post(
        admin,
        &format!("{path}/messages"),
        json!({"content": "Any news?", "message_type": "incoming"}),
    )
    .await
    .expect(201);
    let last = app
        .post(
            admin,
            &format!("{path}/assignment"),
            json!({"agent_id": null, "team_id": null}),
        )
        .await
        .expect(200);

    assert_eq!(
        app.event_types("Conversation", &admin.tenant_id, id).await,
        [
            "ConversationStarted",
            "MessageReceived",
            "MessagePosted",
            "NoteAdded",
            "MessageStatusChanged",
            "MessageStatusChanged",
            "ReadMarkerMoved",
            "ConversationAssigned",
            "LabelAdded",
            "LabelRemoved",
            "ConversationStatusChanged",
            "MessageReceived",
            "ConversationStatusChanged",
            "ConversationUnassigned",
        ]
    );
    assert_eq!(last["version"], 14);
}

#[tokio::test]
async fn every_event_carries_who_did_it_and_why() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/api/v1/conversations", app.address))
        .bearer_auth(&app.admin.token)
        .header("x-request-id", "req-42")
        .json(&json!({"source": "api"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-42");
    answer(response).await.expect(201);
    let (metadata, tenant): (Value, uuid::Uuid) =
        sqlx::query_as("select metadata, tenant_id from events")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(tenant.to_string(), app.admin.tenant_id);
    assert_eq!(metadata["tenant_id"], app.admin.tenant_id);
    assert_eq!(metadata["actor"], format!("agent:{}", app.admin.agent_id));
    assert_eq!(metadata["request_id"], "req-42");
    assert_eq!(metadata["correlation_id"], "req-42");
    assert!(chrono::DateTime::parse_from_rfc3339(metadata["timestamp"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn refused_commands_say_why_and_change_nothing() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let id = app.new_conversation(admin).await;
    let path = format!("/conversations/{id}");
    let incoming = app.new_message(admin, &id, "incoming").await;
    let outgoing = app.new_message(admin, &id, "outgoing").await;
    app.post(
        admin,
        &format!("{path}/messages/{outgoing}/status"),
        json!({"status": "read"}),
    )
    .await
    .expect(200);
    let before = app.event_count().await;

    let field = app
        .post(
            admin,
            &format!("{path}/messages/{outgoing}/status"),
            json!({"status": "delivered"}),
        )
        .await
        .problem(409, "status_regression");
    assert_eq!(field.as_deref(), Some("status"));
    app.post(
        admin,
        &format!("{path}/messages/{incoming}/status"),
        json!({"status": "read"}),
    )
    .await
    .problem(422, "not_outgoing");
    let unknown = uuid::Uuid::now_v7();
    app.post(
        admin,
        &format!("{path}/messages/{unknown}/status"),
        json!({"status": "read"}),
    )
    .await
    .problem(404, "message_not_found");
    let field = app
        .post(
            admin,
            &format!("{path}/messages"),
            json!({"id": incoming, "content": "again", "message_type": "incoming"}),
        )
        .await
        .problem(409, "duplicate_message");
    assert_eq!(field.as_deref(), Some("id"));
    let past = Utc::now() - Duration::minutes(1);
    app.post(
        admin,
        &format!("{path}/status"),
        json!({"status": "snoozed", "snoozed_until": past}),
    )
    .await
    .problem(422, "invalid_snooze");
    app.post(
        admin,
        &format!("{path}/status"),
        json!({"status": "resolved"}),
    )
    .await
    .expect(200);
    app.post(
        admin,
        &format!("{path}/messages"),
        json!({"content": "late reply", "message_type": "outgoing"}),
    )
    .await
    .problem(409, "conversation_resolved");
    assert_eq!(
        app.event_count().await,
        before + 1,
        "only the status change was stored"
    );
}

#[tokio::test]
async fn repeating_a_command_that_changes_nothing_stores_nothing() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let id = app.new_conversation(admin).await;
    let label = json!({"label": "vip"});
    let first = app
        .post(admin, &format!("/conversations/{id}/labels"), label.clone())
        .await
        .expect(200);
    let again = app
        .post(admin, &format!("/conversations/{id}/labels"), label)
        .await
        .expect(200);
    assert_eq!(again["version"], first["version"]);
    assert_eq!(again["position"], Value::Null);
}

#[tokio::test]
async fn an_idempotent_retry_answers_the_first_answer_and_adds_nothing() {
    let app = spawn_app().await;
    let id = app.new_conversation(&app.admin).await;
    let send = |key: &'static str, content: &'static str| {
        app.client
            .post(format!(
                "{}/api/v1/conversations/{id}/messages",
                app.address
            ))
            .bearer_auth(&app.admin.token)
            .header("Idempotency-Key", key)
            .json(&json!({"content": content, "message_type": "incoming"}))
            .send()
    };
    let first = answer(send("order-17", "hello").await.unwrap()).await;
    assert!(first.headers.get("idempotent-replayed").is_none());
    let first = first.expect(201);
    let retried = answer(send("order-17", "hello").await.unwrap()).await;
    assert_eq!(retried.headers["idempotent-replayed"], "true");
    assert_eq!(retried.expect(201), first);

    let field = answer(send("order-17", "something else").await.unwrap())
        .await
        .problem(422, "idempotency_key_reused");
    assert_eq!(field.as_deref(), Some("Idempotency-Key"));
    assert_eq!(
        app.event_types("Conversation", &app.admin.tenant_id, &id)
            .await,
        ["ConversationStarted", "MessageReceived"]
    );
}

#[tokio::test]
async fn concurrent_retries_with_one_key_and_one_message_id_store_the_message_once() {
    let app = spawn_app().await;
    let id = app.new_conversation(&app.admin).await;
    let message_id = uuid::Uuid::now_v7();
    let retries = (0..8).map(|_| {
        app.client
            .post(format!(
                "{}/api/v1/conversations/{id}/messages",
                app.address
            ))
            .bearer_auth(&app.admin.token)
            .header("Idempotency-Key", "same")
            .json(&json!({"id": message_id, "content": "hello", "message_type": "incoming"}))
            .send()
    });
    let mut answers = Vec::new();
    for response in join_all(retries).await {
        answers.push(answer(response.unwrap()).await.expect(201));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(
        app.event_types("Conversation", &app.admin.tenant_id, &id)
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn concurrent_writers_on_one_conversation_all_succeed_exactly_once() {
    let app = spawn_app().await;
    let id = app.new_conversation(&app.admin).await;
    let path = format!("/conversations/{id}/messages");
    let writers = (0..24).map(|n| {
        app.post(
            &app.admin,
            &path,
            json!({"content": format!("message {n}"), "message_type": if n % 2 == 0 { "incoming" } else { "outgoing" }}),
        )
    });
    let answers = join_all(writers).await;
    let mut versions: Vec<i64> = answers
        .into_iter()
        .map(|a| a.expect(201)["version"].as_i64().unwrap())
        .collect();
    versions.sort();
    assert_eq!(
        versions,
        (2..=25).collect::<Vec<_>>(),
        "each writer got its own version"
    );
    let contents: Vec<Value> = sqlx::query_scalar(
        "select payload from events where event_type in ('MessageReceived', 'MessagePosted')",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut texts: Vec<String> = contents
        .iter()
        .map(|p| {
            p.as_object().unwrap().values().next().unwrap()["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), 24, "none lost, none doubled");
}

/// The same database served by a second instance, with the first tenant's admin.
async fn second_instance_of(app: &TestApp) -> TestApp {
    TestApp {
        address: app.second_instance().await,
        pool: app.pool.clone(),
        client: app.client.clone(),
        admin: app.admin.clone(),
    }
}

#[tokio::test]
async fn an_instance_decides_on_what_another_instance_wrote_since_its_last_command() {
    let first = spawn_app().await;
    let second = second_instance_of(&first).await;
    let admin = &first.admin;
    let id = first.new_conversation(admin).await;
    let path = format!("/conversations/{id}");
    let assign = json!({"agent_id": admin.agent_id, "team_id": null});

    // Each instance remembers the conversation as its own last command left it.
    first
        .post(admin, &format!("{path}/assignment"), assign.clone())
        .await
        .expect(200);
    second
        .post(
            admin,
            &format!("{path}/assignment"),
            json!({"agent_id": null, "team_id": null}),
        )
        .await
        .expect(200);
    // Already assigned, as the first instance last saw it; unassigned in truth.
    first
        .post(admin, &format!("{path}/assignment"), assign)
        .await
        .expect(200);
    // A message the first instance has not seen, then one it writes after it.
    let outgoing = second.new_message(admin, &id, "outgoing").await;
    first
        .post(
            admin,
            &format!("{path}/messages/{outgoing}/status"),
            json!({"status": "delivered"}),
        )
        .await
        .expect(200);
    first.new_message(admin, &id, "incoming").await;

    assert_eq!(
        first
            .event_types("Conversation", &admin.tenant_id, &id)
            .await,
        [
            "ConversationStarted",
            "ConversationAssigned",
            "ConversationUnassigned",
            "ConversationAssigned",
            "MessagePosted",
            "MessageStatusChanged",
            "MessageReceived",
        ]
    );
}
