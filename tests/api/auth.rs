//! Sign-in for the agent console: passwords, the session cookie and its CSRF checks, expiry,
//! signing out, failed sign-in limits, invitations, admin changes to agents and teams, the
//! `agent set-password` command, and the agent WebSocket with a cookie.

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{
    Answer, BINARY, Caller, TestApp, answer, database_url, serve_args, spawn_app, spawn_app_with,
};
use crate::realtime::{event, next_where, ws_url};

const PASSWORD: &str = "correct horse battery";

/// What a browser holds after signing in: the cookie, and the CSRF token the console read
/// from the answer.
struct Console {
    cookie: String,
    csrf: String,
    signed_in: Value,
}

/// The `name=value` part of the answer's `Set-Cookie`, and the whole header.
fn set_cookie(answer: &Answer) -> (String, String) {
    let header = answer.headers["set-cookie"].to_str().unwrap().to_owned();
    let pair = header.split(';').next().unwrap().trim().to_owned();
    (pair, header)
}

impl TestApp {
    /// Sends a request with no credential but the headers given.
    async fn anonymous(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}/api/v1{path}", self.address))
            .headers(headers);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.expect("the server answers")).await
    }

    async fn login(&self, body: Value) -> Answer {
        self.anonymous(Method::POST, "/auth/login", HeaderMap::new(), Some(body))
            .await
    }

    /// Signs in and answers the console's state.
    async fn sign_in(&self, email: &str, password: &str) -> Console {
        let answer = self
            .login(json!({"email": email, "password": password}))
            .await;
        let (cookie, _) = set_cookie(&answer);
        let signed_in = answer.expect(200);
        Console {
            cookie,
            csrf: signed_in["csrf_token"].as_str().unwrap().to_owned(),
            signed_in,
        }
    }

    /// A request as the console: the cookie, the CSRF token when given, extra headers.
    async fn as_console(
        &self,
        console: &Console,
        csrf: Option<&str>,
        extra: &[(&'static str, &str)],
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", HeaderValue::from_str(&console.cookie).unwrap());
        if let Some(csrf) = csrf {
            headers.insert("x-csrf-token", HeaderValue::from_str(csrf).unwrap());
        }
        for (name, value) in extra {
            headers.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        self.anonymous(method, path, headers, body).await
    }

    /// The console's own, correct request: cookie and CSRF token.
    async fn console_call(
        &self,
        console: &Console,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        self.as_console(console, Some(&console.csrf), &[], method, path, body)
            .await
    }

    /// An admin sets `agent`'s password.
    async fn set_password(&self, agent: &Caller, password: &str) {
        self.call(
            &self.admin,
            Method::PUT,
            &format!("/agents/{}/password", agent.agent_id),
            Some(json!({"password": password})),
        )
        .await
        .expect(204);
    }

    /// A new agent with `role` and a password.
    async fn agent_with_password(&self, email: &str, role: &str) -> Caller {
        let agent = self.new_agent(&self.admin, email, role).await;
        self.set_password(&agent, PASSWORD).await;
        agent
    }

    /// The `Origin` a page of this server sends.
    fn own_origin(&self) -> String {
        self.address.clone()
    }
}

#[tokio::test]
async fn an_agent_signs_in_and_gets_an_http_only_strict_cookie_stored_hashed() {
    let app = spawn_app().await;
    let ann = app.agent_with_password("ann@acme.com", "agent").await;

    let answer = app
        .login(json!({"email": "ANN@acme.com", "password": PASSWORD}))
        .await;
    let (pair, header) = set_cookie(&answer);
    let body = answer.expect(200);
    let value = pair
        .strip_prefix("upzento_session=")
        .expect("the session cookie");
    assert_eq!(value.len(), 64, "32 random bytes in hex");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(header.contains(flag), "{flag} in {header}");
    }
    assert!(!header.contains("Secure"), "plain HTTP: {header}");
    assert_eq!(body["agent"]["id"], ann.agent_id.as_str());
    assert_eq!(body["agent"]["email"], "ann@acme.com");
    assert_eq!(body["agent"]["role"], "agent");
    assert_eq!(body["agent"]["has_password"], true);
    assert_eq!(body["tenant"]["id"], app.admin.tenant_id.as_str());
    assert_eq!(body["tenant"]["name"], "Acme");
    assert!(body["csrf_token"].as_str().is_some_and(|t| t.len() >= 32));
    assert!(
        body["expires_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .is_ok()
    );

    let stored: (i64, i64) = sqlx::query_as(
        "select count(*) filter (where token_hash = sha256(convert_to($1, 'utf8'))),
                count(*) filter (where token_hash = convert_to($1, 'utf8'))
           from agent_sessions",
    )
    .bind(value)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored, (1, 0), "only the cookie's SHA-256 is stored");

    // Behind a TLS-terminating proxy the cookie is Secure.
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    let secure = app
        .anonymous(
            Method::POST,
            "/auth/login",
            headers,
            Some(json!({"email": "ann@acme.com", "password": PASSWORD})),
        )
        .await;
    assert!(set_cookie(&secure).1.contains("; Secure"));

    // The cookie reads the session and the API, and the CSRF token given again still works.
    let console = Console {
        cookie: pair,
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        signed_in: body,
    };
    let session = app
        .as_console(&console, None, &[], Method::GET, "/auth/session", None)
        .await
        .expect(200);
    assert_eq!(session["agent"], console.signed_in["agent"]);
    assert_eq!(session["tenant"], console.signed_in["tenant"]);
    let agents = app
        .as_console(&console, None, &[], Method::GET, "/agents", None)
        .await
        .expect(200);
    assert_eq!(agents.as_array().unwrap().len(), 2);
    let conversation = app
        .as_console(
            &console,
            session["csrf_token"].as_str(),
            &[],
            Method::POST,
            "/conversations",
            Some(json!({"source": "api", "contact": {"name": "Bob"}})),
        )
        .await
        .expect(201);
    assert!(conversation["id"].is_string());
}

#[tokio::test]
async fn a_wrong_password_an_unknown_address_and_an_agent_without_password_get_one_answer() {
    let app = spawn_app().await;
    app.agent_with_password("ann@acme.com", "agent").await;
    app.new_agent(&app.admin, "invited@acme.com", "agent").await;

    let mut bodies = Vec::new();
    for (email, password) in [
        ("ann@acme.com", "not the password"),
        ("nobody@acme.com", PASSWORD),
        ("invited@acme.com", PASSWORD),
    ] {
        let answer = app
            .login(json!({"email": email, "password": password}))
            .await;
        assert_eq!(answer.headers["www-authenticate"], "Bearer");
        assert!(answer.headers.get("set-cookie").is_none());
        let body = answer.body.clone();
        answer.problem(401, "invalid_credentials");
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[0], bodies[2]);
    let sessions: i64 = sqlx::query_scalar("select count(*) from agent_sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(sessions, 0);

    // Bad input is refused clearly.
    let long = "x".repeat(1025);
    let field = app
        .login(json!({"email": "ann@acme.com", "password": long}))
        .await
        .problem(422, "too_long");
    assert_eq!(field.as_deref(), Some("password"));
    let field = app
        .login(json!({"email": "ann@acme.com", "password": PASSWORD, "tenant_id": "acme"}))
        .await
        .problem(422, "invalid_id");
    assert_eq!(field.as_deref(), Some("tenant_id"));
    let field = app
        .login(json!({"email": "ann@acme.com"}))
        .await
        .problem(422, "invalid_body");
    assert_eq!(field.as_deref(), Some("password"));
}

#[tokio::test]
async fn a_cookie_request_without_the_csrf_token_or_from_another_site_is_refused_and_changes_nothing()
 {
    let app = spawn_app().await;
    app.agent_with_password("ann@acme.com", "agent").await;
    let conversation = app.new_conversation(&app.admin).await;
    let console = app.sign_in("ann@acme.com", PASSWORD).await;
    let path = format!("/conversations/{conversation}/status");
    let resolve = json!({"status": "resolved"});
    let events_before = app.event_count().await;

    let evil = [("origin", "https://evil.example")];
    let own_origin = app.own_origin();
    for (csrf, extra) in [
        (None, &[][..]),
        (Some("00ff"), &[][..]),
        (Some(console.csrf.as_str()), &evil[..]),
    ] {
        let field = app
            .as_console(
                &console,
                csrf,
                extra,
                Method::POST,
                &path,
                Some(resolve.clone()),
            )
            .await
            .problem(403, "csrf_failed");
        assert!(matches!(field.as_deref(), Some("X-CSRF-Token" | "Origin")));
    }
    assert_eq!(
        app.event_count().await,
        events_before,
        "nothing was written"
    );
    let history = app
        .event_types("Conversation", &app.admin.tenant_id, &conversation)
        .await;
    assert_eq!(history, ["ConversationStarted"], "the status is unchanged");

    // Nor may another site's page sign the browser in.
    let mut foreign = HeaderMap::new();
    foreign.insert("origin", HeaderValue::from_static("https://evil.example"));
    let login = app
        .anonymous(
            Method::POST,
            "/auth/login",
            foreign,
            Some(json!({"email": "ann@acme.com", "password": PASSWORD})),
        )
        .await;
    assert!(login.headers.get("set-cookie").is_none());
    login.problem(403, "csrf_failed");

    // The console's own request, from its own origin, is obeyed.
    app.as_console(
        &console,
        Some(&console.csrf),
        &[("origin", &own_origin)],
        Method::POST,
        &path,
        Some(resolve),
    )
    .await
    .expect(200);
    let history = app
        .event_types("Conversation", &app.admin.tenant_id, &conversation)
        .await;
    assert_eq!(history.len(), 2, "resolved: {history:?}");
}

#[tokio::test]
async fn an_idle_session_expires_and_is_deleted() {
    let mut args = serve_args();
    args.session_idle_timeout = Duration::from_secs(1);
    let app = spawn_app_with(args).await;
    app.agent_with_password("ann@acme.com", "agent").await;
    let console = app.sign_in("ann@acme.com", PASSWORD).await;
    app.as_console(&console, None, &[], Method::GET, "/auth/session", None)
        .await
        .expect(200);

    tokio::time::sleep(Duration::from_millis(2500)).await;
    app.as_console(&console, None, &[], Method::GET, "/agents", None)
        .await
        .problem(401, "session_expired");
    let left: i64 = sqlx::query_scalar("select count(*) from agent_sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "the expired session's row is deleted");
    app.as_console(&console, None, &[], Method::GET, "/auth/session", None)
        .await
        .problem(401, "unauthorized");
}

#[tokio::test]
async fn signing_out_ends_the_session_on_the_server() {
    let app = spawn_app().await;
    app.agent_with_password("ann@acme.com", "agent").await;
    let console = app.sign_in("ann@acme.com", PASSWORD).await;

    app.as_console(&console, None, &[], Method::POST, "/auth/logout", None)
        .await
        .problem(403, "csrf_failed");
    let out = app
        .console_call(&console, Method::POST, "/auth/logout", None)
        .await;
    let (pair, header) = set_cookie(&out);
    assert_eq!(pair, "upzento_session=");
    assert!(header.contains("Max-Age=0"), "{header}");
    out.expect(204);

    // A copy of the old cookie no longer works anywhere.
    app.as_console(&console, None, &[], Method::GET, "/auth/session", None)
        .await
        .problem(401, "unauthorized");
    app.as_console(&console, None, &[], Method::GET, "/agents", None)
        .await
        .problem(401, "unauthorized");
}

#[tokio::test]
async fn five_failed_sign_ins_lock_the_address_even_for_the_right_password() {
    let app = spawn_app().await;
    app.agent_with_password("ann@acme.com", "agent").await;
    app.agent_with_password("bob@acme.com", "agent").await;
    for _ in 0..5 {
        app.login(json!({"email": "ann@acme.com", "password": "guess guess"}))
            .await
            .problem(401, "invalid_credentials");
    }
    let limited = app
        .login(json!({"email": "Ann@Acme.com", "password": PASSWORD}))
        .await;
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert!(limited.headers.get("set-cookie").is_none());
    limited.problem(429, "rate_limited");

    // Another address from the same client is not limited by Ann's failures.
    app.sign_in("bob@acme.com", PASSWORD).await;
}

#[tokio::test]
async fn an_invited_agent_sets_a_password_and_then_signs_in() {
    let app = spawn_app().await;
    let ann = app.new_agent(&app.admin, "ann@acme.com", "agent").await;
    let listed = app.get(&app.admin, "/agents").await.expect(200);
    assert_eq!(listed[1]["has_password"], false, "invited, not active");

    let invite_path = format!("/agents/{}/invitation", ann.agent_id);
    let first = app
        .post(&app.admin, &invite_path, json!({}))
        .await
        .expect(201);
    let second = app
        .post(&app.admin, &invite_path, json!({}))
        .await
        .expect(201);
    let token = second["token"].as_str().unwrap();
    assert_eq!(second["url"], format!("/app/#/invite/{token}"));
    let expires: chrono::DateTime<chrono::Utc> =
        second["expires_at"].as_str().unwrap().parse().unwrap();
    let days = (expires - chrono::Utc::now()).num_hours();
    assert!((167..=168).contains(&days), "valid 7 days: {days} h");

    let accept = |token: &str, password: &str| {
        app.anonymous(
            Method::POST,
            "/auth/invitations/accept",
            HeaderMap::new(),
            Some(json!({"token": token, "password": password})),
        )
    };
    accept(first["token"].as_str().unwrap(), PASSWORD)
        .await
        .problem(404, "invitation_not_found");
    let field = accept(token, "short").await.problem(422, "weak_password");
    assert_eq!(field.as_deref(), Some("password"));

    let accepted = accept(token, PASSWORD).await;
    let (pair, _) = set_cookie(&accepted);
    let body = accepted.expect(200);
    assert_eq!(body["agent"]["id"], ann.agent_id.as_str());
    assert_eq!(body["agent"]["has_password"], true);
    let console = Console {
        cookie: pair,
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        signed_in: body,
    };
    app.as_console(&console, None, &[], Method::GET, "/auth/session", None)
        .await
        .expect(200);
    accept(token, PASSWORD)
        .await
        .problem(404, "invitation_not_found");

    let again = app.sign_in("ann@acme.com", PASSWORD).await;
    assert_eq!(again.signed_in["agent"]["id"], ann.agent_id.as_str());
    let listed = app.get(&app.admin, "/agents").await.expect(200);
    assert_eq!(listed[1]["has_password"], true);

    // Another tenant's admin cannot invite, or set a password for, this agent.
    let other = app.new_tenant("Globex").await;
    app.post(&other, &invite_path, json!({}))
        .await
        .problem(404, "agent_not_found");
    app.call(
        &other,
        Method::PUT,
        &format!("/agents/{}/password", ann.agent_id),
        Some(json!({"password": PASSWORD})),
    )
    .await
    .problem(404, "agent_not_found");
    app.post(&ann, &invite_path, json!({}))
        .await
        .problem(403, "forbidden");
}

#[tokio::test]
async fn an_admin_setting_a_password_ends_the_agents_sessions() {
    let app = spawn_app().await;
    let ann = app.agent_with_password("ann@acme.com", "agent").await;
    let console = app.sign_in("ann@acme.com", PASSWORD).await;

    app.set_password(&ann, "a brand new password").await;
    app.as_console(&console, None, &[], Method::GET, "/auth/session", None)
        .await
        .problem(401, "unauthorized");
    app.login(json!({"email": "ann@acme.com", "password": PASSWORD}))
        .await
        .problem(401, "invalid_credentials");
    app.sign_in("ann@acme.com", "a brand new password").await;

    let field = app
        .call(
            &app.admin,
            Method::PUT,
            &format!("/agents/{}/password", ann.agent_id),
            Some(json!({"password": "short"})),
        )
        .await
        .problem(422, "weak_password");
    assert_eq!(field.as_deref(), Some("password"));
}

#[tokio::test]
async fn an_admin_changes_roles_and_names_but_never_demotes_the_last_admin() {
    let app = spawn_app().await;
    let ann = app.agent_with_password("ann@acme.com", "agent").await;
    let console = app.sign_in("ann@acme.com", PASSWORD).await;
    let ann_path = format!("/agents/{}", ann.agent_id);
    let admin_path = format!("/agents/{}", app.admin.agent_id);

    app.console_call(
        &console,
        Method::POST,
        "/teams",
        Some(json!({"name": "Sales"})),
    )
    .await
    .problem(403, "forbidden");
    app.console_call(
        &console,
        Method::PATCH,
        &admin_path,
        Some(json!({"role": "agent"})),
    )
    .await
    .problem(403, "forbidden");

    let field = app
        .call(
            &app.admin,
            Method::PATCH,
            &admin_path,
            Some(json!({"role": "agent"})),
        )
        .await
        .problem(409, "last_admin");
    assert_eq!(field.as_deref(), Some("role"));

    let promoted = app
        .call(
            &app.admin,
            Method::PATCH,
            &ann_path,
            Some(json!({"role": "admin", "name": "Ann Lee"})),
        )
        .await
        .expect(200);
    assert_eq!(promoted["role"], "admin");
    assert_eq!(promoted["name"], "Ann Lee");
    assert_eq!(promoted["has_password"], true);
    // A session reads the role with every request: Ann is an admin at once.
    app.console_call(
        &console,
        Method::POST,
        "/teams",
        Some(json!({"name": "Sales"})),
    )
    .await
    .expect(201);

    // With two admins, either may be demoted; then the other is the last.
    app.call(
        &app.admin,
        Method::PATCH,
        &admin_path,
        Some(json!({"role": "auditor"})),
    )
    .await
    .expect(200);
    app.console_call(
        &console,
        Method::PATCH,
        &ann_path,
        Some(json!({"role": "agent"})),
    )
    .await
    .problem(409, "last_admin");
    let renamed = app
        .console_call(
            &console,
            Method::PATCH,
            &ann_path,
            Some(json!({"name": "Ann"})),
        )
        .await
        .expect(200);
    assert_eq!(renamed["role"], "admin");

    for (body, code, field) in [
        (json!({"role": "owner"}), "invalid_body", "role"),
        (json!({"name": " "}), "blank", "name"),
    ] {
        let got = app
            .console_call(&console, Method::PATCH, &ann_path, Some(body))
            .await
            .problem(422, code);
        assert_eq!(got.as_deref(), Some(field));
    }
    let other = app.new_tenant("Globex").await;
    app.call(
        &other,
        Method::PATCH,
        &ann_path,
        Some(json!({"name": "Eve"})),
    )
    .await
    .problem(404, "agent_not_found");
    app.console_call(&console, Method::PATCH, "/agents/nope", Some(json!({})))
        .await
        .problem(400, "invalid_id");
}

#[tokio::test]
async fn an_auditor_signed_in_by_session_reads_writes_nothing_and_signs_out() {
    let app = spawn_app().await;
    app.agent_with_password("audit@acme.com", "auditor").await;
    let console = app.sign_in("audit@acme.com", PASSWORD).await;
    app.console_call(&console, Method::GET, "/conversations?status=all", None)
        .await
        .expect(200);
    app.console_call(
        &console,
        Method::POST,
        "/conversations",
        Some(json!({"source": "api"})),
    )
    .await
    .problem(403, "forbidden");
    assert_eq!(app.event_count().await, 0);
    app.console_call(&console, Method::POST, "/auth/logout", None)
        .await
        .expect(204);
}

#[tokio::test]
async fn an_agent_is_taken_off_a_team_and_removing_a_non_member_is_harmless() {
    let app = spawn_app().await;
    let ann = app.new_agent(&app.admin, "ann@acme.com", "agent").await;
    let team = app
        .created_id(&app.admin, "/teams", json!({"name": "Sales"}))
        .await;
    app.post(
        &app.admin,
        &format!("/teams/{team}/members"),
        json!({"agent_id": ann.agent_id}),
    )
    .await
    .expect(200);

    let path = format!("/teams/{team}/members/{}", ann.agent_id);
    for _ in 0..2 {
        let team = app
            .call(&app.admin, Method::DELETE, &path, None)
            .await
            .expect(200);
        assert_eq!(team["member_ids"], json!([]));
    }
    let listed = app.get(&app.admin, "/teams").await.expect(200);
    assert_eq!(listed[0]["member_ids"], json!([]));

    app.call(&ann, Method::DELETE, &path, None)
        .await
        .problem(403, "forbidden");
    let other = app.new_tenant("Globex").await;
    app.call(&other, Method::DELETE, &path, None)
        .await
        .problem(404, "team_not_found");
    let field = app
        .call(
            &app.admin,
            Method::DELETE,
            &format!("/teams/{team}/members/nope"),
            None,
        )
        .await
        .problem(400, "invalid_id");
    assert_eq!(field.as_deref(), Some("agent_id"));
}

/// Runs `upzento agent set-password` against the test database.
fn set_password_command(
    app: &TestApp,
    args: &[&str],
    env_password: Option<&str>,
    stdin: &str,
) -> std::process::Output {
    use std::io::Write;
    let url = database_url(&app.pool.connect_options());
    let mut command = std::process::Command::new(BINARY);
    command
        .args(["agent", "set-password"])
        .args(args)
        .env("DATABASE_URL", url)
        .env_remove("UPZENTO_PASSWORD")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(password) = env_password {
        command.env("UPZENTO_PASSWORD", password);
    }
    let mut child = command.spawn().expect("the binary starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn the_cli_sets_a_password_and_asks_for_the_tenant_when_the_address_is_in_several() {
    let app = spawn_app().await;
    let globex = app.new_tenant("Globex").await;
    let email = ["--email", "Admin@Example.com"];

    let ambiguous = set_password_command(&app, &email, Some(PASSWORD), "");
    assert!(!ambiguous.status.success());
    let stderr = String::from_utf8_lossy(&ambiguous.stderr);
    for tenant in [&app.admin.tenant_id, &globex.tenant_id] {
        assert!(stderr.contains(tenant.as_str()), "names {tenant}: {stderr}");
    }

    let acme = [&email[..], &["--tenant", &app.admin.tenant_id]].concat();
    let set = set_password_command(&app, &acme, None, &format!("{PASSWORD}\nignored\n"));
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let line: Value = serde_json::from_slice(&set.stdout).unwrap();
    assert_eq!(line["agent_id"], app.admin.agent_id.as_str());
    let console = app.sign_in("admin@example.com", PASSWORD).await;
    assert_eq!(console.signed_in["tenant"]["name"], "Acme");

    let short = [&email[..], &["--tenant", &globex.tenant_id]].concat();
    let refused = set_password_command(&app, &short, Some("short"), "");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("password"));

    // The same password in both tenants: the sign-in must be told which one.
    let set = set_password_command(&app, &short, Some(PASSWORD), "");
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let answer = app
        .login(json!({"email": "admin@example.com", "password": PASSWORD}))
        .await;
    let tenants = answer.body["tenants"].clone();
    answer.problem(409, "tenant_required");
    assert_eq!(
        tenants,
        json!([{"id": app.admin.tenant_id, "name": "Acme"}, {"id": globex.tenant_id, "name": "Globex"}])
    );
    let chosen = app
        .login(json!({"email": "admin@example.com", "password": PASSWORD, "tenant_id": globex.tenant_id}))
        .await
        .expect(200);
    assert_eq!(chosen["tenant"]["name"], "Globex");

    // Setting a password ends the sessions signed in with the old one.
    set_password_command(&app, &acme, Some("another good password"), "");
    app.as_console(&console, None, &[], Method::GET, "/auth/session", None)
        .await
        .problem(401, "unauthorized");
}

#[tokio::test]
async fn the_agent_websocket_takes_the_cookie_from_this_servers_origin_only() {
    let app = spawn_app().await;
    app.agent_with_password("ann@acme.com", "agent").await;
    let console = app.sign_in("ann@acme.com", PASSWORD).await;
    let url = ws_url(&app.address, "/api/v1/realtime");
    let request = |origin: &str| {
        let mut request = url.as_str().into_client_request().unwrap();
        let headers = request.headers_mut();
        headers.insert("cookie", console.cookie.parse().unwrap());
        headers.insert("origin", origin.parse().unwrap());
        request
    };

    let (mut socket, _) = tokio_tungstenite::connect_async(request(&app.own_origin()))
        .await
        .expect("the console's own page connects with its cookie");
    app.new_conversation(&app.admin).await;
    next_where(&mut socket, event("ConversationStarted")).await;

    match tokio_tungstenite::connect_async(request("https://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 403);
        }
        other => panic!("another site's page must be refused: {other:?}"),
    }
}

#[tokio::test]
async fn api_tokens_need_no_csrf_token_and_win_over_a_cookie() {
    let app = spawn_app().await;
    app.agent_with_password("ann@acme.com", "agent").await;
    let console = app.sign_in("ann@acme.com", PASSWORD).await;
    // Ann's cookie (an agent) and the admin's token, no CSRF token: the token decides.
    let mut headers = HeaderMap::new();
    headers.insert("cookie", HeaderValue::from_str(&console.cookie).unwrap());
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", app.admin.token)).unwrap(),
    );
    let team = app
        .anonymous(
            Method::POST,
            "/teams",
            headers,
            Some(json!({"name": "Sales"})),
        )
        .await
        .expect(201);
    assert_eq!(team["name"], "Sales");
    app.post(&app.admin, "/teams", json!({"name": "Support"}))
        .await
        .expect(201);
}
