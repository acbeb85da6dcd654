//! Debian's headless Chromium driven through chromedriver (WebDriver), for the browser
//! tests of the widget and the console. Chromium resolves the test sites' names to 127.0.0.1
//! (`--host-resolver-rules`).

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::helpers::{free_port, workspace_root};
use crate::website::SITE;

/// A site that never verified anything, on the same web server.
pub const STRANGER: &str = "shop.example.net";
/// How long a browser test waits for something to show.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// chromedriver and the browser session it runs; both end with the value, and the
/// browser's profile directory goes with them.
pub struct Browser {
    driver: Child,
    pub client: Client,
    profile: std::path::PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver leads a process group of its own, with the browser's processes in it:
        // killing the group ends them all, even when a test failed before closing the session.
        let group = nix::unistd::Pid::from_raw(self.driver.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Browser {
    /// A browser with a 1280×800 window.
    pub async fn start() -> Self {
        Self::sized(1280, 800).await
    }

    /// A browser whose window is `width` × `height` CSS pixels.
    pub async fn sized(width: u32, height: u32) -> Self {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (.ci/run installs chromium-driver)");
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile =
            std::env::temp_dir().join(format!("upzento-chromium-{}", uuid::Uuid::new_v4()));
        let mut options = json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows",
                format!("--window-size={},{}", width.max(800), height + 200),
                format!("--user-data-dir={}", profile.display()),
                format!("--host-resolver-rules=MAP {SITE} 127.0.0.1, MAP {STRANGER} 127.0.0.1"),
            ]
        });
        // The page's viewport is exactly width × height (a window cannot be narrower than
        // about 500 pixels); under 700 pixels it is a phone: touch, mobile viewport rules.
        let phone = width < 700;
        options["mobileEmulation"] = json!({"deviceMetrics": {
            "width": width, "height": height, "pixelRatio": 1.0, "mobile": phone, "touch": phone
        }});
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a browser session starts");
        Self {
            driver,
            client,
            profile,
        }
    }

    /// The widget's shadow root's element matching `css`, once it exists.
    pub async fn widget(&self, css: &str) -> Element {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(host) = self.client.find(Locator::Css("[data-upzento-host]")).await
                && let Ok(root) = host.shadow_root().await
                && let Ok(found) = root.find(Locator::Css(css)).await
            {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the widget shows `{css}`"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Evaluates `expression` in the page until it is true.
    pub async fn until(&self, what: &str, expression: &str) {
        let script = format!(
            "const root = document.querySelector('[data-upzento-host]')?.shadowRoot; return !!({expression});"
        );
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.client.execute(&script, vec![]).await.unwrap() != Value::Bool(true) {
            assert!(tokio::time::Instant::now() < deadline, "in time: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = workspace_root().join("docs/images");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Types a message into the widget and sends it with Enter.
    pub async fn say(&self, text: &str) {
        let input = self.widget("textarea").await;
        input.send_keys(text).await.unwrap();
        input.send_keys("\u{E007}").await.unwrap();
    }
}

impl Browser {
    /// Evaluates `expression` in the page (not in the widget) until it is true.
    pub async fn page_until(&self, what: &str, expression: &str) {
        let script = format!("return !!({expression});");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.client.execute(&script, vec![]).await.unwrap() != Value::Bool(true) {
            if tokio::time::Instant::now() >= deadline {
                let shown = self
                    .client
                    .execute("return document.body.innerText.slice(0, 3000)", vec![])
                    .await
                    .unwrap_or_default();
                panic!(
                    "not in time: {what}; the page shows:\n{}",
                    shown.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Loads `url`.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Types `text` into the element matching `css` (`\u{E007}` is Enter).
    pub async fn type_into(&self, css: &str, text: &str) {
        self.act_on(css, |element| async move { element.send_keys(text).await })
            .await;
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        self.act_on(css, |element| async move { element.click().await })
            .await;
    }

    /// Empties the field matching `css`.
    pub async fn clear(&self, css: &str) {
        self.act_on(css, |element| async move { element.clear().await })
            .await;
    }

    /// Chooses the option with `value` in the `select` matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.act_on(css, |element| async move {
            element.select_by_value(value).await
        })
        .await;
    }

    /// Does `act` to the element matching `css`. A live repaint can replace the element
    /// between finding it and acting on it; a person would act on the one now shown, so a
    /// stale element is found again.
    async fn act_on<F, Fut>(&self, css: &str, act: F)
    where
        F: Fn(Element) -> Fut,
        Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>>,
    {
        for _ in 0..5 {
            match act(self.find(css).await).await {
                Err(fantoccini::error::CmdError::Standard(error))
                    if error.error == fantoccini::error::ErrorStatus::StaleElementReference => {}
                done => return done.unwrap(),
            }
        }
        panic!("`{css}` kept being replaced");
    }

    /// The element matching `css` in the page, once it exists.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|_| panic!("the page shows `{css}`"))
    }

    /// The serious and critical accessibility violations axe-core finds in the page, as
    /// `rule: nodes` lines. axe-core comes from npm (`tests/browser/package.json`).
    pub async fn accessibility_violations(&self) -> Vec<String> {
        static AXE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let axe = AXE.get_or_init(|| {
            std::fs::read_to_string(
                workspace_root().join("tests/browser/node_modules/axe-core/axe.min.js"),
            )
            .expect("axe-core is installed (`npm ci --prefix tests/browser`, done by .ci/run)")
        });
        self.client.execute(axe, vec![]).await.unwrap();
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, {resultTypes: ['violations']})\
                   .then(r => done(r.violations\
                     .filter(v => v.impact === 'serious' || v.impact === 'critical')\
                     .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))))\
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .unwrap();
        serde_json::from_value(found).unwrap()
    }
}
