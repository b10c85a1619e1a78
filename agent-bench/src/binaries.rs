//! The `agent` binary the bench runs as a user would: built from this checkout by the bench
//! itself (a no-op when it is up to date), so the numbers are always of the current source.
//!
//! - `dist`: the shipped build (whole-program LTO, stripped, no debug info): §5's and §9's
//!   CLI and server rows and §7's size.
//! - `profiling`: the same code with line tables and symbols, for callgrind (§8).
//! - `release`: the memory probe only (its numbers count allocations, not CPU).
//!
//! The memory probe of §6 (`agent-bench-memory`, this package's second binary) is built the
//! same way: it has a counting global allocator, which this binary must not have.
//!
//! Both land in the bench's own target directory (the folder its executable is in, one level
//! up), which honours `CARGO_TARGET_DIR`.

use std::{
    path::PathBuf,
    process::Command,
    sync::{Mutex, OnceLock},
};

/// Which cargo profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `--release`.
    Release,
    /// `--profile dist`: what ships.
    Dist,
    /// `--profile profiling`.
    Profiling,
}

impl Profile {
    fn dir(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Dist => "dist",
            Profile::Profiling => "profiling",
        }
    }
}

/// Binaries built during this run (each is built once).
static BUILT: OnceLock<Mutex<Vec<(Profile, &'static str)>>> = OnceLock::new();

/// The `agent` binary of `profile`, built first (once per bench run).
pub fn agent(profile: Profile) -> anyhow::Result<PathBuf> {
    built(profile, "agent-cli", "agent")
}

/// The memory probe (§6), a release build.
pub fn memory_probe() -> anyhow::Result<PathBuf> {
    built(Profile::Release, "agent-bench", "agent-bench-memory")
}

/// Binary `bin` of `package`, built with `profile` first (once per bench run).
fn built(profile: Profile, package: &str, bin: &'static str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let target = exe
        .parent()
        .and_then(|p| p.parent())
        .ok_or_else(|| anyhow::anyhow!("cannot find the target directory of {}", exe.display()))?;
    let path = target.join(profile.dir()).join(bin);
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built.lock().map_err(|_| anyhow::anyhow!("poisoned lock"))?;
    if !built.contains(&(profile, bin)) {
        build(profile, target, package, bin)?;
        built.push((profile, bin));
    }
    anyhow::ensure!(path.is_file(), "{} was not built", path.display());
    Ok(path)
}

/// `cargo build --profile P -p PACKAGE --bin BIN` into `target`.
fn build(
    profile: Profile,
    target: &std::path::Path,
    package: &str,
    bin: &str,
) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let args = [
        "build",
        "--quiet",
        "--profile",
        profile.dir(),
        "-p",
        package,
        "--bin",
        bin,
    ];
    eprintln!("  cargo {}", args.join(" "));
    let status = Command::new(cargo)
        .args(args)
        .env("CARGO_TARGET_DIR", target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()?;
    anyhow::ensure!(status.success(), "cargo {} failed", args.join(" "));
    Ok(())
}
