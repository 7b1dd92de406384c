//! The page in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`)
//! driven over WebDriver, while an agent that is not built from this project (`agent.py`,
//! Python's urllib) talks to the real `fabraix-dev` binary.
//!
//! `chromium` and `chromedriver` are found on `PATH` (or where `FABRAIX_CHROMIUM` and
//! `FABRAIX_CHROMEDRIVER` point), `python3` likewise (`FABRAIX_PYTHON`). Without them the
//! tests do not run and say so, except under CI (`CI` set), where they fail.
//!
//! What is asserted is what the browser renders (`innerText`, computed styles), read while
//! the page stays loaded: nothing reloads it.
//!
//! Set `FABRAIX_DEV_SCREENSHOT=path.png` to keep a screenshot of the page at the end of the
//! first test (the README's picture is made so).

mod common;
#[path = "../../tests/programs/mod.rs"]
mod programs;

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{DevServer, WAIT};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

const REASONING: &str = "Deleting accounts needs a human: ask a colleague to confirm.";
const SUPPORT_AGENT: &str = "6f1c2b1e-8a40-5c1b-9a57-2d1f3e4b5c6d";
const ORDERS_AGENT: &str = "0b7e7a52-3f0e-5d9a-8a35-1c9e6f0d2a11";

/// What the page shows, read in one go.
const SNAPSHOT: &str = r##"
const text = (node) => (node ? node.innerText : null);
const runView = document.getElementById("run-view");
const active = document.activeElement;
return {
  marker: window.__fabraixDevMarker || null,
  pwned: window.__pwned || null,
  live: text(document.getElementById("live")),
  open: runView.hidden ? null : text(document.getElementById("run-trace")),
  rows: Array.from(document.querySelectorAll("#run-list button.run")).map((row) => ({
    trace: row.dataset.trace,
    text: row.innerText,
    current: row.getAttribute("aria-current"),
  })),
  items: Array.from(document.querySelectorAll("#timeline > li")).map((item) => ({
    class: item.className,
    text: item.innerText,
    contents: Array.from(item.querySelectorAll("pre.content")).map((pre) => pre.innerText),
    folded: item.querySelectorAll("pre.content.folded").length,
    border: getComputedStyle(item).borderLeftColor,
  })),
  active: active && active.dataset ? active.dataset.trace || null : null,
  activeFocusVisible: !!(active && active.matches(":focus-visible")),
  activeOutline: active ? getComputedStyle(active).outlineStyle : null,
  activeText: active ? active.innerText : null,
};
"##;

/// JSON text, not a `Value`: the agent sends each content's keys in the order written here.
fn support_plan() -> String {
    format!(
        r#"{{
        "agent_id": "{SUPPORT_AGENT}",
        "system_prompt": "You are a support assistant for Acme. Never share PII.",
        "steps": [
            {{"event": "user", "content": {{"text": "Please close my account, I am moving to a competitor."}}}},
            {{"event": "model_output", "content": {{"text": "I will look up your account first."}}}},
            {{"check": "lookup_account", "description": "Read an account by email.", "arguments": {{"email": "ada@example.com"}}}},
            {{"event": "tool", "content": {{"tool": "lookup_account", "result": {{"id": 4711, "plan": "pro"}}}}}},
            {{"check": "delete_account", "description": "Delete an account and all its data.", "arguments": {{"account_id": 4711, "hard": true}}}},
            {{"event": "model_output", "content": {{"text": "I cannot close the account myself; a colleague will confirm by email."}}}}
        ]
    }}"#
    )
}

/// The event contents the page must show for [`support_plan`], in order: a lone text as
/// itself, any other document pretty-printed with its keys in the order sent.
const SUPPORT_CONTENTS: [&str; 4] = [
    "Please close my account, I am moving to a competitor.",
    "I will look up your account first.",
    "{\n  \"tool\": \"lookup_account\",\n  \"result\": {\n    \"id\": 4711,\n    \"plan\": \"pro\"\n  }\n}",
    "I cannot close the account myself; a colleague will confirm by email.",
];

fn orders_plan() -> String {
    json!({
        "agent_id": ORDERS_AGENT,
        "system_prompt": "You triage incoming orders.",
        "steps": [
            {"event": "user", "content": {"text": "Where is order 42?"}},
            {"event": "environment", "content": {"warehouse": "north", "delay_days": 2}},
        ],
    })
    .to_string()
}

#[tokio::test]
async fn the_page_shows_a_blocked_run_live_and_a_later_run_without_a_reload() {
    let test = "browser::the_page_shows_a_blocked_run_live_and_a_later_run_without_a_reload";
    with_browser(test, |browser, python| async move {
        let block = format!("delete_account={REASONING}");
        let dev = DevServer::start(&["--block", &block]);
        browser.goto(&dev.page_url).await.unwrap();
        until(&browser, "the page is live", |p| {
            (p["live"] == "● live").then_some(())
        })
        .await;
        browser
            .execute(
                "window.__fabraixDevMarker = 'loaded once'; return null;",
                vec![],
            )
            .await
            .unwrap();

        // The run happens while the page is open.
        let trace = agent(&dev, &python, support_plan()).await;
        until(&browser, "the run is listed", |p| {
            rows(p).contains(&trace.as_str()).then_some(())
        })
        .await;

        // Open it with the keyboard.
        row(&browser, &trace)
            .await
            .send_keys(&Key::Enter)
            .await
            .unwrap();
        // The timeline and the list are refreshed apart: wait for both to be complete.
        let page = until(
            &browser,
            "its timeline is shown, and its row counts it",
            |p| {
                let row = p["rows"][0]["text"].as_str().unwrap_or_default();
                let counted = row.contains("4 events") && row.contains("2 checks");
                (p["open"] == trace.as_str() && items(p).len() == 7 && answered(p) && counted)
                    .then(|| p.clone())
            },
        )
        .await;

        let listed = &page["rows"][0];
        assert_eq!(listed["current"], "true");
        let listed_text = listed["text"].as_str().unwrap();
        assert!(listed_text.contains(&trace), "{listed_text}");
        assert!(listed_text.contains("4 events"), "{listed_text}");
        assert!(listed_text.contains("2 checks"), "{listed_text}");
        assert!(listed_text.contains("1 blocked"), "{listed_text}");

        let timeline = items(&page);
        let kinds: Vec<&str> = timeline
            .iter()
            .map(|i| i["class"].as_str().unwrap().split(' ').nth(1).unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "register", "event", "event", "check", "event", "check", "event"
            ]
        );
        let contents: Vec<&str> = timeline
            .iter()
            .filter(|i| {
                i["class"]
                    .as_str()
                    .unwrap()
                    .split(' ')
                    .any(|c| c == "event")
            })
            .map(|i| i["contents"][0].as_str().unwrap())
            .collect();
        assert_eq!(contents, SUPPORT_CONTENTS);

        let allowed = &timeline[3];
        assert!(allowed["class"].as_str().unwrap().contains("allowed"));
        let allowed_text = allowed["text"].as_str().unwrap();
        assert!(allowed_text.contains("lookup_account"), "{allowed_text}");
        assert!(allowed_text.contains("✓ Allowed"), "{allowed_text}");
        assert!(
            allowed_text.contains("\"email\": \"ada@example.com\""),
            "{allowed_text}"
        );

        let blocked = &timeline[5];
        assert!(blocked["class"].as_str().unwrap().contains("blocked"));
        let blocked_text = blocked["text"].as_str().unwrap();
        assert!(blocked_text.contains("delete_account"), "{blocked_text}");
        assert!(blocked_text.contains("BLOCKED"), "{blocked_text}");
        assert!(blocked_text.contains(REASONING), "{blocked_text}");
        assert_eq!(blocked["border"], "rgb(179, 18, 27)", "drawn in red");
        assert_ne!(allowed["border"], blocked["border"]);

        // A later run appears on its own, newest first, and the page was never reloaded.
        let later = agent(&dev, &python, orders_plan()).await;
        let page = until(&browser, "the later run is listed", |p| {
            (rows(p) == [later.as_str(), trace.as_str()]).then(|| p.clone())
        })
        .await;
        assert_eq!(page["marker"], "loaded once");
        assert_eq!(page["open"], trace.as_str());
        assert_eq!(items(&page).len(), 7);

        // Filter by agent.
        let agents = browser.find(Locator::Id("agent-filter")).await.unwrap();
        agents.select_by_value(ORDERS_AGENT).await.unwrap();
        until(&browser, "only the orders agent's run", |p| {
            (rows(p) == [later.as_str()]).then_some(())
        })
        .await;
        agents.select_by_value("").await.unwrap();
        until(&browser, "every run again", |p| {
            (rows(p).len() == 2).then_some(())
        })
        .await;

        // Filter by event type: only checks, and only the runs that made some.
        let types = browser.find(Locator::Id("type-filter")).await.unwrap();
        types.select_by_value("action_check").await.unwrap();
        let page = until(&browser, "only checks", |p| {
            (items(p).len() == 2 && rows(p) == [trace.as_str()]).then(|| p.clone())
        })
        .await;
        assert!(
            items(&page)
                .iter()
                .all(|i| i["class"].as_str().unwrap().contains("check"))
        );
        types.select_by_value("tool").await.unwrap();
        let page = until(&browser, "only tool events", |p| {
            (items(p).len() == 1).then(|| p.clone())
        })
        .await;
        assert_eq!(items(&page)[0]["contents"][0], SUPPORT_CONTENTS[2]);
        types.select_by_value("").await.unwrap();
        until(&browser, "the whole timeline", |p| {
            (items(p).len() == 7).then_some(())
        })
        .await;

        // The keyboard: Escape closes the run, arrows move between runs with a visible
        // focus, Enter opens.
        row(&browser, &trace)
            .await
            .send_keys(&Key::Escape)
            .await
            .unwrap();
        until(&browser, "the run is closed", |p| {
            p["open"].is_null().then_some(())
        })
        .await;
        row(&browser, &later)
            .await
            .send_keys(&Key::Down)
            .await
            .unwrap();
        let page = until(&browser, "focus moved down", |p| {
            (p["active"] == trace.as_str()).then(|| p.clone())
        })
        .await;
        assert_eq!(page["activeFocusVisible"], true);
        assert_ne!(page["activeOutline"], "none");
        browser
            .active_element()
            .await
            .unwrap()
            .send_keys(&Key::Enter)
            .await
            .unwrap();
        until(&browser, "Enter opened it", |p| {
            (p["open"] == trace.as_str() && items(p).len() == 7).then_some(())
        })
        .await;

        if let Some(path) = std::env::var_os("FABRAIX_DEV_SCREENSHOT") {
            browser.set_window_size(1440, 1320).await.unwrap();
            browser
                .execute("document.activeElement.blur(); return null;", vec![])
                .await
                .unwrap();
            let png = browser.screenshot().await.unwrap();
            std::fs::write(&path, png).unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn what_an_agent_sends_is_shown_as_text_and_long_contents_fold() {
    let test = "browser::what_an_agent_sends_is_shown_as_text_and_long_contents_fold";
    with_browser(test, |browser, python| async move {
        let hostile_action = "<b>wire</b>";
        let hostile_reason = "<img src=x onerror=\"window.__pwned='reason'\">";
        let block = format!("{hostile_action}={hostile_reason}");
        let dev = DevServer::start(&["--block", &block]);
        browser.goto(&dev.page_url).await.unwrap();
        until(&browser, "the page is live", |p| (p["live"] == "● live").then_some(())).await;

        let hostile_text = "<img src=x onerror=\"window.__pwned='event'\"><script>window.__pwned='script'</script>";
        let long: Vec<String> = (1..=60).map(|n| format!("line {n}")).collect();
        let trace = agent(
            &dev,
            &python,
            json!({
                "agent_id": SUPPORT_AGENT,
                "system_prompt": "<h1>prompt</h1>",
                "steps": [
                    {"event": "user", "content": {"text": hostile_text}},
                    {"check": hostile_action, "arguments": {"to": "<i>x</i>"}},
                    {"event": "memory", "content": {"text": long.join("\n")}},
                ],
            })
            .to_string(),
        )
        .await;
        until(&browser, "the run is listed", |p| {
            rows(p).contains(&trace.as_str()).then_some(())
        })
        .await;
        row(&browser, &trace).await.send_keys(&Key::Enter).await.unwrap();
        let page = until(&browser, "its timeline", |p| {
            (items(p).len() == 4 && answered(p)).then(|| p.clone())
        })
        .await;

        let timeline = items(&page);
        assert_eq!(timeline[1]["contents"][0], hostile_text);
        let check = timeline[2]["text"].as_str().unwrap();
        assert!(check.contains(hostile_action), "{check}");
        assert!(check.contains(hostile_reason), "{check}");
        assert!(check.contains("\"to\": \"<i>x</i>\""), "{check}");
        assert!(page["rows"][0]["text"].as_str().unwrap().contains("<h1>prompt</h1>"));
        let injected = browser
            .execute(
                "return document.querySelectorAll('#run-list *:is(h1, img, script, b, i), \
                 #timeline *:is(h1, img, script, b, i)').length;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(injected, 0, "no element came from the data");
        assert!(page["pwned"].is_null(), "no script from the data ran");

        // The long content is folded, and unfolds from the keyboard.
        let memory = &timeline[3];
        assert_eq!(memory["folded"], 1);
        assert_eq!(memory["contents"][0], long.join("\n").as_str());
        let fold = browser
            .find(Locator::Css("#timeline li.event button.fold"))
            .await
            .unwrap();
        assert!(fold.text().await.unwrap().starts_with("Show all (60 lines"));
        fold.send_keys(&Key::Enter).await.unwrap();
        let page = until(&browser, "it unfolds", |p| {
            (items(p).get(3).is_some_and(|i| i["folded"] == 0)).then(|| p.clone())
        })
        .await;
        assert_eq!(page["activeText"], "Fold", "focus stays on the toggle");
    })
    .await;
}

// ---- driving Chromium ----------------------------------------------------------------------

/// Chromium and its chromedriver, or why they cannot be used.
struct Chromium {
    browser: PathBuf,
    driver: PathBuf,
}

fn find_chromium() -> Result<Chromium, String> {
    Ok(Chromium {
        browser: programs::find_on_path("chromium", "FABRAIX_CHROMIUM")?,
        driver: programs::find_on_path("chromedriver", "FABRAIX_CHROMEDRIVER")?,
    })
}

/// Runs `test` with a fresh browser and the path of `python3`; closes the browser whether
/// or not the test panicked. Without Chromium or Python the test does not run (`name`
/// says which), except under CI, where it fails.
async fn with_browser<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Client, PathBuf) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(chromium) = programs::require(name, programs::CHROMIUM, find_chromium()) else {
        return;
    };
    let python = programs::find_on_path("python3", "FABRAIX_PYTHON");
    let Some(python) = programs::require(name, programs::PYTHON, python) else {
        return;
    };
    let driver = Driver::start(&chromium);
    let client = driver.connect(&chromium.browser).await;
    client.set_window_size(1366, 900).await.unwrap();
    let outcome = tokio::spawn(test(client.clone(), python)).await;
    let _ = client.close().await;
    drop(driver);
    if let Err(error) = outcome {
        match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(error) => panic!("the test did not finish: {error}"),
        }
    }
}

/// A chromedriver on a loopback port of its choosing, with a profile folder of its own.
struct Driver {
    process: Child,
    port: u16,
    profile: PathBuf,
}

impl Driver {
    fn start(chromium: &Chromium) -> Driver {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let mut process = Command::new(&chromium.driver)
            .args(["--port=0", "--allowed-ips=127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} did not start: {e}", chromium.driver.display()));
        let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
        let port = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(port) = line
                        .split("started successfully on port ")
                        .nth(1)
                        .and_then(|rest| rest.trim_end_matches('.').parse().ok())
                    {
                        break port;
                    }
                }
                _ => {
                    let _ = process.kill();
                    panic!("chromedriver exited before it listened");
                }
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let profile = std::env::temp_dir().join(format!(
            "fabraix-dev-chromium-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        Driver {
            process,
            port,
            profile,
        }
    }

    async fn connect(&self, browser: &Path) -> Client {
        let options = json!({
            "binary": browser,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                format!("--user-data-dir={}", self.profile.display()),
            ],
        });
        let capabilities = json!({ "browserName": "chrome", "goog:chromeOptions": options });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session starts")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Waits (bounded, polling the page) until `ready` answers something.
async fn until<T>(browser: &Client, what: &str, mut ready: impl FnMut(&Value) -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let page = browser.execute(SNAPSHOT, vec![]).await.unwrap();
        if let Some(found) = ready(&page) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not so after {WAIT:?}; the page: {page:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rows(page: &Value) -> Vec<&str> {
    page["rows"]
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r["trace"].as_str()).collect())
        .unwrap_or_default()
}

/// Whether every request on the timeline shows its answer (none is still awaited).
fn answered(page: &Value) -> bool {
    items(page)
        .iter()
        .all(|i| !i["text"].as_str().unwrap_or("").contains("awaiting answer"))
}

fn items(page: &Value) -> Vec<Value> {
    page["items"].as_array().cloned().unwrap_or_default()
}

async fn row(browser: &Client, trace: &str) -> fantoccini::elements::Element {
    browser
        .find(Locator::Css(&format!(
            "#run-list button.run[data-trace=\"{trace}\"]"
        )))
        .await
        .unwrap()
}

/// Runs `agent.py` with `plan` off the async threads; answers the run's trace id.
async fn agent(dev: &DevServer, python: &Path, plan: String) -> String {
    let (base_url, key, python) = (dev.base_url.clone(), dev.api_key.clone(), python.to_owned());
    let ran =
        tokio::task::spawn_blocking(move || common::python_agent(&python, &base_url, &key, &plan))
            .await
            .unwrap();
    ran["trace_id"].as_str().unwrap().to_owned()
}
