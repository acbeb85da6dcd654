//! The query API over the inbox read model: filters, counts, unread, paging, search, the
//! timeline with delivery status, and read-your-writes.

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::helpers::{Caller, TestApp, spawn_app};

/// GET that waits for `position` (read-your-writes).
async fn read(app: &TestApp, caller: &Caller, path: &str, position: &Value) -> Value {
    let separator = if path.contains('?') { '&' } else { '?' };
    app.get(caller, &format!("{path}{separator}min_position={position}"))
        .await
        .expect(200)
}

/// The ids of a list page's conversations, in order.
fn ids_of(page: &Value) -> Vec<&str> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect()
}

async fn start(app: &TestApp, caller: &Caller, name: &str, email: &str) -> (String, Value) {
    let started = app
        .post(
            caller,
            "/conversations",
            json!({"source": "api", "contact": {"name": name, "email": email}}),
        )
        .await
        .expect(201);
    (
        started["id"].as_str().unwrap().to_owned(),
        started["position"].clone(),
    )
}

async fn say(app: &TestApp, caller: &Caller, id: &str, kind: &str, content: &str) -> Value {
    app.post(
        caller,
        &format!("/conversations/{id}/messages"),
        json!({"content": content, "message_type": kind}),
    )
    .await
    .expect(201)
}

#[tokio::test]
async fn the_inbox_lists_filters_and_counts_conversations() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let ann = app.new_agent(admin, "ann@acme.com", "agent").await;
    let (bob, _) = start(&app, admin, "Bob Stone", "bob@example.com").await;
    let (cia, _) = start(&app, admin, "Cia Park", "cia@example.com").await;
    let (dan, _) = start(&app, admin, "Dan Ray", "dan@example.com").await;
    say(&app, admin, &bob, "incoming", "My parcel never arrived").await;
    say(&app, admin, &cia, "incoming", "Invoice question").await;
    app.post(
        admin,
        &format!("/conversations/{cia}/assignment"),
        json!({"agent_id": ann.agent_id}),
    )
    .await
    .expect(200);
    app.post(
        admin,
        &format!("/conversations/{dan}/labels"),
        json!({"label": "vip"}),
    )
    .await
    .expect(200);
    let last = app
        .post(
            admin,
            &format!("/conversations/{dan}/status"),
            json!({"status": "resolved"}),
        )
        .await
        .expect(200);

    let open = read(&app, &ann, "/conversations", &last["position"]).await;
    let ids = ids_of(&open);
    assert_eq!(
        ids,
        [cia.as_str(), bob.as_str()],
        "open conversations, newest activity first"
    );
    assert_eq!(
        open["meta"]["counts"],
        json!({"mine": 1, "unassigned": 1, "all": 2})
    );
    assert_eq!(open["meta"]["next_cursor"], Value::Null);
    let first = &open["data"][0];
    assert_eq!(first["contact_name"], "Cia Park");
    assert_eq!(first["last_message_preview"], "Invoice question");
    assert_eq!(first["assignee_id"], ann.agent_id);
    assert_eq!(first["unread_count"], 1);
    assert_eq!(first["message_count"], 1);
    assert!(first["waiting_since"].is_string());

    let mine = app
        .get(&ann, "/conversations?assignee=me")
        .await
        .expect(200);
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);
    assert_eq!(mine["data"][0]["id"], cia);
    let unassigned = app
        .get(&ann, "/conversations?assignee=unassigned")
        .await
        .expect(200);
    assert_eq!(unassigned["data"][0]["id"], bob);
    let resolved = app
        .get(&ann, "/conversations?status=resolved&label=vip")
        .await
        .expect(200);
    assert_eq!(resolved["data"][0]["id"], dan);
    assert_eq!(
        resolved["meta"]["counts"],
        json!({"mine": 0, "unassigned": 1, "all": 1})
    );
    let everything = app
        .get(&ann, "/conversations?status=all&source=api")
        .await
        .expect(200);
    assert_eq!(everything["data"].as_array().unwrap().len(), 3);
    assert_eq!(everything["meta"]["counts"]["all"], 3);
    let none = app
        .get(&ann, "/conversations?source=whatsapp")
        .await
        .expect(200);
    assert_eq!(none["data"], json!([]));

    let found = app
        .get(&ann, "/conversations?status=all&q=parcel")
        .await
        .expect(200);
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    assert_eq!(found["data"][0]["id"], bob);
    let by_email = app
        .get(&ann, "/conversations?status=all&q=cia@example.com")
        .await
        .expect(200);
    assert_eq!(by_email["data"][0]["id"], cia);
}

#[tokio::test]
async fn unread_counts_follow_messages_read_markers_and_assignment() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let ann = app.new_agent(admin, "ann@acme.com", "agent").await;
    let (bob, _) = start(&app, admin, "Bob", "bob@example.com").await;
    say(&app, admin, &bob, "incoming", "one").await;
    let last = say(&app, admin, &bob, "incoming", "two").await;
    assert_eq!(
        read(&app, &ann, "/unread", &last["position"]).await,
        json!({"mine": 0, "unassigned": 2, "all": 2})
    );

    let marked = app
        .post(&ann, &format!("/conversations/{bob}/read"), json!({}))
        .await
        .expect(200);
    assert_eq!(
        read(&app, &ann, "/unread", &marked["position"]).await,
        json!({"mine": 0, "unassigned": 0, "all": 0})
    );
    assert_eq!(
        app.get(admin, "/unread").await.expect(200)["all"],
        2,
        "read markers are per agent"
    );

    say(&app, admin, &bob, "incoming", "three").await;
    let assigned = app
        .post(
            admin,
            &format!("/conversations/{bob}/assignment"),
            json!({"agent_id": ann.agent_id}),
        )
        .await
        .expect(200);
    assert_eq!(
        read(&app, &ann, "/unread", &assigned["position"]).await,
        json!({"mine": 1, "unassigned": 0, "all": 1})
    );
    let one = read(
        &app,
        &ann,
        &format!("/conversations/{bob}"),
        &assigned["position"],
    )
    .await;
    assert_eq!(one["unread_count"], 1);

    let resolved = app
        .post(
            admin,
            &format!("/conversations/{bob}/status"),
            json!({"status": "resolved"}),
        )
        .await
        .expect(200);
    assert_eq!(
        read(&app, &ann, "/unread", &resolved["position"]).await,
        json!({"mine": 0, "unassigned": 0, "all": 0})
    );
}

#[tokio::test]
async fn the_timeline_shows_every_message_with_its_delivery_status() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let (bob, _) = start(&app, admin, "Bob", "bob@example.com").await;
    say(&app, admin, &bob, "incoming", "<b>hello</b>").await;
    let reply = say(&app, admin, &bob, "outgoing", "hi!").await;
    let reply_id = reply["message_id"].as_str().unwrap();
    app.post(
        admin,
        &format!("/conversations/{bob}/messages"),
        json!({"content": "note", "message_type": "outgoing", "private": true}),
    )
    .await
    .expect(201);
    let at = Utc::now() - Duration::seconds(5);
    app.post(
        admin,
        &format!("/conversations/{bob}/messages/{reply_id}/status"),
        json!({"status": "delivered", "at": at}),
    )
    .await
    .expect(200);
    let last = app
        .post(
            admin,
            &format!("/conversations/{bob}/messages/{reply_id}/status"),
            json!({"status": "read"}),
        )
        .await
        .expect(200);

    let timeline = read(
        &app,
        admin,
        &format!("/conversations/{bob}/messages"),
        &last["position"],
    )
    .await;
    let messages = timeline["data"].as_array().unwrap();
    let directions: Vec<&str> = messages
        .iter()
        .map(|m| m["direction"].as_str().unwrap())
        .collect();
    assert_eq!(directions, ["incoming", "outgoing", "note"]);
    assert_eq!(
        messages[0]["content"], "<b>hello</b>",
        "content is stored as text, untouched"
    );
    assert_eq!(messages[1]["status"], "read");
    let delivered_at =
        chrono::DateTime::parse_from_rfc3339(messages[1]["delivered_at"].as_str().unwrap())
            .unwrap();
    assert!(
        (delivered_at.with_timezone(&Utc) - at)
            .num_microseconds()
            .unwrap()
            .abs()
            <= 1,
        "the channel's time is kept"
    );
    assert!(messages[1]["read_at"].is_string());
    assert_eq!(messages[1]["author"], format!("agent:{}", admin.agent_id));
    let conversation = app
        .get(admin, &format!("/conversations/{bob}"))
        .await
        .expect(200);
    assert_eq!(conversation["last_outgoing_status"], "read");
    assert_eq!(
        conversation["waiting_since"],
        Value::Null,
        "an answer ends the wait"
    );
    assert_eq!(
        conversation["last_message_preview"], "hi!",
        "notes are not previewed"
    );

    let first_id = messages[0]["id"].as_str().unwrap();
    let after = app
        .get(
            admin,
            &format!("/conversations/{bob}/messages?after={first_id}&limit=1"),
        )
        .await
        .expect(200);
    assert_eq!(after["data"][0]["id"], reply_id);
    let before = app
        .get(
            admin,
            &format!("/conversations/{bob}/messages?before={reply_id}"),
        )
        .await
        .expect(200);
    assert_eq!(before["data"].as_array().unwrap().len(), 1);
    assert_eq!(before["data"][0]["id"], first_id);
}

#[tokio::test]
async fn pages_follow_the_cursor_without_repeats_while_new_conversations_arrive() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let mut created = Vec::new();
    for n in 0..7 {
        created.push(
            start(
                &app,
                admin,
                &format!("Contact {n}"),
                &format!("c{n}@example.com"),
            )
            .await,
        );
    }
    let mut seen = Vec::new();
    let mut path = format!(
        "/conversations?limit=3&min_position={}",
        created.last().unwrap().1
    );
    loop {
        let page = app.get(admin, &path).await.expect(200);
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned()),
        );
        if seen.len() == 3 {
            start(&app, admin, "Newcomer", "new@example.com").await;
        }
        match page["meta"]["next_cursor"].as_str() {
            Some(cursor) => path = format!("/conversations?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    let mut expected: Vec<String> = created.into_iter().map(|(id, _)| id).collect();
    expected.reverse();
    assert_eq!(
        seen, expected,
        "every conversation once, newest first; the newcomer belongs to page one"
    );
}

#[tokio::test]
async fn the_waiting_view_lists_the_longest_waiting_first() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let (first, _) = start(&app, admin, "First", "first@example.com").await;
    let (second, _) = start(&app, admin, "Second", "second@example.com").await;
    let (answered, _) = start(&app, admin, "Answered", "answered@example.com").await;
    for (id, minutes) in [(&second, 5), (&first, 30), (&answered, 60)] {
        let sent_at = Utc::now() - Duration::minutes(minutes);
        app.post(
            admin,
            &format!("/conversations/{id}/messages"),
            json!({"content": "hello?", "message_type": "incoming", "sent_at": sent_at}),
        )
        .await
        .expect(201);
    }
    let last = say(&app, admin, &answered, "outgoing", "here!").await;
    let waiting = read(
        &app,
        admin,
        "/conversations?sort=waiting_since",
        &last["position"],
    )
    .await;
    let ids = ids_of(&waiting);
    assert_eq!(ids, [first.as_str(), second.as_str()]);
}

#[tokio::test]
async fn bad_queries_are_refused_and_other_tenants_see_nothing() {
    let app = spawn_app().await;
    let (bob, position) = start(&app, &app.admin, "Bob", "bob@example.com").await;
    for (query, field) in [
        ("status=closed", "status"),
        ("assignee=someone", "assignee"),
        ("source=fax", "source"),
        ("sort=name", "sort"),
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("cursor=nope", "cursor"),
        ("colour=red", "colour"),
    ] {
        let got = app
            .get(&app.admin, &format!("/conversations?{query}"))
            .await;
        assert_eq!(
            got.problem(422, "invalid_query").as_deref(),
            Some(field),
            "{query}"
        );
    }
    let intruder = app.new_tenant("Globex").await;
    let list = read(&app, &intruder, "/conversations?status=all", &position).await;
    assert_eq!(list["data"], json!([]));
    assert_eq!(
        list["meta"]["counts"],
        json!({"mine": 0, "unassigned": 0, "all": 0})
    );
    app.get(&intruder, &format!("/conversations/{bob}"))
        .await
        .problem(404, "conversation_not_found");
    app.get(&intruder, &format!("/conversations/{bob}/messages"))
        .await
        .problem(404, "conversation_not_found");
}

#[tokio::test]
async fn a_search_matching_hundreds_of_conversations_pages_newest_first() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let path = "/conversations";
    let mut last = Value::Null;
    for answer in futures::future::join_all((0..520).map(|n| {
        app.post(
            admin,
            path,
            json!({"source": "api", "contact": {"name": format!("Shopper {n}")}}),
        )
    }))
    .await
    {
        let position = answer.expect(201)["position"].clone();
        if position.as_i64() > last.as_i64() {
            last = position;
        }
    }
    let page = read(&app, admin, "/conversations?q=shopper&limit=100", &last).await;
    let rows = page["data"].as_array().unwrap();
    assert_eq!(rows.len(), 100);
    assert!(page["meta"]["next_cursor"].is_string());
    let times: Vec<chrono::DateTime<Utc>> = rows
        .iter()
        .map(|c| c["last_activity_at"].as_str().unwrap().parse().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest activity first");
    let one = read(&app, admin, "/conversations?q=%22shopper%2077%22", &last).await;
    assert_eq!(one["data"].as_array().unwrap().len(), 1, "{one:#}");
}

#[tokio::test]
async fn search_finds_a_contact_and_a_message_together_but_not_words_spread_over_two_messages() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let (eve, _) = start(&app, admin, "Eve Moss", "eve@example.com").await;
    say(&app, admin, &eve, "incoming", "Where is my refund?").await;
    let last = say(&app, admin, &eve, "outgoing", "It left on Monday").await;
    let found = read(
        &app,
        admin,
        "/conversations?q=eve%20refund",
        &last["position"],
    )
    .await;
    assert_eq!(
        found["data"][0]["id"], eve,
        "contact and message words together"
    );
    let found = read(
        &app,
        admin,
        "/conversations?q=refund%20monday",
        &last["position"],
    )
    .await;
    assert_eq!(
        found["data"],
        json!([]),
        "every word must be in one message (with the contact's fields)"
    );
}

#[tokio::test]
async fn a_word_in_more_messages_than_the_search_probe_gathers_is_found_newest_first() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let tenant = &admin.tenant_id;
    // 12,000 messages with the word, more than the probe gathers, written straight into the
    // event store a year back, so the search walks the conversations by activity.
    let seeded = uuid::Uuid::now_v7();
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata, tenant_id, recorded_at)
         select 'Conversation', $1, 1, 'ConversationStarted', '1',
                '{\"ConversationStarted\": {\"source\": \"api\", \"widget_id\": null,
                   \"contact\": {\"name\": \"Old Timer\", \"email\": null, \"phone\": null}}}'::jsonb,
                '{}'::jsonb, $2::uuid, now() - interval '1 year'
         union all
         select 'Conversation', $1, m + 1, 'MessageReceived', '1',
                jsonb_build_object('MessageReceived', jsonb_build_object(
                    'message_id', gen_random_uuid(), 'content', 'a widespread word ' || m,
                    'sent_at', now() - interval '1 year')),
                '{}', $2::uuid, now() - interval '1 year' + m * interval '1 millisecond'
           from generate_series(1, 12000) m",
    )
    .bind(format!("{tenant}:{seeded}"))
    .bind(tenant)
    .execute(&app.pool)
    .await
    .unwrap();
    let (named, _) = start(&app, admin, "Widespread Person", "named@example.com").await;
    let (other, _) = start(&app, admin, "Other", "other@example.com").await;
    say(&app, admin, &other, "incoming", "nothing in common").await;
    let (newest, _) = start(&app, admin, "Newest", "newest@example.com").await;
    let last = say(&app, admin, &newest, "incoming", "Widespread, again").await;

    let found = read(
        &app,
        admin,
        "/conversations?q=widespread",
        &last["position"],
    )
    .await;
    let ids = ids_of(&found);
    let seeded = seeded.to_string();
    assert_eq!(ids, [newest.as_str(), named.as_str(), seeded.as_str()]);
    // Once the statistics know the word is common, the search walks a few conversations
    // before it asks the index: the same answer.
    sqlx::query("analyze inbox_search")
        .execute(&app.pool)
        .await
        .unwrap();
    let again = read(
        &app,
        admin,
        "/conversations?q=widespread",
        &last["position"],
    )
    .await;
    assert_eq!(again["data"], found["data"]);
    let page = read(
        &app,
        admin,
        "/conversations?q=widespread&limit=1",
        &last["position"],
    )
    .await;
    assert_eq!(page["data"][0]["id"], newest);
    let cursor = page["meta"]["next_cursor"].as_str().unwrap();
    let next = read(
        &app,
        admin,
        &format!("/conversations?q=widespread&limit=1&cursor={cursor}"),
        &last["position"],
    )
    .await;
    assert_eq!(next["data"][0]["id"], named);
}

#[tokio::test]
async fn a_conversation_longer_than_one_search_document_could_hold_stays_searchable() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let (long, _) = start(&app, admin, "Verbose", "verbose@example.com").await;
    let first = say(&app, admin, &long, "incoming", "findme-first").await;
    // About 1.3 MB of distinct words: more than one tsvector can hold (under 1 MB).
    for _ in 0..130 {
        let words: Vec<String> = (0..300)
            .map(|_| uuid::Uuid::new_v4().simple().to_string())
            .collect();
        say(&app, admin, &long, "incoming", &words.join(" ")).await;
    }
    let last = say(&app, admin, &long, "incoming", "findme-last still here").await;
    let timeline = read(
        &app,
        admin,
        &format!("/conversations/{long}/messages?limit=1"),
        &last["position"],
    )
    .await;
    assert_eq!(
        timeline["data"][0]["content"], "findme-last still here",
        "the inbox kept up"
    );
    let found = read(
        &app,
        admin,
        "/conversations?q=findme-last",
        &last["position"],
    )
    .await;
    assert_eq!(
        found["data"][0]["id"], long,
        "the last message is searchable"
    );
    let found = read(
        &app,
        admin,
        "/conversations?q=findme-first",
        &first["position"],
    )
    .await;
    assert_eq!(found["data"][0]["id"], long);
    let (bob, position) = start(&app, admin, "Bob", "bob@example.com").await;
    let listed = read(&app, admin, "/conversations?q=bob", &position).await;
    assert_eq!(
        listed["data"][0]["id"], bob,
        "later conversations are projected too"
    );
}
