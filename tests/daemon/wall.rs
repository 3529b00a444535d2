//! The wall display in real headless Chromium, driven over the DevTools protocol: the page
//! served by a daemon fed through a real broker must show the snapshot's numbers, in
//! Vietnamese formatting, and switch entirely to English with `?lang=en` (alert sentences
//! included); firing alerts are listed most severe first with what does not fit counted per
//! severity, and no text an operator needs is under 16 px at 1920×1080. Saves screenshots
//! under `target/wall-*.png`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use iocd_testkit as tk;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{
    TIMEOUT, TestApp, TestClient, broker::TestBroker, free_port, spawn_app, test_settings,
};

/// One Chromium at a time: two at once on a small machine make timings flaky.
static CHROMIUM: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Chromium's path.
fn chromium() -> Option<PathBuf> {
    crate::helpers::installed(&["chromium", "chromium-browser"], "chromium")
}

struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Cdp =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A DevTools session on the browser's first page.
struct Page {
    ws: Cdp,
    id: u64,
}

impl Page {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.id += 1;
        let id = self.id;
        self.ws
            .send(Message::text(
                json!({"id": id, "method": method, "params": params}).to_string(),
            ))
            .await
            .unwrap();
        loop {
            let msg = tokio::time::timeout(TIMEOUT, self.ws.next())
                .await
                .expect("CDP answers")
                .unwrap()
                .unwrap();
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["id"] == id {
                    assert!(v.get("error").is_none(), "{method}: {v}");
                    return v["result"].clone();
                }
            }
        }
    }

    async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(
            r.get("exceptionDetails").is_none(),
            "the page threw evaluating `{expr}`: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    async fn text(&mut self, testid: &str) -> String {
        let v = self
            .eval(&format!(
                r#"document.querySelector('[data-testid="{testid}"]')?.textContent ?? null"#
            ))
            .await;
        v.as_str()
            .unwrap_or_else(|| panic!("no element {testid}"))
            .trim()
            .to_owned()
    }

    async fn wait_live(&mut self, min_seq: u64) {
        let start = Instant::now();
        loop {
            let v = self.eval("({state: document.body?.dataset.state, seq: Number(document.body?.dataset.seq || 0)})").await;
            if v["state"] == "live" && v["seq"].as_u64().unwrap_or(0) >= min_seq {
                return;
            }
            assert!(start.elapsed() < TIMEOUT, "the page never went live: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens `url` at 1920×1080 and waits for a first snapshot.
    async fn open(&mut self, url: &str) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
        self.call("Page.navigate", json!({"url": url})).await;
        self.wait_live(1).await;
        self.settle().await;
    }

    /// Waits until the page is laid out for its size: the fonts are loaded, and two frames
    /// have been drawn (a resize redraws the lists before the next frame: they fit themselves
    /// to the space).
    async fn settle(&mut self) {
        self.eval("document.fonts.ready.then(() => true)").await;
        self.eval("new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(() => ok(true))))")
            .await;
    }

    async fn screenshot(&mut self, width: u32, height: u32, name: &str) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
        self.settle().await;
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }
}

async fn launch(path: &PathBuf) -> (Browser, Page) {
    let port = free_port();
    let profile = tempfile::tempdir().unwrap();
    let child = Command::new(path)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--remote-debugging-port={port}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let browser = Browser {
        child,
        _profile: profile,
    };
    let start = Instant::now();
    let ws_url = loop {
        if let Ok(resp) = reqwest::get(format!("http://127.0.0.1:{port}/json/list")).await
            && let Ok(targets) = resp.json::<Vec<Value>>().await
            && let Some(t) = targets.iter().find(|t| t["type"] == "page")
        {
            break t["webSocketDebuggerUrl"].as_str().unwrap().to_owned();
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "chromium's DevTools endpoint never came up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    (browser, Page { ws, id: 0 })
}

/// Vietnamese formatting of a ratio, as the province writes it: `0.885` → `88,5%`.
fn vi_percent(r: f64) -> String {
    format!("{:.1}%", r * 100.0).replace('.', ",")
}

/// Events, each published on its source's topic.
type Events = Vec<tk::Payload>;

/// Agencies with overdue dossiers: the first six in the first wave, the next six in the second.
const OVERDUE_AGENCIES: usize = 12;

/// A province's worth of events, timed relative to now, in two waves. Every rule fires: 13
/// agencies have overdue dossiers (so the alerts overflow the band), one a stalled dossier,
/// the SOC feed is silent, and 19 agencies have open dossiers. The second wave holds the
/// overdue dossiers of six more agencies, so their alerts are the newest warnings.
fn province() -> (Events, Events) {
    let mut first: Events = vec![
        tk::received("D1")
            .id("a1")
            .ago(120)
            .agency("000.00.19.H42")
            .due(tk::at(-60)),
        tk::received("D2")
            .id("a2")
            .ago(100)
            .agency("000.00.19.H42")
            .channel("direct")
            .due(tk::at(3600)),
        tk::received("D3").id("a3").ago(90).agency("X01.05"),
        tk::resolved("D3").id("a4").ago(30),
        // No event for 49 hours: stalled.
        tk::received("DS1")
            .id("a5")
            .ago(49 * 3600)
            .agency("000.30.01.H42")
            .channel("direct"),
        tk::meeting_started("M1")
            .id("v1")
            .ago(600)
            .set("title", "Giao ban trực tuyến")
            .set("expected_endpoints", json!(["E1", "E2"])),
        tk::endpoint_joined("M1", "E1").id("v2").ago(590),
        tk::endpoint_stats("M1", "E1")
            .id("v3")
            .ago(30)
            .quality(8.5, 12.0, 80.0),
        // The SOC's latest event is over 5 minutes old: its feed is silent.
        tk::alert("A1", "HT-DVC", "high").id("s1").ago(400),
        tk::incident_opened("I1", "critical")
            .id("s2")
            .ago(1000)
            .set("system_id", "HT-DVC"),
        tk::system_heartbeat("HT-CAMERA").id("s3").ago(700),
    ];
    let mut second = Events::new();
    for i in 1..=OVERDUE_AGENCIES {
        for k in 0..=(i % 4) {
            let ev = tk::received(&format!("DO-{i}-{k}"))
                .id(format!("o{i}-{k}"))
                .ago(200)
                .agency(&format!("000.20.{i:02}.H42"))
                .due(tk::at(-100));
            if i <= OVERDUE_AGENCIES / 2 {
                first.push(ev);
            } else {
                second.push(ev);
            }
        }
    }
    for i in 1..=5 {
        first.push(
            tk::received(&format!("DQ-{i}"))
                .id(format!("q{i}"))
                .ago(150)
                .agency(&format!("000.40.{i:02}.H42"))
                .due(tk::at(30 * 86_400)),
        );
    }
    (first, second)
}

/// Agencies with open dossiers in [`province`].
const AGENCIES_WITH_OPEN_DOSSIERS: u64 = 1 + OVERDUE_AGENCIES as u64 + 1 + 5;

async fn publish(client: &TestClient, prefix: &str, events: &Events) {
    for ev in events {
        client
            .publish(&format!("{prefix}/{}/x", ev.source()), ev.bytes())
            .await;
    }
}

/// Waits until the alerts of [`province`] fire: every rule, and `overdue` agencies.
async fn wait_alerts(app: &TestApp, overdue: usize) {
    for (rule, severity, n) in [
        ("dossier_overdue", "warning", overdue),
        ("dossier_stalled", "warning", 1),
        ("feed_silent", "critical", 1),
        ("endpoint_missing", "warning", 1),
        ("endpoint_poor_quality", "info", 1),
        ("incident_unacknowledged", "critical", 1),
        ("soc_system_silent", "warning", 1),
    ] {
        app.wait_metric(
            &format!(r#"iocd_alerts_firing{{rule="{rule}",severity="{severity}"}}"#),
            n as f64,
        )
        .await;
    }
}

/// A daemon in `language` fed with [`province`]: the second wave once the first one's
/// alerts fire, so that the second wave's alerts start firing later.
async fn province_daemon(broker: &TestBroker, client: &TestClient, language: &str) -> TestApp {
    let mut settings = test_settings(broker);
    settings.ws.push_interval = std::time::Duration::from_millis(100);
    settings.alerts.language = language.parse().expect("vi or en");
    let app = spawn_app(settings).await;
    let (first, second) = province();
    publish(client, &app.prefix, &first).await;
    wait_alerts(&app, 1 + OVERDUE_AGENCIES / 2).await;
    publish(client, &app.prefix, &second).await;
    wait_alerts(&app, 1 + OVERDUE_AGENCIES).await;
    app
}

async fn snapshot(app: &TestApp) -> Value {
    let (status, body) = app.get("/api/v1/snapshot").await;
    assert_eq!(status, 200);
    serde_json::from_str(&body).unwrap()
}

/// The snapshot's firing alerts as the wall lists them: most severe first, then newest
/// `since`, ties by ascending id.
fn wall_order(snap: &Value) -> Vec<Value> {
    let rank = |a: &Value| {
        ["critical", "warning", "info"]
            .iter()
            .position(|s| a["severity"] == *s)
            .unwrap_or(3)
    };
    let since = |a: &Value| {
        a["since"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    let mut alerts = snap["alerts"].as_array().unwrap().clone();
    alerts.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then_with(|| since(b).cmp(&since(a)))
            .then_with(|| a["id"].as_str().cmp(&b["id"].as_str()))
    });
    alerts
}

/// The alert rows of the page, in order: id, severity, hidden, sentence shown.
const ALERT_ROWS: &str = r#"Array.from(document.querySelectorAll('[data-testid="alert-item"]')).map((li) => ({
    id: li.dataset.alertId, sev: li.dataset.sev, hidden: li.hidden,
    text: li.querySelector('.a-summary').textContent}))"#;

/// "+15 … not shown: 14 …, 1 …" as the page words it in `lang` for the hidden `rows`.
fn hidden_line(lang: &str, rows: &[&Value]) -> String {
    let n = rows.len();
    let count = |sev: &str| rows.iter().filter(|r| r["sev"] == sev).count();
    let parts: Vec<String> = [
        ("critical", "nghiêm trọng", "critical"),
        ("warning", "cảnh báo", "warning"),
        ("info", "thông tin", "info"),
    ]
    .iter()
    .filter(|(sev, _, _)| count(sev) > 0)
    .map(|(sev, vi, en)| format!("{} {}", count(sev), if lang == "vi" { vi } else { en }))
    .collect();
    let head = match (lang, n) {
        ("vi", n) => format!("+{n} cảnh báo không hiển thị:"),
        (_, 1) => "+1 alert not shown:".to_owned(),
        (_, n) => format!("+{n} alerts not shown:"),
    };
    format!("{head} {}", parts.join(", "))
}

/// Checks the alerts band against the snapshot: order, what is shown, the hidden line, and
/// that each sentence is the page's own rendering of the alert in its language.
async fn check_alerts(page: &mut Page, snap: &Value, lang: &str) {
    let want = wall_order(snap);
    let rows = page.eval(ALERT_ROWS).await;
    let rows = rows.as_array().unwrap();
    let got: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let want_ids: Vec<&str> = want.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(
        got, want_ids,
        "alerts listed most severe first, then newest, ties by id"
    );
    let shown = rows.iter().take_while(|r| r["hidden"] == false).count();
    assert!(
        shown >= 2 && shown < rows.len(),
        "some alerts show and some overflow: {shown} of {}",
        rows.len()
    );
    assert!(
        rows[shown..].iter().all(|r| r["hidden"] == true),
        "the alerts shown are the first ones"
    );
    let hidden: Vec<&Value> = rows[shown..].iter().collect();
    assert_eq!(page.text("alerts-more").await, hidden_line(lang, &hidden));
    for (row, alert) in rows.iter().zip(&want).take(shown) {
        let text = page
            .eval(&format!("window.iocdWall.alertText({alert})"))
            .await;
        assert_eq!(row["text"], text, "{}", alert["id"]);
    }
}

/// For every alert of `snap`, the page's sentence equals the daemon's `summary` (a daemon
/// configured in the page's language): the page's templates say what summary.rs says.
async fn check_sentences(page: &mut Page, snap: &Value) {
    let alerts = snap["alerts"].as_array().unwrap();
    let mut rules: Vec<&str> = alerts.iter().map(|a| a["rule"].as_str().unwrap()).collect();
    rules.sort_unstable();
    rules.dedup();
    assert_eq!(rules.len(), 7, "every rule fires: {rules:?}");
    let mut wrong = Vec::new();
    for a in alerts {
        let text = page.eval(&format!("window.iocdWall.alertText({a})")).await;
        if text != a["summary"] {
            wrong.push(format!(
                "{}:\n  page:   {text}\n  daemon: {}",
                a["id"], a["summary"]
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// "5 of 19 agencies" under the worst agencies, counting the rows shown.
async fn check_worst_of(page: &mut Page, snap: &Value, lang: &str) {
    let total = snap["onestop"]["agencies_with_open_dossiers"].as_u64();
    assert_eq!(total, Some(AGENCIES_WITH_OPEN_DOSSIERS));
    let shown = page
        .eval(r#"document.querySelectorAll('[data-testid="onestop-worst-agencies"] .worst-row:not([hidden])').length"#)
        .await
        .as_u64()
        .unwrap();
    assert!(shown >= 3, "at least 3 worst agencies fit, got {shown}");
    let cut = page
        .eval(
            r#"(() => {
              const box = document.querySelector('[data-testid="onestop-worst-agencies"]').getBoundingClientRect();
              return Array.from(document.querySelectorAll('[data-testid="onestop-worst-agencies"] .worst-row:not([hidden])'))
                .filter((r) => r.getBoundingClientRect().bottom > box.bottom + 1).length;
            })()"#,
        )
        .await;
    assert_eq!(cut, 0, "no worst agency row shown is cut off");
    let want = if lang == "vi" {
        format!("{shown} trên {AGENCIES_WITH_OPEN_DOSSIERS} đơn vị")
    } else {
        format!("{shown} of {AGENCIES_WITH_OPEN_DOSSIERS} agencies")
    };
    assert_eq!(page.text("onestop-worst-of").await, want);
}

/// The visible text of the page, without the language switch (it names Vietnamese in
/// Vietnamese) and without `data` (titles sent by the sources are shown as they are).
async fn visible_text(page: &mut Page, data: &[&str]) -> String {
    let mut text = page
        .eval(
            "document.body.innerText.replace(document.getElementById('lang-switch').innerText, '')",
        )
        .await
        .as_str()
        .unwrap()
        .to_owned();
    for d in data {
        text = text.replace(d, "");
    }
    text
}

/// Letters with Vietnamese diacritics (and đ), as a JavaScript character class.
const VIETNAMESE: &str = "[À-ÃÈ-ÊÌÍÒ-ÕÙÚÝà-ãè-êìíò-õùúýĂăĐđĨĩŨũƠơƯưẠ-ỹ]";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wall_shows_the_snapshot_numbers_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        return;
    };
    let _one = CHROMIUM.lock().await;
    let broker = TestBroker::start();
    let client = TestClient::connect(&broker, &[]).await;
    let app = province_daemon(&broker, &client, "vi").await;
    let en_app = province_daemon(&broker, &client, "en").await;
    let snap = snapshot(&app).await;
    let en_snap = snapshot(&en_app).await;
    drop(en_app);
    let warnings: std::collections::HashSet<&str> = snap["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["severity"] == "warning")
        .map(|a| a["since"].as_str().unwrap())
        .collect();
    assert!(
        warnings.len() >= 2,
        "warnings started firing at different times: {warnings:?}"
    );

    let (_browser, mut page) = launch(&chromium).await;
    page.call("Runtime.enable", json!({})).await;
    page.open(&format!("http://{}/", app.addr)).await;

    let o = &snap["onestop"];
    let expect = [
        ("onestop-today-received", o["today"]["received"].to_string()),
        ("onestop-today-resolved", o["today"]["resolved"].to_string()),
        (
            "onestop-online-ratio",
            vi_percent(o["today"]["online_ratio"].as_f64().unwrap()),
        ),
        (
            "onestop-on-time-ratio",
            vi_percent(o["on_time_ratio_30d"].as_f64().unwrap()),
        ),
        (
            "onestop-open-in_progress",
            o["open"]["in_progress"].to_string(),
        ),
        ("onestop-overdue", o["overdue"].to_string()),
        ("onestop-due-soon", o["due_soon"].to_string()),
        (
            "vc-meetings-active",
            snap["vc"]["meetings_active"].to_string(),
        ),
        (
            "vc-endpoints-connected",
            snap["vc"]["endpoints_connected"].to_string(),
        ),
        (
            "vc-endpoints-missing",
            snap["vc"]["endpoints_missing"].to_string(),
        ),
        (
            "soc-alerts-60m-high",
            snap["soc"]["alerts_60m"]["high"].to_string(),
        ),
        ("soc-incidents-unack", "1".to_owned()),
        // The province's words, with the configured threshold.
        (
            "onestop-stalled-label",
            "Chậm luân chuyển (> 48 giờ)".to_owned(),
        ),
        (
            "alerts-count",
            snap["alerts"].as_array().unwrap().len().to_string(),
        ),
    ];
    let mut wrong = Vec::new();
    for (testid, want) in &expect {
        let got = page.text(testid).await;
        if &got != want {
            wrong.push(format!(
                "{testid}: page shows `{got}`, snapshot says `{want}`"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(page.eval("document.documentElement.lang").await, "vi");
    check_alerts(&mut page, &snap, "vi").await;
    check_sentences(&mut page, &snap).await;
    check_worst_of(&mut page, &snap, "vi").await;
    page.screenshot(1920, 1080, "wall-1080.png").await;
    page.screenshot(3840, 2160, "wall-2160.png").await;

    page.open(&format!("http://{}/?lang=en", app.addr)).await;
    assert_eq!(page.eval("document.documentElement.lang").await, "en");
    let ratio = page.text("onestop-online-ratio").await;
    let want = format!(
        "{:.1}%",
        o["today"]["online_ratio"].as_f64().unwrap() * 100.0
    );
    assert_eq!(ratio, want, "English formatting");
    check_alerts(&mut page, &snap, "en").await;
    check_sentences(&mut page, &en_snap).await;
    check_worst_of(&mut page, &snap, "en").await;
    let titles: Vec<&str> = snap["vc"]["meetings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["title"].as_str())
        .collect();
    let text = visible_text(&mut page, &titles).await;
    let found = page
        .eval(&format!(
            "Array.from(new Set({text}.match(/.{{0,20}}{VIETNAMESE}.{{0,20}}/g) || []))",
            text = Value::from(text.as_str())
        ))
        .await;
    assert_eq!(
        found,
        json!([]),
        "Vietnamese left on the English page:\n{text}"
    );
    page.screenshot(1920, 1080, "wall-1080-en.png").await;

    // The daemon goes away: the page says its data is stale.
    app.stop().await.unwrap();
    let start = Instant::now();
    while page.eval("document.body.dataset.state").await != "stale" {
        assert!(
            start.elapsed() < TIMEOUT,
            "the page never showed the lost connection"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let banner = page
        .eval(r#"getComputedStyle(document.querySelector('[data-testid="stale-banner"]')).display"#)
        .await;
    assert_ne!(banner, "none", "the stale banner is visible");
}

/// Every visible element with text of its own (a non-blank text node child) whose computed
/// font size is under 16 px: `{selector, text, size}`.
const SMALL_TEXT: &str = r#"(() => {
  const path = (e) => {
    const parts = [];
    for (let n = e; n && n !== document.body && parts.length < 4; n = n.parentElement) {
      let p = n.tagName.toLowerCase();
      if (n.dataset.testid) p += '[data-testid="' + n.dataset.testid + '"]';
      else if (n.classList.length) p += "." + Array.from(n.classList).join(".");
      parts.unshift(p);
    }
    return parts.join(" > ");
  };
  const out = [];
  for (const e of document.body.querySelectorAll("*")) {
    const own = Array.from(e.childNodes).some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim() !== "");
    if (!own) continue;
    const cs = getComputedStyle(e);
    if (cs.display === "none" || cs.visibility === "hidden") continue;
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const size = parseFloat(cs.fontSize);
    if (size < 16) out.push({ selector: path(e), text: e.textContent.trim().slice(0, 60), size: size });
  }
  return out;
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_text_on_the_wall_is_under_16_px_at_1920x1080_in_either_language() {
    let Some(chromium) = chromium() else {
        return;
    };
    let _one = CHROMIUM.lock().await;
    let broker = TestBroker::start();
    let client = TestClient::connect(&broker, &[]).await;
    let app = province_daemon(&broker, &client, "vi").await;
    let (_browser, mut page) = launch(&chromium).await;
    page.call("Runtime.enable", json!({})).await;
    let mut small = Vec::new();
    for query in ["", "?lang=vi", "?lang=en"] {
        page.open(&format!("http://{}/{query}", app.addr)).await;
        let count = page
            .eval("document.querySelectorAll('body *').length")
            .await;
        assert!(count.as_u64().unwrap_or(0) > 100, "the page is drawn");
        let found = page.eval(SMALL_TEXT).await;
        for f in found.as_array().unwrap() {
            small.push(format!(
                "{query:9} {} `{}`: {} px",
                f["selector"].as_str().unwrap_or(""),
                f["text"].as_str().unwrap_or(""),
                f["size"]
            ));
        }
    }
    assert!(
        small.is_empty(),
        "text under 16 px at 1920×1080:\n{}",
        small.join("\n")
    );
}

/// Polls `testid`'s text on the page until it is `want` (the agency page fetches on its own
/// schedule; it has no snapshot sequence to wait for).
async fn wait_text(page: &mut Page, testid: &str, want: &str) {
    let start = Instant::now();
    loop {
        let got = page
            .eval(&format!(
                r#"document.querySelector('[data-testid="{testid}"]')?.textContent?.trim() ?? null"#
            ))
            .await;
        if got.as_str() == Some(want) {
            return;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "{testid}: the page shows {got}, expected `{want}`"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agency_page_shows_one_agency_across_the_three_systems_in_both_languages() {
    let Some(chromium) = chromium() else {
        return;
    };
    let _one = CHROMIUM.lock().await;
    let broker = TestBroker::start_with("persistence false");
    let mut settings = test_settings(&broker);
    settings.ws.push_interval = Duration::from_millis(100);
    settings.directory.directory = std::sync::Arc::new(
        iocd::directory::Directory::parse(&crate::directory::small_province(), "t.toml")
            .expect("valid"),
    );
    let app = spawn_app(settings).await;
    let _feed = crate::directory::feed_small_province(&broker, &app).await;
    let (_browser, mut page) = launch(&chromium).await;
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": false}),
    )
    .await;

    // The wall's list opens the agency's page.
    page.open(&format!("http://{}/", app.addr)).await;
    let href = page
        .eval(r#"document.querySelector('[data-testid="onestop-worst-0-agency"]')?.getAttribute("href") ?? null"#)
        .await;
    assert_eq!(
        href, "/agency/000.00.19.H42",
        "the wall's first agency links to its page"
    );

    page.call(
        "Page.navigate",
        json!({"url": format!("http://{}/agency/000.00.19.H42", app.addr)}),
    )
    .await;
    wait_text(&mut page, "agency-overdue", "1").await;
    for (testid, want) in [
        ("agency-name", "Trung tâm Phục vụ hành chính công"),
        ("agency-code", "000.00.19.H42"),
        ("agency-meta", "Cấp tỉnh"),
        ("agency-open", "1"),
        ("agency-overdue-list", "D1"),
        ("agency-endpoints", "EP-1 — đã kết nối (M1)"),
        ("agency-systems", "SYS-1 — có tín hiệu"),
        ("agency-incidents", "I1 · Cao · SYS-1 · Chưa tiếp nhận"),
        (
            "agency-alerts",
            "Trung tâm Phục vụ hành chính công có 1 hồ sơ đang xử lý quá hạn trả kết quả.",
        ),
    ] {
        assert_eq!(page.text(testid).await, want, "{testid}");
    }
    // The month and year to date: D1 was received today and is open, overdue.
    let row = |key: &str| {
        format!(
            r#"Array.from(document.querySelectorAll('[data-testid="agency-periods"] tr[data-row="{key}"] > *')).map(c => c.textContent).join("|")"#
        )
    };
    assert_eq!(
        page.text("agency-today").await,
        "Hôm nay: tiếp nhận 1, giải quyết 0"
    );
    for (key, want) in [
        ("period_carried", "Tồn kỳ trước|0|0"),
        ("period_received", "Tiếp nhận trong kỳ|1|1"),
        ("period_open_overdue", "Đang giải quyết quá hạn|1|1"),
        (
            "period_progress",
            "Tiến độ giải quyết (766, ước tính)|0,0%|0,0%",
        ),
    ] {
        assert_eq!(page.eval(&row(key)).await, want, "{key}");
    }
    // Its Decision 766 indicators this month, from the scorecard: D1 open past its
    // deadline, so progress 0 of 1; 3.6 without fees known has no value.
    let indicator = |id: &str| {
        format!(
            r#"document.querySelector('[data-testid="agency-766"] tr[data-indicator="{id}"]')?.textContent ?? null"#
        )
    };
    let start = Instant::now();
    while page.eval(&indicator("2.1")).await.is_null() {
        assert!(start.elapsed() < TIMEOUT, "no 766 table on the agency page");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        page.eval(&indicator("2.1")).await,
        "2.1 Tiến độ giải quyết (trước hạn, đúng hạn)0,0%—"
    );
    assert_eq!(
        page.eval(&indicator("3.6")).await,
        "3.6 Tỷ lệ thanh toán trực tuyến——"
    );
    page.screenshot(1920, 1080, "agency-vi.png").await;

    page.call(
        "Page.navigate",
        json!({"url": format!("http://{}/agency/000.00.19.H42?lang=en", app.addr)}),
    )
    .await;
    wait_text(&mut page, "agency-endpoints", "EP-1 — connected (M1)").await;
    assert_eq!(
        page.text("agency-alerts").await,
        "Trung tâm Phục vụ hành chính công has 1 dossier in progress past its due date."
    );
    assert_eq!(page.eval("document.documentElement.lang").await, "en");
    assert_eq!(
        page.eval(&row("period_progress")).await,
        "Progress (766, estimate)|0.0%|0.0%"
    );

    page.call(
        "Page.navigate",
        json!({"url": format!("http://{}/agency/NOPE", app.addr)}),
    )
    .await;
    wait_text(&mut page, "agency-error-text", "Không có đơn vị NOPE").await;
    drop(page);
    app.stop().await.expect("clean stop");
}

/// The duty officer's page acknowledges an alert; a second browser on the wall sees it
/// taken (by whom) at its next push, and the officer's own page too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_acknowledges_from_the_page_and_another_wall_sees_it() {
    let Some(chromium) = chromium() else {
        return;
    };
    let _one = CHROMIUM.lock().await;
    let broker = TestBroker::start_with("persistence false");
    let mut settings = test_settings(&broker);
    settings.ws.push_interval = Duration::from_millis(200);
    let viewer = "viewer-token-0123456789";
    let operator = "operator-token-0123456789";
    settings.http.access_tokens = vec![viewer.into()];
    settings.http.tokens = vec![iocd::config::NamedToken {
        name: "Trực ban ca 1".into(),
        role: iocd::decode::action::Role::Operator,
        token: operator.into(),
    }];
    let prefix = settings.mqtt.prefix.clone();
    let app = spawn_app(settings).await;
    let client = TestClient::connect(&broker, &[]).await;
    let ev = tk::received("D1")
        .id("e-D1")
        .ago(600)
        .agency("000.00.19.H42")
        .due(tk::at(-60));
    client
        .publish(&format!("{prefix}/onestop/x"), ev.bytes())
        .await;
    let id = "dossier_overdue:000.00.19.H42";
    let row = |attr: &str| {
        format!(
            r#"document.querySelector('[data-testid="alert-item"][data-alert-id="{id}"]')?.{attr} ?? null"#
        )
    };

    // The wall, on a second browser, shows the alert as new.
    let (_wall_browser, mut wall) = launch(&chromium).await;
    wall.open(&format!("http://{}/?token={viewer}", app.addr))
        .await;
    let start = Instant::now();
    while wall.eval(&row("dataset.handling")).await != "new" {
        assert!(start.elapsed() < TIMEOUT, "the wall never listed {id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The officer's page lists it and acknowledges it with a comment.
    let (_ops_browser, mut ops) = launch(&chromium).await;
    ops.call(
        "Page.navigate",
        json!({"url": format!("http://{}/ops?token={operator}", app.addr)}),
    )
    .await;
    let ops_row =
        format!(r#"document.querySelector('[data-testid="ops-alert"][data-alert-id="{id}"]')"#);
    let start = Instant::now();
    while ops.eval(&format!("{ops_row} !== null")).await != true {
        assert!(
            start.elapsed() < TIMEOUT,
            "the operators' page never listed {id}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ops.eval(&format!(
        r#"(() => {{ const r = {ops_row}; r.querySelector('[data-testid="ops-comment"]').value = "Đã gọi Sở Tư pháp";
            r.querySelector('[data-testid="ops-ack"]').click(); return true; }})()"#
    ))
    .await;
    let clicked = Instant::now();

    // The wall shows it taken, by whom.
    loop {
        if wall.eval(&row("dataset.handling")).await == "acknowledged" {
            break;
        }
        assert!(
            clicked.elapsed() < TIMEOUT,
            "the wall never showed {id} taken"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = clicked.elapsed();
    eprintln!(
        "acknowledged on the operators' page → shown on the other wall in {seen:?} (push interval 200 ms)"
    );
    let text = wall
        .eval(&row(
            r#"querySelector('[data-testid="alert-handling"]')?.textContent"#,
        ))
        .await;
    assert_eq!(text, "Đã tiếp nhận: Trực ban ca 1");
    let start = Instant::now();
    loop {
        let state = ops
            .eval(&format!(
                r#"{ops_row}?.querySelector('[data-testid="ops-state"]')?.textContent ?? null"#
            ))
            .await;
        if state
            .as_str()
            .is_some_and(|s| s.starts_with("Đã tiếp nhận: Trực ban ca 1"))
        {
            assert!(
                state.as_str().unwrap().contains("Đã gọi Sở Tư pháp"),
                "{state}"
            );
            break;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "the operators' page shows {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ops.screenshot(1920, 1080, "wall-ops.png").await;
    wall.screenshot(1920, 1080, "wall-acknowledged.png").await;
    app.stop().await.expect("clean stop");
}

/// The number a figure of the wall shows (`1.234` in Vietnamese), `None` before any.
fn shown_number(text: &str) -> Option<u64> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Two replicas (`iocd run` processes, `[ha]` naming each other) on one broker, fed a paced
/// stream: the wall opened on replica A shows it is on A; A is killed (SIGKILL) and the
/// page is live again on B within 5 s, shows it is on B, and the figures it showed never
/// went backwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wall_moves_to_the_other_replica_when_its_own_dies() {
    let Some(chromium) = chromium() else {
        return;
    };
    let _one = CHROMIUM.lock().await;
    let broker = TestBroker::start();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("{}/v1", crate::helpers::unique("wallha"));
    let mut a = crate::ha::Replica::new(dir.path(), "a", &prefix, broker.url());
    let mut b = crate::ha::Replica::new(dir.path(), "b", &prefix, broker.url());
    a.peer(&b);
    b.peer(&a);
    (a.push_ms, b.push_ms) = (200, 200);
    a.start();
    b.start();
    a.wait_ready().await;
    b.wait_ready().await;

    // A paced stream for the whole test: one dossier received every 50 ms.
    let client = TestClient::connect(&broker, &[]).await;
    let feed_prefix = prefix.clone();
    let feed = tokio::spawn(async move {
        for i in 0.. {
            let ev = tk::received(&format!("W-{i}"))
                .id(format!("e-w-{i}"))
                .ago(60)
                .agency("000.00.19.H42");
            client
                .publish(&format!("{feed_prefix}/onestop/x"), ev.bytes())
                .await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    let (_browser, mut page) = launch(&chromium).await;
    page.open(&format!("http://127.0.0.1:{}/", a.port)).await;
    let on = "window.iocdWall.replica";
    let start = Instant::now();
    while page.eval(on).await != "a" {
        assert!(start.elapsed() < TIMEOUT, "the page never said it is on a");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(page.text("replica").await.contains('a'));
    let mut shown = Vec::new();
    for _ in 0..10 {
        shown.extend(shown_number(&page.text("onestop-today-received").await));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    a.kill9();
    let killed = Instant::now();
    loop {
        let v = page
            .eval("({state: document.body.dataset.state, on: window.iocdWall.replica})")
            .await;
        shown.extend(shown_number(&page.text("onestop-today-received").await));
        if v["state"] == "live" && v["on"] == "b" {
            break;
        }
        assert!(
            killed.elapsed() < TIMEOUT,
            "the page never went live on b: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failover = killed.elapsed();
    // The figure docs/ha.md quotes.
    eprintln!("the wall was live on replica b {failover:?} after replica a was killed");
    assert!(
        failover < Duration::from_secs(5),
        "failover took {failover:?}"
    );
    assert!(page.text("replica").await.contains('b'));
    for _ in 0..10 {
        shown.extend(shown_number(&page.text("onestop-today-received").await));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    feed.abort();
    assert!(shown.len() > 20, "figures read: {shown:?}");
    assert!(
        shown.windows(2).all(|w| w[0] <= w[1]),
        "the received count went backwards: {shown:?}"
    );
    assert!(shown.last() > shown.first(), "still counting: {shown:?}");
}

/// The Decision 766 scorecard page (issue 16): the province, then the agencies and the
/// communes ranked, bands in colour, "ước tính" on every figure, in both languages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scorecard_page_ranks_agencies_and_communes_with_bands_in_both_languages() {
    let Some(chromium) = chromium() else {
        return;
    };
    let _one = CHROMIUM.lock().await;
    let broker = TestBroker::start_with("persistence false");
    let mut settings = test_settings(&broker);
    settings.directory.directory = std::sync::Arc::new(
        iocd::directory::Directory::parse(&crate::directory::small_province(), "t.toml")
            .expect("valid"),
    );
    let app = spawn_app(settings).await;
    let client = TestClient::connect(&broker, &[]).await;
    let topic = format!("{}/onestop/d", app.prefix);
    // The centre: D1 online with fees paid online, a paper and an electronic result,
    // digitised, reused data, resolved (no deadline: on time). Every indicator 100 %.
    // The commune: D2 at the desk, no fees, not digitised, no reuse, open and in time:
    // 2.1 100 % (20), 3.3 0 %, 4.3 0 %, 5.4 100 % (6): 26 of 36 points, 72,2 %, "good".
    // The province: 2.1 20, 3.3 50 % = 4, 3.6 10, 4.1 6, 4.2 10, 4.3 50 % of 80 % = 3.75,
    // 5.4 6: 59.75 of 62, 96,4 %, "excellent".
    let events = [
        tk::received("D1")
            .agency("000.00.19.H42")
            .at(tk::at(-7200))
            .set("fee_required", true)
            .set("paper_result", true)
            .set("digitised", true)
            .set("reused_data", true),
        tk::dossier("paid", "D1")
            .at(tk::at(-7100))
            .set("method", "online_national"),
        tk::resolved("D1")
            .at(tk::at(-3600))
            .set("result_electronic", true),
        tk::received("D2")
            .agency("X01.01")
            .channel("direct")
            .at(tk::at(-7000))
            .due(tk::at(86_400 * 3))
            .set("fee_required", false)
            .set("digitised", false)
            .set("reused_data", false),
    ];
    for e in &events {
        client.publish(&topic, e.bytes()).await;
    }
    app.wait_metric(r#"iocd_events_total{source="onestop",type="paid"}"#, 1.0)
        .await;
    app.wait_metric(
        r#"iocd_events_total{source="onestop",type="received"}"#,
        2.0,
    )
    .await;
    let (_browser, mut page) = launch(&chromium).await;
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": false}),
    )
    .await;
    let row = |table: &str, code: &str| {
        format!(
            r#"(() => {{ const r = document.querySelector('[data-testid="{table}"] tr[data-code="{code}"]');
                 return r ? r.dataset.band + "|" + r.children[2].textContent : null; }})()"#
        )
    };
    page.call(
        "Page.navigate",
        json!({"url": format!("http://{}/scorecard", app.addr)}),
    )
    .await;
    wait_text(&mut page, "sc-province-percent", "96,4%").await;
    assert_eq!(page.text("sc-province-band").await, "Xuất sắc");
    assert_eq!(
        page.eval(r#"document.querySelector('[data-testid="sc-province-score"]').dataset.band"#)
            .await,
        "excellent"
    );
    assert_eq!(
        page.eval(&row("sc-agencies", "000.00.19.H42")).await,
        "excellent|100,0%"
    );
    assert_eq!(page.eval(&row("sc-communes", "X01.01")).await, "good|72,2%");
    // The bands are in colour: the commune's score is drawn in the "good" green.
    assert_eq!(
        page.eval(r#"getComputedStyle(document.querySelector('[data-testid="sc-communes"] tr[data-code="X01.01"] .sc-band')).color"#)
            .await,
        "rgb(163, 230, 53)"
    );
    // "ước tính" on every figure: the note, the province's score, and every table's heading.
    let estimates = page
        .eval(
            r#"[...document.querySelectorAll('[data-testid="sc-estimate"], .kpi-label[data-i18n="sc_score"], caption, h2')]
                 .every(e => /ước tính/i.test(e.textContent))"#,
        )
        .await;
    assert_eq!(estimates, true);
    assert_eq!(
        page.eval(r#"document.querySelector('[data-testid="sc-province-indicators"] tr[data-indicator="3.6"]').textContent"#)
            .await,
        "3.6 Tỷ lệ thanh toán trực tuyến100,0%—10 / 10"
    );
    page.screenshot(1920, 1080, "scorecard-vi.png").await;

    page.call(
        "Page.navigate",
        json!({"url": format!("http://{}/scorecard?lang=en&period=week", app.addr)}),
    )
    .await;
    wait_text(&mut page, "sc-province-percent", "96.4%").await;
    assert_eq!(page.text("sc-province-band").await, "Excellent");
    assert_eq!(page.eval("document.documentElement.lang").await, "en");
    assert_eq!(page.eval(&row("sc-communes", "X01.01")).await, "good|72.2%");
    let estimates = page
        .eval(r"[...document.querySelectorAll('caption, h2')].every(e => /estimate/i.test(e.textContent))")
        .await;
    assert_eq!(estimates, true);
}
