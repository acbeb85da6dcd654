//! A tenant's website for the website-channel tests: a domain verified through the real
//! flow (DNS stand-in and the customer's web server), a widget allowed on it, and a visitor
//! client that speaks to the server the way the widget script does.

use std::net::Ipv4Addr;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Answer, TestApp, answer, free_port, serve_args, spawn_app_with};
use crate::stand_ins::{DnsServer, WebServer};

/// The site's hostname; browsers are told it is 127.0.0.1.
pub const SITE: &str = "shop.example.com";

/// A server, the site's web server, a verified domain and a widget on it.
pub struct Website {
    pub app: TestApp,
    /// The DNS stand-in the server asks for domain proofs.
    pub dns: DnsServer,
    pub web: WebServer,
    /// The customer's web server's port (the site is `http://shop.example.com:<port>`).
    pub web_port: u16,
    pub widget: Value,
}

impl Website {
    /// The site's origin, as a browser on it sends it.
    pub fn origin(&self) -> String {
        format!("http://{SITE}:{}", self.web_port)
    }

    /// The widget's public key.
    pub fn key(&self) -> String {
        self.widget["public_key"].as_str().unwrap().to_owned()
    }

    /// The widget's id.
    pub fn widget_id(&self) -> String {
        self.widget["id"].as_str().unwrap().to_owned()
    }

    /// Another widget allowed on the site, with `settings` (a `name` among them).
    pub async fn new_widget(&self, settings: Value) -> Value {
        let mut body = json!({"allowed_domains": self.widget["allowed_domains"]});
        body.as_object_mut()
            .unwrap()
            .extend(settings.as_object().unwrap().clone());
        self.app
            .post(&self.app.admin, "/widgets", body)
            .await
            .expect(201)
    }

    /// A visitor's request to the widget API, from `origin` (none when `None`).
    pub async fn visitor_call(
        &self,
        method: Method,
        path: &str,
        origin: Option<&str>,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        self.widget_call(&self.key(), method, path, (origin, token), body)
            .await
    }

    /// [`Self::visitor_call`] to the widget API under another public key.
    pub async fn widget_call(
        &self,
        key: &str,
        method: Method,
        path: &str,
        (origin, token): (Option<&str>, Option<&str>),
        body: Option<Value>,
    ) -> Answer {
        let url = format!("{}/api/v1/widget/{key}{path}", self.app.address);
        let mut request = self.app.client.request(method, url);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.expect("the server answers")).await
    }

    /// `POST /sessions` from the site, as the widget starts a visitor's session.
    pub async fn start_session(&self) -> Answer {
        self.visitor_call(
            Method::POST,
            "/sessions",
            Some(&self.origin()),
            None,
            Some(json!({})),
        )
        .await
    }

    /// A new visitor's session from the site.
    pub async fn visitor(&self) -> Visitor<'_> {
        let session = self.start_session().await.expect(200);
        Visitor {
            site: self,
            token: session["token"].as_str().unwrap().to_owned(),
            conversation_id: session["conversation_id"].as_str().unwrap().to_owned(),
        }
    }
}

/// A visitor on the site, as the widget script acts for them.
pub struct Visitor<'a> {
    site: &'a Website,
    pub token: String,
    pub conversation_id: String,
}

impl Visitor<'_> {
    /// Sends a request with the visitor's token from the site's origin.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let origin = self.site.origin();
        self.site
            .visitor_call(method, path, Some(&origin), Some(&self.token), body)
            .await
    }

    /// Sends a message; answers its id and the position it reached.
    pub async fn say(&self, content: &str) -> (String, Value) {
        let sent = self
            .call(Method::POST, "/messages", Some(json!({"content": content})))
            .await
            .expect(201);
        (
            sent["id"].as_str().unwrap().to_owned(),
            sent["position"].clone(),
        )
    }
}

/// Starts a server whose domain proofs go to the stand-ins, verifies `shop.example.com` by its
/// HTTP file, and creates a widget allowed on it with `settings`.
pub async fn website(settings: Value) -> Website {
    let (dns, dns_address) = DnsServer::start().await;
    let (web, web_port) = WebServer::start(0).await;
    let mut args = serve_args();
    args.dns_resolver = Some(dns_address);
    args.proof_http_port = web_port;
    args.proof_https_port = free_port();
    let app = spawn_app_with(args).await;
    dns.a(SITE, Ipv4Addr::LOCALHOST);
    let domain = app
        .post(&app.admin, "/domains", json!({"hostname": SITE}))
        .await
        .expect(201);
    web.serve(domain["verification"]["http"]["body"].as_str().unwrap());
    let id = domain["id"].as_str().unwrap();
    let verified = app
        .post(&app.admin, &format!("/domains/{id}/verify"), json!({}))
        .await
        .expect(200);
    assert_eq!(verified["status"], "verified");
    let mut body = json!({"name": "Shop chat", "allowed_domains": [id]});
    body.as_object_mut()
        .unwrap()
        .extend(settings.as_object().unwrap().clone());
    let widget = app.post(&app.admin, "/widgets", body).await.expect(201);
    Website {
        app,
        dns,
        web,
        web_port,
        widget,
    }
}
