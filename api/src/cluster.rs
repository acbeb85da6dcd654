//! The private PostgreSQL cluster behind the zero-configuration start (DESIGN.md, decision 8).
//!
//! With no `DATABASE_URL`, the server runs a cluster of its own from the PostgreSQL server
//! binaries installed on the machine: data under `<data-dir>/pg`, listening on a Unix socket
//! in that directory only (no TCP port to collide with or expose). PostgreSQL refuses to run
//! as root, so as root the cluster runs as the `postgres` system user that Debian's packages
//! create. A cluster that is already running (a second command, or a server that was killed)
//! is reused rather than started twice.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::postgres::PgConnectOptions;

/// The database the service keeps its data in, inside the private cluster.
pub const DATABASE: &str = "upzento";

/// Why the private cluster could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No PostgreSQL server binaries were found.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH, via pg_config or under /usr/lib/postgresql/*/bin: install them (Debian/Ubuntu: apt-get install postgresql) or set DATABASE_URL"
    )]
    BinariesMissing,
    /// Running as root with no unprivileged user to run PostgreSQL as.
    #[error(
        "running as root, but there is no `postgres` system user to run PostgreSQL as: create one, run as another user, or set DATABASE_URL"
    )]
    NoUnprivilegedUser,
    /// A PostgreSQL tool failed.
    #[error("{tool} failed: {output}")]
    Tool {
        /// The tool.
        tool: String,
        /// What it printed.
        output: String,
    },
    /// The data directory could not be prepared.
    #[error("could not prepare {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A private cluster, running.
#[derive(Debug)]
pub struct PrivateCluster {
    bin_dir: PathBuf,
    pgdata: PathBuf,
    socket_dir: PathBuf,
    run_as: Option<(u32, u32)>,
    started_here: bool,
}

impl PrivateCluster {
    /// Starts the cluster under `data_dir` (creating it on first use), or attaches to the
    /// one already running there. `durable: false` turns off fsync, for throw-away test data.
    pub fn start(data_dir: &Path, durable: bool) -> Result<Self, ClusterError> {
        let bin_dir = find_binaries().ok_or(ClusterError::BinariesMissing)?;
        let run_as = unprivileged_user()?;
        fs::create_dir_all(data_dir).map_err(|source| io(data_dir, source))?;
        let data_dir = data_dir
            .canonicalize()
            .map_err(|source| io(data_dir, source))?;
        let pgdata = data_dir.join("pg");
        let socket_dir = socket_dir(&pgdata);
        let mut cluster = Self {
            bin_dir,
            pgdata,
            socket_dir,
            run_as,
            started_here: false,
        };
        if !cluster.pgdata.join("PG_VERSION").exists() {
            cluster.init(durable)?;
        }
        cluster.prepare_dir(&cluster.socket_dir)?;
        if !cluster.is_running() {
            cluster.tool(
                "pg_ctl",
                &[
                    "start",
                    "--wait",
                    "--timeout=60",
                    "--silent",
                    "-D",
                    path_str(&cluster.pgdata),
                    "-l",
                    path_str(&cluster.pgdata.join("server.log")),
                ],
            )?;
            cluster.started_here = true;
        }
        Ok(cluster)
    }

    /// Creates `dir` for the cluster's user alone.
    fn prepare_dir(&self, dir: &Path) -> Result<(), ClusterError> {
        fs::create_dir_all(dir).map_err(|source| io(dir, source))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|source| io(dir, source))?;
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                .map_err(|source| io(dir, source))?;
        }
        Ok(())
    }

    fn init(&self, durable: bool) -> Result<(), ClusterError> {
        self.prepare_dir(&self.pgdata)?;
        self.tool(
            "initdb",
            &[
                "-D",
                path_str(&self.pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            ],
        )?;
        let settings = format!(
            "\n# Written by upzento: a private cluster reached through its Unix socket only.\n\
             listen_addresses = ''\n\
             unix_socket_directories = '{}'\n\
             max_connections = 200\n\
             # A stuck transaction anywhere stalls every gap-free reader (DESIGN.md).\n\
             idle_in_transaction_session_timeout = '30s'\n\
             fsync = {}\n\
             synchronous_commit = {}\n",
            self.socket_dir.display(),
            if durable { "on" } else { "off" },
            if durable { "on" } else { "off" },
        );
        let conf = self.pgdata.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf).map_err(|source| io(&conf, source))?;
        text.push_str(&settings);
        fs::write(&conf, text).map_err(|source| io(&conf, source))
    }

    fn is_running(&self) -> bool {
        self.command("pg_ctl")
            .args(["status", "-D", path_str(&self.pgdata)])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Connection options for `database` over the cluster's socket.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .username("postgres")
            .database(database)
    }

    /// The directory of the cluster's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// True when this process started the cluster (and so should stop it).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// Stops the cluster, letting open transactions finish quickly (`fast` mode).
    pub fn stop(&self) -> Result<(), ClusterError> {
        self.pg_ctl("stop")
    }

    /// Restarts the cluster (`fast` mode): every connection is cut. The fault benchmark uses
    /// it to show that the service comes back by itself.
    pub fn restart(&self) -> Result<(), ClusterError> {
        self.pg_ctl("restart")
    }

    fn pg_ctl(&self, action: &str) -> Result<(), ClusterError> {
        let log = self.pgdata.join("server.log");
        self.tool(
            "pg_ctl",
            &[
                action,
                "--wait",
                "-m",
                "fast",
                "-D",
                path_str(&self.pgdata),
                "-l",
                path_str(&log),
            ],
        )
        .map(drop)
    }

    fn command(&self, tool: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(tool));
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid).env("HOME", &self.pgdata);
        }
        if let Some(parent) = self.pgdata.parent() {
            command.current_dir(parent);
        }
        command
    }

    fn tool(&self, tool: &str, args: &[&str]) -> Result<Output, ClusterError> {
        let output = self
            .command(tool)
            .args(args)
            .output()
            .map_err(|source| io(&self.bin_dir.join(tool), source))?;
        if output.status.success() {
            return Ok(output);
        }
        let mut text = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if text.is_empty() {
            text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        }
        let log = self.pgdata.join("server.log");
        if let Ok(log) = fs::read_to_string(&log) {
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            text.push_str(&format!(" (server.log: {})", tail.join(" | ")));
        }
        Err(ClusterError::Tool {
            tool: tool.to_owned(),
            output: text,
        })
    }
}

fn io(path: &Path, source: std::io::Error) -> ClusterError {
    ClusterError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where the socket goes: in the data directory, unless that path is too long for a Unix
/// socket address (about 107 bytes), as in deep checkouts; then in a directory under /tmp
/// named after the data directory, so every start of one cluster finds the same place.
fn socket_dir(pgdata: &Path) -> PathBuf {
    const SOCKET_NAME_LEN: usize = "/.s.PGSQL.5432".len();
    if pgdata.as_os_str().len() + SOCKET_NAME_LEN < 100 {
        return pgdata.to_owned();
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(pgdata, &mut hasher);
    std::env::temp_dir().join(format!(
        "upzento-pg-{:016x}",
        std::hash::Hasher::finish(&hasher)
    ))
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}

fn has_server_tools(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|tool| dir.join(tool).is_file())
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: from `pg_config --bindir`, then
/// the newest `/usr/lib/postgresql/*/bin` (Debian keeps them off PATH), then PATH.
fn find_binaries() -> Option<PathBuf> {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let mut debian: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    debian.sort();
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|dir| {
            dir.join("pg_ctl")
                .canonicalize()
                .ok()?
                .parent()
                .map(Path::to_owned)
        });
    from_pg_config
        .into_iter()
        .chain(debian.into_iter().rev().map(|(_, dir)| dir))
        .chain(on_path)
        .find(|dir| has_server_tools(dir))
}

/// The uid and gid to run PostgreSQL as: none when not root, `postgres` when root.
fn unprivileged_user() -> Result<Option<(u32, u32)>, ClusterError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match nix::unistd::User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some((user.uid.as_raw(), user.gid.as_raw()))),
        _ => Err(ClusterError::NoUnprivilegedUser),
    }
}
