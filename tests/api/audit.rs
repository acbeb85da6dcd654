//! Auditors: a read-only role, histories of conversations, widgets and domains, and a
//! conversation's state at past points, checked against what the read models said then.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Caller, TestApp, spawn_app};

/// Every row of the plain account tables, to show a refused request changed none of them.
async fn accounts(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "select format('%s', t) from (
            select 'agent', id::text, role || ' ' || name || ' ' || coalesce(password_hash, '')
              from agents
            union all select 'token', encode(token_hash, 'hex'), agent_id::text from api_tokens
            union all select 'session', encode(token_hash, 'hex'), agent_id::text
              from agent_sessions
            union all select 'invitation', encode(token_hash, 'hex'), agent_id::text
              from agent_invitations
            union all select 'team', id::text, name from teams
            union all select 'member', team_id::text, agent_id::text from team_members) t
          order by 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// A valid body for each write route known today, so that an admin sending the same request
/// would be obeyed: the auditor's refusal is then about the role and nothing else. A write
/// route added later gets an empty object, which an auditor must be refused all the same.
fn body_for(method: &Method, template: &str, agent_id: &str) -> Option<Value> {
    let body = match (method.as_str(), template) {
        ("POST", "/api/v1/agents") => {
            json!({"name": "Eve", "email": "eve@example.com", "role": "admin"})
        }
        ("POST", "/api/v1/teams") => json!({"name": "Audit team"}),
        ("POST", "/api/v1/teams/{id}/members") => json!({"agent_id": agent_id}),
        ("PATCH", "/api/v1/agents/{id}") => json!({"name": "Renamed"}),
        ("PUT", "/api/v1/agents/{id}/password") => json!({"password": "a good password"}),
        ("POST", "/api/v1/domains") => json!({"hostname": "audit.example.com"}),
        ("POST", "/api/v1/domains/{id}/verify") => json!({}),
        ("POST", "/api/v1/widgets") => json!({"name": "Audit widget"}),
        ("PATCH", "/api/v1/widgets/{id}") => json!({"name": "Renamed"}),
        ("POST", "/api/v1/conversations") => json!({"source": "api"}),
        ("POST", "/api/v1/conversations/{id}/messages") => {
            json!({"content": "hi", "message_type": "outgoing"})
        }
        ("POST", "/api/v1/conversations/{id}/messages/{message_id}/status") => {
            json!({"status": "delivered"})
        }
        ("POST", "/api/v1/conversations/{id}/read") => json!({}),
        ("POST", "/api/v1/conversations/{id}/assignment") => json!({"agent_id": agent_id}),
        ("POST", "/api/v1/conversations/{id}/status") => json!({"status": "resolved"}),
        ("POST", "/api/v1/conversations/{id}/labels") => json!({"label": "audited"}),
        ("DELETE", _) => return None,
        _ => json!({}),
    };
    Some(body)
}

#[tokio::test]
async fn an_auditor_can_read_and_is_refused_on_every_write_endpoint() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let conversation = app.new_conversation(admin).await;
    let message = app.new_message(admin, &conversation, "outgoing").await;
    app.post(
        admin,
        &format!("/conversations/{conversation}/labels"),
        json!({"label": "vip"}),
    )
    .await
    .expect(200);
    let widget = app
        .created_id(admin, "/widgets", json!({"name": "Support"}))
        .await;
    let domain = app
        .created_id(admin, "/domains", json!({"hostname": "shop.example.com"}))
        .await;
    let team = app
        .created_id(admin, "/teams", json!({"name": "Sales"}))
        .await;
    let auditor = app.new_agent(admin, "auditor@example.com", "auditor").await;
    let agents = app.get(admin, "/agents").await.expect(200);
    assert!(
        agents
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == auditor.agent_id.as_str() && a["role"] == "auditor"),
        "the auditor is listed with its role: {agents:#}"
    );

    // Every write route that takes an API token, taken from the OpenAPI document the routes
    // generate, so that a new one is covered without editing this test. Routes authenticated
    // otherwise (a visitor's session, a channel's signed webhook) have no roles; nor do the
    // sign-in routes, which take no credential (login, accepting an invitation) or end the
    // caller's own console session (logout, which auditors may do too).
    let document = app.openapi().await;
    let mut writes = Vec::new();
    for (template, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let takes_token = operation["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            if takes_token && !["get", "head", "options"].contains(&method.as_str()) {
                writes.push((method.to_uppercase(), template.clone()));
            }
        }
    }
    for known in [
        ("POST", "/api/v1/agents"),
        ("POST", "/api/v1/teams"),
        ("POST", "/api/v1/teams/{id}/members"),
        ("DELETE", "/api/v1/teams/{id}/members/{agent_id}"),
        ("PATCH", "/api/v1/agents/{id}"),
        ("PUT", "/api/v1/agents/{id}/password"),
        ("POST", "/api/v1/agents/{id}/invitation"),
        ("POST", "/api/v1/domains"),
        ("POST", "/api/v1/domains/{id}/verify"),
        ("DELETE", "/api/v1/domains/{id}"),
        ("POST", "/api/v1/widgets"),
        ("PATCH", "/api/v1/widgets/{id}"),
        ("DELETE", "/api/v1/widgets/{id}"),
        ("POST", "/api/v1/conversations"),
        ("POST", "/api/v1/conversations/{id}/messages"),
        (
            "POST",
            "/api/v1/conversations/{id}/messages/{message_id}/status",
        ),
        ("POST", "/api/v1/conversations/{id}/read"),
        ("POST", "/api/v1/conversations/{id}/assignment"),
        ("POST", "/api/v1/conversations/{id}/status"),
        ("POST", "/api/v1/conversations/{id}/labels"),
        ("DELETE", "/api/v1/conversations/{id}/labels/{label}"),
    ] {
        assert!(
            writes.iter().any(|(m, t)| m == known.0 && t == known.1),
            "the OpenAPI document lists {known:?}"
        );
    }

    let events_before = app.event_count().await;
    let accounts_before = accounts(&app).await;
    // Resources this test did not make get an id nobody has: the refusal comes first.
    let nobody = uuid::Uuid::now_v7().to_string();
    let fill = |template: &str| {
        let id = match template.split('/').nth(3) {
            Some("conversations") => conversation.as_str(),
            Some("widgets") => widget.as_str(),
            Some("domains") => domain.as_str(),
            Some("teams") => team.as_str(),
            Some("agents") => auditor.agent_id.as_str(),
            _ => nobody.as_str(),
        };
        template
            .trim_start_matches("/api/v1")
            .replace("{id}", id)
            .replace("{agent_id}", &admin.agent_id)
            .replace("{message_id}", &message)
            .replace("{label}", "vip")
    };
    for (method, template) in &writes {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body = body_for(&method, template, &admin.agent_id);
        let answer = app
            .call(&auditor, method.clone(), &fill(template), body)
            .await;
        answer.problem(403, "forbidden");
    }
    assert_eq!(
        app.event_count().await,
        events_before,
        "no refused write stored an event"
    );
    assert_eq!(
        accounts(&app).await,
        accounts_before,
        "no refused write changed an account"
    );

    // The same requests from an admin are obeyed (or refused for a reason of their own, like a
    // domain with no proof published): the bodies above are real, not straw men.
    for (method, template) in &writes {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body = body_for(&method, template, &admin.agent_id);
        let answer = app.call(admin, method.clone(), &fill(template), body).await;
        assert_ne!(
            answer.status.as_u16(),
            403,
            "{method} {template} is refused to an admin too: {:#}",
            answer.body
        );
    }

    // Reading is allowed: the inbox, the history, past states and the feed.
    app.get(&auditor, "/conversations?status=all")
        .await
        .expect(200);
    let history = app
        .get(&auditor, &format!("/conversations/{conversation}/history"))
        .await
        .expect(200);
    assert!(history["data"].as_array().unwrap().len() >= 3);
    app.get(&auditor, &format!("/conversations/{conversation}/state"))
        .await
        .expect(200);
    app.get(&auditor, &format!("/widgets/{widget}/history"))
        .await
        .expect(200);
    app.get(&auditor, &format!("/domains/{domain}/history"))
        .await
        .expect(200);
}

#[tokio::test]
async fn agents_may_not_read_the_event_record_and_admins_may() {
    let app = spawn_app().await;
    let conversation = app.new_conversation(&app.admin).await;
    let agent = app
        .new_agent(&app.admin, "agent@example.com", "agent")
        .await;
    for path in [
        format!("/conversations/{conversation}/history"),
        format!("/conversations/{conversation}/state"),
    ] {
        app.get(&agent, &path).await.problem(403, "forbidden");
        app.get(&app.admin, &path).await.expect(200);
    }
}

/// Sends `body` as `caller` with a request id of our choosing, for the metadata checks.
async fn post_as(app: &TestApp, caller: &Caller, path: &str, body: Value, request_id: &str) {
    let response = app
        .client
        .post(format!("{}/api/v1{path}", app.address))
        .bearer_auth(&caller.token)
        .header("x-request-id", request_id)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
}

#[tokio::test]
async fn a_history_lists_every_event_with_its_metadata_as_json_and_as_ndjson() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let conversation = app.new_conversation(admin).await;
    let path = format!("/conversations/{conversation}");
    post_as(
        &app,
        admin,
        &format!("{path}/messages"),
        json!({"content": "Where is my order?", "message_type": "incoming"}),
        "req-incoming",
    )
    .await;
    post_as(
        &app,
        admin,
        &format!("{path}/labels"),
        json!({"label": "vip"}),
        "req-label",
    )
    .await;

    let json = app.get(admin, &format!("{path}/history")).await.expect(200);
    let events = json["data"].as_array().unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["ConversationStarted", "MessageReceived", "LabelAdded"]
    );
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event["sequence"], index as i64 + 1);
        assert_eq!(event["event_version"], "1");
        assert_eq!(
            event["metadata"]["actor"],
            format!("agent:{}", admin.agent_id)
        );
        assert!(event["metadata"]["timestamp"].is_string());
        assert!(event["recorded_at"].is_string());
        assert!(event["id"].is_string() && event["cursor"].is_string());
    }
    let positions: Vec<i64> = events
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(events[1]["metadata"]["request_id"], "req-incoming");
    assert_eq!(events[1]["metadata"]["correlation_id"], "req-incoming");
    assert_eq!(events[1]["data"]["content"], "Where is my order?");
    assert_eq!(events[2]["data"], json!({"label": "vip"}));

    let response = app
        .client
        .get(format!("{}/api/v1{path}/history", app.address))
        .bearer_auth(&admin.token)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/x-ndjson",
        "NDJSON is answered as such"
    );
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(&lines, events, "NDJSON holds the same events, one per line");

    // Widgets and domains have histories too, deleted and revoked ones included.
    let widget = app
        .created_id(admin, "/widgets", json!({"name": "Support"}))
        .await;
    app.call(admin, Method::DELETE, &format!("/widgets/{widget}"), None)
        .await
        .expect(204);
    let widget_history = app
        .get(admin, &format!("/widgets/{widget}/history"))
        .await
        .expect(200);
    let types: Vec<&str> = widget_history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["WidgetCreated", "WidgetDeleted"]);
    let domain = app
        .created_id(admin, "/domains", json!({"hostname": "shop.example.com"}))
        .await;
    let domain_history = app
        .get(admin, &format!("/domains/{domain}/history"))
        .await
        .expect(200);
    assert_eq!(
        domain_history["data"][0]["data"]["hostname"],
        "shop.example.com"
    );

    // Another tenant's ids do not exist; malformed ids and unknown parameters are refused.
    let other = app.new_tenant("Globex").await;
    app.get(&other, &format!("{path}/history"))
        .await
        .problem(404, "conversation_not_found");
    app.get(&other, &format!("/widgets/{widget}/history"))
        .await
        .problem(404, "widget_not_found");
    app.get(&other, &format!("/domains/{domain}/history"))
        .await
        .problem(404, "domain_not_found");
    let field = app
        .get(admin, "/conversations/nope/history")
        .await
        .problem(400, "invalid_id");
    assert_eq!(field.as_deref(), Some("id"));
    let field = app
        .get(admin, &format!("{path}/history?page=2"))
        .await
        .problem(422, "invalid_query");
    assert_eq!(field.as_deref(), Some("page"));
}

#[tokio::test]
async fn a_long_history_streams_every_event_across_pages() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let conversation = app.new_conversation(admin).await;
    let path = format!("/conversations/{conversation}");
    // More events than one page of the reader (500), so the stream crosses pages.
    for round in 0..260 {
        let label = format!("l{}", round % 3);
        app.post(admin, &format!("{path}/labels"), json!({"label": label}))
            .await
            .expect(200);
        app.call(
            admin,
            Method::DELETE,
            &format!("{path}/labels/{label}"),
            None,
        )
        .await
        .expect(200);
    }
    let stored = app
        .event_types("Conversation", &admin.tenant_id, &conversation)
        .await
        .len();
    assert!(stored > 500);
    for accept in ["application/json", "application/x-ndjson"] {
        let text = app
            .client
            .get(format!("{}/api/v1{path}/history", app.address))
            .bearer_auth(&admin.token)
            .header("accept", accept)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let sequences: Vec<i64> = if accept == "application/json" {
            let json: Value = serde_json::from_str(&text).unwrap();
            json["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["sequence"].as_i64().unwrap())
                .collect()
        } else {
            text.lines()
                .map(|l| {
                    serde_json::from_str::<Value>(l).unwrap()["sequence"]
                        .as_i64()
                        .unwrap()
                })
                .collect()
        };
        assert_eq!(
            sequences,
            (1..=stored as i64).collect::<Vec<_>>(),
            "{accept}: every event once, in order"
        );
    }
}

/// Timestamps in a comparable form: read models keep microseconds, events may carry more.
fn micros(value: &Value) -> Value {
    match value {
        Value::String(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => json!(
                t.with_timezone(&Utc)
                    .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                    .to_string()
            ),
            Err(_) => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(micros).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), micros(v))).collect())
        }
        other => other.clone(),
    }
}

/// What the read models say about a conversation now, in the state endpoint's terms.
async fn read_models_now(app: &TestApp, caller: &Caller, id: &str, position: i64) -> Value {
    let row = app
        .get(
            caller,
            &format!("/conversations/{id}?min_position={position}"),
        )
        .await
        .expect(200);
    let messages = app
        .get(caller, &format!("/conversations/{id}/messages?limit=100"))
        .await
        .expect(200);
    let messages: Vec<Value> = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            json!({
                "id": m["id"], "direction": m["direction"], "content": m["content"],
                "author": m["author"], "created_at": m["created_at"], "status": m["status"],
                "sent_at": m["sent_at"], "delivered_at": m["delivered_at"],
                "read_at": m["read_at"], "failed_at": m["failed_at"], "error": m["error"],
            })
        })
        .collect();
    micros(&json!({
        "source": row["source"],
        "contact": {"name": row["contact_name"], "email": row["contact_email"],
                    "phone": row["contact_phone"]},
        "widget_id": row["widget_id"],
        "status": row["status"],
        "snoozed_until": row["snoozed_until"],
        "assignee_id": row["assignee_id"],
        "team_id": row["team_id"],
        "labels": row["labels"],
        "message_count": row["message_count"],
        "messages": messages,
    }))
}

/// The state endpoint's answer, cut to what the read models show.
fn comparable(state: &Value) -> Value {
    let messages: Vec<Value> = state["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let mut m = m.clone();
            m.as_object_mut().unwrap().remove("seq");
            m
        })
        .collect();
    micros(&json!({
        "source": state["source"],
        "contact": state["contact"],
        "widget_id": state["widget_id"],
        "status": state["status"],
        "snoozed_until": state["snoozed_until"],
        "assignee_id": state["assignee_id"],
        "team_id": state["team_id"],
        "labels": state["labels"],
        "message_count": messages.len(),
        "messages": messages,
    }))
}

/// What a command answered: the conversation's version and the global position reached.
async fn command(app: &TestApp, caller: &Caller, path: &str, body: Value) -> (i64, i64) {
    let answer = app.post(caller, path, body).await;
    assert!(answer.status.is_success(), "{path}: {:#}", answer.body);
    (
        answer.body["version"].as_i64().unwrap(),
        answer.body["position"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn a_conversations_state_at_three_past_points_matches_what_the_read_models_said_then() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let agent = app.new_agent(admin, "sam@example.com", "agent").await;
    let team = app
        .created_id(admin, "/teams", json!({"name": "Support"}))
        .await;
    let auditor = app.new_agent(admin, "audit@example.com", "auditor").await;
    let started = app
        .post(
            admin,
            "/conversations",
            json!({"source": "api", "contact": {"name": "Bob", "email": "bob@example.com"}}),
        )
        .await
        .expect(201);
    let id = started["id"].as_str().unwrap().to_owned();
    let c = format!("/conversations/{id}");
    let messages = format!("{c}/messages");

    // Point 1: a question, a reply and a label.
    command(
        &app,
        admin,
        &messages,
        json!({"content": "Hi, where is my order?", "message_type": "incoming"}),
    )
    .await;
    let reply = app
        .post(
            admin,
            &messages,
            json!({"content": "It ships today.", "message_type": "outgoing"}),
        )
        .await
        .expect(201);
    let reply_id = reply["message_id"].as_str().unwrap().to_owned();
    let (version_1, position_1) = command(
        &app,
        admin,
        &format!("{c}/labels"),
        json!({"label": "shipping"}),
    )
    .await;
    let said_1 = read_models_now(&app, admin, &id, position_1).await;

    // Point 2: delivered, assigned, a note, another label, snoozed.
    command(
        &app,
        admin,
        &format!("{messages}/{reply_id}/status"),
        json!({"status": "delivered"}),
    )
    .await;
    command(
        &app,
        admin,
        &format!("{c}/assignment"),
        json!({"agent_id": agent.agent_id, "team_id": team}),
    )
    .await;
    command(
        &app,
        admin,
        &messages,
        json!({"content": "VIP customer", "message_type": "outgoing", "private": true}),
    )
    .await;
    command(&app, admin, &format!("{c}/labels"), json!({"label": "vip"})).await;
    let snooze_until = (Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let (_, position_2) = command(
        &app,
        admin,
        &format!("{c}/status"),
        json!({"status": "snoozed", "snoozed_until": snooze_until}),
    )
    .await;
    let said_2 = read_models_now(&app, admin, &id, position_2).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let as_of_2 = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;

    // Point 3: the contact writes (reopening it), read, a label taken off, unassigned.
    command(
        &app,
        admin,
        &messages,
        json!({"content": "Thanks!", "message_type": "incoming"}),
    )
    .await;
    command(
        &app,
        admin,
        &format!("{messages}/{reply_id}/status"),
        json!({"status": "read"}),
    )
    .await;
    app.call(admin, Method::DELETE, &format!("{c}/labels/shipping"), None)
        .await
        .expect(200);
    let (_, position_3) = command(
        &app,
        admin,
        &format!("{c}/assignment"),
        json!({"agent_id": null}),
    )
    .await;
    let said_3 = read_models_now(&app, admin, &id, position_3).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let as_of_3 = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;

    // Later changes that the past states must not show.
    command(
        &app,
        admin,
        &format!("{c}/status"),
        json!({"status": "resolved"}),
    )
    .await;
    command(
        &app,
        admin,
        &messages,
        json!({"content": "One more thing", "message_type": "incoming"}),
    )
    .await;

    let state_1 = app
        .get(&auditor, &format!("{c}/state?version={version_1}"))
        .await
        .expect(200);
    assert_eq!(state_1["version"], version_1);
    assert_eq!(comparable(&state_1), said_1, "point 1, by version");
    let as_of =
        |t: DateTime<Utc>| url_encode(&t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    let state_2 = app
        .get(&auditor, &format!("{c}/state?as_of={}", as_of(as_of_2)))
        .await
        .expect(200);
    assert_eq!(comparable(&state_2), said_2, "point 2, by time");
    let state_3 = app
        .get(&auditor, &format!("{c}/state?as_of={}", as_of(as_of_3)))
        .await
        .expect(200);
    assert_eq!(comparable(&state_3), said_3, "point 3, by time");
    assert_eq!(said_2["status"], "snoozed");
    assert_eq!(
        said_3["status"], "open",
        "the contact's message reopened it"
    );

    // The current state agrees with the read models now; the past ones did not change.
    let now = app.get(&auditor, &format!("{c}/state")).await.expect(200);
    let latest = now["position"].as_i64().unwrap();
    assert_eq!(
        comparable(&now),
        read_models_now(&app, admin, &id, latest).await
    );
    assert_eq!(now["status"], "open");

    // Points outside the history, and bad parameters.
    let before_start = url_encode("2000-01-01T00:00:00Z");
    app.get(&auditor, &format!("{c}/state?as_of={before_start}"))
        .await
        .problem(404, "conversation_not_started");
    for (query, field) in [
        ("version=0", "version"),
        ("version=9999", "version"),
        ("version=x", "version"),
        ("as_of=yesterday", "as_of"),
        ("as_of=2026-01-01T00:00:00Z&version=2", "version"),
    ] {
        let got = app
            .get(&auditor, &format!("{c}/state?{query}"))
            .await
            .problem(422, "invalid_query");
        assert_eq!(got.as_deref(), Some(field), "{query}");
    }
}

fn url_encode(raw: &str) -> String {
    form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}
