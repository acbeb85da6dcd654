//! A conversation's activity lines (`GET /conversations/{id}/activity`): the changes an
//! agent's timeline shows between messages, numbered like the messages so both merge, read
//! by any caller of the tenant, paged by `before` and `limit`.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::{Value, json};

use crate::helpers::{Caller, TestApp, spawn_app};

/// POSTs a change and answers the command's answer.
async fn post(app: &TestApp, caller: &Caller, path: String, body: Value) -> Value {
    let answer = app.post(caller, &path, body).await;
    assert!(answer.status.is_success(), "{path}: {:#}", answer.body);
    answer.body
}

/// POSTs a change and answers the conversation's version after it: the `seq` of the last
/// event it wrote.
async fn change(app: &TestApp, caller: &Caller, path: String, body: Value) -> i64 {
    version(&post(app, caller, path, body).await)
}

fn version(answer: &Value) -> i64 {
    answer["version"]
        .as_i64()
        .expect("a command answers its version")
}

/// The activity lines of `path`'s page, as `caller`.
async fn lines(app: &TestApp, caller: &Caller, path: &str) -> Vec<Value> {
    app.get(caller, path).await.expect(200)["data"]
        .as_array()
        .expect("a page of lines")
        .clone()
}

fn seqs(lines: &[Value]) -> Vec<i64> {
    lines.iter().map(|l| l["seq"].as_i64().unwrap()).collect()
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a time"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

#[tokio::test]
async fn the_activity_lists_every_change_in_order_between_the_messages() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let ann = app.new_agent(admin, "ann@acme.com", "agent").await;
    let auditor = app.new_agent(admin, "audit@acme.com", "auditor").await;
    let team = app
        .post(admin, "/teams", json!({"name": "Support"}))
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
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
    let as_admin = format!("agent:{}", admin.agent_id);
    let as_ann = format!("agent:{}", ann.agent_id);
    let snooze_until = (Utc::now() + Duration::days(1)).trunc_subsecs(0);

    let say = |kind: &'static str| json!({"content": "hello", "message_type": kind});
    let asked = change(&app, admin, format!("{c}/messages"), say("incoming")).await;
    let assigned = change(
        &app,
        &ann,
        format!("{c}/assignment"),
        json!({"agent_id": ann.agent_id}),
    )
    .await;
    let with_team = change(
        &app,
        admin,
        format!("{c}/assignment"),
        json!({"agent_id": ann.agent_id, "team_id": team}),
    )
    .await;
    let answered = post(&app, &ann, format!("{c}/messages"), say("outgoing")).await;
    let reply = answered["message_id"].as_str().unwrap();
    let delivered = change(
        &app,
        admin,
        format!("{c}/messages/{reply}/status"),
        json!({"status": "delivered"}),
    )
    .await;
    let noted = change(
        &app,
        &ann,
        format!("{c}/messages"),
        json!({"content": "VIP", "message_type": "outgoing", "private": true}),
    )
    .await;
    let read = change(&app, &ann, format!("{c}/read"), json!({})).await;
    let pending = change(
        &app,
        &ann,
        format!("{c}/status"),
        json!({"status": "pending"}),
    )
    .await;
    let snoozed = change(
        &app,
        &ann,
        format!("{c}/status"),
        json!({"status": "snoozed", "snoozed_until": snooze_until}),
    )
    .await;
    let labelled = change(&app, &ann, format!("{c}/labels"), json!({"label": "VIP"})).await;
    let unlabelled = version(
        &app.call(
            &ann,
            reqwest::Method::DELETE,
            &format!("{c}/labels/vip"),
            None,
        )
        .await
        .expect(200),
    );
    let resolved = change(
        &app,
        admin,
        format!("{c}/status"),
        json!({"status": "resolved"}),
    )
    .await;
    let reopened = change(&app, admin, format!("{c}/messages"), say("incoming")).await;
    let last = post(&app, admin, format!("{c}/assignment"), json!({})).await;
    let unassigned = version(&last);

    let activity = lines(&app, &ann, &format!("{c}/activity")).await;
    assert_eq!(
        activity,
        vec![
            json!({"seq": 1, "kind": "started", "source": "api", "widget_id": null,
                   "contact": {"name": "Bob", "email": "bob@example.com", "phone": null},
                   "actor": as_admin, "at": activity[0]["at"]}),
            json!({"seq": assigned, "kind": "assigned", "agent_id": ann.agent_id,
                   "team_id": null, "actor": as_ann, "at": activity[1]["at"]}),
            json!({"seq": with_team, "kind": "assigned", "agent_id": ann.agent_id,
                   "team_id": team, "actor": as_admin, "at": activity[2]["at"]}),
            json!({"seq": pending, "kind": "status_changed", "status": "pending",
                   "snoozed_until": null, "reopened_by_contact": false,
                   "actor": as_ann, "at": activity[3]["at"]}),
            json!({"seq": snoozed, "kind": "status_changed", "status": "snoozed",
                   "snoozed_until": activity[4]["snoozed_until"], "reopened_by_contact": false,
                   "actor": as_ann, "at": activity[4]["at"]}),
            json!({"seq": labelled, "kind": "label_added", "label": "vip",
                   "actor": as_ann, "at": activity[5]["at"]}),
            json!({"seq": unlabelled, "kind": "label_removed", "label": "vip",
                   "actor": as_ann, "at": activity[6]["at"]}),
            json!({"seq": resolved, "kind": "status_changed", "status": "resolved",
                   "snoozed_until": null, "reopened_by_contact": false,
                   "actor": as_admin, "at": activity[7]["at"]}),
            json!({"seq": reopened, "kind": "status_changed", "status": "open",
                   "snoozed_until": null, "reopened_by_contact": true,
                   "actor": as_admin, "at": activity[8]["at"]}),
            json!({"seq": unassigned, "kind": "assigned", "agent_id": null, "team_id": null,
                   "actor": as_admin, "at": activity[9]["at"]}),
        ],
        "every change, oldest first, with its actor"
    );
    assert_eq!(time(&activity[4]["snoozed_until"]), snooze_until);
    let times: Vec<DateTime<Utc>> = activity.iter().map(|l| time(&l["at"])).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(times[0] <= Utc::now() && Utc::now() - times[0] < Duration::minutes(5));

    // The lines and the messages share one numbering and merge into one timeline; what
    // neither shows as an entry (a delivery status, a read marker) leaves a gap.
    let messages = app
        .get(
            &ann,
            &format!("{c}/messages?min_position={}", last["position"]),
        )
        .await
        .expect(200)["data"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        seqs(&messages),
        [asked, version(&answered), noted, reopened - 1],
        "a message's seq is the sequence of the event that wrote it"
    );
    let mut merged: Vec<(i64, String)> = activity
        .iter()
        .map(|l| {
            (
                l["seq"].as_i64().unwrap(),
                l["kind"].as_str().unwrap().to_owned(),
            )
        })
        .chain(messages.iter().map(|m| {
            (
                m["seq"].as_i64().unwrap(),
                m["direction"].as_str().unwrap().to_owned(),
            )
        }))
        .collect();
    merged.sort();
    let order: Vec<&str> = merged.iter().map(|(_, kind)| kind.as_str()).collect();
    assert_eq!(
        order,
        [
            "started",
            "incoming",
            "assigned",
            "assigned",
            "outgoing",
            "note",
            "status_changed",
            "status_changed",
            "label_added",
            "label_removed",
            "status_changed",
            "incoming",
            "status_changed",
            "assigned",
        ]
    );
    let mut numbers: Vec<i64> = merged.iter().map(|(seq, _)| *seq).collect();
    numbers.dedup();
    assert_eq!(
        numbers.len(),
        merged.len(),
        "no seq is both a line and a message"
    );
    for hidden in [delivered, read] {
        assert!(!numbers.contains(&hidden), "seq {hidden} is not an entry");
    }

    assert_eq!(
        lines(&app, admin, &format!("{c}/activity")).await,
        activity,
        "admins read the same lines"
    );
    assert_eq!(
        lines(&app, &auditor, &format!("{c}/activity")).await,
        activity,
        "auditors read the same lines"
    );
}

#[tokio::test]
async fn activity_pages_back_by_seq_and_refuses_bad_parameters_by_name() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let id = app.new_conversation(admin).await;
    let c = format!("/conversations/{id}");
    for label in ["a", "b", "c", "d"] {
        app.post(admin, &format!("{c}/labels"), json!({"label": label}))
            .await
            .expect(200);
        app.new_message(admin, &id, "incoming").await;
    }
    let all = lines(&app, admin, &format!("{c}/activity")).await;
    assert_eq!(seqs(&all), [1, 2, 4, 6, 8], "the start and four labels");

    let newest = lines(&app, admin, &format!("{c}/activity?limit=2")).await;
    assert_eq!(seqs(&newest), [6, 8], "the newest lines, oldest first");
    let older = lines(&app, admin, &format!("{c}/activity?before=6&limit=2")).await;
    assert_eq!(seqs(&older), [2, 4]);
    let oldest = lines(&app, admin, &format!("{c}/activity?before=2&limit=2")).await;
    assert_eq!(seqs(&oldest), [1]);
    assert_eq!(
        lines(&app, admin, &format!("{c}/activity?before=1")).await,
        Vec::<Value>::new(),
        "nothing before the start, and the conversation is still found"
    );
    assert_eq!(
        seqs(&lines(&app, admin, &format!("{c}/activity?before=5")).await),
        [1, 2, 4],
        "a message's seq pages the lines too"
    );
    assert_eq!(
        seqs(&lines(&app, admin, &format!("{c}/activity?before=1000&limit=200")).await),
        [1, 2, 4, 6, 8]
    );

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=many", "limit"),
        ("before=0", "before"),
        ("before=-3", "before"),
        ("before=latest", "before"),
        ("min_position=3", "min_position"),
        ("colour=red", "colour"),
    ] {
        let got = app.get(admin, &format!("{c}/activity?{query}")).await;
        assert_eq!(
            got.problem(422, "invalid_query").as_deref(),
            Some(field),
            "{query}"
        );
    }
    let got = app.get(admin, "/conversations/nope/activity").await;
    assert_eq!(got.problem(400, "invalid_id").as_deref(), Some("id"));

    let document = app.openapi().await;
    let operation = &document["paths"]["/api/v1/conversations/{id}/activity"]["get"];
    let parameters: Vec<&str> = operation["parameters"]
        .as_array()
        .expect("the endpoint is in the OpenAPI document")
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(parameters, ["id", "before", "limit"]);
}

#[tokio::test]
async fn another_tenants_or_an_unknown_conversation_has_no_activity() {
    let app = spawn_app().await;
    let id = app.new_conversation(&app.admin).await;
    let intruder = app.new_tenant("Globex").await;
    let intruders_agent = app.new_agent(&intruder, "eve@globex.com", "agent").await;
    for caller in [&intruder, &intruders_agent] {
        app.get(caller, &format!("/conversations/{id}/activity"))
            .await
            .problem(404, "conversation_not_found");
        app.get(caller, &format!("/conversations/{id}/activity?before=1"))
            .await
            .problem(404, "conversation_not_found");
    }
    app.get(
        &app.admin,
        &format!("/conversations/{}/activity", uuid::Uuid::now_v7()),
    )
    .await
    .problem(404, "conversation_not_found");
}
