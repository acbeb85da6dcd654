//! The Upzento Chat server: HTTP API, command-line interface and start-up.
//!
//! - [`config`]: the CLI and its options.
//! - [`cluster`]: the private PostgreSQL cluster of the zero-configuration start.
//! - [`startup`]: database, state, serving and shutdown.
//! - [`routes`]: one module per resource, each with its own `router()`.
//! - [`error`], [`extract`]: problem+json errors and strict extractors.
//! - [`session`]: the console's session cookie and its CSRF checks; [`login_limits`]: limits
//!   on failed sign-ins; [`set_password`]: `upzento agent set-password`.
//! - [`openapi`]: the OpenAPI document served at `/api/openapi.json`.
//! - [`telemetry`]: logs and metrics.
//! - [`realtime`]: the WebSocket endpoints, the live tail's clients, ephemeral signals.
//! - [`visitor`]: visitor tokens, the widget gate, visitor rate limits.
//! - [`relay`]: `upzento relay nats`, the event feed published to NATS JetStream.
#![forbid(unsafe_code)]

pub mod cluster;
pub mod config;
pub mod error;
pub mod extract;
pub mod login_limits;
pub mod openapi;
pub mod realtime;
pub mod rebuild;
pub mod relay;
pub mod routes;
pub mod session;
pub mod set_password;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod visitor;

use anyhow::Context;
use config::{
    AgentCommand, Cli, Command, ProjectionsCommand, RelayCommand, ServeArgs, TenantCommand,
};
use startup::{Application, Database};

/// Runs what the command line asks for.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli
        .command
        .unwrap_or_else(|| Command::Serve(ServeArgs::default()))
    {
        Command::Serve(mut args) => {
            telemetry::init_logs("info,sqlx=warn");
            if args.secrets_key.is_none() && args.secrets_key_file.is_none() {
                if cli.database.database_url.is_some() {
                    tracing::warn!(
                        "no UPZENTO_SECRETS_KEY: WhatsApp secrets are sealed with a key file under --data-dir, which other instances do not share"
                    );
                }
                args.secrets_key_file = Some(cli.database.data_dir.join("secrets.key"));
            }
            let database = Database::open(&cli.database).await?;
            let app = Application::build(database.pool.clone(), &args).await?;
            tracing::info!(address = %app.address(), "listening");
            let served = app.run_until(startup::shutdown_signal()).await;
            database.close().await;
            Ok(served?)
        }
        Command::Tenant(TenantCommand::Create { name, admin_email }) => {
            telemetry::init_logs("warn");
            let name = domain::text::Name::parse(&name).context("the tenant's name")?;
            let email = domain::text::Email::parse(&admin_email).context("--admin-email")?;
            let database = Database::open(&cli.database).await?;
            let created =
                commands::tenancy::create_tenant(&database.pool, name.as_str(), email.as_str())
                    .await;
            database.close().await;
            println!("{}", serde_json::to_string(&created?)?);
            Ok(())
        }
        Command::Agent(AgentCommand::SetPassword { email, tenant }) => {
            telemetry::init_logs("warn");
            let password = set_password::read_password()?;
            let database = Database::open(&cli.database).await?;
            let done =
                set_password::run(&database.pool, &email, tenant.map(Into::into), &password).await;
            database.close().await;
            let agent = done?;
            println!("{}", serde_json::to_string(&agent)?);
            Ok(())
        }
        Command::Projections(command) => {
            telemetry::init_logs("warn");
            let database = Database::open(&cli.database).await?;
            let done = match command {
                ProjectionsCommand::Status => rebuild::print_status(&database.pool).await,
                ProjectionsCommand::Rebuild { name } => {
                    rebuild::rebuild(&database.pool, name.as_deref()).await
                }
            };
            database.close().await;
            done
        }
        Command::Relay(RelayCommand::Nats(args)) => {
            telemetry::init_logs("info,sqlx=warn");
            let database = Database::open(&cli.database).await?;
            let relayed = relay::run(database.pool.clone(), args, startup::shutdown_signal()).await;
            database.close().await;
            relayed
        }
        Command::Migrate => {
            telemetry::init_logs("info");
            Database::open(&cli.database).await?.close().await;
            Ok(())
        }
    }
}
