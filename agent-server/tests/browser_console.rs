//! The web console in a real browser: headless Chromium, driven by chromedriver over the W3C
//! WebDriver protocol (plain JSON over HTTP, with the test kit's HTTP client), opens an agent's
//! page on `agent serve`, clicks Connect, and talks to the agent over WebRTC on loopback, with
//! the fake platform on the other side. Chromium's fake microphone plays a WAV written here:
//! a tone (the fake platform hears any voiced packet as speech), then silence, which ends the
//! turn. The page must show the agent's answer and the
//! tool call with its result; a screenshot is saved as `target/browser-console.png`.
//!
//! Without /usr/bin/chromium or /usr/bin/chromedriver the test prints one line and passes,
//! unless `AGENT_BROWSER_REQUIRED=1` (CI), where a missing browser is a failure.

#![allow(dead_code)] // the shared SIP harness has more than this test uses

mod common;
mod sip;

use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use agent_testkit::{ModelStep, Scenario, ScriptedCall, Turn};
use base64::Engine as _;
use serde_json::{Value, json};
use sip::{API_KEY, SipHarness, SipOptions};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the page has to show the answer and the tool call after Connect.
const CALL_DEADLINE: Duration = Duration::from_secs(20);
/// How long one WebDriver command may take (starting Chromium is the slow one).
const COMMAND_DEADLINE: Duration = Duration::from_secs(30);
/// The key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn scenario() -> Scenario {
    Scenario::new("console call").turn(
        Turn::user("Where is my order A1001?")
            .model(ModelStep::calls([ScriptedCall::new(
                "caller_lookup",
                json!({"order_id": "A1001"}),
            )]))
            .model(ModelStep::say("Your order A1001 shipped yesterday.")),
    )
}

#[tokio::test]
async fn the_console_calls_the_agent_from_a_real_browser() {
    if browser_installed() {
        call_from_the_console("relayed", "browser-console.png").await;
    }
}

#[tokio::test]
async fn the_console_calls_the_agent_with_a_client_secret() {
    if browser_installed() {
        call_from_the_console("client-secret", "browser-console-client-secret.png").await;
    }
}

/// Opens the console, picks the agent, connects in `mode` (the page's mode switch), and checks
/// what the page shows; the screenshot is saved as `target/{screenshot}`.
async fn call_from_the_console(mode: &str, screenshot: &str) {
    // One browser at a time: two Chromiums on a small machine slow both calls' setup past
    // the microphone's lead-in.
    static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_BROWSER.lock().await;
    let options = SipOptions {
        route_extra: "browser = true",
        serve_extra: "[browser]\ncalls = true\nclient_secrets = true\n".into(),
        ..SipOptions::default()
    };
    let h = SipHarness::start(scenario(), options).await;
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("mic.wav");
    std::fs::write(&wav, microphone_wav()).unwrap();
    let driver = Chromedriver::start(dir.path()).await;
    let session = driver.session(&wav).await;

    // `public_base_url` is http://localhost:PORT: the console's own origin. The list of
    // agents links to the agent's page.
    let index = format!("http://localhost:{}/", h.addr.port());
    session
        .command("POST", "url", json!({ "url": index }))
        .await;
    let listed = session
        .wait_for_script("return document.querySelector('#agents a')?.textContent ?? ''")
        .await;
    assert_eq!(listed, "phone");
    session.click("#agents a").await;
    let path = session
        .wait_for_script("return document.getElementById('connect') ? location.pathname : ''")
        .await;
    assert_eq!(path, "/agents/phone");
    session
        .wait_for_script("return document.body.dataset.modes ?? ''")
        .await;
    let picked = format!(
        "document.getElementById('mode').value = '{mode}'; return document.getElementById('mode').value"
    );
    assert_eq!(session.script(&picked).await, mode);
    session.click("#connect").await;
    let shown = wait_for_the_call(&session).await;
    let png = session.command("GET", "screenshot", Value::Null).await;
    let artifact = save_screenshot(&png, screenshot);
    let shown = shown.unwrap_or_else(|page| {
        panic!("the page did not show the call in time (screenshot: {artifact:?}): {page}")
    });
    assert!(
        shown["transcript"]
            .as_str()
            .unwrap()
            .contains("shipped yesterday"),
        "{shown}"
    );
    let tools = shown["tools"].as_str().unwrap();
    assert!(
        tools.contains("caller_lookup") && tools.contains("A1001"),
        "{shown}"
    );
    assert!(tools.contains("order A1001 shipped"), "{shown}");
    assert_eq!(
        shown["playing"], true,
        "the agent's audio is attached: {shown}"
    );
    let html = shown["html"].as_str().unwrap();
    assert!(!html.contains(API_KEY), "the page holds no key");
    assert!(
        !html.contains("ek_"),
        "nor a minted secret, in its text or its log"
    );
    // The mode picked is the path the call took.
    let minted = h.platform.client_secret_requests().len();
    assert_eq!(minted, usize::from(mode == "client-secret"), "{mode}");

    // Disconnect ends the call on the platform and frees the server's slot.
    session.click("#disconnect").await;
    h.until_no_calls().await;
    let state = session.script("return document.body.dataset.state").await;
    assert_eq!(state, "closed");
    session.delete().await;
    drop(driver);
    h.stop().await;
}

/// Whether Chromium and chromedriver are here; prints the skip line when they are not.
fn browser_installed() -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    if std::env::var("AGENT_BROWSER_REQUIRED").as_deref() == Ok("1") {
        panic!(
            "AGENT_BROWSER_REQUIRED=1 but {CHROMIUM} or {CHROMEDRIVER} is missing: apt-get install chromium chromium-driver"
        );
    }
    eprintln!(
        "skipped: {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
    );
    false
}

/// Polls the page until it shows the answer and the finished tool call; `Err` with what it
/// showed at the deadline.
async fn wait_for_the_call(session: &Session) -> Result<Value, Value> {
    const READ: &str = "const text = (id) => document.getElementById(id).textContent;
        const done = [...document.querySelectorAll('#tools li[data-state=done]')];
        return {
          state: document.body.dataset.state ?? '',
          status: text('status'),
          transcript: text('transcript'),
          tools: done.map((li) => li.textContent).join('\\n'),
          playing: document.getElementById('remote-audio').srcObject !== null,
          log: text('log').slice(-3000),
          html: document.documentElement.outerHTML,
        };";
    let deadline = Instant::now() + CALL_DEADLINE;
    loop {
        let shown = session.script(READ).await;
        let answered = shown["transcript"]
            .as_str()
            .is_some_and(|t| t.contains("shipped yesterday"));
        let tool_done = shown["tools"].as_str().is_some_and(|t| !t.is_empty());
        if answered && tool_done {
            return Ok(shown);
        }
        if Instant::now() > deadline || shown["state"] == "error" {
            return Err(json!({
                "state": shown["state"],
                "status": shown["status"],
                "transcript": shown["transcript"],
                "tools": shown["tools"],
                "log": shown["log"],
            }));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Writes the screenshot (base64 PNG) next to the build's output: `target/{name}`.
fn save_screenshot(base64_png: &Value, name: &str) -> Option<PathBuf> {
    let png = base64::engine::general_purpose::STANDARD
        .decode(base64_png.as_str()?)
        .ok()?;
    // The test binary is target/<profile>/deps/<name>: three levels up is the target dir.
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.parent()?.join(name);
    std::fs::write(&path, png).ok()?;
    eprintln!("screenshot: {}", path.display());
    Some(path)
}

/// The fake microphone, 48 kHz mono PCM16: 2.5 s of a 440 Hz tone, then 15 s of silence,
/// longer than the test, so what Chromium does at the file's end never matters. The call
/// connects while the tone plays (the fake platform hears any voiced packet as speech), so the
/// caller's one utterance lasts until the tone ends, well after the sideband attached (in the
/// client-secret mode the page asks for the attach right after the platform answered). The
/// silence, sent as DTX (which the fake platform's answer asks for), ends the turn.
fn microphone_wav() -> Vec<u8> {
    const RATE: u32 = 48_000;
    let tail = std::iter::repeat_n(0i16, 15 * RATE as usize);
    let tone = (0..RATE * 5 / 2).map(|n| {
        let t = f64::from(n) / f64::from(RATE);
        (f64::sin(2.0 * std::f64::consts::PI * 440.0 * t) * 12_000.0) as i16
    });
    let samples: Vec<i16> = tone.chain(tail).collect();
    let data_len = u32::try_from(samples.len() * 2).unwrap();
    let mut wav = Vec::with_capacity(44 + samples.len() * 2);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&RATE.to_le_bytes());
    wav.extend_from_slice(&(RATE * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        wav.extend_from_slice(&sample.to_le_bytes());
    }
    wav
}

/// chromedriver on a free loopback port, in its own process group; dropping it ends the
/// session it holds (if any) and kills the group, Chromium included, on failure too.
struct Chromedriver {
    child: Child,
    addr: SocketAddr,
    profile: PathBuf,
}

impl Chromedriver {
    async fn start(dir: &Path) -> Chromedriver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = std::os::unix::process::CommandExt::process_group(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            0,
        )
        .spawn()
        .expect("chromedriver starts");
        let driver = Chromedriver {
            child,
            addr,
            profile: dir.join("profile"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = format!("http://{addr}/status");
            let ready = async {
                let answer = reqwest::get(&url).await.ok()?;
                answer.json::<Value>().await.ok()
            };
            let status = tokio::time::timeout(Duration::from_secs(2), ready).await;
            if status
                .ok()
                .flatten()
                .is_some_and(|s| s["value"]["ready"] == true)
            {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not get ready in 10 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new Chromium session, its fake microphone playing `wav` once.
    async fn session(&self, wav: &Path) -> Session {
        std::fs::create_dir_all(&self.profile).unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", self.profile.display()),
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            &format!("--use-file-for-fake-audio-capture={}%noloop", wav.display()),
            "--allow-loopback-in-peer-connection",
            "--autoplay-policy=no-user-gesture-required",
            // Chromium keeps only the last --disable-features: one switch for all.
            "--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks",
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let value = webdriver(self.addr, "POST", "/session", &capabilities).await;
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id: {value}"))
            .to_owned();
        Session {
            addr: self.addr,
            id,
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The session's Chromium is chromedriver's child, in the same group: end them all.
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebDriver session.
struct Session {
    addr: SocketAddr,
    id: String,
}

impl Session {
    /// `method /session/{id}/{path}` with `body`; the answer's `value`.
    async fn command(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}/{path}", self.id);
        webdriver(self.addr, method, &path, &body).await
    }

    async fn click(&self, css: &str) {
        let found = self
            .command(
                "POST",
                "element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        let element = found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"));
        self.command("POST", &format!("element/{element}/click"), json!({}))
            .await;
    }

    async fn script(&self, script: &str) -> Value {
        self.command(
            "POST",
            "execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Runs `script` every 100 ms until it returns something other than `""` (10 s at most).
    async fn wait_for_script(&self, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let value = self.script(script).await;
            if value != "" {
                return value;
            }
            assert!(Instant::now() < deadline, "timed out running {script}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn delete(self) {
        let path = format!("/session/{}", self.id);
        webdriver(self.addr, "DELETE", &path, &Value::Null).await;
    }
}

/// One WebDriver command; panics with the driver's error. (reqwest, not the test kit's
/// one-shot client: chromedriver answers `Connection: close` but keeps the socket open.)
async fn webdriver(addr: SocketAddr, method: &str, path: &str, body: &Value) -> Value {
    agent_core::tls::ensure_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(COMMAND_DEADLINE)
        .build()
        .expect("an HTTP client");
    let url = format!("http://{addr}{path}");
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut request = client.request(method.clone(), &url);
    if !body.is_null() {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let answer = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = answer.status();
    let text = answer
        .text()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let value: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
    assert_eq!(status, 200, "{method} {path}: {value}");
    value["value"].clone()
}
