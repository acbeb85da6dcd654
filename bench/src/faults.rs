//! Faults under load: the server is killed with SIGKILL and restarted, then PostgreSQL is
//! restarted, while writers keep sending messages. Afterwards every message that was answered
//! 2xx must be in the event store and in the inbox exactly once, and the service must have
//! come back by itself. Reports how long each fault kept writes from succeeding.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::sync::{Mutex, RwLock};

use crate::common::{database, start_server};

/// What to run.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Writers sending messages at once.
    #[arg(long, default_value_t = 8)]
    writers: usize,
    /// Seconds of load before, between and after the faults.
    #[arg(long, default_value_t = 5)]
    phase_seconds: u64,
    /// The server binary to start.
    #[arg(long, default_value = "target/release/upzento")]
    server: PathBuf,
}

/// What the writers share.
struct Writers {
    client: reqwest::Client,
    base: RwLock<String>,
    token: String,
    conversations: Vec<String>,
    acknowledged: Mutex<Vec<(String, Instant)>>,
    failures: Mutex<Vec<Instant>>,
    stop: AtomicBool,
}

async fn write(writers: Arc<Writers>, index: usize) {
    let conversation = &writers.conversations[index % writers.conversations.len()];
    while !writers.stop.load(Ordering::Relaxed) {
        let id = uuid::Uuid::now_v7().to_string();
        let base = writers.base.read().await.clone();
        let sent = writers
            .client
            .post(format!(
                "{base}/api/v1/conversations/{conversation}/messages"
            ))
            .bearer_auth(&writers.token)
            .timeout(Duration::from_secs(5))
            .json(&json!({"id": id, "content": "during a fault", "message_type": "incoming"}))
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                writers.acknowledged.lock().await.push((id, Instant::now()));
            }
            _ => {
                writers.failures.lock().await.push(Instant::now());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The longest time without an acknowledged write in the `window` after `fault`: the outage
/// as writers saw it.
async fn outage(writers: &Writers, fault: Instant, window: Duration) -> Duration {
    let mut times: Vec<Instant> = writers
        .acknowledged
        .lock()
        .await
        .iter()
        .map(|(_, at)| *at)
        .filter(|at| *at >= fault && *at <= fault + window)
        .collect();
    times.sort();
    let mut previous = fault;
    let mut longest = Duration::ZERO;
    for at in times {
        longest = longest.max(at - previous);
        previous = at;
    }
    longest
}

/// Runs the faults and prints the report.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let cluster = api::cluster::PrivateCluster::start("target/bench-pg".as_ref(), true)?;
    let (pool, url) = database().await?;
    let (mut server, base) = start_server(&options.server, &url, &[]).await?;
    let admin = commands::tenancy::create_tenant(&pool, "Faults", "admin@example.com").await?;
    let client = reqwest::Client::new();
    let mut conversations = Vec::new();
    for _ in 0..options.writers {
        let started: Value = client
            .post(format!("{base}/api/v1/conversations"))
            .bearer_auth(&admin.admin_token)
            .json(&json!({"source": "api"}))
            .send()
            .await?
            .json()
            .await?;
        conversations.push(started["id"].as_str().context("a conversation")?.to_owned());
    }
    let writers = Arc::new(Writers {
        client,
        base: RwLock::new(base),
        token: admin.admin_token.clone(),
        conversations,
        acknowledged: Mutex::new(Vec::new()),
        failures: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    });
    let tasks: Vec<_> = (0..options.writers)
        .map(|index| tokio::spawn(write(writers.clone(), index)))
        .collect();
    let phase = Duration::from_secs(options.phase_seconds);

    tokio::time::sleep(phase).await;
    let killed = Instant::now();
    server.start_kill()?;
    server.wait().await?;
    let (restarted, new_base) = start_server(&options.server, &url, &[]).await?;
    *writers.base.write().await = new_base.clone();

    tokio::time::sleep(phase).await;
    let postgres_restarted = Instant::now();
    tokio::task::spawn_blocking(move || cluster.restart()).await??;

    tokio::time::sleep(phase).await;
    writers.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }

    let ready = Instant::now();
    let client = reqwest::Client::new();
    loop {
        let answer = client.get(format!("{new_base}/readyz")).send().await;
        if let Ok(response) = answer
            && response.status().is_success()
        {
            let body: Value = response.json().await?;
            if body["projectors"][0]["lag_events"] == 0 {
                break;
            }
        }
        anyhow::ensure!(
            ready.elapsed() < Duration::from_secs(60),
            "the service did not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The restart cut every connection of the pool opened before it.
    let pool = api::startup::connect(url.parse()?).await?;
    let acknowledged: Vec<String> = writers
        .acknowledged
        .lock()
        .await
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    let stored: Vec<(String, i64)> = sqlx::query_as(
        "select payload -> 'MessageReceived' ->> 'message_id', count(*) from events
          where event_type = 'MessageReceived' group by 1",
    )
    .fetch_all(&pool)
    .await?;
    let projected: Vec<uuid::Uuid> = sqlx::query_scalar("select message_id from inbox_messages")
        .fetch_all(&pool)
        .await?;
    let projected: HashSet<String> = projected.iter().map(ToString::to_string).collect();
    let stored_once: HashSet<&str> = stored
        .iter()
        .filter(|(_, n)| *n == 1)
        .map(|(id, _)| id.as_str())
        .collect();
    let doubled = stored.iter().filter(|(_, n)| *n > 1).count();
    let missing_events = acknowledged
        .iter()
        .filter(|id| !stored_once.contains(id.as_str()))
        .count();
    let missing_rows = acknowledged
        .iter()
        .filter(|id| !projected.contains(id.as_str()))
        .count();
    let failed_requests = writers.failures.lock().await.len();
    let after_kill = outage(&writers, killed, phase).await;
    let after_postgres = outage(&writers, postgres_restarted, phase).await;
    drop(restarted);

    println!("acknowledged writes: {}", acknowledged.len());
    println!(
        "missing from the event store: {missing_events}; stored twice: {doubled}; missing from the inbox: {missing_rows}"
    );
    println!("failed requests during the faults: {failed_requests}");
    println!(
        "longest time without an acknowledged write after SIGKILL: {after_kill:?} (includes starting the server again)"
    );
    println!(
        "longest time without an acknowledged write after the PostgreSQL restart: {after_postgres:?}"
    );
    println!(
        "read models caught up {:?} after the load stopped",
        ready.elapsed()
    );
    println!(
        "{}",
        json!({
            "acknowledged": acknowledged.len(),
            "missing_events": missing_events,
            "doubled_events": doubled,
            "missing_rows": missing_rows,
            "failed_requests": failed_requests,
            "outage_after_sigkill_ms": after_kill.as_secs_f64() * 1000.0,
            "outage_after_postgres_restart_ms": after_postgres.as_secs_f64() * 1000.0,
        })
    );
    anyhow::ensure!(
        missing_events == 0 && doubled == 0 && missing_rows == 0,
        "acknowledged writes were lost or doubled"
    );
    Ok(())
}
