//! Does a long history cost more to command? Two conversations of one tenant, one with 10
//! events and one with 10,000, then the same command (an outgoing message) sent to each in
//! turn, one at a time; compares their latencies. The long history is written straight into
//! the event store, as the service writes it, and the first command on it takes a snapshot.
//! Measured twice: with the server's defaults, where a conversation in use stays in memory
//! between commands, and with `--conversation-memory-mb 0`, where every command reads the
//! snapshot and the events after it (a cold conversation, or another instance's).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::common::{database, start_server, summary, summary_header};

/// What to run.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Events in the long conversation.
    #[arg(long, default_value_t = 10_000)]
    events: i64,
    /// Commands sent to each conversation.
    #[arg(long, default_value_t = 500)]
    commands: usize,
    /// The server binary to start.
    #[arg(long, default_value = "target/release/upzento")]
    server: PathBuf,
}

/// Runs the comparison and prints the report.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let (pool, url) = database().await?;
    let admin = commands::tenancy::create_tenant(&pool, "History", "admin@example.com").await?;
    let mut report = serde_json::Map::new();
    println!("{}", summary_header());
    for (name, label, server_options) in [
        ("in_memory", "in memory", &[][..]),
        (
            "from_the_store",
            "from the store",
            &["--conversation-memory-mb", "0"][..],
        ),
    ] {
        let (server, base) = start_server(&options.server, &url, server_options).await?;
        let conversations = conversations(&pool, &admin, &base, options.events).await?;
        let times =
            command_each(&admin.admin_token, &base, &conversations, options.commands).await?;
        drop(server);
        let [mut short, mut long] = times;
        let median = |times: &[Duration]| times[times.len() / 2].as_secs_f64() * 1000.0;
        let (short_row, short_json) = summary(&format!("{label}, 10 events"), &mut short);
        let (long_row, long_json) =
            summary(&format!("{label}, {} events", options.events), &mut long);
        let ratio = median(&long) / median(&short);
        println!("{short_row}\n{long_row}");
        println!("{label}: median ratio long/short {ratio:.2} (target 1.5 or less)");
        report.insert(
            name.to_owned(),
            json!({"short": short_json, "long": long_json, "median_ratio": ratio}),
        );
    }
    println!("{}", Value::Object(report));
    Ok(())
}

/// A conversation with 10 events and one with `events`, answered in that order.
async fn conversations(
    pool: &sqlx::PgPool,
    admin: &commands::tenancy::NewTenant,
    base: &str,
    events: i64,
) -> anyhow::Result<Vec<String>> {
    let client = reqwest::Client::new();
    let post = |path: String, body: Value| {
        client
            .post(format!("{base}/api/v1{path}"))
            .bearer_auth(&admin.admin_token)
            .json(&body)
            .send()
    };
    let mut conversations = Vec::new();
    for _ in 0..2 {
        let started: Value = post("/conversations".into(), json!({"source": "api"}))
            .await?
            .json()
            .await?;
        conversations.push(started["id"].as_str().context("a conversation")?.to_owned());
    }
    for _ in 0..9 {
        post(
            format!("/conversations/{}/messages", conversations[0]),
            json!({"content": "hi", "message_type": "incoming"}),
        )
        .await?;
    }
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata, tenant_id)
         select 'Conversation', $1, n, 'MessageReceived', '1',
                jsonb_build_object('MessageReceived', jsonb_build_object(
                    'message_id', gen_random_uuid(), 'content', 'message ' || n,
                    'sent_at', now())),
                '{}', $2::uuid
           from generate_series(2, $3) n",
    )
    .bind(format!("{}:{}", admin.tenant_id, conversations[1]))
    .bind(admin.tenant_id)
    .bind(events)
    .execute(pool)
    .await?;
    Ok(conversations)
}

/// Sends the same command to each conversation in turn, `commands` times; answers each
/// conversation's latencies.
async fn command_each(
    token: &str,
    base: &str,
    conversations: &[String],
    commands: usize,
) -> anyhow::Result<[Vec<Duration>; 2]> {
    let client = reqwest::Client::new();
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..commands {
        for (index, conversation) in conversations.iter().enumerate() {
            let started = Instant::now();
            let response = client
                .post(format!(
                    "{base}/api/v1/conversations/{conversation}/messages"
                ))
                .bearer_auth(token)
                .json(&json!({"content": "It ships today.", "message_type": "outgoing"}))
                .send()
                .await?;
            anyhow::ensure!(response.status().is_success(), "{}", response.status());
            response.bytes().await?;
            times[index].push(started.elapsed());
        }
    }
    Ok(times)
}
