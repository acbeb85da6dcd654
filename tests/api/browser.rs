//! The website channel in a real browser: Debian's headless Chromium, driven through
//! chromedriver (WebDriver), on a customer's page served from a domain verified through
//! the real flow. Chromium resolves the site's names to 127.0.0.1 (`--host-resolver-rules`).
//! Screenshots of the three display types go to `docs/images/`.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::{Value, json};

use crate::chromium::{Browser, PATIENCE, STRANGER};
use crate::realtime::{Socket, agent_socket, event, next_where, send, typing};
use crate::website::{SITE, Website, website};

/// What the visitor types: it must show as text.
const ATTACK: &str = "<img src=x onerror=alert(1)>";

/// A page of the site with the widget's snippet, and `extra` markup before it.
pub fn page(site: &Website, snippet: &str, path: &str, extra: &str) -> String {
    let html = format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Shop</title>\
         <style>button {{ background: red !important; font-size: 40px !important }}</style>\
         </head><body><h1>The shop</h1><p>Products and prices.</p>{extra}{snippet}</body></html>"
    );
    site.web.page(path, &html);
    format!("http://{SITE}:{}{path}", site.web_port)
}

pub async fn snippet(site: &Website, widget: &str) -> String {
    site.app
        .get(&site.app.admin, &format!("/widgets/{widget}/embed-code"))
        .await
        .expect(200)["html"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits until the inbox lists the conversation of a message with `content`, and answers it.
async fn in_inbox(site: &Website, content: &str) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let listed = site
            .app
            .get(&site.app.admin, "/conversations?source=web")
            .await
            .expect(200);
        if let Some(found) = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["last_message_preview"] == content)
        {
            return found.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "`{content}` reaches the inbox"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn reply(site: &Website, conversation: &str, content: &str) -> String {
    site.app
        .post(
            &site.app.admin,
            &format!("/conversations/{conversation}/messages"),
            json!({"content": content, "message_type": "outgoing"}),
        )
        .await
        .expect(201)["message_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn ready(site: &Website) -> Socket {
    let mut agent = agent_socket(&site.app.address, &site.app.admin, None).await;
    next_where(&mut agent, |m| m["type"] == "ready").await;
    agent
}

#[tokio::test]
async fn a_visitor_and_an_agent_chat_through_the_floating_widget_in_a_real_browser() {
    let site = website(json!({
        "display_type": "floating_button", "brand_color": "#0b6e4f",
        "greeting_title": "Hi from the shop", "greeting_message": "We reply in minutes."
    }))
    .await;
    let browser = Browser::start().await;
    let mut agent = ready(&site).await;
    let code = snippet(&site, &site.widget_id()).await;
    browser
        .client
        .goto(&page(&site, &code, "/floating", ""))
        .await
        .unwrap();

    let launcher = browser.widget(".launcher").await;
    let background = launcher.css_value("background-color").await.unwrap();
    assert_eq!(
        background, "rgba(11, 110, 79, 1)",
        "the page's CSS does not reach the widget"
    );
    launcher.click().await.unwrap();
    browser
        .until(
            "the panel opens",
            "root && !root.querySelector('.panel').hidden",
        )
        .await;
    let title = browser.widget("header h2").await.text().await.unwrap();
    assert_eq!(title, "Hi from the shop");

    browser.say(ATTACK).await;
    let conversation = in_inbox(&site, ATTACK).await;
    assert_eq!(conversation["unread_count"], 1);
    let conversation_id = conversation["id"].as_str().unwrap().to_owned();
    browser
        .until(
            "the visitor's message shows as text",
            &format!("root.querySelector('.msg.visitor')?.textContent === {ATTACK:?}"),
        )
        .await;
    browser
        .until(
            "no element came from the message",
            "!root.querySelector('.log img')",
        )
        .await;
    assert!(
        browser.client.get_alert_text().await.is_err(),
        "no script ran"
    );

    // Typing, both ways.
    browser
        .widget("textarea")
        .await
        .send_keys("Also")
        .await
        .unwrap();
    let visitor_typing = next_where(&mut agent, typing(true)).await;
    assert_eq!(visitor_typing["who"], "visitor");
    assert_eq!(visitor_typing["conversation_id"], conversation_id.as_str());
    next_where(&mut agent, typing(false)).await;
    send(
        &mut agent,
        json!({"type": "typing", "conversation_id": conversation_id, "on": true}),
    )
    .await;
    browser
        .until(
            "the team's typing shows",
            "root.querySelector('.typing').textContent.length > 0",
        )
        .await;
    send(
        &mut agent,
        json!({"type": "typing", "conversation_id": conversation_id, "on": false}),
    )
    .await;
    browser
        .until(
            "the team's typing clears",
            "root.querySelector('.typing').textContent === ''",
        )
        .await;

    let answer = format!("We got it: {ATTACK}");
    let reply_id = reply(&site, &conversation_id, &answer).await;
    browser
        .until(
            "the reply appears without a reload",
            &format!("root.querySelector('.msg.team')?.textContent === {answer:?}"),
        )
        .await;
    for status in ["delivered", "read"] {
        let changed = next_where(&mut agent, move |m| {
            event("MessageStatusChanged")(m) && m["data"]["status"] == status
        })
        .await;
        assert_eq!(changed["data"]["message_id"], reply_id.as_str());
    }
    site.app
        .post(
            &site.app.admin,
            &format!("/conversations/{conversation_id}/read"),
            json!({}),
        )
        .await
        .expect(200);
    browser
        .until(
            "the visitor sees that the team read it",
            "root.querySelector('.meta').textContent === 'Seen'",
        )
        .await;
    browser.screenshot("widget-floating-button").await;
}

#[tokio::test]
async fn the_embedded_and_popup_widgets_render_and_take_a_message_and_an_unverified_site_shows_nothing()
 {
    let site =
        website(json!({"display_type": "embedded", "theme": "dark", "pre_chat_form": true})).await;
    let browser = Browser::start().await;

    let embedded = snippet(&site, &site.widget_id()).await;
    let target = "<div data-upzento-widget style='width:380px;height:520px'></div>";
    browser
        .client
        .goto(&page(&site, &embedded, "/embedded", target))
        .await
        .unwrap();
    browser
        .until(
            "the panel renders inline",
            "root && root.querySelector('.panel.inline')",
        )
        .await;
    browser
        .widget("input[name=name]")
        .await
        .send_keys("Ada")
        .await
        .unwrap();
    browser
        .widget("input[name=email]")
        .await
        .send_keys("ada@example.com")
        .await
        .unwrap();
    browser.say("Embedded hello").await;
    let conversation = in_inbox(&site, "Embedded hello").await;
    assert_eq!(conversation["contact_name"], "Ada");
    assert_eq!(conversation["contact_email"], "ada@example.com");
    browser.screenshot("widget-embedded").await;

    let popup = site
        .new_widget(
        json!({"name": "Popup", "display_type": "popup", "popup_delay_seconds": 1, "theme": "light",
               "position": "bottom_left", "greeting_title": "Need help?"}),
    )
    .await;
    let popup_snippet = snippet(&site, popup["id"].as_str().unwrap()).await;
    let url = page(&site, &popup_snippet, "/popup", "");
    browser.client.goto(&url).await.unwrap();
    browser
        .until(
            "the popup opens by itself",
            "root && !root.querySelector('.panel').hidden",
        )
        .await;
    browser.say("Popup hello").await;
    in_inbox(&site, "Popup hello").await;
    browser.screenshot("widget-popup").await;
    browser.widget(".close").await.click().await.unwrap();
    browser.client.goto(&url).await.unwrap();
    browser.widget(".launcher").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    browser
        .until(
            "a closed popup stays closed",
            "root.querySelector('.panel').hidden",
        )
        .await;
    browser
        .client
        .execute("window.Upzento.open()", vec![])
        .await
        .unwrap();
    browser
        .until(
            "Upzento.open() opens it",
            "!root.querySelector('.panel').hidden",
        )
        .await;

    let stranger = format!("http://{STRANGER}:{}/floating", site.web_port);
    site.web.page(
        "/floating",
        &format!("<!doctype html><body><h1>Not the shop</h1>{embedded}</body>"),
    );
    browser.client.goto(&stranger).await.unwrap();
    let tried =
        "return performance.getEntriesByType('resource').some(e => e.name.endsWith('/sessions'))";
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while browser.client.execute(tried, vec![]).await.unwrap() != Value::Bool(true) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the widget asks for a session"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hosts = browser
        .client
        .find_all(Locator::Css("[data-upzento-host]"))
        .await
        .unwrap();
    assert!(hosts.is_empty(), "no widget on a site that is not verified");
    let refused = site
        .visitor_call(
            reqwest::Method::POST,
            "/sessions",
            Some(&format!("http://{STRANGER}:{}", site.web_port)),
            None,
            Some(json!({})),
        )
        .await;
    refused.problem(403, "origin_not_allowed");
}
