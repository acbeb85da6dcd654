//! Widgets: settings, the verified-domains rule, enabling, deleting and the embed snippet.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, free_port, serve_args, spawn_app_with};
use crate::stand_ins::DnsServer;

/// A server with one verified domain; answers it and the domain's id.
async fn with_verified_domain() -> (TestApp, String) {
    let (dns, dns_address) = DnsServer::start().await;
    let mut args = serve_args();
    args.dns_resolver = Some(dns_address);
    args.proof_http_port = free_port();
    args.proof_https_port = free_port();
    let app = spawn_app_with(args).await;
    let domain = app
        .post(
            &app.admin,
            "/domains",
            json!({"hostname": "shop.example.com"}),
        )
        .await
        .expect(201);
    dns.txt(
        domain["verification"]["dns"]["name"].as_str().unwrap(),
        domain["verification"]["dns"]["value"].as_str().unwrap(),
    );
    let id = domain["id"].as_str().unwrap().to_owned();
    app.post(&app.admin, &format!("/domains/{id}/verify"), json!({}))
        .await
        .expect(200);
    (app, id)
}

#[tokio::test]
async fn an_admin_creates_configures_and_embeds_a_widget() {
    let (app, domain) = with_verified_domain().await;
    let widget = app
        .post(
            &app.admin,
            "/widgets",
            json!({"name": "Support", "display_type": "popup", "theme": "dark", "position": "bottom_left",
                   "brand_color": "#FA0", "greeting_title": "Hi!", "allowed_domains": [domain]}),
        )
        .await
        .expect(201);
    assert_eq!(widget["brand_color"], "#ffaa00");
    assert_eq!(widget["display_type"], "popup");
    assert_eq!(widget["allowed_domains"], json!([domain]));
    assert_eq!(widget["enabled"], true);
    let id = widget["id"].as_str().unwrap();
    let path = format!("/widgets/{id}");

    let updated = app
        .call(
            &app.admin,
            Method::PATCH,
            &path,
            Some(json!({"theme": "light", "greeting_title": null, "offline_message": "Back soon"})),
        )
        .await
        .expect(200);
    assert_eq!(updated["theme"], "light");
    assert_eq!(updated["greeting_title"], serde_json::Value::Null);
    assert_eq!(updated["offline_message"], "Back soon");
    assert_eq!(updated["display_type"], "popup", "untouched settings stay");

    let disabled = app
        .call(
            &app.admin,
            Method::PATCH,
            &path,
            Some(json!({"enabled": false})),
        )
        .await
        .expect(200);
    assert_eq!(disabled["enabled"], false);
    assert_eq!(app.get(&app.admin, &path).await.expect(200), disabled);
    assert_eq!(
        disabled["greeting_title"],
        serde_json::Value::Null,
        "a cleared text stays cleared"
    );
    assert_eq!(disabled["offline_message"], "Back soon");

    let snippet = app
        .get(&app.admin, &format!("{path}/embed-code"))
        .await
        .expect(200);
    let html = snippet["html"].as_str().unwrap();
    assert_eq!(
        html,
        format!(
            r#"<script async src="{}/widget.js" data-upzento-key="{}"></script>"#,
            app.address,
            widget["public_key"].as_str().unwrap()
        )
    );
    assert_eq!(
        app.get(&app.admin, "/widgets").await.expect(200),
        json!([disabled])
    );
    assert_eq!(
        app.event_types("Widget", &app.admin.tenant_id, id).await,
        ["WidgetCreated", "WidgetSettingsUpdated", "WidgetDisabled"]
    );
}

#[tokio::test]
async fn a_widget_may_only_list_verified_domains_of_its_tenant() {
    let (app, verified) = with_verified_domain().await;
    let pending = app
        .post(
            &app.admin,
            "/domains",
            json!({"hostname": "new.example.com"}),
        )
        .await
        .expect(201);
    let field = app
        .post(
            &app.admin,
            "/widgets",
            json!({"name": "W", "allowed_domains": [verified, pending["id"]]}),
        )
        .await
        .problem(422, "domain_not_verified");
    assert_eq!(field.as_deref(), Some("allowed_domains"));

    let other = app.new_tenant("Globex").await;
    app.post(
        &other,
        "/widgets",
        json!({"name": "W", "allowed_domains": [verified]}),
    )
    .await
    .problem(422, "domain_not_verified");

    let widget = app
        .post(&app.admin, "/widgets", json!({"name": "W"}))
        .await
        .expect(201);
    let path = format!("/widgets/{}", widget["id"].as_str().unwrap());
    app.call(
        &app.admin,
        Method::PATCH,
        &path,
        Some(json!({"allowed_domains": [pending["id"]]})),
    )
    .await
    .problem(422, "domain_not_verified");
    let updated = app
        .call(
            &app.admin,
            Method::PATCH,
            &path,
            Some(json!({"allowed_domains": [verified]})),
        )
        .await
        .expect(200);
    assert_eq!(updated["allowed_domains"], json!([verified]));
}

#[tokio::test]
async fn a_deleted_widget_is_gone() {
    let (app, _) = with_verified_domain().await;
    let widget = app
        .post(&app.admin, "/widgets", json!({"name": "W"}))
        .await
        .expect(201);
    let path = format!("/widgets/{}", widget["id"].as_str().unwrap());
    app.call(&app.admin, Method::DELETE, &path, None)
        .await
        .expect(204);
    app.get(&app.admin, &path)
        .await
        .problem(404, "widget_not_found");
    app.get(&app.admin, &format!("{path}/embed-code"))
        .await
        .problem(404, "widget_not_found");
    app.call(&app.admin, Method::PATCH, &path, Some(json!({"name": "X"})))
        .await
        .problem(404, "widget_not_found");
    assert_eq!(app.get(&app.admin, "/widgets").await.expect(200), json!([]));
}
