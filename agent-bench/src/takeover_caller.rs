//! One simulated SIP caller of the takeover benchmark, on the fake platform: its call is
//! announced to a node by webhook, it waits for the greeting, says each scripted turn at its
//! time (waiting, while no sideband is attached, for one to be), waits for each answer, says
//! goodbye and hangs up.
//!
//! "Answered" is the platform's own count: the call's script played every model step of the
//! turn to `response.done` (`PlatformCalls::steps_played`), polled every [`POLL`].

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use agent_testkit::platform::{CallControl, FakePlatform, IncomingCall, WebhookSigning};

/// How often a waiting caller looks at its call.
pub const POLL: Duration = Duration::from_millis(50);

/// What one caller does, and when.
#[derive(Debug, Clone)]
pub struct CallScript {
    /// The platform's id of the call.
    pub call_id: String,
    /// The node whose webhook announces it.
    pub node: SocketAddr,
    /// When the call comes in.
    pub place_at: Instant,
    /// When each user turn is due (the tool turns, then goodbye); a late call says it as
    /// soon as it can.
    pub turns_at: Vec<Instant>,
    /// Model steps of each user turn, in order (a tool turn has two: the call, the answer).
    pub steps: Vec<usize>,
    /// The caller gives up waiting at this time.
    pub give_up: Instant,
}

/// How one call went, from the caller's side.
#[derive(Debug, Clone, Default)]
pub struct CallOutcome {
    /// The call's id.
    pub call_id: String,
    /// Why it did not complete, if it did not.
    pub failed: Option<String>,
    /// Webhook sent → greeting played.
    pub setup: Option<Duration>,
    /// Each user turn: when it was said, and said → answered.
    pub turns: Vec<(Instant, Duration)>,
    /// When the caller hung up (the call completed).
    pub hung_up: Option<Instant>,
    /// When the turn that was never answered was said, if one was not.
    pub unanswered: Option<Instant>,
}

impl CallOutcome {
    /// Every turn answered and the caller hung up.
    pub fn completed(&self) -> bool {
        self.failed.is_none() && self.hung_up.is_some()
    }
}

/// Plays `script` to its end on `platform`.
pub async fn run(platform: Arc<FakePlatform>, script: CallScript) -> CallOutcome {
    let mut outcome = CallOutcome {
        call_id: script.call_id.clone(),
        ..CallOutcome::default()
    };
    if let Err(why) = converse(&platform, &script, &mut outcome).await {
        outcome.failed = Some(format!("{}: {why}", script.call_id));
        return outcome;
    }
    if platform.calls().caller_hangs_up(&script.call_id) {
        outcome.hung_up = Some(Instant::now());
    } else {
        outcome.failed = Some(format!(
            "{}: the call was no longer running at the hang-up ({:?})",
            script.call_id,
            platform.calls().state(&script.call_id)
        ));
    }
    outcome
}

async fn converse(
    platform: &FakePlatform,
    script: &CallScript,
    outcome: &mut CallOutcome,
) -> Result<(), String> {
    tokio::time::sleep_until(script.place_at.into()).await;
    let call = IncomingCall::new(&script.call_id, "+15550111", crate::takeover_node::SIP_USER);
    let sent = Instant::now();
    let answer = platform
        .incoming_call(
            script.node,
            "/openai/webhook",
            &call,
            &format!("wh_{}", script.call_id),
            WebhookSigning::Valid,
        )
        .await
        .map_err(|e| format!("the webhook failed: {e}"))?;
    if answer.status != 200 {
        return Err(format!("the webhook was answered {}", answer.status));
    }
    played(platform, script, 0, 1, "the greeting").await?;
    outcome.setup = Some(sent.elapsed());
    for (n, (&at, &steps)) in script.turns_at.iter().zip(&script.steps).enumerate() {
        let turn = n + 1;
        tokio::time::sleep_until(at.into()).await;
        let said = speak(platform, script, turn).await?;
        if let Err(why) = played(platform, script, turn, steps, "the answer").await {
            outcome.unanswered = Some(said);
            return Err(why);
        }
        outcome.turns.push((said, said.elapsed()));
    }
    Ok(())
}

/// Says turn `turn` once a sideband is attached to hear it; when it was said.
async fn speak(
    platform: &FakePlatform,
    script: &CallScript,
    turn: usize,
) -> Result<Instant, String> {
    loop {
        if platform.control(&script.call_id, CallControl::CallerSpeaks) {
            return Ok(Instant::now());
        }
        if Instant::now() > script.give_up {
            return Err(format!(
                "turn {turn}: no sideband to speak to ({} attached so far, call {:?})",
                platform.calls().sidebands(&script.call_id),
                platform.calls().state(&script.call_id)
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until turn `turn`'s `steps` model steps were played.
async fn played(
    platform: &FakePlatform,
    script: &CallScript,
    turn: usize,
    steps: usize,
    what: &str,
) -> Result<(), String> {
    loop {
        let done = platform.calls().steps_played(&script.call_id, turn);
        if done >= steps {
            return Ok(());
        }
        if Instant::now() > script.give_up {
            return Err(format!(
                "turn {turn}: {what} never came ({done} of {steps} model steps played; {} sideband(s) attached so far, one attached now: {})",
                platform.calls().sidebands(&script.call_id),
                platform.calls().attached(&script.call_id)
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}
