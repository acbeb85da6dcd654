//! The agent console at `/app`, in headless Chromium against the real server: sign-in, the
//! inbox with counts, filters and search, a visitor's message arriving live through the real
//! widget, replying, assignment, status, labels and notes showing live in a second agent's
//! browser, the widgets and domains pages, and an accessibility check with axe-core. Run at
//! a desktop and a phone size; screenshots go to `docs/images/console-*.png`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{page, snippet};
use crate::chromium::Browser;
use crate::helpers::{Caller, TestApp};
use crate::website::{SITE, Website, website};

const PASSWORD: &str = "correct horse battery staple";
/// A message with markup in it: the console must show it as text.
const PARCEL: &str = "Where is my parcel? <img src=x onerror=alert(1)>";

#[tokio::test]
async fn the_console_works_end_to_end_on_a_desktop() {
    console_at(1440, 900, "desktop").await;
}

#[tokio::test]
async fn the_console_works_end_to_end_on_a_phone() {
    console_at(390, 844, "phone").await;
}

async fn console_at(width: u32, height: u32, size: &str) {
    let phone = width < 700;
    let site = website(json!({"greeting_title": "Hi from the shop"})).await;
    let app = &site.app;
    set_password(app, &app.admin).await;
    let bea = app.new_agent(&app.admin, "bea@example.com", "agent").await;
    set_password(app, &bea).await;
    let invoice = conversation(app, "Cia Park", "Invoice question").await;
    app.post(
        &app.admin,
        &format!("/conversations/{invoice}/labels"),
        json!({"label": "billing"}),
    )
    .await
    .expect(200);
    conversation(app, "Dan Lee", PARCEL).await;

    // Signing in; the inbox shows its counts and conversations.
    let ann = Browser::sized(width, height).await;
    sign_in(&ann, app, "admin@example.com").await;
    ann.page_until("the All view counts both", &count("all", 2))
        .await;
    ann.page_until("the list shows both", &rows(2)).await;
    assert_eq!(texts(&ann, ".conv .contact").await, ["Dan Lee", "Cia Park"]);
    assert_eq!(
        texts(&ann, ".conv .preview").await,
        [PARCEL, "Invoice question"]
    );
    assert!(
        texts(&ann, ".conv img").await.is_empty(),
        "content stays text"
    );
    ann.screenshot(&format!("console-inbox-{size}")).await;
    assert_accessible(&ann, "the inbox").await;

    // Filters and search narrow the list.
    if phone {
        ann.click(".filters summary").await;
    }
    ann.type_into("input[name=label]", "billing\u{E007}").await;
    ann.page_until("the label filter narrows the list", &rows(1))
        .await;
    assert_eq!(texts(&ann, ".conv .contact").await, ["Cia Park"]);
    ann.clear("input[name=label]").await;
    ann.type_into("input[name=label]", "\u{E007}").await;
    ann.page_until("clearing the filter shows both", &rows(2))
        .await;
    ann.type_into("input[name=q]", "parcel").await;
    ann.page_until("search narrows the list", &rows(1)).await;
    assert_eq!(texts(&ann, ".conv .contact").await, ["Dan Lee"]);
    ann.clear("input[name=q]").await;
    ann.type_into("input[name=q]", " ").await;
    ann.page_until("clearing the search shows both", &rows(2))
        .await;

    // A visitor writes through the widget: the message appears live, with an unread badge.
    let visitor = Browser::start().await;
    let code = snippet(&site, &site.widget_id()).await;
    visitor.open(&page(&site, &code, "/shop", "")).await;
    visitor.widget(".launcher").await.click().await.unwrap();
    visitor.say("Hello from the widget").await;
    let live_row = "[...document.querySelectorAll('.conv')].find(c => \
        c.querySelector('.preview').textContent === 'Hello from the widget' \
        && c.querySelector('.badge')?.firstChild.textContent === '1')";
    ann.page_until(
        "the visitor's message arrives live with an unread badge",
        live_row,
    )
    .await;
    let id = ann
        .client
        .execute(&format!("return {live_row}.dataset.id"), vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    ann.click(&format!(".conv[data-id='{id}']")).await;
    ann.page_until("the conversation opens", "document.querySelector('.msg.incoming .msg-text')?.textContent === 'Hello from the widget'")
        .await;

    // A second agent follows the same conversation.
    let second = Browser::sized(width, height).await;
    sign_in(&second, app, "bea@example.com").await;
    second
        .open(&format!("{}/app#/inbox/c/{id}", app.address))
        .await;
    second
        .page_until(
            "Bea sees the conversation",
            "document.querySelector('.msg.incoming')",
        )
        .await;
    ann.page_until(
        "Ann sees that Bea is viewing",
        "document.querySelector('.presence').textContent.includes('bea@example.com')",
    )
    .await;

    // The visitor types; the agent sees it, replies, and the widget shows the reply.
    visitor
        .widget("textarea")
        .await
        .send_keys("Also")
        .await
        .unwrap();
    ann.page_until(
        "the visitor's typing shows",
        "document.querySelector('.presence').textContent.includes('The contact is typing')",
    )
    .await;
    ann.type_into(".composer textarea", "Thanks, we are on it\u{E007}")
        .await;
    visitor
        .until(
            "the reply reaches the widget",
            "root.querySelector('.msg.team')?.textContent === 'Thanks, we are on it'",
        )
        .await;
    ann.page_until(
        "the reply is marked read once the visitor saw it",
        "document.querySelector('.msg.outgoing .ticks')?.dataset.status === 'read'",
    )
    .await;
    ann.screenshot(&format!("console-conversation-{size}"))
        .await;
    assert_accessible(&ann, "the conversation view").await;
    if !phone {
        // The dark theme (auto → light → dark) is checked from here on at this size.
        for _ in 0..2 {
            ann.click(".topbar button.theme").await;
        }
        ann.page_until(
            "the dark theme is on",
            "document.documentElement.dataset.theme === 'dark'",
        )
        .await;
        ann.screenshot("console-conversation-dark-desktop").await;
        assert_accessible(&ann, "the conversation view in the dark theme").await;
    }

    // Assignment, status, labels and a private note show live in Bea's browser.
    ann.select("select[name=assignee]", &bea.agent_id).await;
    second
        .page_until("the assignment shows live", "[...document.querySelectorAll('.system')].some(l => l.textContent.includes('assigned it to bea@example.com'))")
        .await;
    ann.select("select[name=status]", "pending").await;
    second
        .page_until(
            "the status shows live",
            "document.querySelector('.conv-subtitle').textContent.includes('pending')",
        )
        .await;
    ann.type_into("input[name=new_label]", "vip").await;
    ann.click(".add-label button").await;
    second
        .page_until("the label shows live", "[...document.querySelectorAll('.labels .label')].some(l => l.textContent.startsWith('vip'))")
        .await;
    ann.click("button[aria-label='Remove label vip']").await;
    second
        .page_until("the label's removal shows live", "[...document.querySelectorAll('.system')].some(l => l.textContent.includes('removed the label vip'))")
        .await;
    assert!(texts(&second, ".labels .label").await.is_empty());
    ann.click(".composer input[value=note]").await;
    ann.type_into(".composer textarea", "Check the order first\u{E007}")
        .await;
    second
        .page_until("the note shows live, set apart", "document.querySelector('.msg.note .msg-text')?.textContent === 'Check the order first'")
        .await;
    assert_eq!(
        app.get(&bea, &format!("/conversations/{id}"))
            .await
            .expect(200)["assignee_id"],
        bea.agent_id.as_str()
    );
    // A reply sent after the note reaches the widget; the note, sent before it, never does.
    app.post(
        &bea,
        &format!("/conversations/{id}/messages"),
        json!({"content": "One more thing", "message_type": "outgoing"}),
    )
    .await
    .expect(201);
    visitor
        .until(
            "the later reply reaches the widget",
            "[...root.querySelectorAll('.msg')].some(m => m.textContent === 'One more thing')",
        )
        .await;
    visitor
        .until(
            "the note never reaches the visitor",
            "root.querySelectorAll('.msg').length === 3 \
             && ![...root.querySelectorAll('.msg')].some(m => m.textContent.includes('Check the order'))",
        )
        .await;

    if !phone {
        ann.open(&format!("{}/app#/history/{id}", app.address))
            .await;
        ann.page_until("the history lists the events with their actors", "[...document.querySelectorAll('.history tbody tr')].some(r => r.textContent.includes('ConversationAssigned') && r.textContent.includes('Administrator'))")
            .await;
    }
    widgets_page(&site, &ann, &visitor, size).await;
    domains_page(&site, &ann, size).await;
}

/// A widget made on the widgets page gives a snippet that renders on the verified site.
async fn widgets_page(site: &Website, ann: &Browser, visitor: &Browser, size: &str) {
    ann.open(&format!("{}/app#/widgets", site.app.address))
        .await;
    ann.click(".page-head button.primary").await;
    ann.type_into(".widget-form input[name=name]", "Console widget")
        .await;
    ann.select("select[name=position]", "bottom_left").await;
    ann.type_into("input[name=greeting_title]", "Made in the console")
        .await;
    ann.page_until("the preview follows the form", "document.querySelector('.widget-preview.left .preview-header strong').textContent === 'Made in the console'")
        .await;
    ann.click("input[name=allowed_domains]").await;
    ann.click(".widget-form button[type=submit]").await;
    ann.page_until(
        "the embed snippet shows",
        "document.querySelector('textarea.snippet')?.value.includes('data-upzento-key')",
    )
    .await;
    ann.client
        .execute("window.scrollTo(0, 0)", vec![])
        .await
        .unwrap();
    ann.screenshot(&format!("console-widgets-{size}")).await;
    assert_accessible(ann, "the widgets page").await;
    let code = ann
        .client
        .execute(
            "return document.querySelector('textarea.snippet').value",
            vec![],
        )
        .await
        .unwrap();
    visitor
        .open(&page(site, code.as_str().unwrap(), "/made-in-console", ""))
        .await;
    visitor.widget(".launcher").await.click().await.unwrap();
    let title = visitor.widget("header h2").await.text().await.unwrap();
    assert_eq!(title, "Made in the console");
}

/// A domain added on the domains page is verified there once its DNS record exists.
async fn domains_page(site: &Website, ann: &Browser, size: &str) {
    ann.open(&format!("{}/app#/domains", site.app.address))
        .await;
    ann.type_into("input[name=hostname]", "help.example.com\u{E007}")
        .await;
    let card = ".domain[data-hostname='help.example.com']";
    ann.page_until(
        "the new domain shows what to publish",
        &format!("document.querySelector(\"{card} .proof code\")"),
    )
    .await;
    let record = ann
        .client
        .execute(&format!("return [...document.querySelectorAll(\"{card} .proof dl:first-of-type code\")].map(c => c.textContent)"), vec![])
        .await
        .unwrap();
    let record: Vec<String> = serde_json::from_value(record).unwrap();
    assert_eq!(record[0], "_upzento-verification.help.example.com");
    assert_eq!(record[1], "TXT");
    ann.click(&format!("{card} button.primary")).await;
    ann.page_until(
        "a failed verification says why",
        &format!(
            "document.querySelector(\"{card} .error\")?.textContent.startsWith('Why it failed')"
        ),
    )
    .await;
    ann.screenshot(&format!("console-domains-{size}")).await;
    assert_accessible(ann, "the domains page").await;
    site.dns.txt(&record[0], &record[2]);
    ann.click(&format!("{card} button.primary")).await;
    ann.page_until(
        "the domain is verified",
        &format!("document.querySelector(\"{card} .status\")?.textContent.startsWith('Verified')"),
    )
    .await;
    let domains = site.app.get(&site.app.admin, "/domains").await.expect(200);
    let help = domains
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["hostname"] == "help.example.com")
        .unwrap();
    assert_eq!(help["status"], "verified");
    assert!(
        domains
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["hostname"] == SITE)
    );
}

pub async fn set_password(app: &TestApp, agent: &Caller) {
    let answer = app
        .call(
            &app.admin,
            Method::PUT,
            &format!("/agents/{}/password", agent.agent_id),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(answer.status, 204, "{:?}", answer.body);
}

async fn conversation(app: &TestApp, name: &str, text: &str) -> String {
    let id = app
        .created_id(
            &app.admin,
            "/conversations",
            json!({"source": "api", "contact": {"name": name}}),
        )
        .await;
    app.post(
        &app.admin,
        &format!("/conversations/{id}/messages"),
        json!({"content": text, "message_type": "incoming"}),
    )
    .await
    .expect(201);
    id
}

pub async fn sign_in(browser: &Browser, app: &TestApp, email: &str) {
    browser.open(&format!("{}/app", app.address)).await;
    browser.type_into("input[name=email]", email).await;
    browser.type_into("input[name=password]", PASSWORD).await;
    browser.click("form.signin button[type=submit]").await;
    browser
        .page_until(
            "the console opens after signing in",
            "document.querySelector('.topbar')",
        )
        .await;
}

fn count(view: &str, n: usize) -> String {
    format!("document.querySelector('.count[data-view={view}]')?.textContent === '{n}'")
}

fn rows(n: usize) -> String {
    format!("document.querySelectorAll('.conv').length === {n}")
}

async fn texts(browser: &Browser, css: &str) -> Vec<String> {
    let found: Value = browser
        .client
        .execute(
            &format!("return [...document.querySelectorAll({css:?})].map(e => e.textContent)"),
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(found).unwrap()
}

async fn assert_accessible(browser: &Browser, what: &str) {
    let violations = browser.accessibility_violations().await;
    assert!(
        violations.is_empty(),
        "{what} has serious accessibility violations: {violations:#?}"
    );
}

#[tokio::test]
async fn an_admin_invites_an_agent_on_the_agents_page_and_the_link_signs_them_in() {
    let site = website(json!({})).await;
    let app = &site.app;
    set_password(app, &app.admin).await;
    let admin = Browser::sized(1440, 900).await;
    sign_in(&admin, app, "admin@example.com").await;
    admin.open(&format!("{}/app#/agents", app.address)).await;
    admin.type_into("input[name=name]", "Cy").await;
    admin.type_into("input[name=email]", "cy@example.com").await;
    admin.click("form.inline-form button.primary").await;
    admin
        .page_until(
            "the invitation link shows",
            "document.querySelector('input[name=invitation_link]')?.value.includes('#/invite/')",
        )
        .await;
    admin
        .page_until("the new agent is listed as invited", "[...document.querySelectorAll('table.agents tr')].some(r => r.textContent.includes('cy@example.com') && r.textContent.includes('Invited'))")
        .await;
    assert_accessible(&admin, "the agents page").await;
    let link = admin
        .client
        .execute(
            "return document.querySelector('input[name=invitation_link]').value",
            vec![],
        )
        .await
        .unwrap();

    let invited = Browser::sized(390, 844).await;
    invited.open(link.as_str().unwrap()).await;
    invited
        .type_into("input[name=password]", "a long enough password\u{E007}")
        .await;
    invited
        .page_until(
            "the invitation signs the agent in",
            "document.querySelector('.topbar') && document.querySelector('.conversations')",
        )
        .await;
    let agents = app.get(&app.admin, "/agents").await.expect(200);
    let cy = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["email"] == "cy@example.com")
        .unwrap();
    assert_eq!(cy["role"], "agent");
    assert_eq!(cy["has_password"], true);
}
