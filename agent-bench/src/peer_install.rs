//! The peer SDKs, installed into throwaway folders under `target/` on first use (pinned, so
//! runs compare): openai-agents-python into a venv, openai-agents-js with npm. Each returns why
//! it is unavailable instead of failing the bench.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The openai-agents (Python) version.
pub const PYTHON_SDK: &str = "0.24.0";
/// The `@openai/agents-realtime` (JavaScript) version.
pub const JS_SDK: &str = "0.20.0";
/// Its peer dependency, pinned too.
const ZOD: &str = "4.6.7";
/// The JS client script, copied next to its `node_modules`.
pub const JS_SCRIPT: &str = "sdk_client.mjs";

/// The venv's python with `openai-agents` installed, creating the venv if needed.
pub fn python(workspace: &Path) -> Result<PathBuf, String> {
    venv_python(workspace).map_err(|e| format!("{e:#}"))
}

fn venv_python(workspace: &Path) -> anyhow::Result<PathBuf> {
    let venv = workspace.join("target/bench-venv");
    let python = venv.join("bin/python");
    let installed = || {
        Command::new(&python)
            .args([
                "-c",
                "import importlib.metadata as m, agents.realtime; print(m.version('openai-agents'))",
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if installed().as_deref() == Some(PYTHON_SDK) {
        return Ok(python);
    }
    eprintln!(
        "  installing openai-agents=={PYTHON_SDK} into {}",
        venv.display()
    );
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run python3 -m venv: {e}; install Python 3.9+"))?;
    anyhow::ensure!(
        status.success(),
        "python3 -m venv {} failed",
        venv.display()
    );
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("openai-agents=={PYTHON_SDK}"))
        .status()?;
    anyhow::ensure!(
        status.success(),
        "pip install openai-agents=={PYTHON_SDK} failed (is PyPI reachable?)"
    );
    installed()
        .filter(|v| v == PYTHON_SDK)
        .map(|_| python.clone())
        .ok_or_else(|| anyhow::anyhow!("openai-agents does not import after installing it"))
}

/// node and the folder holding `@openai/agents-realtime` and the client script, installing the
/// package with npm if needed.
pub fn js(workspace: &Path) -> Result<(PathBuf, PathBuf), String> {
    let folder = NodeFolder {
        name: "bench-node",
        package: "@openai/agents-realtime",
        version: JS_SDK,
        also: &[("zod", ZOD)],
        script: JS_SCRIPT,
    };
    folder.install(workspace).map_err(|e| format!("{e:#}"))
}

/// The `@openai/agents-extensions` version (its Twilio transport).
pub const JS_EXTENSIONS: &str = "0.18.0";
/// `@openai/agents` at the version the extensions are built against.
const JS_AGENTS: &str = "0.18.0";
/// The WebSocket server the Twilio example uses.
const WS: &str = "8.21.0";
/// The Twilio media-stream server script, copied next to its `node_modules`.
pub const JS_TWILIO_SCRIPT: &str = "twilio_server.mjs";

/// node and the folder holding `@openai/agents-extensions` (the Twilio transport) and its
/// server script, installing the packages with npm if needed. A folder apart from
/// [`js`]'s, so each peer keeps the versions it pins.
pub fn js_twilio(workspace: &Path) -> Result<(PathBuf, PathBuf), String> {
    let folder = NodeFolder {
        name: "bench-node-twilio",
        package: "@openai/agents-extensions",
        version: JS_EXTENSIONS,
        also: &[("@openai/agents", JS_AGENTS), ("ws", WS), ("zod", ZOD)],
        script: JS_TWILIO_SCRIPT,
    };
    folder.install(workspace).map_err(|e| format!("{e:#}"))
}

/// A throwaway npm folder under `target/` for one peer: its main package, the packages it
/// needs beside it (all pinned) and its script from `agent-bench/js`.
struct NodeFolder {
    name: &'static str,
    package: &'static str,
    version: &'static str,
    also: &'static [(&'static str, &'static str)],
    script: &'static str,
}

impl NodeFolder {
    /// node and the folder, installed unless the main package is there at its version.
    fn install(&self, workspace: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
        let node = node()?;
        let folder = workspace.join("target").join(self.name);
        let package = folder
            .join("node_modules")
            .join(self.package)
            .join("package.json");
        let (name, version) = (self.package, self.version);
        if installed_version(&package).as_deref() != Some(version) {
            eprintln!("  installing {name}@{version} into {}", folder.display());
            std::fs::create_dir_all(&folder)?;
            std::fs::write(
                folder.join("package.json"),
                r#"{"private": true, "type": "module"}"#,
            )?;
            let status = Command::new("npm")
                .current_dir(&folder)
                .args(["install", "--no-audit", "--no-fund", "--save-exact"])
                .arg(format!("{name}@{version}"))
                .args(self.also.iter().map(|(p, v)| format!("{p}@{v}")))
                .status()
                .map_err(|e| anyhow::anyhow!("cannot run npm: {e}"))?;
            anyhow::ensure!(
                status.success(),
                "npm install {name}@{version} failed (is the npm registry reachable?)"
            );
        }
        for file in [self.script, JS_TOOLS] {
            std::fs::copy(
                workspace.join("agent-bench/js").join(file),
                folder.join(file),
            )?;
        }
        Ok((node, folder))
    }
}

/// The no-op tool both JS peers give their agent, imported by their scripts.
const JS_TOOLS: &str = "bench_tools.mjs";

/// `node`, once it answers `--version`.
fn node() -> anyhow::Result<PathBuf> {
    let node = PathBuf::from("node");
    let version = Command::new(&node)
        .arg("--version")
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run node: {e}; install Node.js"))?;
    anyhow::ensure!(version.status.success(), "node --version failed");
    Ok(node)
}

/// The `version` of an installed package.json, if there is one.
fn installed_version(package: &Path) -> Option<String> {
    std::fs::read_to_string(package)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("version").and_then(|v| v.as_str()).map(str::to_owned))
}

/// `node --version`, for the report.
pub fn node_version() -> String {
    Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "not found".to_owned())
}
