//! BENCHMARKS.md §5 (three clients side by side) and its target rows.

use std::fmt::Write as _;

use serde_json::Value;

use crate::{
    clients::Client,
    peer_install,
    report::{Report, mark},
    sdk::{ClientRuns, SdkResult},
};

/// CLI defaults: CPU per turn, start-up excluded, at most this (seconds).
pub(crate) const CLI_CPU_PER_TURN: f64 = 0.25e-3;
/// At least this many times less CPU per turn than openai-agents-python.
const VS_PYTHON: f64 = 20.0;
/// At least this many times less CPU per turn than openai-agents-js.
const VS_JS: f64 = 40.0;
/// History costs at most this fraction more than `--no-history`.
pub(crate) const HISTORY_COST: f64 = 0.15;
/// `--trace` costs at most this fraction more than the defaults.
pub(crate) const TRACE_COST: f64 = 0.20;

fn ms(seconds: f64) -> String {
    format!("{:.3} ms", seconds * 1e3)
}

impl SdkResult {
    pub(crate) fn get(&self, client: Client) -> Option<&ClientRuns> {
        self.clients
            .iter()
            .find(|c| c.client == client && c.measured())
    }

    /// Whether a long run fell short of (or went past) the work the scenario asks for.
    fn work_note(&self, c: &ClientRuns) -> String {
        let w = c.work();
        let want = |per: usize| per * c.turns;
        let mut notes = Vec::new();
        let mut check = |what: &str, got: usize, per: usize| {
            if got != want(per) {
                notes.push(format!("{what} {got} of {}", want(per)));
            }
        };
        check("responses", w.responses, self.per_turn.responses);
        check("audio deltas", w.audio_deltas, self.per_turn.audio_deltas);
        check("outputs", w.outputs, self.per_turn.calls);
        check("response.create", w.creates, self.per_turn.responses);
        if notes.is_empty() {
            "equal".to_owned()
        } else {
            notes.join(", ")
        }
    }
}

impl Report {
    /// Target rows of §5.
    pub(crate) fn sdk_targets(&self, md: &mut String) {
        let Some(s) = &self.sdk else {
            return;
        };
        let Some(cli) = s.get(Client::CliDefaults) else {
            let _ = writeln!(
                md,
                "| CLI defaults: CPU per turn ≤ 0.25 ms | not measured | |"
            );
            return;
        };
        let per = cli.cpu_per_turn();
        let _ = writeln!(
            md,
            "| `agent run` defaults: CPU per turn ≤ 0.25 ms, start-up excluded | {} ({} turns, median of {}) | {} |",
            ms(per),
            cli.turns,
            cli.full.len(),
            over(per <= CLI_CPU_PER_TURN, per / CLI_CPU_PER_TURN)
        );
        for (peer, want) in [(Client::Python, VS_PYTHON), (Client::Js, VS_JS)] {
            let name = peer.label();
            match s.get(peer) {
                Some(p) => {
                    let ratio = p.cpu_per_turn() / per.max(1e-12);
                    let _ = writeln!(
                        md,
                        "| ≥ {want:.0}× less CPU per turn than {name} (start-up excluded) | {ratio:.1}× ({} vs {}) | {} |",
                        ms(per),
                        ms(p.cpu_per_turn()),
                        if ratio >= want {
                            "met".to_owned()
                        } else {
                            format!(
                                "**not met**: needs ≤ {} per turn",
                                ms(p.cpu_per_turn() / want)
                            )
                        }
                    );
                }
                None => {
                    let _ = writeln!(
                        md,
                        "| ≥ {want:.0}× less CPU per turn than {name} | did not run (see 5.) | |"
                    );
                }
            }
        }
        let pairs = [
            (
                "history costs ≤ 15% (defaults vs `--no-history`)",
                Client::CliDefaults,
                Client::CliNoHistory,
                HISTORY_COST,
            ),
            (
                "`--trace` costs ≤ 20% (`--trace` vs defaults)",
                Client::CliTrace,
                Client::CliDefaults,
                TRACE_COST,
            ),
        ];
        for (what, with, without, limit) in pairs {
            if let (Some(a), Some(b)) = (s.get(with), s.get(without)) {
                let cost = a.cpu_per_turn() / b.cpu_per_turn().max(1e-12) - 1.0;
                let _ = writeln!(
                    md,
                    "| {what} | +{:.0}% ({} vs {} per turn) | {} |",
                    cost * 100.0,
                    ms(a.cpu_per_turn()),
                    ms(b.cpu_per_turn()),
                    over(cost <= limit, (1.0 + cost) / (1.0 + limit))
                );
            }
        }
    }

    /// §5.
    pub(crate) fn sdk_section(&self, md: &mut String) {
        let Some(s) = &self.sdk else {
            return;
        };
        let _ = writeln!(md, "## 5. Three clients side by side\n");
        let _ = writeln!(
            md,
            "One agent-testkit server on loopback plays the turns scenario \
             (`agent-bench/scenarios/turns.scenarios.toml`) to each client in turn. One turn: a \
             typed message → a response with {} function calls (no-op tools) → the outputs and \
             one `response.create` → a spoken answer ({} audio deltas of 100 ms, with its \
             transcript). Each client is its own process; CPU = user + system time of that \
             process. Every client runs a 1-turn conversation (start-up: process, imports, \
             connection, one turn) and a long one; **per turn** = (CPU of N turns − CPU of 1 \
             turn) / (N − 1), start-up excluded; **total per turn** = CPU of N turns / N. Each \
             figure is the median of {} runs, the runs of all clients interleaved. Our clients \
             run {} turns, the SDKs {}.\n",
            s.per_turn.calls, s.per_turn.audio_deltas, s.plan.repeats, s.plan.ours, s.plan.peers
        );
        let _ = writeln!(
            md,
            "| client | turns | CPU per turn, start-up excluded | start-up CPU (1-turn run) | CPU total, N turns | total per turn | wall, N turns | wall, 1 turn |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for c in &s.clients {
            if !c.measured() {
                let why = c.failed.as_deref().unwrap_or("no runs");
                let _ = writeln!(
                    md,
                    "| {} | – | did not run: {} | | | | | |",
                    c.client.label(),
                    one_line(why)
                );
                continue;
            }
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.3} s | {:.2} s | {} | {:.2} s | {:.2} s |",
                c.client.label(),
                c.turns,
                ms(c.cpu_per_turn()),
                c.cpu_startup(),
                c.cpu_full(),
                ms(c.cpu_per_turn_total()),
                c.wall_full(),
                c.wall_startup()
            );
        }
        self.sdk_work(md, s);
        self.sdk_usage(md, s);
        self.sdk_notes(md, s);
    }

    /// Where each client's CPU per turn goes: user space against the kernel, and the wake-ups
    /// and file writes that bring the kernel in.
    fn sdk_usage(&self, md: &mut String, s: &SdkResult) {
        let _ = writeln!(
            md,
            "\n**Where the CPU per turn goes** (start-up excluded, medians as above; from the \
             kernel's accounting of each client process, `getrusage`). A wake-up is a \
             voluntary context switch: a thread waited and was woken (a frame arrived, a queue \
             was pushed, a sync returned). Blocks are 512-byte units the file system wrote.\n"
        );
        let _ = writeln!(
            md,
            "| client | user per turn | system per turn | wake-ups per turn | blocks written per turn |\n| --- | ---: | ---: | ---: | ---: |"
        );
        for c in s.clients.iter().filter(|c| c.measured()) {
            let u = c.usage_per_turn();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.1} | {:.1} |",
                c.client.label(),
                ms(u.user),
                ms(u.system),
                u.voluntary_switches,
                u.blocks_written
            );
        }
    }

    /// The equal-work table, from the server's side.
    fn sdk_work(&self, md: &mut String, s: &SdkResult) {
        let _ = writeln!(
            md,
            "\n**Equal work, from the server's side** (medians over the long runs; violations \
             summed over them). Asked per turn: {} responses, {} audio deltas delivered, {} \
             function-call outputs, {} `response.create`s, no protocol violation. The clients' \
             own counts are beside them.\n",
            s.per_turn.responses, s.per_turn.audio_deltas, s.per_turn.calls, s.per_turn.responses
        );
        let _ = writeln!(
            md,
            "| client | turns | responses | audio deltas | outputs received | response.create | violations | vs asked | client's own count |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
        );
        for c in s.clients.iter().filter(|c| c.measured()) {
            let w = c.work();
            let own = c
                .full
                .first()
                .map(|r| own_count(&r.child.report))
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {own} |",
                c.client.label(),
                c.turns,
                w.responses,
                w.audio_deltas,
                w.outputs,
                w.creates,
                w.violations,
                s.work_note(c)
            );
        }
    }

    fn sdk_notes(&self, md: &mut String, s: &SdkResult) {
        let _ = writeln!(
            md,
            "\nThe CLI rows run the shipped (`dist` profile) `agent` binary as a user would: `agent run \
             agent-bench/scenarios/turns.toml --url ws://127.0.0.1:PORT/v1/realtime`, typed input \
             piped in one line per turn (the next line once the reply is printed), output \
             piped to the bench; history goes to a fresh data folder per run (`XDG_DATA_HOME`). \
             Its tool is the built-in `calculate` (a one-digit sum per call); the library runs \
             the same agent file with the same tools; the SDKs' tools return a constant. \
             Python: `openai-agents=={}` (`RealtimeRunner`, model config `url`), in \
             `target/bench-venv`, client `agent-bench/python/sdk_client.py`. JavaScript: \
             `@openai/agents-realtime@{}` (`RealtimeSession`, `OpenAIRealtimeWebSocket` with its \
             `url`) on node {}, in `target/bench-node`, client `agent-bench/js/sdk_client.mjs`. \
             Both SDK clients end a turn once its three tools ended, an answer is done and no \
             response is running.",
            peer_install::PYTHON_SDK,
            peer_install::JS_SDK,
            s.node
        );
        for c in &s.clients {
            for v in &c.violations {
                let _ = writeln!(md, "\n- {} violation: {v}", c.client.label());
            }
        }
        let _ = writeln!(md);
    }
}

/// "met", or "**not met**" with how far off.
fn over(met: bool, factor: f64) -> String {
    if met {
        mark(true).to_owned()
    } else {
        format!("**not met**: {factor:.2}× the target")
    }
}

fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(300).collect()
}

/// The counts a client printed, in one cell.
fn own_count(report: &Value) -> String {
    let Some(obj) = report.as_object() else {
        return "–".to_owned();
    };
    obj.iter()
        .filter(|(k, _)| *k != "seconds" && *k != "turns")
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
