//! One `agent serve` node of the takeover benchmark: the release `agent` binary in a process
//! of its own, SIP calls only, its history on the shared PostgreSQL schema.

use std::{
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The webhook secret of the benchmark's platform (a placeholder, not a credential).
pub const WEBHOOK_SECRET: &str = "whsec_dGFrZW92ZXItYmVuY2gtd2ViaG9vay1zZWNyZXQtMDAx";
/// The SIP user the agent answers.
pub const SIP_USER: &str = "shop";

/// What every node of a run shares.
#[derive(Debug, Clone)]
pub struct NodeSetup<'a> {
    /// The `agent` binary.
    pub agent: &'a Path,
    /// The folder with `shop.toml`; each node writes its serve.toml and log there.
    pub dir: &'a Path,
    /// The schema's URL.
    pub db: &'a str,
    /// The fake platform's Realtime URL and REST base.
    pub realtime_url: String,
    /// The fake platform's REST base.
    pub api_base: String,
    /// `max_calls` of each node.
    pub max_calls: usize,
    /// `[history] lease_secs`, or `None` for the default.
    pub lease_secs: Option<f64>,
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Spawn → its "listening" line.
    pub startup: Duration,
}

impl Node {
    /// Starts node `name`: its own serve.toml, the shared database (its connection named
    /// `bench-node-NAME` in `pg_stat_activity`), its log (info, JSON) to `NAME.log` in the
    /// folder.
    pub fn start(setup: &NodeSetup<'_>, name: &'static str) -> anyhow::Result<Node> {
        let config = setup.dir.join(format!("serve-{name}.toml"));
        let lease = setup
            .lease_secs
            .map_or(String::new(), |secs| format!("lease_secs = {secs}\n"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\nnode = \"{name}\"\npublic_base_url = \"https://voice.bench.invalid\"\n\
                 max_calls = {max}\n\n\
                 [limits]\nwebhook_requests_per_minute = 600000\nwebhook_burst = {max}\n\n\
                 [history]\n{lease}\n\
                 [[route]]\nagent = \"shop.toml\"\nsip_users = [\"{SIP_USER}\"]\n",
                max = setup.max_calls,
            ),
        )?;
        let db = format!("{}&application_name=bench-node-{name}", setup.db);
        let mut command = Command::new(setup.agent);
        // Info-level JSON logs (with timestamps), kept when a call does not complete.
        command
            .current_dir(setup.dir)
            .args(["-v", "--log-format", "json", "serve"])
            .arg("--config")
            .arg(&config)
            .args(["--url", &setup.realtime_url, "--api-base", &setup.api_base])
            .args(["--drain-secs", "5"])
            .env("AGENT_HISTORY_DB", db)
            .env("OPENAI_API_KEY", "sk-takeover-bench")
            .env("OPENAI_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env_remove("RUST_LOG");
        let log = std::fs::File::create(setup.dir.join(format!("{name}.log")))?;
        let started = Instant::now();
        let (child, addr) = crate::telephony_serve::spawn(
            command,
            "agent serve: listening on http://",
            Stdio::from(log),
        )?;
        Ok(Node {
            child,
            addr,
            startup: started.elapsed(),
        })
    }

    /// The process id, for /proc.
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// CPU seconds (user + system) it has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        crate::common::cpu_seconds(&self.pid())
    }

    /// SIGKILL: no drain, no clean-up; its sockets are reset by the kernel.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (a drain), then SIGKILL if it is still there after `grace`.
    pub fn stop(mut self, grace: Duration) {
        let _ = Command::new("kill").args(["-TERM", &self.pid()]).status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// The agent every node runs: greets, and records orders through an HTTP tool on `orders`
/// whose requests carry the call's idempotency key.
pub fn write_agent(dir: &Path, orders: SocketAddr) -> std::io::Result<()> {
    std::fs::write(
        dir.join("shop.toml"),
        format!(
            r#"name = "shop"
instructions = "Take orders."

[[http_tools]]
name = "record_order"
description = "Records an order."
method = "POST"
url = "http://{orders}/orders"
timeout_secs = 20
parameters = {{ type = "object", properties = {{ item = {{ type = "string" }} }}, required = ["item"] }}
idempotency_header = "Idempotency-Key"
"#
        ),
    )
}
