//! What the benchmarks share: a fresh database and latency summaries.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

use serde_json::{Value, json};
use sqlx::{ConnectOptions, Executor, PgPool};

/// A fresh, migrated database on `DATABASE_URL`'s server, or in the private cluster under
/// `target/bench-pg`; answers a pool and a URL for other processes. In the private cluster,
/// the databases of earlier runs are dropped first (a read-path run leaves about 1 GB), so
/// only the latest run's is there to look into.
pub async fn database() -> anyhow::Result<(PgPool, String)> {
    let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let (server, url, private) = match std::env::var("DATABASE_URL") {
        Ok(url) => {
            let base = url.split('?').next().unwrap_or(&url);
            let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
            (url.parse()?, format!("{server}/{name}"), false)
        }
        Err(_) => {
            let cluster = api::cluster::PrivateCluster::start("target/bench-pg".as_ref(), true)?;
            let url = format!(
                "postgres://postgres@localhost/{name}?host={}",
                cluster.socket_dir().display()
            );
            (cluster.connect_options("postgres"), url, true)
        }
    };
    let mut admin = server.connect().await?;
    if private {
        let earlier: Vec<String> = sqlx::query_scalar(
            "select datname from pg_database where datname ~ '^(bench|pgbench)_[0-9a-f]+$'",
        )
        .fetch_all(&mut admin)
        .await?;
        for database in earlier {
            admin
                .execute(format!("drop database {database} with (force)").as_str())
                .await?;
        }
    }
    admin
        .execute(format!("create database {name}").as_str())
        .await?;
    let pool = api::startup::connect(server.database(&name)).await?;
    commands::MIGRATOR.run(&pool).await?;
    Ok((pool, url))
}

/// p50, p95 and p99 of `times` in milliseconds, as a table row and as JSON.
pub fn summary(name: &str, times: &mut [Duration]) -> (String, Value) {
    times.sort();
    let at = |p: f64| {
        let index = ((times.len() as f64 - 1.0) * p).round() as usize;
        times.get(index).map_or(0.0, |t| t.as_secs_f64() * 1000.0)
    };
    let (p50, p95, p99) = (at(0.5), at(0.95), at(0.99));
    (
        format!(
            "{name:<28} {:>8} {p50:>9.2} {p95:>9.2} {p99:>9.2}",
            times.len()
        ),
        json!({"name": name, "count": times.len(), "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}),
    )
}

/// The header of [`summary`] rows.
pub fn summary_header() -> String {
    format!(
        "{:<28} {:>8} {:>9} {:>9} {:>9}",
        "operation", "count", "p50 ms", "p95 ms", "p99 ms"
    )
}

/// Starts the server binary on the database at `url` and a free port, with `options` after
/// `serve`; answers the process and its base URL once it is healthy.
pub async fn start_server(
    binary: &Path,
    url: &str,
    options: &[&str],
) -> anyhow::Result<(Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let address = format!("127.0.0.1:{port}");
    let child = Command::new(binary)
        .args(["serve", "--listen", &address])
        .args(options)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "could not start {} (build it with cargo build --release)",
                binary.display()
            )
        })?;
    let base = format!("http://{address}");
    for _ in 0..300 {
        if reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok((child, base));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the server did not become healthy")
}

/// A size line of a process's `/proc/<pid>/status` (`VmHWM`, `VmRSS`), in KiB.
pub fn memory_kib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Peak resident memory of a process so far, in MiB (Linux `VmHWM`).
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    memory_kib(pid, "VmHWM:").map(|kib| kib / 1024.0)
}
