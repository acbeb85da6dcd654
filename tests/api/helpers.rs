//! `spawn_app()`: a fresh database, migrated, and the real server on a free port.
//!
//! The database server is `DATABASE_URL` when set; otherwise the same private-cluster code
//! the server's zero-configuration start uses, under `target/test-pg`, shared by every test
//! of the run (each test creates its own database in it) and left running for the next run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use api::cluster::PrivateCluster;
use api::config::ServeArgs;
use api::startup::Application;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Executor, PgPool};

/// The private cluster of the tests, when there is no `DATABASE_URL`.
fn cluster() -> Option<&'static PrivateCluster> {
    static CLUSTER: OnceLock<Option<PrivateCluster>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            std::env::var("DATABASE_URL").is_err().then(|| {
                PrivateCluster::start(&workspace_root().join("target/test-pg"), false)
                    .expect("the private PostgreSQL cluster for tests starts")
            })
        })
        .as_ref()
}

/// Connection options to the test database server's `postgres` database.
fn server_options() -> PgConnectOptions {
    match cluster() {
        Some(cluster) => cluster.connect_options("postgres"),
        None => std::env::var("DATABASE_URL")
            .expect("DATABASE_URL is set")
            .parse()
            .expect("DATABASE_URL is a PostgreSQL URL"),
    }
}

/// The repository's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("api/ is inside the workspace")
        .to_owned()
}

/// A fresh, migrated database; answers its connection options.
pub async fn fresh_database() -> PgConnectOptions {
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = server_options()
        .connect()
        .await
        .expect("connects to PostgreSQL");
    admin
        .execute(format!("create database {name}").as_str())
        .await
        .expect("creates the test database");
    let options = server_options().database(&name);
    let pool = api::startup::connect(options.clone())
        .await
        .expect("connects");
    commands::MIGRATOR.run(&pool).await.expect("migrates");
    pool.close().await;
    options
}

/// A `postgres://` URL for a test database, for processes started by tests.
pub fn database_url(options: &PgConnectOptions) -> String {
    let database = options.get_database().expect("a test database has a name");
    match cluster() {
        Some(cluster) => format!(
            "postgres://postgres@localhost/{database}?host={}",
            cluster.socket_dir().display()
        ),
        None => {
            let url = std::env::var("DATABASE_URL").expect("DATABASE_URL is set");
            let (base, query) = url
                .split_once('?')
                .map_or((url.as_str(), None), |(b, q)| (b, Some(q)));
            let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
            match query {
                Some(query) => format!("{server}/{database}?{query}"),
                None => format!("{server}/{database}"),
            }
        }
    }
}

/// A pool on a test database.
pub async fn pool(options: &PgConnectOptions) -> PgPool {
    api::startup::connect(options.clone())
        .await
        .expect("connects")
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The database, for assertions on the event store.
    pub pool: PgPool,
    /// A client with no default headers.
    pub client: reqwest::Client,
    /// The first tenant's admin.
    pub admin: Caller,
}

/// Someone who calls the API with a token.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Bearer token.
    pub token: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Agent id.
    pub agent_id: String,
}

/// An answer: status, headers and JSON body (`Null` when there is none).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// Asserts the status, showing the body when it is wrong.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected answer: {:#}",
            self.body
        );
        self.body
    }

    /// Asserts a problem+json answer with this status and code, and answers its field.
    #[track_caller]
    pub fn problem(self, status: u16, code: &str) -> Option<String> {
        let content_type = self
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected answer: {:#}",
            self.body
        );
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(
            self.body["code"], code,
            "unexpected problem: {:#}",
            self.body
        );
        assert_eq!(self.body["status"], status);
        assert!(
            self.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "a problem explains itself: {:#}",
            self.body
        );
        self.body["field"].as_str().map(str::to_owned)
    }
}

/// Options for the server under test.
pub fn serve_args() -> ServeArgs {
    ServeArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        allow_private_proof_targets: true,
        ..ServeArgs::default()
    }
}

/// A server with default test options and a first tenant.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(serve_args()).await
}

/// A server with the given options and a first tenant.
pub async fn spawn_app_with(args: ServeArgs) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        api::telemetry::init_logs("info");
    }
    let database = fresh_database().await;
    let pool = api::startup::connect(database.clone())
        .await
        .expect("connects");
    let app = Application::build(pool.clone(), &args)
        .await
        .expect("builds");
    let address = format!("http://{}", app.address());
    tokio::spawn(app.run_until(std::future::pending()));
    let mut test = TestApp {
        address,
        pool,
        client: reqwest::Client::new(),
        admin: Caller {
            token: String::new(),
            tenant_id: String::new(),
            agent_id: String::new(),
        },
    };
    test.admin = test.new_tenant("Acme").await;
    test
}

impl TestApp {
    /// Creates a tenant the way `upzento tenant create` does, and answers its admin.
    pub async fn new_tenant(&self, name: &str) -> Caller {
        let created = commands::tenancy::create_tenant(&self.pool, name, "admin@example.com")
            .await
            .expect("creates a tenant");
        Caller {
            token: created.admin_token,
            tenant_id: created.tenant_id.to_string(),
            agent_id: created.admin_id.to_string(),
        }
    }

    /// Sends a request as `caller` with an optional JSON body.
    pub async fn call(
        &self,
        caller: &Caller,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}/api/v1{path}", self.address))
            .bearer_auth(&caller.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.expect("the server answers")).await
    }

    /// The OpenAPI document the server serves.
    pub async fn openapi(&self) -> Value {
        let url = format!("{}/api/openapi.json", self.address);
        answer(
            self.client
                .get(url)
                .send()
                .await
                .expect("the server answers"),
        )
        .await
        .expect(200)
    }

    /// GET as `caller`.
    pub async fn get(&self, caller: &Caller, path: &str) -> Answer {
        self.call(caller, Method::GET, path, None).await
    }

    /// POST as `caller`.
    pub async fn post(&self, caller: &Caller, path: &str, body: Value) -> Answer {
        self.call(caller, Method::POST, path, Some(body)).await
    }

    /// POSTs a new resource as `caller`, expects 201, and answers the resource's id.
    pub async fn created_id(&self, caller: &Caller, path: &str, body: Value) -> String {
        self.post(caller, path, body).await.expect(201)["id"]
            .as_str()
            .expect("a created resource has an id")
            .to_owned()
    }

    /// Adds an agent with `role` and answers it as a caller.
    pub async fn new_agent(&self, admin: &Caller, email: &str, role: &str) -> Caller {
        let agent = self
            .post(
                admin,
                "/agents",
                json!({"name": email, "email": email, "role": role}),
            )
            .await
            .expect(201);
        Caller {
            token: agent["token"].as_str().unwrap().to_owned(),
            tenant_id: admin.tenant_id.clone(),
            agent_id: agent["id"].as_str().unwrap().to_owned(),
        }
    }

    /// Starts an API conversation and answers its id.
    pub async fn new_conversation(&self, caller: &Caller) -> String {
        let started = self
            .post(
                caller,
                "/conversations",
                json!({"source": "api", "contact": {"name": "Bob"}}),
            )
            .await
            .expect(201);
        started["id"].as_str().unwrap().to_owned()
    }

    /// Posts a message and answers the message's id.
    pub async fn new_message(&self, caller: &Caller, conversation: &str, kind: &str) -> String {
        let posted = self
            .post(
                caller,
                &format!("/conversations/{conversation}/messages"),
                json!({"content": "hello", "message_type": kind}),
            )
            .await
            .expect(201);
        posted["message_id"].as_str().unwrap().to_owned()
    }

    /// Another server instance on the same database; answers its address.
    pub async fn second_instance(&self) -> String {
        let app = Application::build(self.pool.clone(), &serve_args())
            .await
            .expect("builds");
        let address = format!("http://{}", app.address());
        tokio::spawn(app.run_until(std::future::pending()));
        address
    }

    /// How many events the store holds.
    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from events")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// The event types of one aggregate, in order.
    pub async fn event_types(&self, aggregate_type: &str, tenant: &str, id: &str) -> Vec<String> {
        sqlx::query_scalar(
            "select event_type from events where aggregate_type = $1 and aggregate_id = $2
              order by sequence",
        )
        .bind(aggregate_type)
        .bind(format!("{tenant}:{id}"))
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }
}

/// Reads a response into an [`Answer`].
pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(if text.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    });
    Answer {
        status,
        headers,
        body,
    }
}

/// A free port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a: SocketAddr| a.port())
        .expect("a free port")
}

/// The `upzento` binary built for this test run.
pub const BINARY: &str = env!("CARGO_BIN_EXE_upzento");

/// Stops the server on drop, so a failing test leaves nothing running.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    pub fn start(args: &[&str], database_url: Option<&str>) -> Self {
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(url) = database_url {
            command.env("DATABASE_URL", url);
        }
        Self(command.spawn().expect("the binary starts"))
    }

    pub fn terminate(mut self) -> std::process::ExitStatus {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        self.0.wait().unwrap()
    }
}

pub async fn wait_for_health(address: &str) {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        let response = client.get(format!("{address}/healthz")).send().await;
        if response.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the server did not become healthy at {address}");
}
