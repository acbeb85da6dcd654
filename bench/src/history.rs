//! Does a long history cost more to command? Two conversations of one tenant, one with 10
//! events and one with 10,000, then the same command (an outgoing message) sent to each in
//! turn, one at a time; compares their latencies. The long history is written straight into
//! the event store, as the service writes it, and the first command on it takes a snapshot.

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
    let (_server, base) = start_server(&options.server, &url).await?;
    let admin = commands::tenancy::create_tenant(&pool, "History", "admin@example.com").await?;
    let client = reqwest::Client::new();
    let api = format!("{base}/api/v1");
    let post = |path: String, body: Value| {
        client
            .post(format!("{api}{path}"))
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
    .bind(options.events)
    .execute(&pool)
    .await?;

    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..options.commands {
        for (index, conversation) in conversations.iter().enumerate() {
            let started = Instant::now();
            let response = post(
                format!("/conversations/{conversation}/messages"),
                json!({"content": "It ships today.", "message_type": "outgoing"}),
            )
            .await?;
            anyhow::ensure!(response.status().is_success(), "{}", response.status());
            response.bytes().await?;
            times[index].push(started.elapsed());
        }
    }
    let [mut short, mut long] = times;
    let median = |times: &[Duration]| times[times.len() / 2].as_secs_f64() * 1000.0;
    let (short_row, short_json) = summary("10-event conversation", &mut short);
    let (long_row, long_json) =
        summary(&format!("{}-event conversation", options.events), &mut long);
    let ratio = median(&long) / median(&short);
    println!("{}\n{short_row}\n{long_row}", summary_header());
    println!("median ratio long/short: {ratio:.2} (target 1.5 or less)");
    println!(
        "{}",
        json!({"short": short_json, "long": long_json, "median_ratio": ratio})
    );
    Ok(())
}
