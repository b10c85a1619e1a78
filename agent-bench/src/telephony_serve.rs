//! The servers under test of the telephony benchmark, each in its own process so its CPU and
//! memory are its own: the release `agent serve` as a user runs it, and openai-agents-js's
//! Twilio transport on node. Both reach the scripted Realtime server in the bench process.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;

/// The Twilio auth token of the benchmark's calls (a placeholder, not a credential).
pub const AUTH_TOKEN: &str = "bench-twilio-token";
/// The number the agent answers.
pub const NUMBER: &str = "+15550100";
/// The public URL the fake Twilio signs for; the stream's host in the TwiML is ignored.
pub const PUBLIC_BASE: &str = "http://phone.bench.invalid";
/// How long a server may take to say where it listens.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A server process under test; killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its working folder (config, history), removed after.
    _dir: Option<tempfile::TempDir>,
}

impl ServerProcess {
    /// `agent serve` with one Twilio route to an agent that runs `calculate` on each turn,
    /// its sessions pointed at `realtime_url`, history on (as `serve.toml` users get it).
    pub fn agent_serve(agent: &Path, realtime_url: &str, max_calls: usize) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("phone.toml"),
            "name = \"phone\"\ninstructions = \"You answer the phone.\"\n\
             output_modalities = [\"audio\"]\ntools = [\"calculate\"]\n\n\
             [turn_detection]\ntype = \"server_vad\"\nsilence_duration_ms = 300\n",
        )?;
        std::fs::write(
            dir.path().join("serve.toml"),
            format!(
                "listen = \"127.0.0.1:0\"\npublic_base_url = \"{PUBLIC_BASE}\"\nmax_calls = {max_calls}\n\n\
                 [limits]\nwebhook_burst = {}\nwebhook_requests_per_minute = 600000\n\n\
                 [history]\npath = \"history.sqlite3\"\n\n\
                 [[route]]\nagent = \"phone.toml\"\nnumbers = [\"{NUMBER}\"]\ngreet = false\n",
                max_calls * 2
            ),
        )?;
        let mut command = Command::new(agent);
        command
            .current_dir(dir.path())
            .args(["serve", "--config", "serve.toml", "--drain-secs", "5"])
            .args(["--url", realtime_url])
            .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
            .env_remove("OPENAI_API_KEY");
        let child = spawn(command, "agent serve: listening on http://", Stdio::null())?;
        Ok(ServerProcess {
            addr: child.1,
            child: child.0,
            _dir: Some(dir),
        })
    }

    /// openai-agents-js's `TwilioRealtimeTransportLayer` on node: `script` in `folder` (where
    /// its packages are installed), its model URL pointed at `realtime_url`.
    pub fn js_twilio(
        node: &Path,
        folder: &Path,
        script: &str,
        realtime_url: &str,
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(node);
        command
            .current_dir(folder)
            .args([script, realtime_url])
            .env_remove("OPENAI_API_KEY");
        let (child, addr) = spawn(command, "listening on http://", Stdio::null())?;
        Ok(ServerProcess {
            child,
            addr,
            _dir: None,
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

    /// Its resident set size, bytes.
    pub fn rss_bytes(&self) -> u64 {
        crate::common::rss_of(&self.pid())
    }

    /// Stops it: SIGTERM (a drain), then a kill if it is still there after `grace`.
    pub fn stop(mut self, grace: Duration) {
        let _ = Command::new("kill").args(["-TERM", &self.pid()]).status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `command` (its stderr to `stderr`) and reads its stdout until a line starting with
/// `ready` names the address; the rest of its output is read and dropped on a thread, so it
/// never blocks.
pub(crate) fn spawn(
    mut command: Command,
    ready: &str,
    stderr: Stdio,
) -> anyhow::Result<(Child, SocketAddr)> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let ready = ready.to_owned();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(addr) = line.trim().strip_prefix(ready.as_str()) {
                let _ = tx.send(addr.trim_end_matches('/').to_owned());
                break;
            }
        }
        for _ in lines {}
    });
    match rx.recv_timeout(START_DEADLINE) {
        Ok(addr) => {
            let addr = addr
                .parse()
                .with_context(|| format!("the server printed a bad address: {addr}"))?;
            Ok((child, addr))
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("the server did not say where it listens within {START_DEADLINE:?}")
        }
    }
}
