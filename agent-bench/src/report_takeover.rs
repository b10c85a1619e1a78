//! BENCHMARKS.md §11 (takeover: two nodes on PostgreSQL, one killed) and its target rows.

use std::{fmt::Write as _, time::Duration};

use crate::{
    common::{fmt_duration, pct},
    history_writes::{APPENDS_PER_TURN, Measured, StoreRun, WRITES_PER_TURN},
    report::{Report, mark},
    takeover::TakeoverResult,
    takeover_caller::POLL,
};

/// The target: takeover p99 within the lease plus this.
const TAKEOVER_MARGIN: Duration = Duration::from_secs(2);

impl TakeoverResult {
    /// Calls that completed by the caller's count and by the history's.
    fn completed(&self) -> (usize, Option<usize>) {
        let callers = self.calls.iter().filter(|c| c.completed()).count();
        (callers, self.history.as_ref().ok().map(|h| h.complete))
    }

    /// The takeover target: the lease plus two seconds.
    fn takeover_target(&self) -> Duration {
        Duration::from_secs_f64(self.plan.lease()) + TAKEOVER_MARGIN
    }
}

impl Report {
    pub(crate) fn takeover_targets(&self, md: &mut String) {
        let Some(Ok(t)) = &self.takeover else {
            return;
        };
        let (callers, history) = t.completed();
        let all = callers == t.plan.calls && history == Some(t.plan.calls);
        let _ = writeln!(
            md,
            "| two nodes, one killed: all {} SIP calls complete | {callers} by the callers, {} in the history | {} |",
            t.plan.calls,
            history.map_or("none".to_owned(), |h| h.to_string()),
            mark(all)
        );
        let p99 = pct(&t.takeover, 99.0);
        let taken = t.takeover.len() == t.alive_at_kill && t.alive_at_kill > 0;
        let _ = writeln!(
            md,
            "| takeover p99 ≤ lease + 2 s ({:.0} s lease) | p99 {}, p50 {} ({} of {} calls taken over) | {} |",
            t.plan.lease(),
            fmt_s(p99),
            fmt_s(pct(&t.takeover, 50.0)),
            t.takeover.len(),
            t.alive_at_kill,
            mark(taken && p99 <= t.takeover_target())
        );
        let _ = writeln!(
            md,
            "| 0 duplicate tool runs across the takeover | {} duplicated keys in {} requests | {} |",
            t.tool.duplicated,
            t.tool.requests,
            mark(t.tool.duplicated == 0 && t.tool.requests > 0)
        );
    }

    pub(crate) fn takeover_section(&self, md: &mut String) {
        let Some(result) = &self.takeover else {
            return;
        };
        let _ = writeln!(md, "## 11. Takeover: two nodes, PostgreSQL, one killed\n");
        let t = match result {
            Ok(t) => t,
            Err(why) => {
                let _ = writeln!(md, "Not run: {why}\n");
                return;
            }
        };
        let m = &self.machine;
        let _ = writeln!(
            md,
            "Measured by `{}` on {}, apart from the sections above: {} CPUs ({}), load average \
             {} at the start and {} at the end (other builds share this machine). {}.\n",
            t.command, t.date, m.cpus, m.cpu_model, t.load.0, t.load.1, t.postgres
        );
        setup(md, t);
        results(md, t);
        explained(md, t);
        phases(md, t);
        writes(md, t);
        shortfalls(md, t);
    }
}

fn fmt_s(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn setup(md: &mut String, t: &TakeoverResult) {
    let p = &t.plan;
    let lease = p.lease();
    let _ = writeln!(
        md,
        "**Setup** (`agent-bench/src/takeover*.rs`). Two `agent serve` processes (the release \
         `agent` binary of this checkout), nodes A and B, share one fresh PostgreSQL schema \
         (`AGENT_HISTORY_DB=postgres://...?options=-csearch_path%3D...`); each has `max_calls = {}` \
         so either can hold every call, and the {} lease ({lease:.0} s: a node renews each call's \
         lease every {:.1} s and looks for calls whose lease ran out every {:.1} s plus up to \
         {:.1} s of jitter). agent-testkit's fake OpenAI platform runs in the bench process with \
         its calls kept when their sideband drops (`SidebandDrop::CallSurvives`), each call playing \
         its own script: the greeting, {} tool turns (the model calls `record_order`, an HTTP \
         tool whose endpoint, also in the bench, answers after {} and logs each request's \
         `Idempotency-Key`), then goodbye. The callers are tasks of the bench: {} calls come in \
         over {:.0} s by webhook, alternately to A and B; after {:.0} s more, each call says one \
         tool turn every {:.0} s (each at its own offset in the period, so turns run all the \
         time), then goodbye, then hangs up. A caller waits for each answer (the platform's \
         count of model steps played, polled every {}) and, while its call has no sideband, for \
         one to attach before it speaks. Node A gets SIGKILL {:.0} s into the tool turns, \
         halfway through the second round, with tool requests in flight; its calls' later turns \
         run on node B.\n",
        p.calls,
        if p.lease_secs.is_some() {
            "configured"
        } else {
            "default"
        },
        lease / 3.0,
        look(lease),
        look(lease) / 5.0,
        p.tool_turns,
        fmt_duration(p.tool_latency),
        p.calls,
        p.ramp.as_secs_f64(),
        p.settle.as_secs_f64(),
        p.turn_every.as_secs_f64(),
        fmt_duration(POLL),
        p.kill_after().as_secs_f64(),
    );
    let _ = writeln!(
        md,
        "**Measured.** *Completed*: the caller heard every answer and its hang-up was accepted, \
         and, checked in the shared history after the run, the call's conversation holds the \
         greeting, each answer and goodbye once and in order, one tool output per tool turn, \
         and outcome `caller_hung_up` (no gap across the takeover). *Takeover time*: per call \
         of node A alive at the kill, from the SIGKILL to the platform's record of the call's \
         next sideband attaching. *Duplicate tool runs*: idempotency keys (the call's \
         conversation and call id, the same on every node) that reached the tool's endpoint \
         more than once. One node's lease must run out before another takes its calls, so a \
         single call's takeover lies between {:.1} s (lease renewed just before the kill, \
         expired {:.1} s later) and about {:.1} s (expired a full lease after the kill, found \
         one look and its jitter later).\n",
        lease * 2.0 / 3.0,
        lease * 2.0 / 3.0,
        latest(lease),
    );
}

/// How often a node looks for lost calls: a tenth of the lease (`LOOKS_PER_LEASE` in
/// agent-server's `takeover.rs`), plus up to a fifth of that in jitter.
fn look(lease: f64) -> f64 {
    lease / 10.0
}

/// The latest a single call's takeover can come, adoption aside: a full lease after the kill,
/// then one look and its jitter.
fn latest(lease: f64) -> f64 {
    lease + look(lease) * 1.2
}

fn results(md: &mut String, t: &TakeoverResult) {
    let (callers, history) = t.completed();
    let h = t.history.as_ref().ok();
    let outcomes = h.map_or_else(
        || "unreadable".to_owned(),
        |h| {
            h.outcomes
                .iter()
                .map(|(o, n)| format!("{o} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    let _ = writeln!(md, "| | |\n| --- | --- |");
    let _ = writeln!(
        md,
        "| calls completed | **{callers} of {}** by the callers; {} complete in the history (outcomes: {outcomes}) |",
        t.plan.calls,
        history.map_or("none".to_owned(), |n| n.to_string())
    );
    let _ = writeln!(
        md,
        "| node A's calls | {} placed, {} alive at the kill, {} taken over by node B |",
        t.on_a,
        t.alive_at_kill,
        t.takeover.len()
    );
    let _ = writeln!(
        md,
        "| takeover time (kill → new sideband) | **p50 {}, p99 {}**, min {}, max {} (lease {:.0} s; target p99 ≤ {}) |",
        fmt_s(pct(&t.takeover, 50.0)),
        fmt_s(pct(&t.takeover, 99.0)),
        fmt_s(pct(&t.takeover, 0.0)),
        fmt_s(pct(&t.takeover, 100.0)),
        t.plan.lease(),
        fmt_s(t.takeover_target()),
    );
    let _ = writeln!(
        md,
        "| takeover time, whole seconds | {} |",
        by_second(&t.takeover)
    );
    if let Some((count, first, last)) = t.b_took_over {
        let _ = writeln!(
            md,
            "| node B's log of its takeovers | {count}, the first {first:.2} s and the last {last:.2} s after the kill ({:.0} calls/s in between) |",
            count as f64 / (last - first).max(1e-3)
        );
    }
    let _ = writeln!(
        md,
        "| duplicate tool runs | **{}** ({} requests, {} distinct keys; {} tool turns asked for) |",
        t.tool.duplicated,
        t.tool.requests,
        t.tool.keys,
        t.plan.calls * t.plan.tool_turns
    );
    let _ = writeln!(
        md,
        "| tool requests in flight at the kill | {} of node A's; the history holds {} outputs saying \"interrupted\" (not run again: the model is told to check) |",
        t.tool.in_flight_at_kill,
        h.map_or(0, |h| h.interrupted)
    );
    let _ = writeln!(
        md,
        "| node B's own calls re-attached | {} (a node that keeps renewing never loses a call) |",
        t.b_reattached
    );
    let connections = if t.pg.connections.is_empty() {
        "none seen".to_owned()
    } else {
        t.pg.connections
            .iter()
            .map(|(node, n)| format!("{node}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        md,
        "| PostgreSQL connections (most at once, `pg_stat_activity`) | {connections}: one per node, its history writer's |"
    );
    let stuck = |s: &Option<crate::takeover_monitor::Stuck>| {
        s.as_ref().map_or("none seen".to_owned(), |s| {
            let waiting = if s.waiting_on.is_empty() {
                "running".to_owned()
            } else {
                format!("waiting on {}", s.waiting_on)
            };
            format!(
                "{:.2} s ({}, {waiting}: `{}`)",
                s.secs,
                s.node,
                s.query.trim()
            )
        })
    };
    let _ = writeln!(
        md,
        "| longest statement / longest pause inside a transaction (sampled every 250 ms) | {} / {} |",
        stuck(&t.pg.longest_statement),
        stuck(&t.pg.longest_idle_in_transaction)
    );
    if let Some(quiet) = t.tool.a_quiet_before_kill {
        let _ = writeln!(
            md,
            "| node A's last tool request before the kill | {} before it (its calls' turns come every {} on schedule) |",
            fmt_duration(quiet),
            fmt_duration(t.plan.turn_every * 2 / t.plan.calls.max(1) as u32)
        );
    }
    let _ = writeln!(md);
}

/// What this run's own numbers say about a missed target or an incomplete call.
fn explained(md: &mut String, t: &TakeoverResult) {
    why_slow(md, t);
    left_waiting(md, t);
    second_outputs(md, t);
}

/// The takeover target, when missed: the detection bound and node B's adoption rate.
fn why_slow(md: &mut String, t: &TakeoverResult) {
    let lease = t.plan.lease();
    if pct(&t.takeover, 99.0) > t.takeover_target() {
        let rate = t.b_took_over.map_or(String::new(), |(count, first, last)| {
            format!(
                " Node B's log puts its {count} takeovers between {first:.1} s and {last:.1} s \
                 after the kill, {:.0} calls/s: it takes up to 32 lost calls per round in one \
                 transaction of its history writer (the leases, the conversations and the call \
                 records), which also serves its own calls, then attaches each call's sideband \
                 and configures its session, so the last of them waits for the others.",
                count as f64 / (last - first).max(1e-3)
            )
        });
        let _ = writeln!(
            md,
            "**Why takeover p99 is above the lease + 2 s.** A lost call is seen only once its \
             lease has run out, between {:.1} s and {lease:.0} s after the kill (it was renewed \
             up to a third of a lease before), and only at a node's next look, every {:.1} s plus \
             up to {:.1} s of jitter: even alone, a call is taken over anywhere up to about \
             {:.1} s after the kill, and over many calls p99 comes close to that.{rate}\n",
            lease * 2.0 / 3.0,
            look(lease),
            look(lease) / 5.0,
            latest(lease),
        );
    }
}

/// Calls whose turn was never answered, by where the model's function call was lost.
fn left_waiting(md: &mut String, t: &TakeoverResult) {
    // "12 ms", or "from 12 ms to 40 ms" (a minus sign: before).
    let span = |values: &[f64]| {
        let ms = |secs: f64| format!("{:.0} ms", secs * 1e3);
        let first = values.iter().copied().fold(f64::INFINITY, f64::min);
        let last = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if values.len() == 1 {
            ms(first)
        } else {
            format!("from {} to {}", ms(first), ms(last))
        }
    };
    let with_a: Vec<f64> = t
        .unanswered
        .iter()
        .filter(|(_, attached)| attached.is_none())
        .map(|(said, _)| *said)
        .collect();
    if !with_a.is_empty() {
        let _ = writeln!(
            md,
            "**Calls left waiting: a function call lost with node A ({}).** Their unanswered \
             turn was said {} after the kill (a minus sign: before it), to node A's sideband: \
             dead, but not yet seen closed by the platform (or alive, and node A died before \
             recording the call). The model's function call went to \
             node A and nowhere else. Node B took the call over with no record of it and told \
             the model, as it tells every taken-over call, that calls made during the pause were \
             not received and should be made again; it asks for no response itself (one could \
             collide with an answer the platform is playing). A caller would speak again and the \
             model would make the call again then (see the README); the scripted caller waits \
             for its answer instead, and the scripted model has no step to make the call \
             again.\n",
            with_a.len(),
            span(&with_a)
        );
    }
    let after_b: Vec<f64> = t
        .unanswered
        .iter()
        .filter_map(|(said, attached)| Some(said - (*attached)?))
        .collect();
    if !after_b.is_empty() {
        let _ = writeln!(
            md,
            "**Calls left waiting: a function call dropped by node B's session setup ({}).** \
             Their unanswered turn was said {} after node B's sideband attached (a caller whose \
             turn was due speaks as soon as a sideband is there; the caller looks every {}). The \
             platform played the whole turn, the model's function call and `response.done` \
             included, before node B's `session.update` was confirmed, and the session's setup \
             reads frames until `session.updated` and drops every other event \
             (`agent-core/src/session/runner/setup.rs`, `configure`): node B never saw the \
             call. (Seen in the platform's frames with `--takeover-frames`.) A sideband that \
             attaches to a live call can receive the call's events at once; they would have to \
             be kept and handled once the session is set up.\n",
            after_b.len(),
            span(&after_b),
            fmt_duration(POLL)
        );
    }
}

/// A finished call answered a second time by the node that took it over.
fn second_outputs(md: &mut String, t: &TakeoverResult) {
    if t.second_outputs > 0 {
        let _ = writeln!(
            md,
            "**A second output for a finished call ({}).** Node A's tool finished and its output \
             went to the platform just before the kill, but the call's \"finished\" record is a \
             fire-and-forget write (committed within {} with the turn's other items) and was \
             not in the database yet. Node B found the call started and not finished, reported \
             it to the model as interrupted (a second `function_call_output` for the same call, \
             which the fake platform flags) and asked the model to go on: that turn was answered \
             twice, and the answer the caller heard first may be missing from the history (node \
             A had not stored it). No tool ran twice.\n",
            t.second_outputs,
            fmt_duration(agent_core::history::COMMIT_DELAY)
        );
    }
}

fn phases(md: &mut String, t: &TakeoverResult) {
    let startup: Vec<String> = t
        .startup
        .iter()
        .map(|(node, d)| format!("node {} {}", node.to_uppercase(), fmt_duration(*d)))
        .collect();
    let setups: Vec<Duration> = t.calls.iter().filter_map(|c| c.setup).collect();
    let _ = writeln!(
        md,
        "**Start-up, apart.** `agent serve` start-up (spawn → listening, the schema migrated): {}. \
         Call set-up during the ramp (webhook sent → greeting played, {} resolution): p50 {}, \
         p99 {}, over {} calls.\n",
        startup.join(", "),
        fmt_duration(POLL),
        fmt_duration(pct(&setups, 50.0)),
        fmt_duration(pct(&setups, 99.0)),
        setups.len()
    );
    let row = |name: &str, turns: &[Duration]| {
        format!(
            "| {name} | {} | {} | {} |",
            turns.len(),
            fmt_duration(pct(turns, 50.0)),
            fmt_duration(pct(turns, 99.0))
        )
    };
    let _ = writeln!(
        md,
        "**Turns.** Said → answered, the tool's {} included:\n\n| turns | count | p50 | p99 |\n| --- | ---: | ---: | ---: |\n{}\n{}\n{}\n",
        fmt_duration(t.plan.tool_latency),
        row("before the kill (both nodes)", &t.turns[0]),
        row("after the kill, node B's own calls", &t.turns[1]),
        row("node A's calls, after their takeover", &t.turns[2]),
    );
    let c = &t.cpu;
    let cores = |cpu: f64, wall: f64| cpu / wall.max(1e-9);
    let _ = writeln!(
        md,
        "**CPU**, from the first call to the last caller's end ({:.0} s): node A {:.2} cores \
         until its kill ({:.0} s), node B {:.2} cores, the nodes' PostgreSQL server processes \
         {:.2} cores, the fake platform with the tool's endpoint {:.2} cores, the callers {:.2} \
         cores, on {} CPUs shared with other work.\n",
        c.wall,
        cores(c.node_a, c.until_kill),
        c.until_kill,
        cores(c.node_b, c.wall),
        cores(t.pg.backend_cpu, c.wall),
        cores(c.platform, c.wall),
        cores(c.callers, c.wall),
        std::thread::available_parallelism().map_or(0, usize::from),
    );
}

fn writes(md: &mut String, t: &TakeoverResult) {
    let w = t.plan.writes;
    let _ = writeln!(
        md,
        "**History write throughput**, PostgreSQL against SQLite (`agent-bench/src/history_writes.rs`), \
         measured after the nodes stopped, through `HistoryWriter` (one writer thread, group \
         commits) with the same workloads on both: **calls**: {} leased conversations at once, \
         each writing {} tool turns as fast as it can (per turn: the call's \"started\" record, \
         awaited as a session awaits it before the tool runs; then {} items — the user's words, \
         the call, its output, the answer — and the call's \"finished\" record, fire-and-forget \
         through the session's sink), until a flush says all is committed; **one at a time**: \
         one conversation, {} appends, each awaited before the next (no two share a commit). \
         SQLite: `agent serve`'s defaults (WAL, `synchronous = FULL`, the log synced at most \
         every 100 ms), a file in /tmp on the same disk as PostgreSQL's data.\n",
        w.conversations, w.turns, APPENDS_PER_TURN, w.sequential
    );
    let (pg, sqlite) = match &t.writes {
        Ok(pair) => pair,
        Err(why) => {
            let _ = writeln!(md, "Not measured: {why}\n");
            return;
        }
    };
    let _ = writeln!(
        md,
        "| workload | store | appends/s | writes/s (all {WRITES_PER_TURN} per turn) | seconds |\n| --- | --- | ---: | ---: | ---: |"
    );
    let row = |md: &mut String, workload: &str, store: &str, m: &Measured| {
        let _ = writeln!(
            md,
            "| {workload} | {store} | {:.0} | {:.0} | {:.2} |",
            m.appends_per_sec(),
            m.writes_per_sec(),
            m.secs
        );
    };
    let pick = |run: &StoreRun, calls: bool| if calls { run.calls } else { run.one_at_a_time };
    for (calls, name) in [(true, "calls"), (false, "one at a time")] {
        row(md, name, "PostgreSQL", &pick(pg, calls));
        row(md, name, "SQLite", &pick(sqlite, calls));
    }
    let _ = writeln!(
        md,
        "\nOne at a time, writes/s is appends/s (each append is one write).\n"
    );
}

fn shortfalls(md: &mut String, t: &TakeoverResult) {
    let mut lines = Vec::new();
    for (reason, count, example) in grouped(t.calls.iter().filter_map(|c| c.failed.as_deref())) {
        lines.push(format!(
            "{count} call(s) did not complete: {reason} (e.g. `{example}`)"
        ));
    }
    if let Ok(h) = &t.history {
        for (reason, count, example) in grouped(h.problems.iter().map(String::as_str)) {
            lines.push(format!(
                "{count} call(s) incomplete in the history: {reason} (e.g. `{example}`)"
            ));
        }
    }
    if let Err(why) = &t.history {
        lines.push(format!("the history could not be read: {why}"));
    }
    if t.tool.unmatched > 0 {
        lines.push(format!(
            "{} tool requests name a conversation the history does not hold",
            t.tool.unmatched
        ));
    }
    for (node, count, first) in &t.log_lines {
        if *count > 0 {
            lines.push(format!(
                "node {} logged {count} warnings or errors, first: `{}`",
                node.to_uppercase(),
                first.join("` / `")
            ));
        }
    }
    if t.violations.0 > 0 {
        lines.push(format!(
            "the platform saw {} protocol violations, first: {}",
            t.violations.0,
            t.violations.1.join(" / ")
        ));
    }
    if let Some(error) = &t.pg.error {
        lines.push(format!("sampling pg_stat_activity failed: {error}"));
    }
    for line in lines {
        let _ = writeln!(md, "- {line}\n");
    }
}

/// `7 s: 12, 8 s: 40, ...`: how many takeovers took each whole number of seconds.
fn by_second(samples: &[Duration]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for d in samples {
        *counts.entry(d.as_secs()).or_insert(0usize) += 1;
    }
    counts
        .iter()
        .map(|(s, n)| format!("{s}–{} s: {n}", s + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Failures grouped by their reason (the text after the call id, up to any parenthesis):
/// reason, count, the first whole line; the most frequent first.
fn grouped<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<(String, usize, String)> {
    let mut groups: Vec<(String, usize, String)> = Vec::new();
    for line in lines {
        let reason = line.split_once(": ").map_or(line, |(_, r)| r);
        let reason = reason.split(" (").next().unwrap_or(reason).to_owned();
        match groups.iter_mut().find(|g| g.0 == reason) {
            Some(group) => group.1 += 1,
            None => groups.push((reason, 1, line.to_owned())),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.1));
    groups
}
