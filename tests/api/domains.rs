//! Domain registration and verification against a real DNS server and a real web server of
//! the customer's (local stand-ins speaking the real protocols).

use std::net::Ipv4Addr;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, free_port, serve_args, spawn_app_with};
use crate::stand_ins::{DnsServer, WebServer};

/// A server whose domain proofs go to the stand-ins; HTTPS goes to a closed port.
async fn world() -> (TestApp, DnsServer, WebServer) {
    world_allowing_private_targets(true).await
}

async fn world_allowing_private_targets(allow: bool) -> (TestApp, DnsServer, WebServer) {
    let (dns, dns_address) = DnsServer::start().await;
    let (web, web_port) = WebServer::start(0).await;
    let mut args = serve_args();
    args.dns_resolver = Some(dns_address);
    args.proof_http_port = web_port;
    args.proof_https_port = free_port();
    args.allow_private_proof_targets = allow;
    (spawn_app_with(args).await, dns, web)
}

async fn register(app: &TestApp, hostname: &str) -> Value {
    app.post(&app.admin, "/domains", json!({"hostname": hostname}))
        .await
        .expect(201)
}

#[tokio::test]
async fn registering_answers_what_to_publish() {
    let (app, _, _) = world().await;
    let domain = register(&app, "https://Shop.Example.com/pricing").await;
    assert_eq!(domain["hostname"], "shop.example.com");
    assert_eq!(domain["status"], "pending");
    let token = domain["verification"]["http"]["body"].as_str().unwrap();
    assert!(token.len() >= 32);
    assert_eq!(
        domain["verification"]["dns"]["name"],
        "_upzento-verification.shop.example.com"
    );
    assert_eq!(domain["verification"]["dns"]["type"], "TXT");
    assert_eq!(
        domain["verification"]["dns"]["value"],
        format!("upzento-verification={token}")
    );
    assert_eq!(
        domain["verification"]["http"]["url"],
        "https://shop.example.com/.well-known/upzento-verification.txt"
    );
    let field = app
        .post(
            &app.admin,
            "/domains",
            json!({"hostname": "SHOP.example.com"}),
        )
        .await
        .problem(409, "domain_exists");
    assert_eq!(field.as_deref(), Some("hostname"));
    let listed = app.get(&app.admin, "/domains").await.expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_txt_record_verifies_a_domain() {
    let (app, dns, _) = world().await;
    let domain = register(&app, "shop.example.com").await;
    let id = domain["id"].as_str().unwrap();
    dns.txt(
        "_upzento-verification.shop.example.com",
        "some-other-service=1",
    );
    dns.txt(
        domain["verification"]["dns"]["name"].as_str().unwrap(),
        domain["verification"]["dns"]["value"].as_str().unwrap(),
    );
    let verified = app
        .post(&app.admin, &format!("/domains/{id}/verify"), json!({}))
        .await
        .expect(200);
    assert_eq!(verified["status"], "verified");
    assert_eq!(verified["verified_by"], "dns");
    assert_eq!(
        app.get(&app.admin, &format!("/domains/{id}"))
            .await
            .expect(200)["status"],
        "verified"
    );
}

#[tokio::test]
async fn a_file_served_over_http_verifies_a_domain() {
    let (app, dns, web) = world().await;
    let domain = register(&app, "blog.example.org").await;
    let id = domain["id"].as_str().unwrap();
    dns.a("blog.example.org", Ipv4Addr::LOCALHOST);
    web.serve(&format!(
        "{}\n",
        domain["verification"]["http"]["body"].as_str().unwrap()
    ));
    let verified = app
        .post(&app.admin, &format!("/domains/{id}/verify"), json!({}))
        .await
        .expect(200);
    assert_eq!(verified["status"], "verified");
    assert_eq!(verified["verified_by"], "http");
}

#[tokio::test]
async fn a_missing_proof_fails_with_the_reason_and_can_be_retried() {
    let (app, dns, web) = world().await;
    let domain = register(&app, "shop.example.com").await;
    let id = domain["id"].as_str().unwrap();
    dns.a("shop.example.com", Ipv4Addr::LOCALHOST);
    web.serve("not the token");
    let failed = app
        .post(&app.admin, &format!("/domains/{id}/verify"), json!({}))
        .await;
    let detail = failed.body["detail"].as_str().unwrap().to_owned();
    failed.problem(422, "domain_verification_failed");
    assert!(
        detail.contains("_upzento-verification.shop.example.com"),
        "{detail}"
    );
    assert!(
        detail.contains("does not contain the verification token"),
        "{detail}"
    );

    let stored = app
        .get(&app.admin, &format!("/domains/{id}"))
        .await
        .expect(200);
    assert_eq!(stored["status"], "failed");
    assert_eq!(stored["failure_reason"], detail);

    web.serve(domain["verification"]["http"]["body"].as_str().unwrap());
    let verified = app
        .post(&app.admin, &format!("/domains/{id}/verify"), json!({}))
        .await
        .expect(200);
    assert_eq!(verified["status"], "verified");
    assert_eq!(verified["failure_reason"], Value::Null);
    assert_eq!(
        app.event_types("Domain", &app.admin.tenant_id, id).await,
        [
            "DomainRegistered",
            "VerificationTokenIssued",
            "DomainVerificationFailed",
            "DomainVerified"
        ]
    );
}

#[tokio::test]
async fn the_http_proof_is_never_fetched_from_a_private_address_unless_allowed() {
    let (app, dns, web) = world_allowing_private_targets(false).await;

    let domain = register(&app, "intranet.example.com").await;
    dns.a("intranet.example.com", Ipv4Addr::LOCALHOST);
    web.serve(domain["verification"]["http"]["body"].as_str().unwrap());
    let failed = app
        .post(
            &app.admin,
            &format!("/domains/{}/verify", domain["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    let detail = failed.body["detail"].as_str().unwrap().to_owned();
    failed.problem(422, "domain_verification_failed");
    assert!(detail.contains("no public address"), "{detail}");
}

#[tokio::test]
async fn a_revoked_domain_is_gone() {
    let (app, _, _) = world().await;
    let domain = register(&app, "shop.example.com").await;
    let path = format!("/domains/{}", domain["id"].as_str().unwrap());
    app.call(&app.admin, Method::DELETE, &path, None)
        .await
        .expect(204);
    app.get(&app.admin, &path)
        .await
        .problem(404, "domain_not_found");
    app.call(&app.admin, Method::DELETE, &path, None)
        .await
        .problem(404, "domain_not_found");
    assert_eq!(app.get(&app.admin, "/domains").await.expect(200), json!([]));
    register(&app, "shop.example.com").await;
}
