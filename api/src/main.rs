//! The `upzento` binary: see `api::run`.
#![forbid(unsafe_code)]

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match api::run(api::config::Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("upzento: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
