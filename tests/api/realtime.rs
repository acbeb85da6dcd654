//! Real time over WebSocket, with real connections to real server instances: what agents
//! and visitors see live, typing both ways, and exactly-once delivery in order across
//! reconnects and instances.

use std::collections::HashMap;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rand::Rng;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{Caller, TestApp, spawn_app};
use crate::website::{Website, website};

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for something that should arrive.
const PATIENCE: Duration = Duration::from_secs(10);

pub(crate) fn ws_url(http: &str, path: &str) -> String {
    format!("{}{path}", http.replacen("http", "ws", 1))
}

async fn connect(url: &str, origin: Option<&str>) -> Socket {
    let mut request = url.into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the WebSocket opens");
    socket
}

pub(crate) async fn agent_socket(address: &str, caller: &Caller, after: Option<&str>) -> Socket {
    let mut path = format!("/api/v1/realtime?access_token={}", caller.token);
    if let Some(after) = after {
        path.push_str(&format!("&after={after}"));
    }
    connect(&ws_url(address, &path), None).await
}

async fn visitor_socket(site: &Website, token: &str) -> Socket {
    let path = format!("/api/v1/widget/{}/realtime?token={token}", site.key());
    connect(&ws_url(&site.app.address, &path), Some(&site.origin())).await
}

/// The next server message matching `wanted`, skipping others.
pub(crate) async fn next_where(socket: &mut Socket, wanted: impl Fn(&Value) -> bool) -> Value {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match socket.next().await.expect("the socket stays open").unwrap() {
                Message::Text(text) => {
                    let message: Value = serde_json::from_str(&text).unwrap();
                    if wanted(&message) {
                        return message;
                    }
                }
                _ => continue,
            }
        }
    })
    .await
    .expect("the message arrives in time")
}

pub(crate) fn event(event_type: &'static str) -> impl Fn(&Value) -> bool {
    move |m| m["type"] == "event" && m["event_type"] == event_type
}

pub(crate) fn typing(on: bool) -> impl Fn(&Value) -> bool {
    move |m| m["type"] == "typing" && m["on"] == on
}

pub(crate) async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

#[tokio::test]
async fn agent_and_visitor_see_each_other_live_with_typing_and_receipts() {
    let site = website(json!({})).await;
    let app = &site.app;
    let visitor = site.visitor().await;
    let mut agent = agent_socket(&app.address, &app.admin, None).await;
    next_where(&mut agent, |m| m["type"] == "ready").await;
    let mut widget = visitor_socket(&site, &visitor.token).await;
    next_where(&mut widget, |m| m["type"] == "ready").await;

    let (message_id, _) = visitor.say("Hello, is anyone there?").await;
    let received = next_where(&mut agent, event("MessageReceived")).await;
    assert_eq!(
        received["conversation_id"],
        visitor.conversation_id.as_str()
    );
    assert_eq!(received["data"]["message_id"], message_id.as_str());
    assert_eq!(received["data"]["content"], "Hello, is anyone there?");
    assert!(
        received["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("visitor:")),
        "agents are told who did it: {received}"
    );
    let unread = next_where(&mut agent, |m| m["type"] == "unread").await;
    assert_eq!(unread["all"], 1);

    send(&mut widget, json!({"type": "typing", "on": true})).await;
    let typing_seen = next_where(&mut agent, typing(true)).await;
    assert_eq!(typing_seen["who"], "visitor");
    assert_eq!(
        typing_seen["conversation_id"],
        visitor.conversation_id.as_str()
    );
    // Nobody says stop: the server expires it.
    next_where(&mut agent, typing(false)).await;

    let conversation = &visitor.conversation_id;
    send(
        &mut agent,
        json!({"type": "typing", "conversation_id": conversation, "on": true}),
    )
    .await;
    next_where(&mut widget, typing(true)).await;
    send(
        &mut agent,
        json!({"type": "typing", "conversation_id": conversation, "on": false}),
    )
    .await;
    next_where(&mut widget, typing(false)).await;

    let path = format!("/conversations/{conversation}/messages");
    app.post(
        &app.admin,
        &path,
        json!({"content": "note: VIP customer", "message_type": "outgoing", "private": true}),
    )
    .await
    .expect(201);
    let reply = app
        .post(
            &app.admin,
            &path,
            json!({"content": "Yes! How can we help?", "message_type": "outgoing"}),
        )
        .await
        .expect(201);
    let posted = next_where(&mut widget, |m| {
        m["type"] == "event" && m["event_type"] != "MessageReceived"
    })
    .await;
    assert_eq!(
        posted["event_type"], "MessagePosted",
        "the note is not shown"
    );
    assert_eq!(posted["data"]["content"], "Yes! How can we help?");
    assert!(
        posted["data"].get("author").is_none() && posted.get("actor").is_none(),
        "agents stay anonymous: {posted}"
    );

    for status in ["delivered", "read"] {
        visitor
            .call(
                Method::POST,
                "/receipts",
                Some(json!({"message_id": reply["message_id"], "status": status})),
            )
            .await
            .expect(204);
        let changed = next_where(&mut agent, move |m| {
            m["type"] == "event"
                && m["event_type"] == "MessageStatusChanged"
                && m["data"]["status"] == status
        })
        .await;
        assert_eq!(changed["data"]["message_id"], reply["message_id"]);
    }

    app.post(
        &app.admin,
        &format!("/conversations/{conversation}/read"),
        json!({}),
    )
    .await
    .expect(200);
    let seen = next_where(&mut widget, event("ReadMarkerMoved")).await;
    assert_eq!(seen["data"]["last_read_message_id"], reply["message_id"]);
    assert!(seen["data"].get("agent_id").is_none());
}

/// What an agent of `tenant` should end with: the positions of the tenant's conversation
/// events, in global order.
async fn expected(app: &TestApp, tenant: &str) -> Vec<i64> {
    sqlx::query_scalar(
        "select position from events
          where tenant_id = $1::uuid and aggregate_type = 'Conversation'
          order by transaction_id, position",
    )
    .bind(tenant)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// An agent's client that starts after `origin`, drops its connection at random points and
/// resumes from the last cursor it saw, until it has `total` events.
async fn flaky_agent(
    address: String,
    caller: Caller,
    total: usize,
    seed: u64,
    origin: String,
) -> Vec<i64> {
    let mut seen: Vec<i64> = Vec::new();
    let mut cursor = origin;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    while seen.len() < total {
        let mut socket = agent_socket(&address, &caller, Some(&cursor)).await;
        let keep_for = rng.random_range(1..=total / 4 + 1);
        for _ in 0..keep_for {
            if seen.len() == total {
                break;
            }
            let event = next_where(&mut socket, |m| m["type"] == "event").await;
            seen.push(event["position"].as_i64().unwrap());
            cursor = event["cursor"].as_str().unwrap().to_owned();
        }
    }
    seen
}

#[tokio::test]
async fn every_client_sees_every_event_of_its_tenant_once_in_order_across_instances_and_reconnects()
{
    let app = spawn_app().await;
    let second = app.second_instance().await;
    let other_tenant = app.new_tenant("Other").await;
    let conversations_per_tenant = 4;
    let messages_each = 6;

    // Each client starts from the same point: the head before anything is written.
    let mut start = agent_socket(&app.address, &app.admin, None).await;
    let ready = next_where(&mut start, |m| m["type"] == "ready").await;
    let origin = ready["cursor"].as_str().unwrap().to_owned();
    drop(start);

    let writers = [(&app.admin, &app.address), (&other_tenant, &second)];
    let mut conversations: HashMap<String, Vec<String>> = HashMap::new();
    for (caller, _) in writers {
        for _ in 0..conversations_per_tenant {
            let id = app.new_conversation(caller).await;
            conversations
                .entry(caller.tenant_id.clone())
                .or_default()
                .push(id);
        }
    }
    // Events per tenant: a start and `messages_each` messages per conversation.
    let total = conversations_per_tenant * (1 + messages_each);

    let mut clients = tokio::task::JoinSet::new();
    for (i, (caller, _)) in writers.iter().enumerate() {
        for instance in [&app.address, &second] {
            for seed in 0..3u64 {
                let (address, caller) = ((*instance).clone(), (*caller).clone());
                let origin = origin.clone();
                clients.spawn(async move {
                    let seen =
                        flaky_agent(address, caller.clone(), total, seed + i as u64, origin).await;
                    (caller.tenant_id, seen)
                });
            }
        }
    }

    let mut writes = tokio::task::JoinSet::new();
    for (caller, address) in writers {
        for conversation in conversations[&caller.tenant_id].clone() {
            let (caller, address) = (caller.clone(), address.clone());
            let client = app.client.clone();
            writes.spawn(async move {
                for n in 0..messages_each {
                    let kind = if n % 2 == 0 { "incoming" } else { "outgoing" };
                    let response = client
                        .post(format!(
                            "{address}/api/v1/conversations/{conversation}/messages"
                        ))
                        .bearer_auth(&caller.token)
                        .json(&json!({"content": format!("m{n}"), "message_type": kind}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 201);
                }
            });
        }
    }
    writes.join_all().await;

    let results = tokio::time::timeout(Duration::from_secs(60), clients.join_all())
        .await
        .expect("every client finishes");
    for (tenant, seen) in results {
        let all = expected(&app, &tenant).await;
        assert_eq!(all.len(), total);
        assert_eq!(seen, all, "tenant {tenant}: every event once, in order");
    }
}

#[tokio::test]
async fn a_visitor_sees_only_their_own_conversation_and_typing_crosses_instances() {
    let site = website(json!({})).await;
    let app = &site.app;
    let second = app.second_instance().await;
    let (alice, bob) = (site.visitor().await, site.visitor().await);
    let mut alice_socket = visitor_socket(&site, &alice.token).await;
    next_where(&mut alice_socket, |m| m["type"] == "ready").await;
    let mut agent = agent_socket(&second, &app.admin, None).await;
    next_where(&mut agent, |m| m["type"] == "ready").await;

    bob.say("I am Bob").await;
    let (alice_message, _) = alice.say("I am Alice").await;
    let first = next_where(&mut alice_socket, |m| m["type"] == "event").await;
    assert_eq!(
        first["data"]["message_id"],
        alice_message.as_str(),
        "Bob's message is not shown"
    );
    assert_eq!(first["conversation_id"], alice.conversation_id.as_str());

    // Alice types on the first instance; the agent is connected to the second.
    send(&mut alice_socket, json!({"type": "typing", "on": true})).await;
    let seen = next_where(&mut agent, typing(true)).await;
    assert_eq!(seen["conversation_id"], alice.conversation_id.as_str());
    let mut bob_socket = visitor_socket(&site, &bob.token).await;
    next_where(&mut bob_socket, |m| m["type"] == "ready").await;
    send(
        &mut agent,
        json!({"type": "typing", "conversation_id": alice.conversation_id, "on": true}),
    )
    .await;
    next_where(&mut alice_socket, typing(true)).await;
    let quiet = tokio::time::timeout(Duration::from_millis(500), bob_socket.next()).await;
    assert!(
        quiet.is_err(),
        "Bob sees nothing of Alice's conversation: {quiet:?}"
    );
}

#[tokio::test]
async fn agents_see_who_else_is_viewing_and_visitors_see_whether_anyone_is_online() {
    let site = website(json!({"offline_message": "We are away"})).await;
    let app = &site.app;
    let before = site.start_session().await.expect(200);
    assert_eq!(before["agents_online"], false);

    let colleague = app
        .new_agent(&app.admin, "colleague@example.com", "agent")
        .await;
    let second = app.second_instance().await;
    let mut mine = agent_socket(&app.address, &app.admin, None).await;
    next_where(&mut mine, |m| m["type"] == "ready").await;
    let mut theirs = agent_socket(&second, &colleague, None).await;
    next_where(&mut theirs, |m| m["type"] == "ready").await;

    let conversation = app.new_conversation(&app.admin).await;
    send(
        &mut mine,
        json!({"type": "viewing", "conversation_id": conversation, "on": true}),
    )
    .await;
    let viewing = next_where(&mut theirs, |m| m["type"] == "viewing").await;
    assert_eq!(viewing["agent_id"], app.admin.agent_id.as_str());
    assert_eq!(viewing["conversation_id"], conversation.as_str());
    assert_eq!(viewing["on"], true);
    drop(mine);
    let left = next_where(&mut theirs, |m| m["type"] == "viewing").await;
    assert_eq!(left["on"], false, "closing the console ends the viewing");

    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let session = site.start_session().await.expect(200);
        if session["agents_online"] == true {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the colleague shows as online"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
