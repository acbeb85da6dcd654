//! The read side under crashes and concurrency: nothing acknowledged is lost or doubled, no
//! event committed late is skipped, one instance projects at a time, and a rebuild gives the
//! same rows.

use std::collections::HashSet;
use std::time::Duration;

use futures::future::join_all;
use projections::runtime::Projector;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{
    BINARY, Caller, Server, database_url, free_port, fresh_database, pool, spawn_app,
    wait_for_health,
};

/// Waits until the inbox projector has applied every committed event.
async fn caught_up(pool: &PgPool) {
    for _ in 0..600 {
        let status = projections::runtime::statuses(pool, &["inbox"])
            .await
            .unwrap();
        if status[0].lag_events == 0 && status[0].events_applied > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the inbox projector did not catch up");
}

/// Every message event is in the read model exactly once, and the projector counted each
/// event once.
async fn assert_projected_exactly_once(pool: &PgPool) {
    let (events, message_events): (i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where event_type in ('MessageReceived', 'MessagePosted', 'NoteAdded'))
           from events",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let rows: i64 = sqlx::query_scalar("select count(*) from inbox_messages")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(rows, message_events, "each message event is one row");
    let applied: i64 =
        sqlx::query_scalar("select events_applied from projector_checkpoints where name = 'inbox'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(applied, events, "each event applied once");
    let (counted, listed): (i64, i64) = sqlx::query_as(
        "select (select coalesce(sum(conversations), 0)::int8 from inbox_totals),
                (select count(*) from inbox_conversations)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(counted, listed, "the maintained counters match the rows");
}

async fn post_message(
    client: &reqwest::Client,
    base: &str,
    caller: &Caller,
    conversation: &str,
    n: usize,
) -> Option<String> {
    let response = client
        .post(format!("{base}/api/v1/conversations/{conversation}/messages"))
        .bearer_auth(&caller.token)
        .json(&json!({"id": uuid::Uuid::now_v7(), "content": format!("message {n}"), "message_type": "incoming"}))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    body["message_id"].as_str().map(str::to_owned)
}

async fn tenant_on(pool: &PgPool) -> Caller {
    let created = commands::tenancy::create_tenant(pool, "Acme", "admin@example.com")
        .await
        .unwrap();
    Caller {
        token: created.admin_token,
        tenant_id: created.tenant_id.to_string(),
        agent_id: created.admin_id.to_string(),
    }
}

async fn new_conversation(client: &reqwest::Client, base: &str, caller: &Caller) -> String {
    let body: Value = client
        .post(format!("{base}/api/v1/conversations"))
        .bearer_auth(&caller.token)
        .json(&json!({"source": "api"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// A database shared by server processes, with a tenant in it.
struct SharedDatabase {
    url: String,
    pool: PgPool,
    caller: Caller,
}

impl SharedDatabase {
    async fn new() -> Self {
        let database = fresh_database().await;
        let pool = pool(&database).await;
        let caller = tenant_on(&pool).await;
        Self {
            url: database_url(&database),
            pool,
            caller,
        }
    }

    /// A server process on this database and a free port; answers it and its base URL.
    async fn serve(&self) -> (Server, String) {
        let address = format!("127.0.0.1:{}", free_port());
        let base = format!("http://{address}");
        let server = Server::start(&["serve", "--listen", &address], Some(&self.url));
        wait_for_health(&base).await;
        (server, base)
    }
}

#[tokio::test]
async fn a_server_killed_mid_stream_loses_and_doubles_nothing_acknowledged() {
    let shared = SharedDatabase::new().await;
    let (pool, caller) = (&shared.pool, &shared.caller);
    let (server, base) = shared.serve().await;
    let client = reqwest::Client::new();
    let conversations: Vec<String> =
        join_all((0..4).map(|_| new_conversation(&client, &base, caller))).await;

    let writers = conversations.iter().map(|conversation| {
        let (client, base, caller) = (client.clone(), base.clone(), caller.clone());
        let conversation = conversation.clone();
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for n in 0..10_000 {
                match post_message(&client, &base, &caller, &conversation, n).await {
                    Some(id) => acknowledged.push(id),
                    None => break,
                }
            }
            acknowledged
        })
    });
    let writers: Vec<_> = writers.collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(server);
    let acknowledged: Vec<String> = join_all(writers)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    assert!(
        acknowledged.len() > 20,
        "the writers got going before the kill"
    );

    let (restarted, _) = shared.serve().await;
    caught_up(pool).await;
    let projected: Vec<uuid::Uuid> = sqlx::query_scalar("select message_id from inbox_messages")
        .fetch_all(pool)
        .await
        .unwrap();
    let projected: HashSet<String> = projected.into_iter().map(|id| id.to_string()).collect();
    for id in &acknowledged {
        assert!(
            projected.contains(id),
            "acknowledged message {id} is in the inbox"
        );
    }
    assert_projected_exactly_once(pool).await;
    drop(restarted);
}

#[tokio::test]
async fn events_committed_out_of_order_are_never_skipped() {
    let app = spawn_app().await;
    let slow = app.new_conversation(&app.admin).await;
    let fast = app.new_conversation(&app.admin).await;

    // A slow writer: its transaction takes its place in the order first and commits last.
    let mut slow_writer = app.pool.begin().await.unwrap();
    let slow_message = uuid::Uuid::now_v7();
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, tenant_id)
         values ('Conversation', $1, 2, 'MessageReceived', '1', $2, '{}', $3::uuid)",
    )
    .bind(format!("{}:{slow}", app.admin.tenant_id))
    .bind(json!({"MessageReceived": {"message_id": slow_message, "content": "late", "sent_at": chrono::Utc::now()}}))
    .bind(&app.admin.tenant_id)
    .execute(&mut *slow_writer)
    .await
    .unwrap();

    let mut paths = vec![format!("/conversations/{fast}/messages")];
    for _ in 0..3 {
        let other = app.new_conversation(&app.admin).await;
        paths.push(format!("/conversations/{other}/messages"));
    }
    let writers = (0..40).map(|n| {
        app.post(
            &app.admin,
            &paths[n % paths.len()],
            json!({"content": format!("fast {n}"), "message_type": "incoming"}),
        )
    });
    for answer in join_all(writers).await {
        answer.expect(201);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let visible: i64 = sqlx::query_scalar("select count(*) from inbox_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        visible, 0,
        "nothing after the open transaction is projected before it commits"
    );
    let status = projections::runtime::statuses(&app.pool, &["inbox"])
        .await
        .unwrap();
    assert!(
        status[0].lag_events >= 40,
        "the stall shows as lag: {status:?}"
    );

    slow_writer.commit().await.unwrap();
    caught_up(&app.pool).await;
    let late: i64 = sqlx::query_scalar("select count(*) from inbox_messages where message_id = $1")
        .bind(slow_message)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(late, 1, "the late commit was not skipped");
    assert_projected_exactly_once(&app.pool).await;
}

#[tokio::test]
async fn two_instances_project_once_and_the_second_takes_over() {
    let shared = SharedDatabase::new().await;
    let (pool, caller) = (&shared.pool, &shared.caller);
    let (first, first_base) = shared.serve().await;
    // One leader lock (a one-bigint advisory lock) per projector.
    let projectors = projections::all().len() as i64;
    let leaders = || async {
        let n: i64 = sqlx::query_scalar(
            "select count(*) from pg_locks where locktype = 'advisory' and granted and database =
                (select oid from pg_database where datname = current_database())
                and objsubid = 1",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        n
    };
    for _ in 0..100 {
        if leaders().await == projectors {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (second, second_base) = shared.serve().await;

    let client = reqwest::Client::new();
    let conversation = new_conversation(&client, &first_base, caller).await;
    for n in 0..30 {
        let base = if n % 2 == 0 {
            first_base.clone()
        } else {
            second_base.clone()
        };
        post_message(&client, &base, caller, &conversation, n)
            .await
            .expect("accepted");
    }
    caught_up(pool).await;
    assert_eq!(
        leaders().await,
        projectors,
        "one instance leads each projector"
    );
    assert_projected_exactly_once(pool).await;

    drop(first);
    for n in 30..60 {
        post_message(&client, &second_base, caller, &conversation, n)
            .await
            .expect("accepted");
    }
    caught_up(pool).await;
    assert_eq!(leaders().await, projectors, "the second instance took over");
    assert_projected_exactly_once(pool).await;
    let rows: i64 = sqlx::query_scalar("select count(*) from inbox_messages")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(rows, 60);
    drop(second);
}

/// Every read-model table, row by row, in a stable order.
async fn dump(pool: &PgPool) -> Vec<Value> {
    let mut rows = Vec::new();
    for (table, order) in [
        ("inbox_conversations", "tenant_id, conversation_id"),
        ("inbox_messages", "tenant_id, conversation_id, seq"),
        ("inbox_search", "tenant_id, conversation_id, seq"),
        ("inbox_reads", "tenant_id, conversation_id, agent_id"),
        ("inbox_totals", "tenant_id, status, assignee_key"),
        (
            "inbox_agent_reads",
            "tenant_id, agent_id, status, assignee_key",
        ),
    ] {
        let table_rows: Vec<Value> = sqlx::query_scalar(&format!(
            "select to_jsonb(t) from {table} t order by {order}"
        ))
        .fetch_all(pool)
        .await
        .unwrap();
        rows.push(json!({table: table_rows}));
    }
    rows
}

/// Conversations with messages, replies, delivery, reads, assignments, labels and statuses.
async fn varied_conversations(base: &str, admin: &Caller) {
    let client = reqwest::Client::new();
    let call = |path: String, body: Value| {
        let request = client
            .post(format!("{base}/api/v1{path}"))
            .bearer_auth(&admin.token)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.text().await.unwrap()
            );
        }
    };
    for n in 0..6 {
        let conversation = new_conversation(&client, base, admin).await;
        let c = format!("/conversations/{conversation}");
        for m in 0..n {
            post_message(&client, base, admin, &conversation, m)
                .await
                .unwrap();
        }
        let reply: Value = client
            .post(format!("{base}/api/v1{c}/messages"))
            .bearer_auth(&admin.token)
            .json(&json!({"content": "answer", "message_type": "outgoing"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        call(
            format!(
                "{c}/messages/{}/status",
                reply["message_id"].as_str().unwrap()
            ),
            json!({"status": "delivered"}),
        )
        .await;
        if n % 2 == 0 {
            call(format!("{c}/read"), json!({})).await;
            call(
                format!("{c}/assignment"),
                json!({"agent_id": admin.agent_id}),
            )
            .await;
        }
        if n % 3 == 0 {
            call(format!("{c}/labels"), json!({"label": "vip"})).await;
            call(format!("{c}/status"), json!({"status": "pending"})).await;
        }
        post_message(&client, base, admin, &conversation, 99)
            .await
            .unwrap();
    }
}

/// The definition of every index on the inbox projector's tables, sorted.
async fn inbox_indexes(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "select indexdef from pg_indexes
          where tablename = any($1) order by indexname",
    )
    .bind(projections::inbox::Inbox.tables())
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_rebuild_gives_the_same_rows_row_for_row() {
    let shared = SharedDatabase::new().await;
    let (pool, admin, url) = (&shared.pool, &shared.caller, &shared.url);
    let (server, base) = shared.serve().await;
    varied_conversations(&base, admin).await;
    caught_up(pool).await;
    let before = dump(pool).await;
    let indexes = inbox_indexes(pool).await;

    // While a server leads the projector, the rebuild is done by it and watched from here.
    let watched = std::process::Command::new(BINARY)
        .args(["projections", "rebuild"])
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    assert!(
        watched.status.success(),
        "{}",
        String::from_utf8_lossy(&watched.stderr)
    );
    caught_up(pool).await;
    assert_eq!(dump(pool).await, before, "rebuilt by the running server");

    // With no server running, the command rebuilds by itself.
    assert!(server.terminate().success());
    let alone = std::process::Command::new(BINARY)
        .args(["projections", "rebuild", "inbox"])
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    assert!(
        alone.status.success(),
        "{}",
        String::from_utf8_lossy(&alone.stderr)
    );
    assert_eq!(dump(pool).await, before, "rebuilt by the command");
    assert_eq!(
        inbox_indexes(pool).await,
        indexes,
        "the indexes the command dropped while it rebuilt are back"
    );

    let status = std::process::Command::new(BINARY)
        .args(["projections", "status"])
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("inbox") && l.trim_end().ends_with("0.0")),
        "{text}"
    );
}

#[tokio::test]
async fn a_rebuild_killed_half_way_gets_its_indexes_back_from_the_next_leader() {
    let shared = SharedDatabase::new().await;
    let (pool, admin, url) = (&shared.pool, &shared.caller, &shared.url);
    let (server, base) = shared.serve().await;
    varied_conversations(&base, admin).await;
    let before = inbox_indexes(pool).await;
    // A transaction left open elsewhere holds back every event written after it began,
    // so the rebuild below applies what comes before and then waits.
    let mut open = pool.begin().await.unwrap();
    sqlx::query("select pg_current_xact_id()")
        .execute(&mut *open)
        .await
        .unwrap();
    varied_conversations(&base, admin).await;
    assert!(server.terminate().success());

    let rebuild = Server::start(&["projections", "rebuild", "inbox"], Some(url));
    let mut waiting = false;
    for _ in 0..600 {
        let status = projections::runtime::statuses(pool, &["inbox"])
            .await
            .unwrap();
        let deferred: i64 = sqlx::query_scalar(
            "select count(*) from projector_deferred_indexes where projector = 'inbox'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if deferred > 0 && status[0].events_applied > 0 {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        waiting,
        "the rebuild dropped the indexes and applied the early events"
    );
    drop(rebuild);
    open.commit().await.unwrap();
    let after_kill = inbox_indexes(pool).await;

    let (_server, _) = shared.serve().await;
    caught_up(pool).await;
    assert!(
        after_kill.len() < before.len(),
        "the killed rebuild had dropped indexes: {after_kill:?}"
    );
    assert_eq!(inbox_indexes(pool).await, before, "every index is back");
    assert_projected_exactly_once(pool).await;
}
