//! The load generator: a server process on a fresh database, a tenant with agents and
//! conversations, and `concurrency` workers sending a realistic mix of commands and queries
//! for `seconds`. Reports throughput, latency per operation, errors, projection lag (from a
//! command's answer until the inbox shows it) and the server's peak memory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::future::join_all;
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::common::{database, peak_rss_mib, start_server, summary, summary_header};

/// What to run.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Conversations the workers write to.
    #[arg(long, default_value_t = 200)]
    conversations: usize,
    /// Workers sending requests at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How long to send.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// `realistic` (commands and queries) or `append` (incoming messages only, the workload
    /// compared with pgbench).
    #[arg(long, value_enum, default_value_t = Mix::Realistic)]
    mix: Mix,
    /// The server binary to start.
    #[arg(long, default_value = "target/release/upzento")]
    server: PathBuf,
}

/// The request mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mix {
    Realistic,
    Append,
}

/// What workers share.
struct World {
    client: reqwest::Client,
    api: String,
    token: String,
    conversations: Vec<String>,
    agents: Vec<String>,
}

#[derive(Default)]
struct Tally {
    times: HashMap<&'static str, Vec<Duration>>,
    errors: HashMap<String, u64>,
}

impl World {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }
}

/// One worker: picks operations at random until the deadline.
async fn work(world: Arc<World>, mix: Mix, deadline: Instant) -> Tally {
    use reqwest::Method;
    let mut tally = Tally::default();
    let mut outgoing: Vec<(String, String, u8)> = Vec::new();
    while Instant::now() < deadline {
        let (conversation, roll, agent) = {
            let mut rng = rand::rng();
            (
                world.conversations[rng.random_range(0..world.conversations.len())].clone(),
                if mix == Mix::Append {
                    0
                } else {
                    rng.random_range(0..100u32)
                },
                world.agents[rng.random_range(0..world.agents.len())].clone(),
            )
        };
        let c = format!("/conversations/{conversation}");
        let (name, method, path, body): (&'static str, Method, String, Option<Value>) = match roll {
            0..35 => (
                "incoming message",
                Method::POST,
                format!("{c}/messages"),
                Some(json!({"content": "Hello, where is my order?", "message_type": "incoming"})),
            ),
            35..60 => (
                "outgoing message",
                Method::POST,
                format!("{c}/messages"),
                Some(json!({"content": "It ships today.", "message_type": "outgoing"})),
            ),
            60..70 if !outgoing.is_empty() => {
                let index = rand::rng().random_range(0..outgoing.len());
                let (conversation, message, stage) = &mut outgoing[index];
                *stage += 1;
                let status = if *stage == 1 { "delivered" } else { "read" };
                let path = format!("/conversations/{conversation}/messages/{message}/status");
                if *stage >= 2 {
                    outgoing.swap_remove(index);
                }
                (
                    "delivery status",
                    Method::POST,
                    path,
                    Some(json!({"status": status})),
                )
            }
            60..78 => (
                "mark read",
                Method::POST,
                format!("{c}/read"),
                Some(json!({})),
            ),
            78..83 => (
                "assign",
                Method::POST,
                format!("{c}/assignment"),
                Some(json!({"agent_id": agent})),
            ),
            83..86 => (
                "status change",
                Method::POST,
                format!("{c}/status"),
                Some(json!({"status": if roll % 2 == 0 { "pending" } else { "open" }})),
            ),
            _ => (
                "inbox query",
                Method::GET,
                "/conversations?limit=25".to_owned(),
                None,
            ),
        };
        let started = Instant::now();
        let (status, answer) = world.send(method, &path, body).await;
        let elapsed = started.elapsed();
        if (200..300).contains(&status) {
            tally.times.entry(name).or_default().push(elapsed);
            if name == "outgoing message"
                && let Some(message) = answer["message_id"].as_str()
            {
                outgoing.push((conversation, message.to_owned(), 0));
            }
        } else {
            *tally
                .errors
                .entry(format!(
                    "{name}: {status} {}",
                    answer["code"].as_str().unwrap_or("")
                ))
                .or_default() += 1;
        }
    }
    tally
}

/// Measures projection lag: a message to a conversation of its own, then the time until the
/// inbox has it (`min_position` makes the server wait for exactly that).
async fn probe_lag(world: Arc<World>, conversation: String, deadline: Instant) -> Vec<Duration> {
    let mut lags = Vec::new();
    while Instant::now() < deadline {
        let (status, answer) = world
            .send(
                reqwest::Method::POST,
                &format!("/conversations/{conversation}/messages"),
                Some(json!({"content": "probe", "message_type": "incoming"})),
            )
            .await;
        if let (201, Some(position)) = (status, answer["position"].as_i64()) {
            let started = Instant::now();
            let (status, _) = world
                .send(
                    reqwest::Method::GET,
                    &format!("/conversations/{conversation}?min_position={position}"),
                    None,
                )
                .await;
            if status == 200 {
                lags.push(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lags
}

/// Runs the load and prints the report.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let (pool, url) = database().await?;
    let (server, base) = start_server(&options.server, &url, &[]).await?;
    let pid = server.id().context("the server has a pid")?;
    let admin = commands::tenancy::create_tenant(&pool, "Load", "admin@example.com").await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency + 4)
        .build()?;
    let mut world = World {
        client,
        api: format!("{base}/api/v1"),
        token: admin.admin_token.clone(),
        conversations: Vec::new(),
        agents: vec![admin.admin_id.to_string()],
    };
    for n in 0..3 {
        let (_, agent) = world
            .send(
                reqwest::Method::POST,
                "/agents",
                Some(json!({"name": format!("Agent {n}"), "email": format!("agent{n}@example.com"), "role": "agent"})),
            )
            .await;
        world
            .agents
            .push(agent["id"].as_str().context("an agent")?.to_owned());
    }
    for _ in 0..=options.conversations {
        let (_, started) = world
            .send(
                reqwest::Method::POST,
                "/conversations",
                Some(json!({"source": "api", "contact": {"name": "Load"}})),
            )
            .await;
        world
            .conversations
            .push(started["id"].as_str().context("a conversation")?.to_owned());
    }
    let probe = world.conversations.pop().context("a probe conversation")?;
    let world = Arc::new(world);
    let memory = Arc::new(Mutex::new(0.0f64));

    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let sampler = {
        let memory = memory.clone();
        tokio::spawn(async move {
            while Instant::now() < deadline {
                if let Some(rss) = peak_rss_mib(pid) {
                    *memory.lock().await = rss;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let lag = tokio::spawn(probe_lag(world.clone(), probe, deadline));
    let workers: Vec<_> = (0..options.concurrency)
        .map(|_| tokio::spawn(work(world.clone(), options.mix, deadline)))
        .collect();
    let mut total = Tally::default();
    for tally in join_all(workers).await {
        let tally = tally?;
        for (name, times) in tally.times {
            total.times.entry(name).or_default().extend(times);
        }
        for (error, n) in tally.errors {
            *total.errors.entry(error).or_default() += n;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut lags = lag.await?;
    sampler.await?;
    let peak_rss = peak_rss_mib(pid).unwrap_or(*memory.lock().await);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;

    let mut all: Vec<Duration> = Vec::new();
    let mut commands: Vec<Duration> = Vec::new();
    let mut rows = Vec::new();
    let mut figures = Vec::new();
    let mut names: Vec<&&str> = total.times.keys().collect();
    names.sort();
    for name in names {
        let mut times = total.times[*name].clone();
        all.extend(&times);
        if **name != *"inbox query" {
            commands.extend(&times);
        }
        let (row, json) = summary(name, &mut times);
        rows.push(row);
        figures.push(json);
    }
    let (commands_row, commands_json) = summary("all commands", &mut commands);
    let (lag_row, lag_json) = summary("projection lag", &mut lags);
    let ops = all.len() as f64 / elapsed;
    let command_rate = commands.len() as f64 / elapsed;
    println!("{}", summary_header());
    for row in rows {
        println!("{row}");
    }
    println!("{commands_row}\n{lag_row}");
    println!(
        "throughput: {ops:.0} requests/s, {command_rate:.0} commands/s over {elapsed:.1} s at concurrency {}",
        options.concurrency
    );
    println!("server peak RSS: {peak_rss:.1} MiB");
    let errors: u64 = total.errors.values().sum();
    println!("errors: {errors}");
    for (error, n) in &total.errors {
        println!("  {n} x {error}");
    }
    println!(
        "{}",
        json!({
            "mix": format!("{:?}", options.mix).to_lowercase(),
            "concurrency": options.concurrency,
            "seconds": elapsed,
            "requests_per_second": ops,
            "commands_per_second": command_rate,
            "operations": figures,
            "all_commands": commands_json,
            "projection_lag": lag_json,
            "peak_rss_mib": peak_rss,
            "errors": total.errors,
        })
    );
    Ok(())
}
