//! Benchmarks of Upzento Chat, run by hand and written down in docs/performance.md:
//!
//! - `read-path`: inbox list and search latency on a large tenant, projector speed.
//! - `load`: a realistic mix of commands and queries against a running server process at a
//!   given concurrency: throughput, latency per operation, projection lag, server memory.
//! - `history`: command latency on a 10,000-event conversation against a 10-event one.
//! - `faults`: SIGKILL of the server and a PostgreSQL restart under load.
//! - `realtime`: memory per idle WebSocket connection, message-to-recipient latency.
#![forbid(unsafe_code)]

mod common;
mod faults;
mod history;
mod load;
mod read_path;
mod realtime;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Inbox list and search latency on a large tenant, and projector catch-up speed.
    ReadPath {
        /// Conversations in the tenant.
        #[arg(long, default_value_t = 100_000)]
        conversations: i64,
        /// Messages per conversation.
        #[arg(long, default_value_t = 10)]
        messages: i64,
        /// Requests per query kind.
        #[arg(long, default_value_t = 1000)]
        requests: usize,
    },
    /// A mix of commands and queries against a server process, at a fixed concurrency.
    Load(load::Options),
    /// Command latency on a conversation with a long history versus a short one.
    History(history::Options),
    /// SIGKILL of the server and a PostgreSQL restart under load: nothing acknowledged lost.
    Faults(faults::Options),
    /// Memory per idle WebSocket connection and message-to-recipient latency.
    Realtime(realtime::Options),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Bench::ReadPath {
            conversations,
            messages,
            requests,
        } => read_path::run(conversations, messages, requests).await,
        Bench::Load(options) => load::run(options).await,
        Bench::History(options) => history::run(options).await,
        Bench::Faults(options) => faults::run(options).await,
        Bench::Realtime(options) => realtime::run(options).await,
    }
}
