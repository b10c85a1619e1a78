//! `agent call FILE --offline`: the whole phone path on loopback, with generated secrets.
//!
//! The pieces are the ones the tests use: the scripted Realtime server plays the scenario
//! (with a greeting first, see [`super::script`]), `agent serve` runs from a `serve.toml`
//! made in memory that routes one number (Twilio) or one SIP user to the agent file, and the
//! fake Twilio or the fake platform places the call. The caller's turns follow the scenario;
//! each wait has [`STEP_DEADLINE`], the call a deadline of its own.

use std::{
    net::SocketAddr,
    path::Path,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use agent_core::{agent::Agent, cost::format_usd, session::Secret};
use agent_server::{AppState, Secrets, ServeConfig, ServeOptions, Server, metrics::Outcome};
use agent_testkit::{
    Scenario,
    platform::{CallControl, CallState, FakePlatform, IncomingCall, SidebandDrop, WebhookSigning},
    server::{ScriptedServer, ServerConfig},
    twilio::{CallSpec, FakeTwilio},
};
use anyhow::{Context, bail};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use super::{
    CallArgs, Transport, random_hex,
    script::{self, CallerTurn, STEP_DEADLINE},
    throwaway_secret,
    transcript::{Seen, Transcript},
};

/// The number the simulated agent answers, and the simulated caller's.
pub const AGENT_NUMBER: &str = "+15550100";
const CALLER_NUMBER: &str = "+15550111";
/// The SIP user the simulated agent answers.
const SIP_USER: &str = "agent";
/// How long the SIP caller stays on the line after the last answer before hanging up.
const HANG_UP_PAUSE: Duration = Duration::from_secs(2);
/// How long the server gets to wind the call down once the caller is gone.
const WIND_DOWN: Duration = Duration::from_secs(10);

/// How the call ended, from both sides.
struct Ended {
    /// How the server counted it; `None` when it did not finish in time.
    outcome: Option<Outcome>,
    /// How long the call lasted.
    duration: Duration,
    /// What went wrong, for the error report.
    problems: Vec<String>,
}

impl Ended {
    /// The call's end, with the protocol mistakes the scripted model saw among its problems.
    fn with_mistakes(
        outcome: Option<Outcome>,
        duration: Duration,
        mut problems: Vec<String>,
        mistakes: Vec<String>,
    ) -> Ended {
        problems.extend(
            mistakes
                .into_iter()
                .map(|v| format!("the scripted model saw a protocol mistake: {v}")),
        );
        Ended {
            outcome,
            duration,
            problems,
        }
    }
}

/// Places the simulated call and prints its transcript and outcome.
pub async fn run(agent: &Agent, args: &CallArgs) -> anyhow::Result<ExitCode> {
    let scenarios = crate::cmd::run::load_scenarios(&args.file, args.scenario.as_deref())?;
    let scenario = &scenarios[0];
    let phone = agent.spec().phone.clone().unwrap_or_default();
    let call = script::phone_scenario(scenario, &phone, agent.name());
    let turns = script::caller_turns(&call);
    let spoken: Vec<String> = turns
        .iter()
        .filter_map(|t| match t {
            CallerTurn::Speaks(text) => Some(text.clone()),
            CallerTurn::Presses(_) => None,
        })
        .collect();
    let transcript = Arc::new(Transcript::new(spoken));
    let (how, route) = match args.transport {
        Transport::Twilio => (
            "Twilio Media Streams",
            format!("numbers = [\"{AGENT_NUMBER}\"]"),
        ),
        Transport::Sip => ("OpenAI SIP", format!("sip_users = [\"{SIP_USER}\"]")),
    };
    crate::output::outln!(
        "── calling `{}` over {how}, offline: scenario `{}` ──",
        agent.name(),
        scenario.name
    );
    let ended = match args.transport {
        Transport::Twilio => twilio(&args.file, &route, call, &turns, transcript.clone()).await?,
        Transport::Sip => sip(&args.file, &route, call, &turns, transcript.clone()).await?,
    };
    report(ended, &transcript.seen())
}

/// A `serve.toml` routing `route` to `agent_file`, listening on `addr`, made in memory.
fn serve_config(
    agent_file: &Path,
    addr: SocketAddr,
    route: &str,
    twilio_api_base: Option<&str>,
) -> anyhow::Result<ServeConfig> {
    let agent_file = std::path::absolute(agent_file)
        .with_context(|| format!("cannot resolve {}", agent_file.display()))?;
    let agent = toml::Value::String(agent_file.display().to_string());
    let twilio = twilio_api_base
        .map(|base| format!("[twilio]\napi_base = \"{base}\"\n"))
        .unwrap_or_default();
    // The transcript is printed; the call is not stored in the user's history.
    let text = format!(
        "listen = \"{addr}\"\npublic_base_url = \"http://{addr}\"\nmax_calls = 1\n\n{twilio}\n[history]\nstore = false\n\n[[route]]\nagent = {agent}\n{route}\n"
    );
    let path = agent_file.with_file_name("agent-call.serve.toml");
    Ok(ServeConfig::parse(path, &text)?)
}

/// `agent serve` running on `listener`, its sessions observed by `transcript`.
struct Serving {
    state: Arc<AppState>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

async fn serve(
    config: ServeConfig,
    secrets: Secrets,
    options: ServeOptions,
    listener: TcpListener,
    transcript: Arc<Transcript>,
) -> anyhow::Result<Serving> {
    let registry = agent_tools::registry()?;
    let server = Server::with_listener(config, &registry, secrets, options, listener).await?;
    server.observe_sessions(transcript);
    let state = server.state();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    Ok(Serving { state, stop, task })
}

impl Serving {
    /// How the server counted the call, once its slot is free ([`WIND_DOWN`] at most).
    async fn outcome(&self) -> Option<Outcome> {
        let deadline = Instant::now() + WIND_DOWN;
        loop {
            let counted = Outcome::ALL
                .into_iter()
                .find(|o| self.state.metrics.outcome_count(*o) > 0);
            if let Some(outcome) = counted
                && self.state.capacity.in_use() == 0
            {
                return Some(outcome);
            }
            if Instant::now() >= deadline {
                return counted;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(WIND_DOWN, self.task).await;
    }
}

/// The fake OpenAI platform on 127.0.0.1 playing `scenario`, and the server's secrets for
/// it: a webhook secret and an API key made for this run (the platform checks the key).
pub(crate) fn fake_platform(scenario: Scenario) -> anyhow::Result<(FakePlatform, Secrets)> {
    let webhook_secret = format!("whsec_{}", throwaway_secret(32));
    let api_key = format!("sk-local-{}", throwaway_secret(16));
    let platform = FakePlatform::start(
        ServerConfig::new(scenario),
        SidebandDrop::CallSurvives,
        &webhook_secret,
        Some(&api_key),
    )
    .context("cannot start the fake OpenAI platform on 127.0.0.1")?;
    let secrets = Secrets {
        openai_webhook_secret: Some(Secret::new(webhook_secret)),
        openai_api_key: Some(Secret::new(api_key)),
        ..Secrets::default()
    };
    Ok((platform, secrets))
}

/// The server's options to reach `platform`: its sideband URL and REST base.
pub(crate) fn fake_platform_options(platform: &FakePlatform) -> ServeOptions {
    listen_options(platform.realtime_url(), Some(platform.api_base()))
}

fn listen_options(realtime_url: String, api_base: Option<String>) -> ServeOptions {
    ServeOptions {
        realtime_url: Some(realtime_url),
        api_base,
        drain_timeout: Some(Duration::from_secs(2)),
    }
}

async fn twilio(
    file: &Path,
    route: &str,
    scenario: Scenario,
    turns: &[CallerTurn],
    transcript: Arc<Transcript>,
) -> anyhow::Result<Ended> {
    let scripted = ScriptedServer::start(ServerConfig::new(scenario))
        .context("cannot start the scripted Realtime server on 127.0.0.1")?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let token = throwaway_secret(16);
    let twilio = FakeTwilio::new(addr, &format!("http://{addr}"), &token);
    let rest = twilio.start_rest().await?;
    let config = serve_config(file, addr, route, Some(&rest.api_base()))?;
    let secrets = Secrets {
        twilio_auth_token: Some(Secret::new(token)),
        ..Secrets::default()
    };
    let serving = serve(
        config,
        secrets,
        listen_options(scripted.url(), None),
        listener,
        transcript,
    )
    .await?;
    let started = Instant::now();
    let call_sid = format!("CA{}", random_hex(16));
    let spec = CallSpec {
        deadline: script::call_deadline(turns),
        ..CallSpec::new(
            &call_sid,
            CALLER_NUMBER,
            AGENT_NUMBER,
            script::twilio_script(turns),
        )
    };
    let record = twilio.call(&spec).await;
    let duration = started.elapsed();
    let outcome = serving.outcome().await;
    let mut problems = Vec::new();
    match record {
        Ok(record) if record.ended_by_server && !record.ended_by_update => problems.push(format!(
            "the server ended the media stream{}",
            record
                .close
                .map(|(code, why)| format!(" (close {code}: {why})"))
                .unwrap_or_default()
        )),
        Ok(_) => {}
        Err(err) => problems.push(format!("the call failed: {err}")),
    }
    for update in rest.updates() {
        if let Some(target) = update.dial_target() {
            crate::output::outln!("  (the agent transferred the call to {target}: Twilio <Dial>)");
        } else if update.is_hangup() {
            crate::output::outln!("  (the agent hung up: Twilio call update <Hangup/>)");
        }
    }
    serving.stop().await;
    let ended = Ended::with_mistakes(outcome, duration, problems, scripted.violations().await);
    scripted.shutdown().await;
    Ok(ended)
}

async fn sip(
    file: &Path,
    route: &str,
    scenario: Scenario,
    turns: &[CallerTurn],
    transcript: Arc<Transcript>,
) -> anyhow::Result<Ended> {
    // Each step's responses, greeting first, to know when an answer is over.
    let steps = script::responses_per_turn(&scenario);
    let (platform, secrets) = fake_platform(scenario)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = serve_config(file, addr, route, None)?;
    let options = fake_platform_options(&platform);
    let serving = serve(config, secrets, options, listener, transcript).await?;
    let started = Instant::now();
    let problems = sip_call(&platform, addr, SIP_USER, turns, &steps).await;
    let duration = started.elapsed();
    let outcome = serving.outcome().await;
    for request in platform.requests() {
        match request.action.as_str() {
            "refer" => crate::output::outln!(
                "  (the agent transferred the call to {}: SIP REFER)",
                request
                    .body
                    .as_ref()
                    .map_or("?", |b| b["target_uri"].as_str().unwrap_or("?"))
            ),
            "hangup" if request.status == 200 => {
                crate::output::outln!(
                    "  (the agent hung up: POST /v1/realtime/calls/{{id}}/hangup)"
                );
            }
            _ => {}
        }
    }
    serving.stop().await;
    let mistakes = platform.sideband().violations().await;
    platform.shutdown().await;
    Ok(Ended::with_mistakes(outcome, duration, problems, mistakes))
}

/// The SIP call to `sip_user` from the platform's side: the webhook, then each turn once the
/// answer to the one before is over (`steps`: each turn's responses, the greeting's first),
/// then the caller hangs up. Returns what went wrong.
pub(crate) async fn sip_call(
    platform: &FakePlatform,
    server: SocketAddr,
    sip_user: &str,
    turns: &[CallerTurn],
    steps: &[usize],
) -> Vec<String> {
    let call_id = &format!("rtc_{}", random_hex(12));
    let call = IncomingCall::new(
        call_id,
        &format!("sip:{CALLER_NUMBER}@pstn.invalid"),
        &format!("sip:{sip_user}@sip.api.openai.com"),
    );
    let webhook_id = format!("wh_{}", random_hex(8));
    match platform
        .incoming_call(
            server,
            "/openai/webhook",
            &call,
            &webhook_id,
            WebhookSigning::Valid,
        )
        .await
    {
        Ok(answer) if answer.status == 200 => {}
        Ok(answer) => {
            return vec![format!(
                "the server answered the webhook with {}",
                answer.status
            )];
        }
        Err(err) => return vec![format!("the webhook could not be delivered: {err}")],
    }
    let attached = platform
        .until(STEP_DEADLINE, |p| p.calls().attached(call_id))
        .await;
    if !attached {
        return vec![format!(
            "the server did not accept the call and attach its sideband within {STEP_DEADLINE:?} (state: {:?})",
            platform.calls().state(call_id)
        )];
    }
    let live = |p: &FakePlatform| p.calls().state(call_id) == Some(CallState::Accepted);
    let mut expected = 0;
    for (index, step_count) in steps.iter().enumerate() {
        if index > 0 {
            let control = match &turns[index - 1] {
                CallerTurn::Speaks(_) => CallControl::CallerSpeaks,
                CallerTurn::Presses(key) => CallControl::Dtmf(key.to_string()),
            };
            if !live(platform) || !platform.control(call_id, control) {
                break;
            }
        }
        expected += step_count;
        let answered = platform
            .until(STEP_DEADLINE, |p| {
                p.sideband().count_sent("response.done") >= expected || !live(p)
            })
            .await;
        if !answered {
            return vec![format!(
                "no answer to turn {} within {STEP_DEADLINE:?}",
                index + 1
            )];
        }
    }
    // Like a caller who listens a moment before hanging up: the agent may still end or
    // transfer the call once its last answer has played.
    platform.until(HANG_UP_PAUSE, |p| !live(p)).await;
    platform.calls().caller_hangs_up(call_id);
    Vec::new()
}

/// The closing line, and the exit code: 0 when the call completed with no problem.
fn report(ended: Ended, seen: &Seen) -> anyhow::Result<ExitCode> {
    let outcome = ended
        .outcome
        .map_or("unknown (the server did not finish the call)", |o| {
            o.as_str()
        });
    let cost = match &seen.cost {
        Some(totals) => {
            let usd = format_usd(totals["cost_usd"].as_f64().unwrap_or(0.0));
            if totals["unpriced"] == true {
                format!("at least {usd}")
            } else {
                usd
            }
        }
        None => "none reported".into(),
    };
    crate::output::outln!(
        "── call over: {} · {:.1} s · {} tool call(s) · cost {cost} ──",
        outcome.replace('_', " "),
        ended.duration.as_secs_f64(),
        seen.tools
    );
    let mut problems = ended.problems;
    match ended.outcome {
        None => problems.push("the server did not finish the call in time".into()),
        Some(Outcome::Failed) => {
            problems.push("the server ended the call as failed (run with -v to see why)".into());
        }
        Some(_) => {}
    }
    problems.extend(
        seen.errors
            .iter()
            .map(|e| format!("the Realtime server sent an error: {e}")),
    );
    if problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for problem in &problems {
        crate::output::errln!("  - {problem}");
    }
    bail!(
        "the call did not complete: {} problem(s) above",
        problems.len()
    )
}
