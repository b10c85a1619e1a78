//! (9) Telephony: simulated Twilio calls through `agent serve`, 100 to 1,000 at once, and
//! openai-agents-js's Twilio transport side by side.
//!
//! Three roles, in two processes per run:
//! - **the server under test**, a child process: the shipped (`dist`) `agent serve` with one Twilio
//!   route (history on, greeting off), or node running `TwilioRealtimeTransportLayer`. Its
//!   CPU (user + system, /proc/PID/stat) and RSS (/proc/PID/status) are its own.
//! - **the load generator** (this process, threads `tel-gen`): the callers of
//!   [`crate::telephony_load`], a 20 ms frame each in real time, a tool turn every 10 s.
//! - **the scripted Realtime server** (this process, threads `tel-model`): agent-testkit's,
//!   one conversation per connection: each turn calls `calculate` and then speaks 2 s of
//!   μ-law. Its CPU is read apart from the generator's, per thread.
//!
//! The generator and the scripted server share one clock, so frame in → append out and audio
//! delta in → Twilio frame out are timed end to end ([`crate::telephony_probe`]). Each level
//! ramps its calls up over [`Plan::ramp`], settles, and is measured for [`Plan::steady`]: CPU,
//! latencies and the generator's lag are taken over that window only. Then every caller hangs
//! up, and the frames each side counted are compared: frames sent by the callers against
//! audio appended at the scripted server, audio deltas sent against Twilio frames heard.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use agent_testkit::{
    ModelStep, Scenario, ScriptedCall, Turn,
    server::{ScriptScope, ScriptedServer, ServerConfig, ServerHandle},
    twilio::FakeTwilio,
};
use serde_json::json;

use crate::{
    common::{named_runtime, sleep_until},
    peer_install,
    telephony_load::{self, CallPlan, CallTotals, Dial, FRAME_BYTES},
    telephony_probe::Probe,
    telephony_serve::{AUTH_TOKEN, NUMBER, PUBLIC_BASE, ServerProcess},
};

/// How much to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Concurrent calls per level.
    pub levels: Vec<usize>,
    /// Calls start evenly over this.
    pub ramp: Duration,
    /// Wait after the ramp before measuring.
    pub settle: Duration,
    /// The measured window.
    pub steady: Duration,
    /// One tool turn per call this often.
    pub turn_every: Duration,
}

impl Plan {
    /// What the issue asks for.
    pub fn full() -> Plan {
        Plan {
            levels: vec![100, 250, 500, 1_000],
            ramp: Duration::from_secs(5),
            settle: Duration::from_secs(3),
            steady: Duration::from_secs(20),
            turn_every: Duration::from_secs(10),
        }
    }

    /// A smoke run.
    pub fn quick() -> Plan {
        Plan {
            levels: vec![50, 100],
            steady: Duration::from_secs(10),
            ..Plan::full()
        }
    }
}

/// How long each speech lasts (the server's VAD then ends the turn).
const SPEAK_FOR: Duration = Duration::from_secs(1);
/// The answer's audio per turn.
const ANSWER_MS: u32 = 2_000;
/// Turns scripted per connection (more than a call can ask for).
const TURNS: usize = 12;
/// The generator keeps real time when its p99 tick lag is at most one frame.
pub const GENERATOR_LAG_P99: Duration = Duration::from_millis(20);
/// A server sustains a level when, besides no loss and every turn done, its frame-in →
/// append-out p99 stays under this (a tenth of a second of audio).
pub const SUSTAINED_P99: Duration = Duration::from_millis(100);

/// Which server was under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The release `agent serve`.
    AgentServe,
    /// openai-agents-js's `TwilioRealtimeTransportLayer` on node.
    JsTwilio,
}

/// One level's numbers.
#[derive(Debug, Clone, Default)]
pub struct Level {
    /// Concurrent calls.
    pub calls: usize,
    /// Calls that failed (the first reasons are in `failures`).
    pub failed: usize,
    /// Up to three failure reasons.
    pub failures: Vec<String>,
    /// The measured window, s.
    pub steady_secs: f64,
    /// CPU seconds the server used in the window.
    pub server_cpu: f64,
    /// Server RSS before the first call and at the end of the window, bytes.
    pub rss: (u64, u64),
    /// CPU seconds of the generator's and the scripted server's threads in the window.
    pub generator_cpu: f64,
    /// CPU seconds of the scripted server's threads in the window.
    pub model_cpu: f64,
    /// The generator's tick lag: p50, p99, max, µs.
    pub lag_us: (u32, u32, u32),
    /// Frame in → append out: p50, p99, samples.
    pub frame_to_append_us: (u32, u32, usize),
    /// Audio delta in → Twilio frame out: p50, p99, samples.
    pub delta_to_frame_us: (u32, u32, usize),
    /// Frames the callers sent, and frames' worth of audio the scripted server was appended.
    pub frames: (u64, u64),
    /// Audio deltas the scripted server sent, and `media` frames the callers read.
    pub deltas: (u64, u64),
    /// Tool turns the callers asked for (speeches with time left for the answer), and tool
    /// outputs the scripted server received.
    pub turns: (u64, u64),
    /// Tool outputs the scripted server received during the window.
    pub turns_in_window: u64,
    /// Appends with no stamp, and Twilio frames with no delta to match.
    pub anomalies: (u64, u64),
    /// Protocol mistakes the scripted server saw.
    pub violations: Vec<String>,
}

impl Level {
    /// Server CPU per second of one call, ms.
    pub fn cpu_ms_per_call_second(&self) -> f64 {
        self.server_cpu * 1e3 / (self.calls as f64 * self.steady_secs).max(1e-9)
    }

    /// Server RSS per call, bytes.
    pub fn rss_per_call(&self) -> f64 {
        self.rss.1.saturating_sub(self.rss.0) as f64 / self.calls.max(1) as f64
    }

    /// Frames lost between the callers and the model (negative: audio the server added).
    pub fn frames_lost(&self) -> i64 {
        self.frames.0 as i64 - self.frames.1 as i64
    }

    /// Whether the generator kept real time (and placed every call): else the level does
    /// not count.
    pub fn generator_kept_up(&self) -> bool {
        self.failed == 0 && u128::from(self.lag_us.1) <= GENERATOR_LAG_P99.as_micros()
    }

    /// Tool turns the window should hold: every call speaks once per `turn_every`.
    pub fn turns_expected(&self, turn_every: Duration) -> f64 {
        self.calls as f64 * self.steady_secs / turn_every.as_secs_f64().max(1e-9)
    }

    /// Whether the server kept up in the steady state: the window's tool turns done (90 %
    /// at least: a turn's phase may straddle the window's edges), every answer frame delivered,
    /// appends on time. Frames lost are reported apart: a server that drops the frames that
    /// come before its model socket is open (the JS transport does) loses them at start-up,
    /// not in the steady state.
    pub fn sustained(&self, turn_every: Duration) -> bool {
        self.generator_kept_up()
            && self.deltas.0 == self.deltas.1
            && self.turns_in_window as f64 >= 0.9 * self.turns_expected(turn_every)
            && u128::from(self.frame_to_append_us.1) <= SUSTAINED_P99.as_micros()
    }
}

/// The section's results.
#[derive(Debug, Clone, Default)]
pub struct TelephonyResult {
    /// `agent serve`, one row per level.
    pub ours: Vec<Level>,
    /// The JS transport, levels up to the first it did not sustain.
    pub js: Vec<Level>,
    /// Why the JS transport did not run, if it did not.
    pub js_skipped: Option<String>,
    /// `node --version`.
    pub node: String,
    /// The plan run.
    pub steady: Duration,
    /// Tool turn period.
    pub turn_every: Duration,
}

/// Runs every level against `agent serve`, then the JS transport from the smallest level up
/// until it no longer keeps up.
pub fn run(plan: &Plan, workspace: &Path, skip_peers: bool) -> anyhow::Result<TelephonyResult> {
    let agent = crate::binaries::agent(crate::binaries::Profile::Dist)?;
    let runtimes = Runtimes::new()?;
    let mut result = TelephonyResult {
        node: peer_install::node_version(),
        steady: plan.steady,
        turn_every: plan.turn_every,
        ..TelephonyResult::default()
    };
    for &calls in &plan.levels {
        eprintln!("  agent serve: {calls} calls");
        let level = run_level(plan, calls, &runtimes, Subject::AgentServe, |url| {
            ServerProcess::agent_serve(&agent, url, calls)
        })?;
        result.ours.push(level);
    }
    if skip_peers {
        result.js_skipped = Some("--skip-peers".into());
        return Ok(result);
    }
    match peer_install::js_twilio(workspace) {
        Err(why) => result.js_skipped = Some(why),
        Ok((node, folder)) => {
            for &calls in &plan.levels {
                eprintln!("  openai-agents-js Twilio transport: {calls} calls");
                let level = run_level(plan, calls, &runtimes, Subject::JsTwilio, |url| {
                    ServerProcess::js_twilio(&node, &folder, peer_install::JS_TWILIO_SCRIPT, url)
                });
                let level = match level {
                    Ok(level) => level,
                    Err(err) => {
                        result.js_skipped = Some(format!("{err:#}"));
                        break;
                    }
                };
                let sustained = level.sustained(plan.turn_every);
                result.js.push(level);
                if !sustained {
                    break;
                }
            }
        }
    }
    Ok(result)
}

/// The generator's and the scripted server's runtimes, on threads named apart so their CPU
/// can be read apart.
struct Runtimes {
    generator: tokio::runtime::Runtime,
    model: tokio::runtime::Runtime,
}

const GENERATOR_THREADS: &str = "tel-gen";
const MODEL_THREADS: &str = "tel-model";

impl Runtimes {
    fn new() -> anyhow::Result<Runtimes> {
        Ok(Runtimes {
            generator: named_runtime(GENERATOR_THREADS)?,
            model: named_runtime(MODEL_THREADS)?,
        })
    }
}

/// CPU seconds of this process's threads whose name starts with `prefix`.
pub(crate) fn threads_cpu(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| comm.starts_with(prefix))
        })
        .map(|task| {
            let tid = task.file_name().to_string_lossy().into_owned();
            crate::common::cpu_seconds(&format!("self/task/{tid}"))
        })
        .sum()
}

/// One conversation per connection: each user turn calls `calculate`, then speaks.
fn scenario() -> Scenario {
    (0..TURNS).fold(Scenario::new("phone turns"), |scenario, _| {
        scenario.turn(
            Turn::user("What is six times seven?")
                .model(ModelStep::calls([ScriptedCall::new(
                    "calculate",
                    json!({"expression": "6*7"}),
                )]))
                .model(ModelStep::say("It is forty-two.").audio_ms(ANSWER_MS)),
        )
    })
}

/// CPU readings at one instant.
struct Snapshot {
    at: Instant,
    server: f64,
    generator: f64,
    model: f64,
    outputs: usize,
}

fn snapshot(server: &ServerProcess, scripted: &ServerHandle) -> Snapshot {
    Snapshot {
        at: Instant::now(),
        server: server.cpu_seconds(),
        generator: threads_cpu(GENERATOR_THREADS),
        model: threads_cpu(MODEL_THREADS),
        outputs: scripted.count_received_items("function_call_output"),
    }
}

fn run_level(
    plan: &Plan,
    calls: usize,
    runtimes: &Runtimes,
    subject: Subject,
    start: impl FnOnce(&str) -> anyhow::Result<ServerProcess>,
) -> anyhow::Result<Level> {
    let probe = Arc::new(Probe::new(calls));
    let config = ServerConfig::new(scenario())
        .script_scope(ScriptScope::PerConnection)
        .record_frames(false)
        .audio_probe(probe.clone());
    let scripted = runtimes
        .model
        .block_on(async { ScriptedServer::start(config) })?;
    let server = start(&scripted.url())?;
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = server.rss_bytes();
    let begin = Instant::now() + Duration::from_millis(200);
    let measure_from = begin + plan.ramp + plan.settle;
    let hang_up = measure_from + plan.steady + Duration::from_millis(500);
    let tasks: Vec<_> = (0..calls)
        .map(|i| {
            let call = CallPlan {
                index: i as u16,
                dial: dial(subject, server.addr),
                first_speech: Duration::from_secs(1) + plan.turn_every * i as u32 / calls as u32,
                turn_every: plan.turn_every,
                speak_for: SPEAK_FOR,
                hang_up,
            };
            let starts = begin + plan.ramp * i as u32 / calls as u32;
            let probe = probe.clone();
            runtimes.generator.spawn(async move {
                tokio::time::sleep_until(starts.into()).await;
                telephony_load::run(call, probe).await
            })
        })
        .collect();
    sleep_until(measure_from);
    probe.measure(true);
    let first = snapshot(&server, &scripted);
    sleep_until(measure_from + plan.steady);
    let last = snapshot(&server, &scripted);
    probe.measure(false);
    let rss_loaded = server.rss_bytes();
    let totals: Vec<CallTotals> = runtimes.generator.block_on(async {
        let mut totals = Vec::with_capacity(tasks.len());
        for task in tasks {
            let done = tokio::time::timeout(Duration::from_secs(60), task).await;
            totals.push(match done {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => failed(format!("the call's task: {e}")),
                Err(_) => failed("the call did not end within 60 s of its hang-up".into()),
            });
        }
        totals
    });
    // The server forwards what it read before the stop: wait until the appends stop coming.
    wait_for_quiet(&scripted);
    let level = measure(
        calls,
        &totals,
        &probe,
        &scripted,
        (&first, &last),
        (rss_before, rss_loaded),
    );
    let violations = runtimes.model.block_on(scripted.violations());
    server.stop(Duration::from_secs(10));
    runtimes.model.block_on(scripted.shutdown());
    Ok(Level {
        violations: violations.into_iter().take(3).collect(),
        ..level
    })
}

fn dial(subject: Subject, addr: std::net::SocketAddr) -> Dial {
    match subject {
        Subject::AgentServe => Dial::Webhook {
            twilio: FakeTwilio::new(addr, PUBLIC_BASE, AUTH_TOKEN),
            addr,
            to: NUMBER.to_owned(),
        },
        Subject::JsTwilio => Dial::Stream(format!("ws://{addr}/media-stream")),
    }
}

fn failed(why: String) -> CallTotals {
    CallTotals {
        failed: Some(why),
        ..CallTotals::default()
    }
}

/// Waits (10 s at most) until the scripted server's appended audio stops growing.
fn wait_for_quiet(scripted: &ServerHandle) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = scripted.received_audio_bytes();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let now = scripted.received_audio_bytes();
        if now == last {
            return;
        }
        last = now;
    }
}

fn measure(
    calls: usize,
    totals: &[CallTotals],
    probe: &Probe,
    scripted: &ServerHandle,
    (first, last): (&Snapshot, &Snapshot),
    rss: (u64, u64),
) -> Level {
    let failures: Vec<String> = totals.iter().filter_map(|t| t.failed.clone()).collect();
    let mut lag: Vec<u32> = totals
        .iter()
        .flat_map(|t| t.lag_us.iter().copied())
        .collect();
    lag.sort_unstable();
    let (mut in_us, mut out_us) = probe.samples();
    in_us.sort_unstable();
    out_us.sort_unstable();
    let sum = |f: fn(&CallTotals) -> u64| totals.iter().map(f).sum::<u64>();
    Level {
        calls,
        failed: failures.len(),
        failures: failures.into_iter().take(3).collect(),
        steady_secs: (last.at - first.at).as_secs_f64(),
        server_cpu: last.server - first.server,
        rss,
        generator_cpu: last.generator - first.generator,
        model_cpu: last.model - first.model,
        lag_us: (pick(&lag, 50.0), pick(&lag, 99.0), pick(&lag, 100.0)),
        frame_to_append_us: (pick(&in_us, 50.0), pick(&in_us, 99.0), in_us.len()),
        delta_to_frame_us: (pick(&out_us, 50.0), pick(&out_us, 99.0), out_us.len()),
        frames: (
            sum(|t| t.frames_sent),
            scripted.received_audio_bytes() / FRAME_BYTES as u64,
        ),
        deltas: (
            scripted.count_sent("response.output_audio.delta") as u64,
            sum(|t| t.media_frames),
        ),
        turns: (
            sum(|t| t.turns_asked),
            scripted.count_received_items("function_call_output") as u64,
        ),
        turns_in_window: last.outputs.saturating_sub(first.outputs) as u64,
        anomalies: probe.anomalies(),
        violations: Vec::new(),
    }
}

/// Nearest-rank percentile of sorted samples (0 when there are none).
fn pick(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
