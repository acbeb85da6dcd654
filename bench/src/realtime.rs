//! Real time at scale: server memory per idle WebSocket connection, and how long a message
//! takes from the command that stores it to each connected recipient.
//!
//! Opens agent connections to a server process (agents see every conversation event of
//! their tenant, so one message fans out to every connection: the worst case), reads the
//! server's resident memory before and after, then posts messages at a steady rate and
//! times each delivery on every connection.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{database, memory_kib, start_server, summary, summary_header};

/// What to run.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Idle connections to measure memory at, in increasing order.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 10_000])]
    connections: Vec<usize>,
    /// Connections that receive the timed messages (the first of `connections` by default).
    #[arg(long)]
    latency_connections: Option<usize>,
    /// Messages posted for the latency figure.
    #[arg(long, default_value_t = 200)]
    messages: usize,
    /// Messages per second.
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// The server binary to start.
    #[arg(long, default_value = "target/release/upzento")]
    server: PathBuf,
}

/// Current resident memory of a process, in KiB (Linux `VmRSS`).
fn rss_kib(pid: u32) -> anyhow::Result<f64> {
    memory_kib(pid, "VmRSS:").context("the server's VmRSS")
}

/// The part of a `MessageReceived` push the benchmark reads.
#[derive(serde::Deserialize)]
struct Received<'a> {
    #[serde(borrow)]
    data: ReceivedData<'a>,
}

#[derive(serde::Deserialize)]
struct ReceivedData<'a> {
    content: &'a str,
}

/// When each message (by content) was posted.
type Posted = Arc<Mutex<HashMap<String, Instant>>>;

/// Runs the measurement and prints the report.
pub async fn run(options: Options) -> anyhow::Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let most = options.connections.iter().copied().max().unwrap_or(0) as u64;
    // The server (started from here) inherits the limit; each side holds one end.
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    anyhow::ensure!(
        most + 1024 <= hard,
        "{most} connections need an open-files limit above {}; the hard limit is {hard}",
        most + 1024
    );
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    let (pool, url) = database().await?;
    let (server, base) = start_server(&options.server, &url, &[]).await?;
    let pid = server.id().context("the server runs")?;
    let admin = commands::tenancy::create_tenant(&pool, "Realtime", "admin@example.com").await?;
    let ws = format!(
        "{}/api/v1/realtime?access_token={}",
        base.replacen("http", "ws", 1),
        admin.admin_token
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline = rss_kib(pid)?;

    let posted: Posted = Arc::default();
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let latency_connections = options
        .latency_connections
        .unwrap_or(options.connections[0]);
    let mut sockets = Vec::new();
    let mut memory = Vec::new();
    for &target in &options.connections {
        while sockets.len() < target {
            let (socket, _) = tokio_tungstenite::connect_async(&ws).await?;
            sockets.push(socket);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss = rss_kib(pid)?;
        let per_connection = (rss - baseline) / target as f64;
        println!(
            "{target:>6} idle connections: server RSS {:.1} MiB, {per_connection:.1} KiB per connection",
            rss / 1024.0
        );
        memory.push(json!({"connections": target, "rss_mib": rss / 1024.0,
                           "kib_per_connection": per_connection}));
        if target == latency_connections {
            let receivers = std::mem::take(&mut sockets);
            let mut readers = Vec::new();
            for socket in receivers {
                let (posted, latencies) = (posted.clone(), latencies.clone());
                readers.push(tokio::spawn(async move {
                    let (_, mut incoming) = socket.split();
                    while let Some(Ok(frame)) = incoming.next().await {
                        let Message::Text(text) = frame else { continue };
                        // Cheap on purpose: a thousand readers share two cores with the
                        // server, and their parsing would show up as latency.
                        if !text.contains("\"MessageReceived\"") {
                            continue;
                        }
                        let Ok(received) = serde_json::from_str::<Received>(&text) else {
                            continue;
                        };
                        let at = posted.lock().unwrap().get(received.data.content).copied();
                        if let Some(at) = at {
                            latencies.lock().unwrap().push(at.elapsed());
                        }
                    }
                }));
            }
            measure_latency(&base, &admin.admin_token, &options, &posted).await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            readers.iter().for_each(|r| r.abort());
        }
    }
    let mut times = latencies.lock().unwrap().clone();
    let expected = options.messages * latency_connections;
    let (row, latency) = summary(
        &format!("message to {latency_connections} recipients"),
        &mut times,
    );
    println!("{}\n{row}", summary_header());
    println!("deliveries: {} of {expected}", times.len());
    println!(
        "{}",
        json!({"memory": memory, "latency": latency, "deliveries": times.len(), "expected": expected})
    );
    Ok(())
}

/// Posts `messages` incoming messages at `rate`, spread over a few conversations.
async fn measure_latency(
    base: &str,
    token: &str,
    options: &Options,
    posted: &Posted,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let api = format!("{base}/api/v1");
    let mut conversations = Vec::new();
    for _ in 0..10 {
        let started: Value = client
            .post(format!("{api}/conversations"))
            .bearer_auth(token)
            .json(&json!({"source": "api"}))
            .send()
            .await?
            .json()
            .await?;
        conversations.push(started["id"].as_str().context("an id")?.to_owned());
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1) / options.rate);
    for n in 0..options.messages {
        tick.tick().await;
        let content = format!("message {n}");
        posted
            .lock()
            .unwrap()
            .insert(content.clone(), Instant::now());
        let conversation = &conversations[n % conversations.len()];
        let response = client
            .post(format!("{api}/conversations/{conversation}/messages"))
            .bearer_auth(token)
            .json(&json!({"content": content, "message_type": "incoming"}))
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "{}", response.status());
    }
    Ok(())
}
