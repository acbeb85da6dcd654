//! The WhatsApp channel against a local stand-in of Meta: the webhook handshake, signed
//! deliveries (and forged ones), at-least-once and out-of-order webhooks, replies through
//! the Graph API with retries, the 24-hour window and templates, and WhatsApp conversations
//! in the unified inbox. The payloads are the Cloud API samples in `fixtures/whatsapp/`.

use std::future::Future;
use std::time::Duration;

use api::config::ServeArgs;
use api::startup::Application;
use commands::bus::CommandBus;
use commands::context::{CommandContext, stream_id};
use commands::store::EventStore;
use domain::actor::Actor;
use domain::conversation::{Contact, Conversation, ConversationCommand, Source};
use domain::ids::{ConversationId, TenantId, WidgetId};
use serde_json::{Value, json};

use crate::chromium::Browser;
use crate::console::{set_password, sign_in};
use crate::graph_stand_in::{GraphStandIn, Signature, deliver};
use crate::helpers::{
    Server, TestApp, database_url, free_port, fresh_database, pool, serve_args, spawn_app_with,
    wait_for_health, workspace_root,
};

/// The Meta app's secret the test channel is registered with.
pub const APP_SECRET: &str = "3f9d2c71e8b04a6d95c1f0e2b7a8d4c6";
const ACCESS_TOKEN: &str = "EAAGm0PX4ZCpsBAtestaccesstoken";
const VERIFY_TOKEN: &str = "upzento-verify-5521";
/// The number in the fixtures.
const PHONE_NUMBER_ID: &str = "106540352242922";
/// Sheena Nelson, the contact in the fixtures.
const SHEENA: &str = "16505551234";

/// A server talking to a Graph API stand-in, with one channel for the fixtures' number.
struct Setup {
    app: TestApp,
    graph: GraphStandIn,
    channel: Value,
    webhook: String,
}

/// The server options of a test: the stand-in as Graph API, short retries, and a fixed
/// secrets key, so a second instance on the same database can read the channel's secrets.
fn args(graph: &GraphStandIn) -> ServeArgs {
    ServeArgs {
        whatsapp_graph_url: graph.url(),
        whatsapp_retry_ms: 50,
        secrets_key: Some("5a".repeat(32)),
        ..serve_args()
    }
}

async fn setup() -> Setup {
    let graph = GraphStandIn::start().await;
    let app = spawn_app_with(args(&graph)).await;
    let channel = app
        .post(
            &app.admin,
            "/whatsapp/channels",
            json!({
                "name": "Support",
                "phone_number_id": PHONE_NUMBER_ID,
                "business_account_id": "102290129340398",
                "access_token": ACCESS_TOKEN,
                "app_secret": APP_SECRET,
                "verify_token": VERIFY_TOKEN,
            }),
        )
        .await
        .expect(201);
    let webhook = format!(
        "{}/webhooks/whatsapp/{}",
        app.address,
        channel["id"].as_str().unwrap()
    );
    Setup {
        app,
        graph,
        channel,
        webhook,
    }
}

/// A wire sample from `fixtures/whatsapp/`.
fn fixture(name: &str) -> Value {
    let path = workspace_root()
        .join("tests/api/fixtures/whatsapp")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The sample with every message sent just now, inside the 24-hour window.
fn fresh(name: &str) -> Value {
    let mut payload = fixture(name);
    let now = chrono::Utc::now().timestamp().to_string();
    for entry in payload["entry"].as_array_mut().unwrap() {
        for change in entry["changes"].as_array_mut().unwrap() {
            if let Some(messages) = change["value"]["messages"].as_array_mut() {
                for message in messages {
                    message["timestamp"] = json!(now);
                }
            }
        }
    }
    payload
}

/// A signed delivery of `payload`, which must be accepted.
async fn post(setup: &Setup, payload: &Value) {
    let body = serde_json::to_vec(payload).unwrap();
    let (status, answer) = deliver(&setup.webhook, &body, Signature::Valid(APP_SECRET)).await;
    assert_eq!(
        status, 200,
        "the webhook refused a signed delivery: {answer}"
    );
}

/// A delivery of one status for `wamid`.
fn status(wamid: &str, status: &str, timestamp: i64) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398",
        "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "statuses": [{"id": wamid, "status": status, "timestamp": timestamp.to_string(),
                          "recipient_id": SHEENA}]}}]}]})
}

/// Polls `check` until it answers something (at most 15 s).
async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..150 {
        if let Some(found) = check().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The inbox list of every status and source.
async fn inbox(app: &TestApp) -> Vec<Value> {
    app.get(&app.admin, "/conversations?status=all&limit=100")
        .await
        .expect(200)["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// The timeline of a conversation.
async fn timeline(app: &TestApp, conversation: &str) -> Vec<Value> {
    app.get(
        &app.admin,
        &format!("/conversations/{conversation}/messages"),
    )
    .await
    .expect(200)["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until the inbox shows a WhatsApp conversation with `count` messages; answers it.
async fn whatsapp_conversation(app: &TestApp, phone: &str, count: i64) -> Value {
    eventually("the WhatsApp conversation in the inbox", || async {
        inbox(app).await.into_iter().find(|c| {
            c["source"] == "whatsapp"
                && c["contact_phone"] == format!("+{phone}")
                && c["message_count"] == count
        })
    })
    .await
}

/// How many events of `event_type` the store holds.
async fn count_events(app: &TestApp, event_type: &str) -> i64 {
    sqlx::query_scalar("select count(*) from events where event_type = $1")
        .bind(event_type)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Waits until a message's delivery status is `expected`; answers the message.
async fn message_status(app: &TestApp, conversation: &str, id: &str, expected: &str) -> Value {
    eventually(&format!("message {id} to be {expected}"), || async {
        timeline(app, conversation)
            .await
            .into_iter()
            .find(|m| m["id"] == id && m["status"] == expected)
    })
    .await
}

/// An agent's reply; answers the message id.
async fn reply(app: &TestApp, conversation: &str, content: &str) -> String {
    app.post(
        &app.admin,
        &format!("/conversations/{conversation}/messages"),
        json!({"content": content, "message_type": "outgoing"}),
    )
    .await
    .expect(201)["message_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_verification_handshake_echoes_the_challenge_only_for_the_right_token() {
    let setup = setup().await;
    let client = reqwest::Client::new();
    let ask = |url: String| {
        let client = client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let url = |mode: &str, token: &str| {
        format!(
            "{}?hub.mode={mode}&hub.verify_token={token}&hub.challenge=1158201444",
            setup.webhook
        )
    };

    assert_eq!(
        ask(url("subscribe", VERIFY_TOKEN)).await,
        (200, "1158201444".to_owned())
    );
    for (description, request) in [
        ("wrong token", url("subscribe", "guess")),
        ("wrong mode", url("unsubscribe", VERIFY_TOKEN)),
        (
            "no challenge",
            format!(
                "{}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}",
                setup.webhook
            ),
        ),
        ("nothing", setup.webhook.clone()),
        (
            "unknown channel",
            format!(
                "{}/webhooks/whatsapp/{}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1",
                setup.app.address,
                uuid::Uuid::now_v7()
            ),
        ),
    ] {
        let (status, body) = ask(request).await;
        assert_eq!(status, 403, "{description}");
        assert!(!body.contains("1158201444"), "{description}");
    }
}

#[tokio::test]
async fn forged_missing_and_stale_signatures_are_refused_and_nothing_is_stored() {
    let setup = setup().await;
    let earlier = serde_json::to_vec(&fresh("webhook-media.json")).unwrap();
    let body = serde_json::to_vec(&fresh("webhook-text.json")).unwrap();

    for (description, signature, code) in [
        ("forged", Signature::Forged, "invalid_signature"),
        ("missing", Signature::Missing, "signature_missing"),
        ("stale", Signature::Stale(&earlier), "invalid_signature"),
    ] {
        let (status, problem) = deliver(&setup.webhook, &body, signature).await;
        assert_eq!(status, 401, "{description}: {problem}");
        assert_eq!(problem["code"], code, "{description}");
        assert_eq!(problem["field"], "X-Hub-Signature-256", "{description}");
    }
    let (status, _) = deliver(&setup.webhook, b"not json at all", Signature::Forged).await;
    assert_eq!(status, 401, "a forged body is refused before it is parsed");

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(setup.app.event_count().await, 0);
    let stored: i64 = sqlx::query_scalar("select count(*) from whatsapp_webhooks")
        .fetch_one(&setup.app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    assert!(inbox(&setup.app).await.is_empty());

    // The same body, signed as Meta signs it, goes through.
    post(&setup, &serde_json::from_slice(&body).unwrap()).await;
    whatsapp_conversation(&setup.app, SHEENA, 1).await;
}

#[tokio::test]
async fn a_signed_delivery_that_is_not_a_whatsapp_payload_is_refused_with_its_field() {
    let setup = setup().await;
    let cases = [
        ("not JSON", b"{\"object\": ".to_vec(), 400, "malformed_json", None),
        (
            "another object",
            br#"{"object": "page", "entry": []}"#.to_vec(),
            422,
            "unsupported_object",
            Some("object"),
        ),
        (
            "messages change without metadata",
            br#"{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {"messages": []}}]}]}"#.to_vec(),
            422,
            "invalid_webhook",
            Some("entry[0].changes[0].value.metadata"),
        ),
    ];
    for (description, body, status, code, field) in cases {
        let (got, problem) = deliver(&setup.webhook, &body, Signature::Valid(APP_SECRET)).await;
        assert_eq!(got, status, "{description}: {problem}");
        assert_eq!(problem["code"], code, "{description}");
        assert_eq!(problem["field"].as_str(), field, "{description}");
    }
    assert_eq!(setup.app.event_count().await, 0);
}

#[tokio::test]
async fn a_delivery_with_several_entries_messages_and_statuses_is_applied_in_full() {
    let setup = setup().await;
    post(&setup, &fresh("webhook-batch.json")).await;

    let sheena = whatsapp_conversation(&setup.app, SHEENA, 2).await;
    let omar = whatsapp_conversation(&setup.app, "447700900123", 1).await;
    assert_eq!(sheena["contact_name"], "Sheena Nelson");
    assert_eq!(omar["contact_name"], "Omar Haddad");
    assert_eq!(sheena["unread_count"], 2);
    assert_eq!(omar["unread_count"], 1);
    let texts: Vec<Value> = timeline(&setup.app, sheena["id"].as_str().unwrap())
        .await
        .into_iter()
        .map(|m| m["content"].clone())
        .collect();
    assert_eq!(texts, [json!("Hi again"), json!("Thanks!")]);
    assert_eq!(
        timeline(&setup.app, omar["id"].as_str().unwrap()).await[0]["content"],
        "Is my order shipped?"
    );
    assert_eq!(count_events(&setup.app, "MessageReceived").await, 3);
    assert_eq!(count_events(&setup.app, "WhatsappMessageLinked").await, 3);
    let actors: Vec<String> = sqlx::query_scalar(
        "select metadata->>'actor' from events where event_type = 'MessageReceived'
          order by position",
    )
    .fetch_all(&setup.app.pool)
    .await
    .unwrap();
    assert_eq!(
        actors,
        [
            "contact:16505551234",
            "contact:447700900123",
            "contact:16505551234"
        ]
    );

    // The status in the batch is for a message this server has not sent: it waits.
    let parked: Vec<String> =
        sqlx::query_scalar("select wamid from whatsapp_parked_statuses order by wamid")
            .fetch_all(&setup.app.pool)
            .await
            .unwrap();
    assert_eq!(parked, ["wamid.OUT0001"]);
}

#[tokio::test]
async fn messages_that_are_not_text_are_kept_with_their_type_and_shown_as_such() {
    let setup = setup().await;
    post(&setup, &fresh("webhook-media.json")).await;

    let conversation = whatsapp_conversation(&setup.app, SHEENA, 2).await;
    let shown: Vec<Value> = timeline(&setup.app, conversation["id"].as_str().unwrap())
        .await
        .into_iter()
        .map(|m| m["content"].clone())
        .collect();
    assert_eq!(shown, [json!("[image] This one"), json!("[reaction] 👍")]);

    let links: Vec<Value> = sqlx::query_scalar(
        "select payload->'WhatsappMessageLinked' from events
          where event_type = 'WhatsappMessageLinked' order by position",
    )
    .fetch_all(&setup.app.pool)
    .await
    .unwrap();
    assert_eq!(links[0]["kind"], "image");
    assert_eq!(links[0]["wamid"], "wamid.MEDIA0001");
    assert_eq!(links[0]["details"]["image"]["id"], "1003383421387256");
    assert_eq!(links[0]["details"]["image"]["mime_type"], "image/jpeg");
    assert_eq!(links[1]["kind"], "reaction");
    assert_eq!(
        links[1]["details"]["reaction"]["message_id"],
        "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI0QjVBQkM1RkUxNzQ2MDY5NjcA"
    );

    // The agents' activity shows the start and the number the contact wrote to, not the
    // messages' WhatsApp ids.
    let activity = setup
        .app
        .get(
            &setup.app.admin,
            &format!(
                "/conversations/{}/activity",
                conversation["id"].as_str().unwrap()
            ),
        )
        .await
        .expect(200);
    let lines = &activity["data"];
    let contact = format!("contact:{SHEENA}");
    assert_eq!(
        lines,
        &json!([
            {"seq": 1, "kind": "started", "source": "whatsapp", "widget_id": null,
             "contact": {"name": "Sheena Nelson", "email": null, "phone": format!("+{SHEENA}")},
             "actor": contact, "at": lines[0]["at"]},
            {"seq": 2, "kind": "whatsapp_contact_linked", "channel_id": setup.channel["id"],
             "wa_id": SHEENA, "actor": contact, "at": lines[1]["at"]},
        ])
    );
}

#[tokio::test]
async fn the_same_delivery_five_times_at_once_on_two_instances_yields_one_message() {
    let setup = setup().await;
    let second = Application::build(setup.app.pool.clone(), &args(&setup.graph))
        .await
        .unwrap();
    let second_webhook = setup
        .webhook
        .replace(&setup.app.address, &format!("http://{}", second.address()));
    tokio::spawn(second.run_until(std::future::pending()));
    let body = serde_json::to_vec(&fresh("webhook-text.json")).unwrap();
    let deliveries = (0..5).map(|n| {
        let webhook = if n % 2 == 0 {
            &setup.webhook
        } else {
            &second_webhook
        };
        deliver(webhook, &body, Signature::Valid(APP_SECRET))
    });
    for (status, answer) in futures::future::join_all(deliveries).await {
        assert_eq!(status, 200, "{answer}");
    }

    eventually("all five deliveries applied", || async {
        let open: i64 =
            sqlx::query_scalar("select count(*) from whatsapp_webhooks where processed_at is null")
                .fetch_one(&setup.app.pool)
                .await
                .unwrap();
        (open == 0).then_some(())
    })
    .await;
    let conversation = whatsapp_conversation(&setup.app, SHEENA, 1).await;
    assert_eq!(count_events(&setup.app, "MessageReceived").await, 1);
    assert_eq!(count_events(&setup.app, "ConversationStarted").await, 1);
    assert_eq!(inbox(&setup.app).await.len(), 1);
    assert_eq!(conversation["unread_count"], 1);
    let messages = timeline(&setup.app, conversation["id"].as_str().unwrap()).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["content"], "Does it come in another color?");
}

#[tokio::test]
async fn an_agent_reply_reaches_the_stand_in_and_its_statuses_come_back_to_the_inbox() {
    let setup = setup().await;
    post(&setup, &fresh("webhook-text.json")).await;
    let conversation = whatsapp_conversation(&setup.app, SHEENA, 1).await;
    let id = conversation["id"].as_str().unwrap();

    let message = reply(&setup.app, id, "Yes, it also comes in blue and green.").await;

    let sent = &setup.graph.wait_for(1).await[0];
    assert_eq!(sent.path, format!("/v21.0/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(sent.token.as_deref(), Some(ACCESS_TOKEN));
    assert_eq!(sent.body, fixture("send-text-request.json"));
    message_status(&setup.app, id, &message, "sent").await;

    let now = chrono::Utc::now().timestamp();
    post(&setup, &status("wamid.STANDIN0001", "delivered", now)).await;
    post(&setup, &status("wamid.STANDIN0001", "read", now + 1)).await;
    let read = message_status(&setup.app, id, &message, "read").await;
    assert!(read["delivered_at"].is_string() && read["read_at"].is_string());
    let listed = eventually("the inbox to show the read status", || async {
        inbox(&setup.app)
            .await
            .into_iter()
            .find(|c| c["id"] == id && c["last_outgoing_status"] == "read")
    })
    .await;
    assert_eq!(listed["source"], "whatsapp");
}

#[tokio::test]
async fn statuses_delivered_in_every_order_end_in_the_right_final_status() {
    let setup = setup().await;
    post(&setup, &fresh("webhook-text.json")).await;
    let conversation = whatsapp_conversation(&setup.app, SHEENA, 1).await;
    let id = conversation["id"].as_str().unwrap().to_owned();
    let now = chrono::Utc::now().timestamp();

    // Every order of sent, delivered and read ends in read; a failure after read changes
    // nothing; a failure before anything else ends in failed, with its reason.
    let orders: [(&[&str], &str); 8] = [
        (&["sent", "delivered", "read"], "read"),
        (&["sent", "read", "delivered"], "read"),
        (&["delivered", "sent", "read"], "read"),
        (&["delivered", "read", "sent"], "read"),
        (&["read", "sent", "delivered"], "read"),
        (&["read", "delivered", "sent"], "read"),
        (&["read", "failed"], "read"),
        (&["failed", "delivered"], "failed"),
    ];
    let mut messages = Vec::new();
    for (n, (order, expected)) in orders.iter().enumerate() {
        let message = reply(&setup.app, &id, &format!("Reply {n}")).await;
        message_status(&setup.app, &id, &message, "sent").await;
        let wamid = format!("wamid.STANDIN{:04}", n + 1);
        for (step, status_name) in order.iter().enumerate() {
            let mut delivery = status(&wamid, status_name, now + step as i64);
            if *status_name == "failed" {
                delivery["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"] =
                    fixture("webhook-statuses.json")["entry"][0]["changes"][0]["value"]["statuses"]
                        [2]["errors"]
                        .clone();
            }
            post(&setup, &delivery).await;
        }
        messages.push((message, *expected));
    }
    for (message, expected) in &messages {
        message_status(&setup.app, &id, message, expected).await;
    }
    let failed = message_status(&setup.app, &id, &messages[7].0, "failed").await;
    assert!(
        failed["error"].as_str().unwrap().contains("131047"),
        "{failed}"
    );

    // Statuses that overtake the Graph API's answer wait for it, then apply.
    setup.graph.next_wamid("wamid.EARLY");
    post(&setup, &status("wamid.EARLY", "read", now + 5)).await;
    post(&setup, &status("wamid.EARLY", "delivered", now + 4)).await;
    let early = reply(&setup.app, &id, "Overtaken").await;
    let read = message_status(&setup.app, &id, &early, "read").await;
    assert!(read["delivered_at"].is_string());
}

#[tokio::test]
async fn a_reply_outside_the_window_is_refused_and_a_template_goes_through() {
    let setup = setup().await;
    // The sample was sent in 2025: far more than 24 hours ago.
    post(&setup, &fixture("webhook-text.json")).await;
    let conversation = whatsapp_conversation(&setup.app, SHEENA, 1).await;
    let id = conversation["id"].as_str().unwrap();
    let events = setup.app.event_count().await;

    let refused = setup
        .app
        .post(
            &setup.app.admin,
            &format!("/conversations/{id}/messages"),
            json!({"content": "Are you still there?", "message_type": "outgoing"}),
        )
        .await;
    refused.problem(409, "whatsapp_window_closed");
    assert_eq!(setup.app.event_count().await, events);

    let bad = setup
        .app
        .post(
            &setup.app.admin,
            &format!("/conversations/{id}/whatsapp/templates"),
            json!({"name": "Order Follow-Up", "language": "en_US"}),
        )
        .await;
    assert_eq!(
        bad.problem(422, "invalid_template_name").as_deref(),
        Some("name")
    );

    let sent = setup
        .app
        .post(
            &setup.app.admin,
            &format!("/conversations/{id}/whatsapp/templates"),
            json!({"name": "order_follow_up", "language": "en_US",
                   "parameters": ["Sheena", "#4521"]}),
        )
        .await
        .expect(201);
    let message = sent["message_id"].as_str().unwrap();
    let received = &setup.graph.wait_for(1).await[0];
    assert_eq!(received.body, fixture("send-template-request.json"));
    let shown = message_status(&setup.app, id, message, "sent").await;
    assert_eq!(
        shown["content"],
        "[template order_follow_up (en_US)] Sheena #4521"
    );
    assert_eq!(shown["direction"], "outgoing");

    // A template is for WhatsApp conversations only.
    let api = setup.app.new_conversation(&setup.app.admin).await;
    setup
        .app
        .post(
            &setup.app.admin,
            &format!("/conversations/{api}/whatsapp/templates"),
            json!({"name": "order_follow_up", "language": "en_US"}),
        )
        .await
        .problem(422, "not_whatsapp");
}

#[tokio::test]
async fn a_429_then_success_ends_in_one_sent_message() {
    let setup = setup().await;
    post(&setup, &fresh("webhook-text.json")).await;
    let conversation = whatsapp_conversation(&setup.app, SHEENA, 1).await;
    let id = conversation["id"].as_str().unwrap();
    setup
        .graph
        .answer_next(429, fixture("error-rate-limited.json"), None);
    setup.graph.answer_next(
        503,
        json!({"error": {"message": "Service temporarily unavailable", "code": 131016}}),
        None,
    );

    let message = reply(&setup.app, id, "Thanks for waiting").await;

    let received = setup.graph.wait_for(3).await;
    assert!(received.iter().all(|r| r.body == received[0].body));
    message_status(&setup.app, id, &message, "sent").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        setup.graph.received().len(),
        3,
        "nothing is sent after success"
    );
    assert_eq!(count_events(&setup.app, "WhatsappMessageLinked").await, 2);
    let outgoing_links: i64 = sqlx::query_scalar(
        "select count(*) from events where event_type = 'WhatsappMessageLinked'
            and payload->'WhatsappMessageLinked'->>'direction' = 'outgoing'",
    )
    .fetch_one(&setup.app.pool)
    .await
    .unwrap();
    assert_eq!(outgoing_links, 1);
    let metrics = reqwest::get(format!("{}/metrics", setup.app.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"upzento_whatsapp_sends_total{kind="text",outcome="retried"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_permanent_graph_error_marks_the_message_failed_with_the_reason() {
    let setup = setup().await;
    post(&setup, &fresh("webhook-text.json")).await;
    let conversation = whatsapp_conversation(&setup.app, SHEENA, 1).await;
    let id = conversation["id"].as_str().unwrap();
    setup
        .graph
        .answer_next(400, fixture("error-window-closed.json"), None);

    let message = reply(&setup.app, id, "Hello?").await;

    let failed = message_status(&setup.app, id, &message, "failed").await;
    assert_eq!(
        failed["error"],
        "(#131047) Re-engagement message: Message failed to send because more than 24 hours have passed since the customer last replied to this number."
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        setup.graph.received().len(),
        1,
        "a permanent error is not retried"
    );
}

#[tokio::test]
async fn reading_a_conversation_sends_a_read_receipt_for_the_contacts_last_message() {
    let setup = setup().await;
    post(&setup, &fresh("webhook-batch.json")).await;
    let conversation = whatsapp_conversation(&setup.app, SHEENA, 2).await;
    let id = conversation["id"].as_str().unwrap();

    setup
        .app
        .post(
            &setup.app.admin,
            &format!("/conversations/{id}/read"),
            json!({}),
        )
        .await
        .expect(200);

    let received = setup.graph.wait_for(1).await;
    assert_eq!(
        received[0].body,
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.BATCH0003"})
    );
}

#[tokio::test]
async fn a_whatsapp_and_a_website_conversation_stand_side_by_side_in_the_inbox() {
    let setup = setup().await;
    let app = &setup.app;
    post(&setup, &fresh("webhook-text.json")).await;
    let whatsapp = whatsapp_conversation(app, SHEENA, 1).await;
    let whatsapp_id = whatsapp["id"].as_str().unwrap().to_owned();
    let reply_id = reply(app, &whatsapp_id, "Yes, it also comes in blue and green.").await;
    message_status(app, &whatsapp_id, &reply_id, "sent").await;
    post(
        &setup,
        &status(
            "wamid.STANDIN0001",
            "delivered",
            chrono::Utc::now().timestamp(),
        ),
    )
    .await;

    // A website visitor's conversation, started the way the widget starts one.
    let tenant = TenantId::parse(&app.admin.tenant_id).unwrap();
    let web = ConversationId::new();
    let bus: CommandBus<Conversation> = CommandBus::new(EventStore::new(app.pool.clone()), (), 100);
    let visitor = CommandContext::new(tenant, Actor::Visitor("v-1".into()), "test".into());
    let stream = stream_id(tenant, web);
    let start = ConversationCommand::Start {
        source: Source::Web,
        contact: Contact::default(),
        widget_id: Some(WidgetId::new()),
    };
    bus.execute(&stream, start, &visitor).await.unwrap();
    for text in ["Hello?", "Anyone there?"] {
        let receive = ConversationCommand::ReceiveMessage {
            message_id: domain::ids::MessageId::new(),
            content: domain::text::MessageContent::parse(text).unwrap(),
            sent_at: chrono::Utc::now(),
        };
        bus.execute(&stream, receive, &visitor).await.unwrap();
    }

    let listed = eventually("both conversations in the inbox", || async {
        let rows = inbox(app).await;
        let whatsapp = rows
            .iter()
            .find(|c| c["id"] == whatsapp_id.as_str() && c["last_outgoing_status"] == "delivered")?
            .clone();
        let web = rows
            .iter()
            .find(|c| c["id"] == web.to_string() && c["message_count"] == 2)?
            .clone();
        Some((whatsapp, web))
    })
    .await;
    let (whatsapp, web) = listed;
    assert_eq!(whatsapp["source"], "whatsapp");
    assert_eq!(whatsapp["unread_count"], 1);
    assert_eq!(whatsapp["contact_name"], "Sheena Nelson");
    assert_eq!(web["source"], "web");
    assert_eq!(web["unread_count"], 2);
    assert_eq!(web["last_outgoing_status"], Value::Null);

    let only_whatsapp = app
        .get(&app.admin, "/conversations?source=whatsapp")
        .await
        .expect(200);
    assert_eq!(only_whatsapp["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn channel_secrets_are_stored_encrypted_and_never_shown() {
    let setup = setup().await;
    let app = &setup.app;
    let id = setup.channel["id"].as_str().unwrap();
    assert_eq!(
        setup.channel["webhook_url"],
        format!("{}/webhooks/whatsapp/{id}", app.address)
    );
    let shown = [
        setup.channel.to_string(),
        app.get(&app.admin, "/whatsapp/channels")
            .await
            .expect(200)
            .to_string(),
        app.get(&app.admin, &format!("/whatsapp/channels/{id}"))
            .await
            .expect(200)
            .to_string(),
    ];
    for text in shown {
        for secret in [ACCESS_TOKEN, APP_SECRET, VERIFY_TOKEN] {
            assert!(!text.contains(secret), "{text} shows a secret");
        }
    }
    let row: (Vec<u8>, Vec<u8>, Vec<u8>) = sqlx::query_as(
        "select access_token, app_secret, verify_token_sha256 from whatsapp_channels",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    for (column, stored) in [
        ("access_token", row.0),
        ("app_secret", row.1),
        ("verify", row.2),
    ] {
        for secret in [ACCESS_TOKEN, APP_SECRET, VERIFY_TOKEN] {
            assert!(
                !String::from_utf8_lossy(&stored).contains(secret),
                "{column} holds a secret in clear"
            );
        }
    }
}

#[tokio::test]
async fn a_phone_number_belongs_to_one_tenant_and_bad_channels_are_refused_with_their_field() {
    let setup = setup().await;
    let app = &setup.app;
    let valid = json!({"phone_number_id": PHONE_NUMBER_ID, "business_account_id": "1",
        "access_token": "t", "app_secret": "s", "verify_token": "v"});

    let other = app.new_tenant("Other").await;
    let taken = app.post(&other, "/whatsapp/channels", valid.clone()).await;
    assert_eq!(
        taken.problem(409, "phone_number_taken").as_deref(),
        Some("phone_number_id")
    );
    assert!(app.get(&other, "/whatsapp/channels").await.expect(200) == json!([]));
    let id = setup.channel["id"].as_str().unwrap();
    app.get(&other, &format!("/whatsapp/channels/{id}"))
        .await
        .problem(404, "channel_not_found");

    let agent = app
        .new_agent(&app.admin, "agent@example.com", "agent")
        .await;
    let mut second = valid.clone();
    second["phone_number_id"] = json!("200000000000001");
    app.post(&agent, "/whatsapp/channels", second.clone())
        .await
        .problem(403, "forbidden");

    let cases = [
        ("phone_number_id", json!("+1 650"), "invalid_meta_id"),
        ("business_account_id", json!(""), "invalid_meta_id"),
        (
            "access_token",
            json!("has spaces in it"),
            "invalid_credential",
        ),
        ("app_secret", json!(""), "invalid_credential"),
        ("verify_token", json!("x".repeat(300)), "invalid_credential"),
    ];
    for (field, value, code) in cases {
        let mut body = second.clone();
        body[field] = value;
        let refused = app.post(&app.admin, "/whatsapp/channels", body).await;
        assert_eq!(
            refused.problem(422, code).as_deref(),
            Some(field),
            "{field}"
        );
    }
    let mut missing = second.clone();
    missing.as_object_mut().unwrap().remove("app_secret");
    let refused = app.post(&app.admin, "/whatsapp/channels", missing).await;
    assert_eq!(
        refused.problem(422, "invalid_body").as_deref(),
        Some("app_secret")
    );

    app.post(&app.admin, "/whatsapp/channels", second)
        .await
        .expect(201);
    assert_eq!(
        app.get(&app.admin, "/whatsapp/channels")
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_delivery_larger_than_the_limit_is_refused_unread() {
    let setup = setup().await;
    let mut payload = fresh("webhook-text.json");
    payload["padding"] = json!("x".repeat(1024 * 1024));
    let body = serde_json::to_vec(&payload).unwrap();
    let (status, problem) = deliver(&setup.webhook, &body, Signature::Valid(APP_SECRET)).await;
    assert_eq!(status, 413, "{problem}");
    assert_eq!(problem["code"], "body_too_large");
    assert_eq!(setup.app.event_count().await, 0);
}

#[tokio::test]
async fn templates_in_another_tenants_conversation_are_not_found() {
    let setup = setup().await;
    post(&setup, &fresh("webhook-text.json")).await;
    let conversation = whatsapp_conversation(&setup.app, SHEENA, 1).await;
    let other = setup.app.new_tenant("Other").await;
    let events = setup.app.event_count().await;
    setup
        .app
        .post(
            &other,
            &format!(
                "/conversations/{}/whatsapp/templates",
                conversation["id"].as_str().unwrap()
            ),
            json!({"name": "order_follow_up", "language": "en_US"}),
        )
        .await
        .problem(404, "conversation_not_found");
    assert_eq!(setup.app.event_count().await, events);
}

#[tokio::test]
async fn a_delivery_acknowledged_just_before_the_server_dies_is_applied_after_the_restart() {
    let options = fresh_database().await;
    let url = database_url(&options);
    let pool = pool(&options).await;
    let key = "11".repeat(32);
    let address = format!("127.0.0.1:{}", free_port());
    let args = ["serve", "--listen", &address, "--secrets-key", &key];
    let server = Server::start(&args, Some(&url));
    let base = format!("http://{address}");
    wait_for_health(&base).await;
    let tenant = commands::tenancy::create_tenant(&pool, "Acme", "admin@example.com")
        .await
        .unwrap();
    let channel: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/whatsapp/channels"))
        .bearer_auth(&tenant.admin_token)
        .json(
            &json!({"phone_number_id": PHONE_NUMBER_ID, "business_account_id": "1",
            "access_token": ACCESS_TOKEN, "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let webhook = channel["webhook_url"].as_str().unwrap().to_owned();

    let body = serde_json::to_vec(&fresh("webhook-text.json")).unwrap();
    let (status, _) = deliver(&webhook, &body, Signature::Valid(APP_SECRET)).await;
    assert_eq!(status, 200);
    drop(server); // SIGKILL, right after the answer.

    let _restarted = Server::start(&args, Some(&url));
    wait_for_health(&base).await;
    eventually("the acknowledged message in the event store", || async {
        let received: i64 =
            sqlx::query_scalar("select count(*) from events where event_type = 'MessageReceived'")
                .fetch_one(&pool)
                .await
                .unwrap();
        (received == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_deleted_channel_stops_answering_its_webhook() {
    let setup = setup().await;
    let app = &setup.app;
    let id = setup.channel["id"].as_str().unwrap();
    let agent = app
        .new_agent(&app.admin, "agent@example.com", "agent")
        .await;
    app.call(
        &agent,
        reqwest::Method::DELETE,
        &format!("/whatsapp/channels/{id}"),
        None,
    )
    .await
    .problem(403, "forbidden");
    let deleted = app
        .call(
            &app.admin,
            reqwest::Method::DELETE,
            &format!("/whatsapp/channels/{id}"),
            None,
        )
        .await;
    assert_eq!(deleted.status.as_u16(), 204);

    let body = serde_json::to_vec(&fresh("webhook-text.json")).unwrap();
    let (status, problem) = deliver(&setup.webhook, &body, Signature::Valid(APP_SECRET)).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("channel_not_found"))
    );
    app.call(
        &app.admin,
        reqwest::Method::DELETE,
        &format!("/whatsapp/channels/{id}"),
        None,
    )
    .await
    .problem(404, "channel_not_found");
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn the_openapi_document_describes_the_whatsapp_endpoints() {
    let setup = setup().await;
    let document = setup.app.openapi().await;
    for (path, method) in [
        ("/api/v1/whatsapp/channels", "post"),
        ("/api/v1/whatsapp/channels", "get"),
        ("/api/v1/whatsapp/channels/{id}", "get"),
        ("/api/v1/whatsapp/channels/{id}", "delete"),
        ("/api/v1/conversations/{id}/whatsapp/templates", "post"),
        ("/webhooks/whatsapp/{channel_id}", "get"),
        ("/webhooks/whatsapp/{channel_id}", "post"),
    ] {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
}

#[tokio::test]
async fn rebuilding_the_outbox_projector_sends_nothing_twice() {
    let setup = setup().await;
    let app = &setup.app;
    post(&setup, &fresh("webhook-text.json")).await;
    let conversation = whatsapp_conversation(app, SHEENA, 1).await;
    let id = conversation["id"].as_str().unwrap();
    let first = reply(app, id, "First").await;
    message_status(app, id, &first, "sent").await;
    assert_eq!(setup.graph.received().len(), 1);

    // What `upzento projections rebuild whatsapp_outbox` does.
    projections::runtime::reset(&app.pool, &projections::whatsapp::WhatsappOutbox)
        .await
        .unwrap();
    let second = reply(app, id, "Second").await;
    message_status(app, id, &second, "sent").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bodies: Vec<Value> = setup
        .graph
        .received()
        .into_iter()
        .map(|r| r.body["text"]["body"].clone())
        .collect();
    assert_eq!(bodies, [json!("First"), json!("Second")]);
}

#[tokio::test]
async fn the_console_shows_the_24_hour_window_and_sends_a_template_outside_it() {
    let setup = setup().await;
    let app = &setup.app;
    // The sample was sent in 2025: the window is closed.
    post(&setup, &fixture("webhook-text.json")).await;
    let conversation = whatsapp_conversation(app, SHEENA, 1).await;
    let id = conversation["id"].as_str().unwrap();
    set_password(app, &app.admin).await;
    let browser = Browser::sized(1440, 900).await;
    sign_in(&browser, app, "admin@example.com").await;
    browser
        .open(&format!("{}/app#/inbox/c/{id}", app.address))
        .await;
    browser
        .page_until(
            "the closed window shows, with the template form",
            "document.querySelector('.window-notice')?.textContent.includes('window is closed') \
             && document.querySelector('form.template')",
        )
        .await;
    browser
        .page_until(
            "replies are off, notes stay on",
            "document.querySelector('.composer input[value=reply]').disabled \
             && document.querySelector('.composer input[value=note]').checked",
        )
        .await;
    browser
        .type_into("form.template input[name=template]", "order_follow_up")
        .await;
    browser
        .type_into("form.template textarea[name=parameters]", "Sheena\n#4521")
        .await;
    browser.click("form.template button[type=submit]").await;
    // Opening the conversation marked it read: a read receipt went first.
    let received = setup.graph.wait_for(2).await;
    assert_eq!(received[0].body["status"], "read");
    assert_eq!(received[1].body, fixture("send-template-request.json"));
    browser
        .page_until(
            "the template shows in the timeline as sent",
            "[...document.querySelectorAll('.msg.outgoing')].some(m => \
               m.querySelector('.msg-text').textContent === '[template order_follow_up (en_US)] Sheena #4521' \
               && m.querySelector('.ticks').dataset.status === 'sent')",
        )
        .await;

    // The contact writes again: the window opens, and so do replies.
    let mut again = fresh("webhook-text.json");
    again["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = json!("wamid.again");
    post(&setup, &again).await;
    browser
        .page_until(
            "the open window shows",
            "document.querySelector('.window-notice')?.textContent.includes('window is open until') \
             && !document.querySelector('.composer input[value=reply]').disabled",
        )
        .await;
}
