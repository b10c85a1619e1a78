//! (5) Three clients side by side: this framework (the `agent` CLI as a user runs it, with
//! its defaults, `--no-history` and `--trace`, and the library), openai-agents-python and
//! openai-agents-js, on the turns scenario (`agent-bench/scenarios/`, see [`crate::turns`])
//! against one agent-testkit server on loopback.
//!
//! - Each client is its own process; CPU = user + system time of that process (the server
//!   runs in the bench process and is not counted).
//! - Start-up is measured apart: every client also runs a 1-turn conversation. Per turn with
//!   start-up excluded = (CPU of N turns − CPU of 1 turn) / (N − 1); the totals are reported too.
//! - Our clients run many turns (so the kernel's 10 ms CPU ticks do not matter), the slower
//!   peers fewer; the comparison is per completed turn.
//! - Equal work is checked from the server's side for every run: responses played, audio
//!   deltas delivered, function-call outputs received, `response.create`s and protocol
//!   violations, against what the scenario asks for.
//! - Every figure is the median of `repeats` runs; the runs of all clients are interleaved so
//!   that a change in the machine's load spreads over all of them.

use std::path::Path;

use agent_testkit::server::{ScriptScope, ScriptedServer, ServerConfig};

use crate::{
    child::{self, ChildRun},
    clients::{self, Client, Programs},
    peer_install,
    server_work::ServerWork,
    turns::{Turns, WorkPerTurn},
};

/// How much to run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Turns for this framework's clients.
    pub ours: usize,
    /// Turns for the peer SDKs.
    pub peers: usize,
    /// Runs per figure (the median is reported).
    pub repeats: usize,
}

/// One run of one client, with the server's view of it.
#[derive(Debug, Clone)]
pub struct Run {
    /// The child's measures and its own report.
    pub child: ChildRun,
    /// What the server sent and received during the run.
    pub work: ServerWork,
}

/// All runs of one client.
#[derive(Debug, Clone)]
pub struct ClientRuns {
    /// Which client.
    pub client: Client,
    /// Turns of the long runs.
    pub turns: usize,
    /// The long runs.
    pub full: Vec<Run>,
    /// The 1-turn runs (start-up).
    pub startup: Vec<Run>,
    /// Why the client did not run (or stopped running), if it did not.
    pub failed: Option<String>,
    /// The first few protocol violations the server recorded for this client.
    pub violations: Vec<String>,
}

/// The comparison.
#[derive(Debug, Clone)]
pub struct SdkResult {
    /// What was run.
    pub plan: Plan,
    /// What one turn asks of a client.
    pub per_turn: WorkPerTurn,
    /// Every client's runs, in [`Client::ALL`] order.
    pub clients: Vec<ClientRuns>,
    /// `node --version`.
    pub node: String,
}

/// Runs every client against one scripted server.
pub fn run(plan: Plan, workspace: &Path, skip_peers: bool) -> anyhow::Result<SdkResult> {
    let turns = Turns::load(workspace)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let longest = plan.ours.max(plan.peers).max(1);
    let config = ServerConfig::new(turns.repeated(longest))
        .script_scope(ScriptScope::PerConnection)
        .record_frames(false);
    let per_turn = turns.work_per_turn(&config.audio);
    let server = rt.block_on(async { ScriptedServer::start(config) })?;
    let url = server.url();
    let programs = programs(workspace, skip_peers)?;
    let mut results: Vec<ClientRuns> = Client::ALL
        .iter()
        .map(|&client| ClientRuns {
            client,
            turns: if client.is_peer() {
                plan.peers
            } else {
                plan.ours
            },
            full: Vec::new(),
            startup: Vec::new(),
            failed: unavailable(client, &programs),
            violations: Vec::new(),
        })
        .collect();
    for round in 0..plan.repeats {
        for runs in results.iter_mut().filter(|r| r.failed.is_none()) {
            eprintln!(
                "  {} run {}/{}: 1 turn, then {} turns",
                runs.client.label(),
                round + 1,
                plan.repeats,
                runs.turns
            );
            for n in [1, runs.turns] {
                match one_run(&rt, &server, &programs, &turns, &url, runs.client, n) {
                    Ok((run, violations)) => {
                        runs.violations.extend(violations);
                        runs.violations.truncate(3);
                        if n == 1 {
                            runs.startup.push(run);
                        } else {
                            runs.full.push(run);
                        }
                    }
                    Err(e) => {
                        runs.failed = Some(format!("{e:#}"));
                        break;
                    }
                }
            }
        }
    }
    rt.block_on(server.shutdown());
    Ok(SdkResult {
        plan,
        per_turn,
        clients: results,
        node: peer_install::node_version(),
    })
}

/// Finds or installs every client's program.
fn programs(workspace: &Path, skip_peers: bool) -> anyhow::Result<Programs> {
    let skipped = "skipped (--skip-peers)";
    Ok(Programs {
        agent: crate::binaries::agent(crate::binaries::Profile::Dist)?,
        bench: std::env::current_exe()?,
        python: if skip_peers {
            Err(skipped.to_owned())
        } else {
            peer_install::python(workspace)
        },
        js: if skip_peers {
            Err(skipped.to_owned())
        } else {
            peer_install::js(workspace)
        },
        workspace: workspace.to_path_buf(),
    })
}

/// Why `client` cannot run at all, if so.
fn unavailable(client: Client, programs: &Programs) -> Option<String> {
    match client {
        Client::Python => programs.python.as_ref().err().cloned(),
        Client::Js => programs.js.as_ref().err().cloned(),
        _ => None,
    }
}

/// One run of `turns` turns; returns it and the violations the server recorded meanwhile.
fn one_run(
    rt: &tokio::runtime::Runtime,
    server: &agent_testkit::server::ServerHandle,
    programs: &Programs,
    scenario: &Turns,
    url: &str,
    client: Client,
    turns: usize,
) -> anyhow::Result<(Run, Vec<String>)> {
    let scratch = tempfile::tempdir()?;
    let (command, paced) = clients::command(client, programs, scenario, url, turns, scratch.path())
        .ok_or_else(|| anyhow::anyhow!("not available"))?;
    let before = rt.block_on(ServerWork::snapshot(server));
    let seen_before = rt.block_on(server.violations()).len();
    let child = child::run(command, paced)?;
    // The server may still be handling the client's last frames and its close.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let after = rt.block_on(ServerWork::snapshot(server));
    let violations = rt
        .block_on(server.violations())
        .into_iter()
        .skip(seen_before)
        .collect();
    Ok((
        Run {
            child,
            work: after.since(&before),
        },
        violations,
    ))
}

/// The median of `values` (0 when empty).
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

impl ClientRuns {
    /// Median CPU seconds of the long runs.
    pub fn cpu_full(&self) -> f64 {
        median(self.full.iter().map(|r| r.child.cpu))
    }

    /// Median CPU seconds of the 1-turn runs: start-up (and one turn).
    pub fn cpu_startup(&self) -> f64 {
        median(self.startup.iter().map(|r| r.child.cpu))
    }

    /// CPU per turn with start-up excluded, seconds.
    pub fn cpu_per_turn(&self) -> f64 {
        (self.cpu_full() - self.cpu_startup()) / (self.turns.saturating_sub(1).max(1)) as f64
    }

    /// Usage per turn with start-up excluded: each field the difference of the medians of the
    /// long and the 1-turn runs, per turn.
    pub fn usage_per_turn(&self) -> crate::common::Usage {
        let field = |runs: &[Run], f: fn(&crate::common::Usage) -> f64| {
            median(runs.iter().map(|r| f(&r.child.usage)))
        };
        let per = |f: fn(&crate::common::Usage) -> f64| {
            (field(&self.full, f) - field(&self.startup, f))
                / (self.turns.saturating_sub(1).max(1)) as f64
        };
        crate::common::Usage {
            user: per(|u| u.user),
            system: per(|u| u.system),
            voluntary_switches: per(|u| u.voluntary_switches),
            blocks_written: per(|u| u.blocks_written),
        }
    }

    /// CPU per turn with start-up included, seconds.
    pub fn cpu_per_turn_total(&self) -> f64 {
        self.cpu_full() / self.turns.max(1) as f64
    }

    /// Median wall seconds of the long runs.
    pub fn wall_full(&self) -> f64 {
        median(self.full.iter().map(|r| r.child.wall))
    }

    /// Median wall seconds of the 1-turn runs.
    pub fn wall_startup(&self) -> f64 {
        median(self.startup.iter().map(|r| r.child.wall))
    }

    /// Whether the client has numbers to show.
    pub fn measured(&self) -> bool {
        self.failed.is_none() && !self.full.is_empty() && !self.startup.is_empty()
    }

    /// The server's counters of the long runs, each the median over the runs; violations are
    /// the sum over all runs.
    pub fn work(&self) -> ServerWork {
        let m = |f: fn(&ServerWork) -> usize| {
            median(self.full.iter().map(|r| f(&r.work) as f64)).round() as usize
        };
        ServerWork {
            responses: m(|w| w.responses),
            audio_deltas: m(|w| w.audio_deltas),
            outputs: m(|w| w.outputs),
            creates: m(|w| w.creates),
            violations: self.full.iter().map(|r| r.work.violations).sum(),
        }
    }
}
