//! The README's promises: the run command serves with nothing configured, and the
//! walk-through works as written.

use std::path::PathBuf;
use std::process::Command;

use crate::helpers::{BINARY, Server, free_port, fresh_database, wait_for_health, workspace_root};

#[tokio::test]
async fn the_run_command_serves_with_nothing_configured_and_stops_its_cluster() {
    let data_dir: PathBuf = workspace_root()
        .join("target/tmp")
        .join(format!("zero-config-{}", uuid::Uuid::new_v4().simple()));
    let data = data_dir.to_str().unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let server = Server::start(&["--data-dir", data, "serve", "--listen", &address], None);
    wait_for_health(&format!("http://{address}")).await;
    assert!(
        data_dir.join("pg/PG_VERSION").exists(),
        "the private cluster lives under --data-dir"
    );

    let created = Command::new(BINARY)
        .args(["--data-dir", data, "tenant", "create", "Acme"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    assert!(line["admin_token"].as_str().unwrap().starts_with("upz_"));
    let ready = reqwest::get(format!("http://{address}/readyz"))
        .await
        .unwrap();
    assert!(ready.status().is_success());

    assert!(server.terminate().success(), "a graceful shutdown exits 0");
    assert!(
        !data_dir.join("pg/postmaster.pid").exists(),
        "the cluster was stopped with the server"
    );
    std::fs::remove_dir_all(&data_dir).unwrap();
}

/// The README's walk-through, run as written against the real binary: only the binary's
/// path (for `cargo run -q --release --`) and the server's address are substituted.
#[tokio::test]
async fn the_readme_walk_through_works_as_written() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let walk_through = readme
        .split("## Walk-through")
        .nth(1)
        .expect("a walk-through section");
    let script = walk_through
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a sh block");

    let database = fresh_database().await;
    let url = crate::helpers::database_url(&database);
    let address = format!("127.0.0.1:{}", free_port());
    let _server = Server::start(&["serve", "--listen", &address], Some(&url));
    wait_for_health(&format!("http://{address}")).await;

    let script = script
        .replace("cargo run -q --release --", BINARY)
        .replace("127.0.0.1:8080", &address);
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the walk-through failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("\"status_regression\""), "{stdout}");
    assert!(stdout.contains("\"email\": \"ann@acme.test\""), "{stdout}");
    assert!(
        stdout.contains("\"contact_name\": \"Bob\""),
        "the inbox lists Bob: {stdout}"
    );
    assert!(
        stdout.contains("\"status\": \"read\""),
        "the reply shows as read: {stdout}"
    );
    assert!(
        stdout.contains("\"name\": \"Acme\""),
        "the admin signs in with the password set by the command line: {stdout}"
    );

    let pool = crate::helpers::pool(&database).await;
    let types: Vec<String> = sqlx::query_scalar("select event_type from events order by position")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        types,
        [
            "ConversationStarted",
            "MessageReceived",
            "MessagePosted",
            "MessageStatusChanged",
            "MessageStatusChanged",
            "LabelAdded",
            "ConversationStatusChanged",
        ]
    );
}
