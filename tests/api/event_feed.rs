//! The event feed for analytics: the paged feed, the SSE stream and the NATS relay, each
//! consumed while many writers write, each restarted at random points from a cursor it was
//! given, all ending with exactly the stored events, in one order, none missing, none twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use futures::StreamExt;
use projections::feed::event_id;
use projections::reader::{Cursor, read_after, read_tenant_after};
use rand::Rng;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use tokio::sync::watch;

use crate::helpers::{Caller, Server, TestApp, database_url, spawn_app};

/// A random number in `range`; the generator is not held across awaits.
fn roll(range: std::ops::Range<usize>) -> usize {
    rand::rng().random_range(range)
}

/// How long a consumer may take to catch up once the writers are done.
const CATCH_UP: Duration = Duration::from_secs(60);

/// One event as a consumer received it: its id and its cursor.
type Received = (String, String);

/// The stored events, in the global order, as `(id, cursor)`; one tenant's or everyone's.
async fn stored(app: &TestApp, tenant: Option<&str>) -> Vec<Received> {
    let mut all = Vec::new();
    let mut after = Cursor::default();
    loop {
        let page = match tenant {
            Some(tenant) => {
                read_tenant_after(&app.pool, tenant.parse().unwrap(), after, 1000).await
            }
            None => read_after(&app.pool, after, 1000).await,
        }
        .unwrap();
        let Some(last) = page.last() else { break };
        after = last.cursor();
        all.extend(
            page.iter()
                .map(|e| (event_id(e).to_string(), e.cursor().to_string())),
        );
    }
    all
}

/// A writer: conversations with messages, labels and status changes, as fast as it can.
async fn write(app: Arc<TestApp>, caller: Caller, conversations: usize) {
    for _ in 0..conversations {
        let id = app.new_conversation(&caller).await;
        let c = format!("/conversations/{id}");
        for round in 0..roll(2..5) {
            let kind = if round % 2 == 0 {
                "incoming"
            } else {
                "outgoing"
            };
            app.new_message(&caller, &id, kind).await;
        }
        app.post(&caller, &format!("{c}/labels"), json!({"label": "feed"}))
            .await
            .expect(200);
        app.post(
            &caller,
            &format!("{c}/status"),
            json!({"status": "resolved"}),
        )
        .await
        .expect(200);
    }
}

/// Waits until the writers are done and answers what the consumer must end with.
async fn target(done: &mut watch::Receiver<Option<usize>>) -> usize {
    done.wait_for(Option::is_some)
        .await
        .expect("the test keeps the sender")
        .expect("checked")
}

/// True once `received` holds the final count, or the deadline has passed.
fn finished(
    done: &watch::Receiver<Option<usize>>,
    received: usize,
    since: &mut Option<Instant>,
) -> bool {
    match *done.borrow() {
        None => false,
        Some(total) => {
            let since = since.get_or_insert_with(Instant::now);
            received >= total || since.elapsed() > CATCH_UP
        }
    }
}

/// Restarts from a cursor it was given: drops what came after a random received event (as
/// a consumer that crashed before saving its results would) and answers that event's cursor.
fn restart(received: &mut Vec<Received>) -> Option<String> {
    if received.is_empty() {
        return None;
    }
    let keep = roll(0..received.len() + 1);
    received.truncate(keep);
    received.last().map(|(_, cursor)| cursor.clone())
}

/// Pages through `GET /events` with random page sizes, restarting at random points.
async fn consume_pages(
    app: Arc<TestApp>,
    caller: Caller,
    mut done: watch::Receiver<Option<usize>>,
) -> Vec<Received> {
    let mut received: Vec<Received> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut since = None;
    while !finished(&done, received.len(), &mut since) {
        let mut path = format!("/events?limit={}", roll(1..40));
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&after={cursor}"));
        }
        let page = app.get(&caller, &path).await.expect(200);
        for event in page["data"].as_array().unwrap() {
            received.push((
                event["id"].as_str().unwrap().to_owned(),
                event["cursor"].as_str().unwrap().to_owned(),
            ));
        }
        cursor = Some(page["next_cursor"].as_str().unwrap().to_owned());
        if roll(0..6) == 0 {
            cursor = restart(&mut received);
        }
        if page["has_more"] == false {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let _ = target(&mut done).await;
    received
}

/// Reads the SSE stream, dropping the connection after a random number of events and
/// resuming with `Last-Event-ID`.
async fn consume_sse(
    app: Arc<TestApp>,
    caller: Caller,
    mut done: watch::Receiver<Option<usize>>,
) -> Vec<Received> {
    let mut received: Vec<Received> = Vec::new();
    let mut last_event_id: Option<String> = None;
    let mut since = None;
    while !finished(&done, received.len(), &mut since) {
        let mut request = app
            .client
            .get(format!("{}/api/v1/events/stream?heartbeat=1", app.address))
            .bearer_auth(&caller.token);
        if let Some(id) = &last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let mut response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let quota = roll(1..50);
        let mut taken = 0;
        let mut buffer = String::new();
        'connection: while taken < quota && !finished(&done, received.len(), &mut since) {
            let Ok(chunk) = tokio::time::timeout(Duration::from_secs(3), response.chunk()).await
            else {
                break;
            };
            let Some(chunk) = chunk.unwrap() else { break };
            buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id: ") {
                        id = Some(value.to_owned());
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str::<Value>(value).unwrap());
                    }
                }
                let (Some(id), Some(data)) = (id, data) else {
                    continue; // a heartbeat
                };
                assert_eq!(
                    data["cursor"],
                    id.as_str(),
                    "the SSE id is the event's cursor"
                );
                received.push((data["id"].as_str().unwrap().to_owned(), id.clone()));
                last_event_id = Some(id);
                taken += 1;
                if taken >= quota {
                    break 'connection;
                }
            }
        }
        drop(response);
        if roll(0..3) == 0 {
            last_event_id = restart(&mut received);
        }
    }
    let _ = target(&mut done).await;
    received
}

/// Reads the JetStream stream with an ordered consumer, recreating it at random points from
/// the stream sequence after a random received message.
async fn consume_nats(
    js: jetstream::Context,
    stream: String,
    mut done: watch::Receiver<Option<usize>>,
) -> Vec<Received> {
    let mut received: Vec<(Received, u64)> = Vec::new();
    let mut since = None;
    while !finished(&done, received.len(), &mut since) {
        let start_sequence = received.last().map_or(1, |(_, seq)| seq + 1);
        let consumer = js
            .get_stream(&stream)
            .await
            .unwrap()
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence },
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let quota = roll(1..60);
        let mut taken = 0;
        while taken < quota && !finished(&done, received.len(), &mut since) {
            let Ok(Some(message)) =
                tokio::time::timeout(Duration::from_millis(500), messages.next()).await
            else {
                continue;
            };
            let message = message.unwrap();
            let sequence = message.info().unwrap().stream_sequence;
            let headers = message.headers.as_ref().unwrap();
            let id = headers.get("Nats-Msg-Id").unwrap().as_str().to_owned();
            let event: Value = serde_json::from_slice(&message.payload).unwrap();
            assert_eq!(event["id"], id.as_str(), "Nats-Msg-Id is the event id");
            received.push(((id, event["cursor"].as_str().unwrap().to_owned()), sequence));
            taken += 1;
        }
        drop(messages);
        if roll(0..3) == 0 && !received.is_empty() {
            let keep = roll(0..received.len() + 1);
            received.truncate(keep);
        }
    }
    let _ = target(&mut done).await;
    received.into_iter().map(|(r, _)| r).collect()
}

/// The NATS server of the tests: `NATS_URL`, or the local one `.ci/run` starts.
fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// The `DATABASE_URL` of the app's database, for the relay process.
async fn app_database_url(app: &TestApp) -> String {
    let name: String = sqlx::query_scalar("select current_database()")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    database_url(&PgConnectOptions::new().database(&name))
}

#[tokio::test]
async fn every_consumer_restarted_at_random_ends_with_exactly_the_stored_events_in_one_order() {
    let app = Arc::new(spawn_app().await);
    let tenant = app.admin.clone();
    let reader = app
        .new_agent(&tenant, "auditor@example.com", "auditor")
        .await;
    let other = app.new_tenant("Globex").await;

    // A stream of this test's own, so runs and tests never share one.
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let stream = format!("TEST_{suffix}");
    let prefix = format!("t{suffix}");
    let js = jetstream::new(
        async_nats::connect(nats_url())
            .await
            .expect("NATS runs (see .ci/run)"),
    );
    js.create_stream(jetstream::stream::Config {
        name: stream.clone(),
        subjects: vec![format!("{prefix}.>")],
        duplicate_window: Duration::from_secs(600),
        ..Default::default()
    })
    .await
    .unwrap();

    // The feed consumers follow one tenant and stop at its count; NATS carries every tenant.
    let (done_tx, done) = watch::channel(None);
    let (nats_done_tx, nats_done) = watch::channel(None);
    let pages = tokio::spawn(consume_pages(app.clone(), reader.clone(), done.clone()));
    let sse = tokio::spawn(consume_sse(app.clone(), reader.clone(), done));
    let nats = tokio::spawn(consume_nats(js.clone(), stream.clone(), nats_done));

    // The relay is killed (SIGKILL, mid-batch or not) and restarted while the writers write.
    let url = app_database_url(&app).await;
    let relay_args = [
        "relay",
        "nats",
        "--url",
        &nats_url(),
        "--stream",
        &stream,
        "--subject-prefix",
        &prefix,
    ]
    .map(str::to_owned);
    let (writers_done_tx, mut writers_done) = watch::channel(false);
    let relay = {
        let url = url.clone();
        let relay_args = relay_args.clone();
        tokio::spawn(async move {
            let args: Vec<&str> = relay_args.iter().map(String::as_str).collect();
            let mut restarts = 0;
            while !*writers_done.borrow() {
                let process = Server::start(&args, Some(&url));
                let run_for = Duration::from_millis(roll(150..900) as u64);
                let _ = tokio::time::timeout(run_for, writers_done.changed()).await;
                drop(process);
                restarts += 1;
            }
            restarts
        })
    };

    let mut writers = Vec::new();
    for _ in 0..6 {
        writers.push(tokio::spawn(write(app.clone(), tenant.clone(), 8)));
    }
    writers.push(tokio::spawn(write(app.clone(), other.clone(), 4)));
    for writer in writers {
        writer.await.unwrap();
    }
    writers_done_tx.send_replace(true);
    let restarts = relay.await.unwrap();
    let args: Vec<&str> = relay_args.iter().map(String::as_str).collect();
    let _final_relay = Server::start(&args, Some(&url));

    // Every event is committed now; the gap-free reader shows them all once the transactions
    // older than the last ones (a projector's batch, say) have ended too.
    let count = app.event_count().await as usize;
    let mut expected_all = stored(&app, None).await;
    for _ in 0..100 {
        if expected_all.len() == count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        expected_all = stored(&app, None).await;
    }
    assert_eq!(expected_all.len(), count);
    let expected_tenant = stored(&app, Some(&tenant.tenant_id)).await;
    assert!(expected_tenant.len() > 100, "{}", expected_tenant.len());

    done_tx.send_replace(Some(expected_tenant.len()));
    nats_done_tx.send_replace(Some(expected_all.len()));
    let from_pages = pages.await.unwrap();
    let from_sse = sse.await.unwrap();
    let from_nats = nats.await.unwrap();
    assert_eq!(from_pages, expected_tenant, "the paged feed");
    assert_eq!(from_sse, expected_tenant, "the SSE stream");
    assert_eq!(from_nats, expected_all, "the NATS stream");
    assert!(restarts >= 1, "the relay was restarted");
    let mut nats_stream = js.get_stream(&stream).await.unwrap();
    let stored_in_stream = nats_stream.info().await.unwrap().state.messages;
    assert_eq!(
        stored_in_stream as usize,
        expected_all.len(),
        "no duplicate reached the stream"
    );
    js.delete_stream(&stream).await.unwrap();
}

#[tokio::test]
async fn the_feed_filters_by_type_keeps_tenants_apart_and_refuses_bad_input() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let conversation = app.new_conversation(admin).await;
    app.new_message(admin, &conversation, "incoming").await;
    app.new_message(admin, &conversation, "outgoing").await;
    let other = app.new_tenant("Globex").await;
    app.new_conversation(&other).await;

    // Events are readable once every older transaction on the server has ended.
    let mut page = Value::Null;
    for _ in 0..100 {
        page = app.get(admin, "/events").await.expect(200);
        if page["data"].as_array().unwrap().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = page["data"].as_array().unwrap();
    assert_eq!(events.len(), 3, "only the caller's tenant: {page:#}");
    assert_eq!(page["has_more"], false);
    let first = &events[0];
    assert_eq!(first["specversion"], "1.0");
    assert_eq!(first["type"], "ConversationStarted");
    assert_eq!(first["source"], format!("/tenants/{}", admin.tenant_id));
    assert_eq!(first["subject"], format!("conversations/{conversation}"));
    assert_eq!(first["datacontenttype"], "application/json");
    assert_eq!(first["data"]["source"], "api");
    assert_eq!(first["actor"], format!("agent:{}", admin.agent_id));
    assert!(first["time"].is_string() && first["position"].is_i64());
    assert_eq!(page["next_cursor"], events[2]["cursor"]);

    let filtered = app
        .get(admin, "/events?types=MessageReceived,MessagePosted")
        .await
        .expect(200);
    let types: Vec<&str> = filtered["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["MessageReceived", "MessagePosted"]);

    let cursor = events[0]["cursor"].as_str().unwrap();
    let next = app
        .get(admin, &format!("/events?after={cursor}&limit=1"))
        .await
        .expect(200);
    assert_eq!(next["data"][0]["id"], events[1]["id"]);
    assert_eq!(next["has_more"], true);
    let end = page["next_cursor"].as_str().unwrap();
    let empty = app
        .get(admin, &format!("/events?after={end}"))
        .await
        .expect(200);
    assert_eq!(empty["data"], json!([]));
    assert_eq!(empty["next_cursor"], end, "an empty page keeps the cursor");

    for (query, code, field) in [
        ("after=12", "invalid_cursor", "after"),
        ("after=a-b", "invalid_cursor", "after"),
        ("limit=0", "invalid_query", "limit"),
        ("limit=1001", "invalid_query", "limit"),
        ("types=Message%20Posted", "invalid_query", "types"),
        ("types=", "invalid_query", "types"),
        ("colour=red", "invalid_query", "colour"),
    ] {
        let got = app
            .get(admin, &format!("/events?{query}"))
            .await
            .problem(422, code);
        assert_eq!(got.as_deref(), Some(field), "{query}");
    }
    let agent = app.new_agent(admin, "agent@example.com", "agent").await;
    app.get(&agent, "/events").await.problem(403, "forbidden");
    app.get(&agent, "/events/stream")
        .await
        .problem(403, "forbidden");
    let bad = app
        .client
        .get(format!("{}/api/v1/events/stream", app.address))
        .bearer_auth(&admin.token)
        .header("Last-Event-ID", "nope")
        .send()
        .await
        .unwrap();
    let got = crate::helpers::answer(bad)
        .await
        .problem(422, "invalid_cursor");
    assert_eq!(got.as_deref(), Some("Last-Event-ID"));
}

#[tokio::test]
async fn the_stream_sends_heartbeats_while_idle_then_live_events_after_the_cursor() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let first = app.new_conversation(admin).await;
    // The event is readable once every older transaction on the server has ended.
    let mut after = String::new();
    for _ in 0..100 {
        let page = app.get(admin, "/events").await.expect(200);
        if page["data"].as_array().unwrap().len() == 1 {
            after = page["next_cursor"].as_str().unwrap().to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!after.is_empty(), "the first event became readable");
    let mut response = app
        .client
        .get(format!(
            "{}/api/v1/events/stream?heartbeat=1&after={after}",
            app.address
        ))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains(": heartbeat") && Instant::now() < deadline {
        if let Ok(Ok(Some(chunk))) =
            tokio::time::timeout(Duration::from_secs(2), response.chunk()).await
        {
            seen.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
    assert!(
        seen.contains(": heartbeat"),
        "an idle stream beats: {seen:?}"
    );
    assert!(
        !seen.contains(&first),
        "events before the cursor are not sent again"
    );

    let second = app.new_conversation(admin).await;
    while !seen.contains(&second) && Instant::now() < deadline {
        if let Ok(Ok(Some(chunk))) =
            tokio::time::timeout(Duration::from_secs(2), response.chunk()).await
        {
            seen.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
    assert!(
        seen.contains(&format!("conversations/{second}")),
        "a live event arrives: {seen:?}"
    );
}

#[tokio::test]
async fn the_analytics_example_rebuilds_message_counts_that_match_the_read_models() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let auditor = app
        .new_agent(admin, "analytics@example.com", "auditor")
        .await;
    let mut last_position = 0;
    for messages in [1, 3, 6] {
        let id = app.new_conversation(admin).await;
        for n in 0..messages {
            let body = match n % 3 {
                0 => json!({"content": "question", "message_type": "incoming"}),
                1 => json!({"content": "answer", "message_type": "outgoing"}),
                _ => json!({"content": "note", "message_type": "outgoing", "private": true}),
            };
            let posted = app
                .post(admin, &format!("/conversations/{id}/messages"), body)
                .await
                .expect(201);
            last_position = last_position.max(posted["position"].as_i64().unwrap());
        }
        app.post(
            admin,
            &format!("/conversations/{id}/labels"),
            json!({"label": "x"}),
        )
        .await
        .expect(200);
    }
    let other = app.new_tenant("Globex").await;
    let theirs = app.new_conversation(&other).await;
    app.new_message(&other, &theirs, "incoming").await;

    let inbox = app
        .get(
            admin,
            &format!("/conversations?status=all&min_position={last_position}"),
        )
        .await
        .expect(200);
    let from_read_models: serde_json::Map<String, Value> = inbox["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["message_count"].clone(),
            )
        })
        .collect();
    assert_eq!(from_read_models.len(), 3);

    let script = crate::helpers::workspace_root().join("docs/examples/message_counts.sh");
    // Asynchronously: the server under test runs on this test's runtime.
    let run = || {
        tokio::process::Command::new("bash")
            .arg(&script)
            .env("UPZENTO_URL", &app.address)
            .env("UPZENTO_TOKEN", &auditor.token)
            .output()
    };
    // The feed shows an event once every older transaction on the server has ended.
    let mut counted = Value::Null;
    for _ in 0..100 {
        let output = run().await.unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        counted = serde_json::from_slice(&output.stdout).unwrap();
        if counted == Value::Object(from_read_models.clone()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counted, Value::Object(from_read_models));

    // docs/analytics.md shows the script as it is run here.
    let guide = std::fs::read_to_string(crate::helpers::workspace_root().join("docs/analytics.md"))
        .unwrap();
    let shown = std::fs::read_to_string(&script).unwrap();
    assert!(
        guide.contains(&shown),
        "docs/analytics.md shows docs/examples/message_counts.sh verbatim"
    );
}

/// Waits until the relay's checkpoint has reached `events` events relayed in total.
async fn relayed(app: &TestApp, stream: &str, events: i64) -> i64 {
    let mut relayed = 0;
    for _ in 0..300 {
        relayed = sqlx::query_scalar::<_, i64>(
            "select events_relayed from relay_checkpoints where name = $1",
        )
        .bind(format!("nats:{stream}"))
        .fetch_optional(&app.pool)
        .await
        .unwrap()
        .unwrap_or(0);
        if relayed >= events {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    relayed
}

#[tokio::test]
async fn a_relay_that_publishes_its_events_again_adds_no_duplicate_and_names_subjects_by_tenant_aggregate_and_type()
 {
    let app = spawn_app().await;
    let admin = &app.admin;
    let conversation = app.new_conversation(admin).await;
    app.new_message(admin, &conversation, "incoming").await;
    app.post(admin, "/widgets", json!({"name": "Support"}))
        .await
        .expect(201);
    let count = app.event_count().await;

    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let stream = format!("TEST_{suffix}");
    let prefix = format!("t{suffix}");
    let url = app_database_url(&app).await;
    let nats = nats_url();
    let args = [
        "relay",
        "nats",
        "--url",
        &nats,
        "--stream",
        &stream,
        "--subject-prefix",
        &prefix,
    ];
    let relay = Server::start(&args, Some(&url));
    assert_eq!(
        relayed(&app, &stream, count).await,
        count,
        "the relay created the stream and caught up"
    );
    drop(relay);

    // As if the relay had crashed after publishing and before moving its checkpoint: it
    // publishes everything again, and JetStream drops every repeat by its message id.
    sqlx::query(
        "update relay_checkpoints set transaction_id = '0'::xid8, position = 0 where name = $1",
    )
    .bind(format!("nats:{stream}"))
    .execute(&app.pool)
    .await
    .unwrap();
    let relay = Server::start(&args, Some(&url));
    assert_eq!(
        relayed(&app, &stream, 2 * count).await,
        2 * count,
        "the relay published again"
    );
    drop(relay);

    let js = jetstream::new(async_nats::connect(nats).await.unwrap());
    let mut nats_stream = js.get_stream(&stream).await.unwrap();
    assert_eq!(
        nats_stream.info().await.unwrap().state.messages,
        count as u64,
        "no duplicate reached the stream"
    );
    let expected = stored(&app, None).await;
    let mut subjects = Vec::new();
    for (sequence, (id, _)) in expected.iter().enumerate() {
        let message = nats_stream
            .get_raw_message(sequence as u64 + 1)
            .await
            .unwrap();
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(event["id"], id.as_str(), "stream order is the global order");
        subjects.push(message.subject.to_string());
    }
    let tenant = &admin.tenant_id;
    assert_eq!(
        subjects,
        [
            format!("{prefix}.{tenant}.conversation.ConversationStarted"),
            format!("{prefix}.{tenant}.conversation.MessageReceived"),
            format!("{prefix}.{tenant}.widget.WidgetCreated"),
        ]
    );
    js.delete_stream(&stream).await.unwrap();
}
