//! The event store itself: snapshots that equal a replay, and positions that follow commits.

use commands::store::EventStore;
use domain::conversation::Conversation;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_long_conversation_loads_from_its_snapshot_to_the_same_state_as_a_replay() {
    let app = spawn_app().await;
    let admin = &app.admin;
    let id = app.new_conversation(admin).await;
    for n in 0..130 {
        let message = app
            .new_message(admin, &id, if n % 3 == 0 { "incoming" } else { "outgoing" })
            .await;
        if n % 3 == 1 {
            app.post(
                admin,
                &format!("/conversations/{id}/messages/{message}/status"),
                json!({"status": "delivered"}),
            )
            .await
            .expect(200);
        }
        if n % 10 == 0 {
            app.post(admin, &format!("/conversations/{id}/read"), json!({}))
                .await
                .expect(200);
            app.post(
                admin,
                &format!("/conversations/{id}/labels"),
                json!({"label": format!("l{}", n % 4)}),
            )
            .await
            .expect(200);
        }
    }
    let stream = format!("{}:{id}", admin.tenant_id);
    let (last_sequence, snapshots): (i64, i64) = sqlx::query_as(
        "select last_sequence, current_snapshot from snapshots where aggregate_id = $1",
    )
    .bind(&stream)
    .fetch_one(&app.pool)
    .await
    .expect("a snapshot was taken");
    assert!(
        last_sequence >= 100 && snapshots >= 1,
        "{last_sequence} {snapshots}"
    );

    let store = EventStore::new(app.pool.clone());
    let loaded = store.load::<Conversation>(&stream).await.unwrap();
    assert_eq!(loaded.snapshot_version, last_sequence as usize);
    let replayed = store.replay::<Conversation>(&stream).await.unwrap();
    assert_eq!(
        loaded.aggregate, replayed,
        "snapshot plus later events equals a replay"
    );
    assert_eq!(replayed.messages.len(), 130);

    sqlx::query("update snapshots set payload = '{\"from\": \"an older shape\"}'")
        .execute(&app.pool)
        .await
        .unwrap();
    let reloaded = store.load::<Conversation>(&stream).await.unwrap();
    assert_eq!(
        reloaded.snapshot_version, 0,
        "an unreadable snapshot is ignored"
    );
    assert_eq!(reloaded.aggregate, replayed);
}

#[tokio::test]
async fn positions_grow_with_each_commit_and_sequences_have_no_holes() {
    let app = spawn_app().await;
    let id = app.new_conversation(&app.admin).await;
    let mut last = 0;
    for _ in 0..5 {
        let answer = app
            .post(
                &app.admin,
                &format!("/conversations/{id}/messages"),
                json!({"content": "x", "message_type": "incoming"}),
            )
            .await
            .expect(201);
        let position = answer["position"].as_i64().unwrap();
        assert!(position > last);
        last = position;
    }
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("select sequence, position from events order by sequence")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let sequences: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(sequences, (1..=6).collect::<Vec<_>>());
    assert_eq!(rows.last().unwrap().1, last);
}
