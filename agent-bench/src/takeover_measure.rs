//! What the takeover benchmark's run measured, read once every caller is done: which calls
//! of node A were alive at the kill and when each got a sideband again, turn latencies by
//! phase, the tool endpoint's duplicates and in-flight requests, the shared history's
//! verdict, and the nodes' logs.

use std::time::{Duration, Instant};

use agent_testkit::{platform::FakePlatform, postgres::TestSchema};

use crate::{
    takeover::{Driven, GOODBYE, GREETING, Plan, TakeoverResult, ToolCounts, answer},
    takeover_caller::{CallOutcome, CallScript},
    takeover_check::HistoryCheck,
    takeover_orders::{Orders, Request},
};

/// Everything [`TakeoverResult`] holds about the run (the platform's violations are the
/// caller's to fill in).
pub(crate) fn measure(
    plan: &Plan,
    platform: &FakePlatform,
    orders: &Orders,
    schema: &TestSchema,
    dir: &std::path::Path,
    driven: &Driven,
) -> TakeoverResult {
    let killed = driven.killed;
    let on_a: Vec<&CallScript> = driven
        .scripts
        .iter()
        .filter(|s| s.node == driven.nodes[0])
        .collect();
    let alive = alive_at_kill(platform, &driven.calls, &on_a, killed);
    let takeover: Vec<Duration> = alive
        .iter()
        .filter_map(|s| first_attach_after(platform, &s.call_id, killed).map(|t| t - killed))
        .collect();
    let b_reattached = driven
        .scripts
        .iter()
        .filter(|s| s.node == driven.nodes[1] && platform.calls().sidebands(&s.call_id) > 1)
        .count();
    let said: Vec<String> = std::iter::once(GREETING.to_owned())
        .chain((1..=plan.tool_turns).map(answer))
        .chain(std::iter::once(GOODBYE.to_owned()))
        .collect();
    let history = crate::takeover_check::check(schema.url(), &said, plan.tool_turns)
        .map_err(|e| format!("{e:#}"));
    let tool = tool_counts(&orders.requests(), history.as_ref().ok(), &on_a, killed);
    let log_lines = ["a", "b"]
        .into_iter()
        .map(|node| {
            let (count, first) = warnings(&dir.join(format!("{node}.log")));
            (node, count, first)
        })
        .collect();
    TakeoverResult {
        plan: plan.clone(),
        command: String::new(),
        date: String::new(),
        load: Default::default(),
        postgres: String::new(),
        startup: driven.startup.clone(),
        calls: driven.calls.clone(),
        on_a: on_a.len(),
        alive_at_kill: alive.len(),
        takeover,
        b_reattached,
        b_took_over: took_over(&dir.join("b.log"), driven.killed_wall),
        unanswered: unanswered(platform, &driven.calls, killed),
        turns: turn_latencies(&driven.calls, &on_a, platform, killed),
        tool,
        history,
        pg: driven.pg.clone(),
        cpu: driven.cpu.clone(),
        log_lines,
        violations: (0, Vec::new()),
        second_outputs: 0,
        writes: Err("not run".into()),
    }
}

/// Node A's calls that were connected at the kill and not yet hung up.
fn alive_at_kill<'a>(
    platform: &FakePlatform,
    calls: &[CallOutcome],
    on_a: &[&'a CallScript],
    killed: Instant,
) -> Vec<&'a CallScript> {
    on_a.iter()
        .copied()
        .filter(|s| {
            let attached_before = platform
                .calls()
                .attach_times(&s.call_id)
                .first()
                .is_some_and(|t| *t < killed);
            let hung_up_before = calls
                .iter()
                .find(|c| c.call_id == s.call_id)
                .and_then(|c| c.hung_up)
                .is_some_and(|t| t < killed);
            attached_before && !hung_up_before
        })
        .collect()
}

fn first_attach_after(platform: &FakePlatform, call_id: &str, killed: Instant) -> Option<Instant> {
    platform
        .calls()
        .attach_times(call_id)
        .into_iter()
        .find(|t| *t > killed)
}

/// Seconds from the kill to `t` (negative: before it).
fn since(killed: Instant, t: Instant) -> f64 {
    match t.checked_duration_since(killed) {
        Some(after) => after.as_secs_f64(),
        None => -(killed - t).as_secs_f64(),
    }
}

/// Calls left waiting for an answer: when their unanswered turn was said, and when the
/// sideband it was said to attached, if that was after the kill.
fn unanswered(
    platform: &FakePlatform,
    calls: &[CallOutcome],
    killed: Instant,
) -> Vec<(f64, Option<f64>)> {
    calls
        .iter()
        .filter_map(|c| Some((&c.call_id, c.unanswered?)))
        .map(|(call_id, said)| {
            // The sideband the turn was said to: the last to attach before it was said.
            let attached = platform
                .calls()
                .attach_times(call_id)
                .into_iter()
                .filter(|t| *t > killed && *t <= said)
                .max();
            (since(killed, said), attached.map(|t| since(killed, t)))
        })
        .collect()
}

/// Turn latencies: said before the kill; said after it on node B's own calls; said on node
/// A's calls after their takeover.
fn turn_latencies(
    calls: &[CallOutcome],
    on_a: &[&CallScript],
    platform: &FakePlatform,
    killed: Instant,
) -> [Vec<Duration>; 3] {
    let mut turns: [Vec<Duration>; 3] = Default::default();
    for call in calls {
        let taken_over = on_a.iter().any(|s| s.call_id == call.call_id).then(|| {
            platform
                .calls()
                .attach_times(&call.call_id)
                .into_iter()
                .find(|t| *t > killed)
        });
        for &(said, took) in &call.turns {
            let bucket = match taken_over {
                _ if said < killed => 0,
                None => 1,
                Some(Some(attached)) if said >= attached => 2,
                // Said on node A's call before it was taken over: cannot happen (no sideband
                // to say it to), so it is not counted.
                Some(_) => continue,
            };
            turns[bucket].push(took);
        }
    }
    turns
}

/// Duplicates and in-flight requests at the tool's endpoint.
fn tool_counts(
    requests: &[Request],
    history: Option<&HistoryCheck>,
    on_a: &[&CallScript],
    killed: Instant,
) -> ToolCounts {
    let mut by_key: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for request in requests {
        *by_key.entry(request.key.as_str()).or_default() += 1;
    }
    // An idempotency key is `{conversation}:{call_id}`; the history names each
    // conversation's call.
    let call_of = |key: &str| {
        let conversation = key.rsplit_once(':').map_or(key, |(c, _)| c);
        history.and_then(|h| h.call_of.get(conversation).cloned())
    };
    let a_calls: std::collections::HashSet<&str> =
        on_a.iter().map(|s| s.call_id.as_str()).collect();
    let in_flight_at_kill = requests
        .iter()
        .filter(|r| r.arrived < killed && r.answered.is_none_or(|t| t > killed))
        .filter(|r| call_of(&r.key).is_some_and(|c| a_calls.contains(c.as_str())))
        .count();
    let a_quiet_before_kill = requests
        .iter()
        .filter(|r| r.arrived < killed)
        .filter(|r| call_of(&r.key).is_some_and(|c| a_calls.contains(c.as_str())))
        .map(|r| r.arrived)
        .max()
        .map(|last| killed - last);
    ToolCounts {
        a_quiet_before_kill,
        requests: requests.len(),
        keys: by_key.len(),
        duplicated: by_key.values().filter(|n| **n > 1).count(),
        in_flight_at_kill,
        unmatched: requests
            .iter()
            .filter(|r| call_of(&r.key).is_none())
            .count(),
    }
}

/// The takeovers a node's (JSON) log records: how many, and the first and the last, seconds
/// after `killed`.
fn took_over(log: &std::path::Path, killed: jiff::Timestamp) -> Option<(usize, f64, f64)> {
    let text = std::fs::read_to_string(log).ok()?;
    let after: Vec<f64> = text
        .lines()
        .filter(|l| l.contains("took over a SIP call"))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["timestamp"].as_str()?.parse::<jiff::Timestamp>().ok())
        .map(|t| t.duration_since(killed).as_secs_f64())
        .collect();
    let first = after.iter().copied().fold(f64::INFINITY, f64::min);
    let last = after.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (!after.is_empty()).then_some((after.len(), first, last))
}

/// Lines at WARN or ERROR in a node's (JSON) log, and the first three.
fn warnings(log: &std::path::Path) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(r#""level":"WARN""#) || l.contains(r#""level":"ERROR""#))
        .collect();
    let first = lines
        .iter()
        .take(3)
        .map(|l| l.chars().take(300).collect())
        .collect();
    (lines.len(), first)
}

/// The sideband frames of the calls in `failed`, connection by connection, with when each
/// sideband attached (seconds after the kill).
pub(crate) async fn failed_frames(
    platform: &FakePlatform,
    failed: &[&str],
    killed: Instant,
) -> String {
    use std::fmt::Write as _;
    let requests = platform.sideband().requests().await;
    let log = platform.sideband().log().await;
    let mut out = String::new();
    for call_id in failed {
        let attached: Vec<String> = platform
            .calls()
            .attach_times(call_id)
            .iter()
            .map(|t| match t.checked_duration_since(killed) {
                Some(after) => format!("+{:.3} s", after.as_secs_f64()),
                None => format!("-{:.3} s", (killed - *t).as_secs_f64()),
            })
            .collect();
        let _ = writeln!(
            out,
            "== {call_id}: sidebands attached at {attached:?} (after the kill)"
        );
        let needle = format!("call_id={call_id}");
        for request in requests
            .iter()
            .filter(|r| r.query.as_deref().is_some_and(|q| q.contains(&needle)))
        {
            let _ = writeln!(out, "-- connection {}", request.connection);
            for frame in log.iter().filter(|f| f.connection == request.connection) {
                let arrow = match frame.direction {
                    agent_testkit::server::Direction::FromClient => "->",
                    agent_testkit::server::Direction::FromServer => "<-",
                };
                let text: String = frame.raw.chars().take(300).collect();
                let _ = writeln!(out, "{arrow} {text}");
            }
        }
    }
    out
}
