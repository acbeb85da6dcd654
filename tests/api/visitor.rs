//! The visitor API of the website channel, over HTTP: sessions only from verified domains,
//! tokens that reach one conversation, identity verification, receipts, limits.

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::website::{SITE, Website, website};

async fn inbox(site: &Website, position: &Value) -> Value {
    site.app
        .get(
            &site.app.admin,
            &format!("/conversations?source=web&min_position={position}"),
        )
        .await
        .expect(200)
}

#[tokio::test]
async fn a_session_starts_only_from_a_verified_domain_of_a_live_widget() {
    let site = website(json!({"pre_chat_form": true, "greeting_title": "Hi there"})).await;
    let session = site.start_session().await;
    assert_eq!(
        session.headers["access-control-allow-origin"],
        site.origin().as_str()
    );
    let session = session.expect(200);
    assert!(session["token"].as_str().unwrap().contains('.'));
    assert_eq!(session["widget"]["greeting_title"], "Hi there");
    assert_eq!(session["widget"]["pre_chat_form"], true);
    assert_eq!(session["agents_online"], false);

    let elsewhere = site
        .visitor_call(
            Method::POST,
            "/sessions",
            Some("http://evil.example.net:8080"),
            None,
            Some(json!({})),
        )
        .await;
    assert!(
        elsewhere
            .headers
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(
        elsewhere.problem(403, "origin_not_allowed").as_deref(),
        Some("Origin")
    );
    let subdomain = format!("http://www.{SITE}");
    site.visitor_call(
        Method::POST,
        "/sessions",
        Some(&subdomain),
        None,
        Some(json!({})),
    )
    .await
    .problem(403, "origin_not_allowed");
    site.visitor_call(Method::POST, "/sessions", None, None, Some(json!({})))
        .await
        .problem(403, "origin_required");
    let preflight = site
        .visitor_call(
            Method::OPTIONS,
            "/sessions",
            Some("http://evil.example.net"),
            None,
            None,
        )
        .await;
    assert!(
        preflight
            .headers
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(preflight.status, 403);
    let preflight = site
        .visitor_call(
            Method::OPTIONS,
            "/sessions",
            Some(&site.origin()),
            None,
            None,
        )
        .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.headers["access-control-allow-origin"],
        site.origin().as_str()
    );

    let disabled = site.new_widget(json!({"name": "Off"})).await;
    let id = disabled["id"].as_str().unwrap();
    site.app
        .call(
            &site.app.admin,
            Method::PATCH,
            &format!("/widgets/{id}"),
            Some(json!({"enabled": false})),
        )
        .await
        .expect(200);
    let unknown = format!("pk_{}{}", uuid::Uuid::now_v7().simple(), "00".repeat(12));
    let forged = format!("{}ff", &site.key()[..site.key().len() - 2]);
    let disabled = disabled["public_key"].as_str().unwrap().to_owned();
    for key in [unknown, forged, "pk_nonsense".to_owned(), disabled] {
        let origin = Some(site.origin());
        site.widget_call(
            &key,
            Method::POST,
            "/sessions",
            (origin.as_deref(), None),
            Some(json!({})),
        )
        .await
        .problem(404, "widget_not_found");
    }
}

#[tokio::test]
async fn a_visitor_message_reaches_the_inbox_and_the_reply_comes_back_with_its_receipts() {
    let site = website(json!({})).await;
    let visitor = site.visitor().await;
    let (message, position) = visitor.say("<img src=x onerror=alert(1)> hello").await;
    let listed = inbox(&site, &position).await;
    let conversation = &listed["data"][0];
    assert_eq!(conversation["id"], visitor.conversation_id.as_str());
    assert_eq!(conversation["source"], "web");
    assert_eq!(conversation["unread_count"], 1);
    assert_eq!(
        conversation["last_message_preview"],
        "<img src=x onerror=alert(1)> hello"
    );

    let path = format!("/conversations/{}/messages", visitor.conversation_id);
    site.app
        .post(
            &site.app.admin,
            &path,
            json!({"content": "internal: VIP", "message_type": "outgoing", "private": true}),
        )
        .await
        .expect(201);
    let reply = site
        .app
        .post(
            &site.app.admin,
            &path,
            json!({"content": "Hello! How can we help?", "message_type": "outgoing"}),
        )
        .await
        .expect(201);
    let reply_id = reply["message_id"].as_str().unwrap();
    let history = visitor
        .call(Method::GET, &format!("/messages?min={}", 0), None)
        .await;
    assert_eq!(history.status, 422, "unknown parameters are refused");
    let mut seen = Vec::new();
    for _ in 0..100 {
        // The newest two entries: the note between them must not take one of the places.
        let history = visitor
            .call(Method::GET, "/messages?limit=2", None)
            .await
            .expect(200);
        seen = history["data"].as_array().unwrap().clone();
        if seen.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(seen.len(), 2, "the note is not shown: {seen:?}");
    assert_eq!(seen[0]["id"], message.as_str());
    assert_eq!(seen[0]["from"], "visitor");
    assert_eq!(seen[1]["from"], "team");
    assert_eq!(seen[1]["status"], "sent");

    for status in ["delivered", "read", "delivered"] {
        visitor
            .call(
                Method::POST,
                "/receipts",
                Some(json!({"message_id": reply_id, "status": status})),
            )
            .await
            .expect(204);
    }
    let types = site
        .app
        .event_types(
            "Conversation",
            &site.app.admin.tenant_id,
            &visitor.conversation_id,
        )
        .await;
    let statuses = types
        .iter()
        .filter(|t| *t == "MessageStatusChanged")
        .count();
    assert_eq!(
        statuses, 3,
        "sent, delivered, read, and nothing backwards: {types:?}"
    );
    visitor
        .call(
            Method::POST,
            "/receipts",
            Some(json!({"message_id": reply_id, "status": "failed"})),
        )
        .await
        .problem(422, "invalid_status");
}

fn identity_hash(secret: &str, user: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(user.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn a_verified_user_has_one_conversation_on_every_device_and_a_wrong_hash_is_refused() {
    let site = website(json!({})).await;
    let secret = site
        .app
        .get(
            &site.app.admin,
            &format!("/widgets/{}/identity-secret", site.widget_id()),
        )
        .await
        .expect(200)["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let laptop = site.visitor().await;
    let wrong = laptop
        .call(
            Method::POST,
            "/identify",
            Some(json!({"user_id": "u-42", "hash": identity_hash(&secret, "u-43")})),
        )
        .await;
    assert_eq!(
        wrong.problem(403, "identity_not_verified").as_deref(),
        Some("hash")
    );
    let mut conversations = Vec::new();
    for device in [laptop, site.visitor().await] {
        let session = device
            .call(
                Method::POST,
                "/identify",
                Some(json!({"user_id": "u-42", "hash": identity_hash(&secret, "u-42")})),
            )
            .await
            .expect(200);
        assert_eq!(session["identified"], true);
        assert_ne!(session["conversation_id"], device.conversation_id.as_str());
        conversations.push(session["conversation_id"].clone());
    }
    assert_eq!(conversations[0], conversations[1]);
    let agent = site
        .app
        .new_agent(&site.app.admin, "a@example.com", "agent")
        .await;
    site.app
        .get(
            &agent,
            &format!("/widgets/{}/identity-secret", site.widget_id()),
        )
        .await
        .problem(403, "forbidden");
}

#[tokio::test]
async fn a_token_reaches_only_its_own_widget_and_bad_input_is_refused() {
    let site = website(json!({})).await;
    let visitor = site.visitor().await;
    let events_before = site.app.event_count().await;
    let other = site.new_widget(json!({"name": "Other"})).await;
    site.widget_call(
        other["public_key"].as_str().unwrap(),
        Method::GET,
        "/messages",
        (Some(&site.origin()), Some(&visitor.token)),
        None,
    )
    .await
    .problem(401, "unauthorized");
    let forged = format!("{}x", visitor.token);
    site.visitor_call(
        Method::GET,
        "/messages",
        Some(&site.origin()),
        Some(&forged),
        None,
    )
    .await
    .problem(401, "unauthorized");
    let retry = json!({"id": uuid::Uuid::now_v7(), "content": "sent twice"});
    for _ in 0..2 {
        let sent = visitor
            .call(Method::POST, "/messages", Some(retry.clone()))
            .await
            .expect(201);
        assert_eq!(sent["id"], retry["id"]);
    }
    let types = site
        .app
        .event_types(
            "Conversation",
            &site.app.admin.tenant_id,
            &visitor.conversation_id,
        )
        .await;
    assert_eq!(
        types,
        ["ConversationStarted", "MessageReceived"],
        "a retried message is stored once"
    );
    let long = "x".repeat(domain::text::MessageContent::MAX_CHARS + 1);
    assert_eq!(
        visitor
            .call(Method::POST, "/messages", Some(json!({"content": long})))
            .await
            .problem(422, "too_long")
            .as_deref(),
        Some("content")
    );
    assert_eq!(
        visitor
            .call(
                Method::POST,
                "/messages",
                Some(json!({"content": "hi", "email": "not an address"}))
            )
            .await
            .problem(422, "invalid_email")
            .as_deref(),
        Some("email")
    );
    assert_eq!(
        site.app.event_count().await,
        events_before + 3,
        "only the second widget and the one message were stored"
    );
}

#[tokio::test]
async fn a_visitor_sending_too_fast_is_told_when_to_retry() {
    let site = website(json!({})).await;
    let visitor = site.visitor().await;
    let mut limited = None;
    for _ in 0..60 {
        let answer = visitor.call(Method::GET, "/messages", None).await;
        if answer.status == 429 {
            limited = Some(answer);
            break;
        }
        answer.expect(200);
    }
    let limited = limited.expect("the limit is reached within 60 requests");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    limited.problem(429, "rate_limited");
}
