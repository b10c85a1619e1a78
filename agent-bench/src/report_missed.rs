//! BENCHMARKS.md §10: each target this run missed, explained with this run's own measurements
//! (§5's user/kernel split and wake-ups, §8's instruction buckets, §6 and §9), so that a miss
//! reads as a finding rather than a bare "not met". A target that was met has no paragraph.

use std::fmt::Write as _;

use crate::{
    callgrind::CallgrindResult,
    callgrind_parse::BUCKETS,
    clients::Client,
    report::Report,
    report_sdk::{CLI_CPU_PER_TURN, HISTORY_COST, TRACE_COST},
    sdk::SdkResult,
};

/// The short name of callgrind bucket `i` ("decode", "history", ...).
fn bucket_name(i: usize) -> &'static str {
    BUCKETS[i].split(" (").next().unwrap_or(BUCKETS[i])
}

/// Callgrind bucket indices, as in [`BUCKETS`].
const HISTORY: usize = 3;
const TRACE: usize = 4;

fn ms(seconds: f64) -> String {
    format!("{:.3} ms", seconds * 1e3)
}

impl Report {
    /// §10, when anything it explains was measured and missed.
    pub(crate) fn missed_section(&self, md: &mut String) {
        let mut paragraphs = Vec::new();
        if let Some(s) = &self.sdk {
            self.cli_cpu_missed(s, &mut paragraphs);
            self.pair_missed(s, &mut paragraphs);
        }
        self.memory_missed(&mut paragraphs);
        self.telephony_missed(&mut paragraphs);
        if paragraphs.is_empty() {
            return;
        }
        let _ = writeln!(md, "## 10. Missed targets, explained\n");
        let takeover = if self.takeover.is_some() {
            ", and the takeover rows under §11"
        } else {
            ""
        };
        let _ = writeln!(
            md,
            "Every number here comes from the sections above, in this run. The dispatch rows \
             are explained under §2, beside their own measurements{takeover}.\n"
        );
        for p in paragraphs {
            let _ = writeln!(md, "- {p}\n");
        }
    }

    /// User-space instructions per turn under callgrind, with the three largest self buckets.
    fn instructions_per_turn(&self) -> Option<(f64, Vec<f64>, Vec<f64>)> {
        self.callgrind_measured().map(|c| c.per_turn(&c.defaults))
    }

    /// §8's result, when callgrind ran and succeeded.
    fn callgrind_measured(&self) -> Option<&CallgrindResult> {
        self.callgrind.as_ref().and_then(|r| r.as_ref().ok())
    }

    fn cli_cpu_missed(&self, s: &SdkResult, out: &mut Vec<String>) {
        let Some(cli) = s.get(Client::CliDefaults) else {
            return;
        };
        let per = cli.cpu_per_turn();
        if per <= CLI_CPU_PER_TURN {
            return;
        }
        let u = cli.usage_per_turn();
        let mut text = format!(
            "**`agent run` CPU per turn** ({} against {}): {} of it is user space and {} the \
             kernel, with {:.1} wake-ups per turn (§5).",
            ms(per),
            ms(CLI_CPU_PER_TURN),
            ms(u.user),
            ms(u.system),
            u.voluntary_switches
        );
        if let Some((total, selfs, _)) = self.instructions_per_turn() {
            let mut order: Vec<usize> = (0..selfs.len()).collect();
            order.sort_by(|a, b| selfs[*b].total_cmp(&selfs[*a]));
            let top: Vec<String> = order
                .iter()
                .take(4)
                .map(|&i| {
                    format!(
                        "{} {:.0}%",
                        bucket_name(i),
                        selfs[i] / total.max(1.0) * 100.0
                    )
                })
                .collect();
            let _ = write!(
                text,
                " User space is {:.2} M instructions per turn under callgrind (§8); the largest \
                 shares are {}.",
                total / 1e6,
                top.join(", ")
            );
        }
        let _ = write!(
            text,
            " One turn brings {} audio deltas of 100 ms (24 kHz PCM16: 4.8 KB of audio, 6.4 KB \
             of base64 each) that the session decodes to PCM for the player and for barge-in's played \
             position, and the JSON parser scans every byte of them: decoding grows with the \
             audio, not with the tool calls. The kernel's share follows the wake-ups: a \
             frame read, the console's writes, the history writer's commit.",
            s.per_turn.audio_deltas
        );
        out.push(text);
    }

    /// History and `--trace`: what each adds per turn, when it adds more than its target.
    fn pair_missed(&self, s: &SdkResult, out: &mut Vec<String>) {
        let pairs = [
            (
                Client::CliDefaults,
                Client::CliNoHistory,
                HISTORY_COST,
                HISTORY,
            ),
            (Client::CliTrace, Client::CliDefaults, TRACE_COST, TRACE),
        ];
        for (with, without, limit, bucket) in pairs {
            let (Some(a), Some(b)) = (s.get(with), s.get(without)) else {
                continue;
            };
            let cost = a.cpu_per_turn() / b.cpu_per_turn().max(1e-12) - 1.0;
            if cost <= limit {
                continue;
            }
            let d = a.usage_per_turn().since(&b.usage_per_turn());
            let mut text = format!(
                "**{} costs {:.0}%** (target {:.0}%): {} against {} adds {} per turn: {} user, \
                 {} kernel, {:+.1} wake-ups and {:+.1} blocks written (§5).",
                if bucket == HISTORY {
                    "History"
                } else {
                    "`--trace`"
                },
                cost * 100.0,
                limit * 100.0,
                with.label(),
                without.label(),
                ms(d.cpu()),
                ms(d.user),
                ms(d.system),
                d.voluntary_switches,
                d.blocks_written
            );
            if let Some(c) = self.callgrind_measured() {
                let (total, _, incl) = c.per_turn(&c.defaults);
                let (t_total, _, t_incl) = c.per_turn(&c.trace);
                if bucket == HISTORY {
                    let _ = write!(
                        text,
                        " Under callgrind the history code (SQLite included) runs {:.0} K \
                         instructions per turn, {:.0}% of the turn (§8).",
                        incl[HISTORY] / 1e3,
                        incl[HISTORY] / total.max(1.0) * 100.0
                    );
                } else {
                    let _ = write!(
                        text,
                        " Under callgrind `--trace` adds {:.0} K instructions per turn ({:.2} M \
                         against {:.2} M), {:.0} K of them inside the trace code (§8).",
                        (t_total - total) / 1e3,
                        t_total / 1e6,
                        total / 1e6,
                        t_incl[TRACE] / 1e3
                    );
                }
            }
            text.push_str(if bucket == HISTORY {
                " Every turn with a tool call commits at least once on the spot: a call's \
                 \"started\" record must be in the write-ahead log before its tool runs, so a \
                 crash can never make it run twice (the calls of one response share that \
                 commit). The turn's other items join the next group commit, which reaches the \
                 disk within 25 ms (the README's loss bound). Each commit rewrites whole \
                 pages of the table and its indexes in the log, hence the blocks written per \
                 turn. Giving up either guarantee would cut this; the defaults keep both."
            } else {
                " The trace writes one JSON line per frame in both directions (audio deltas \
                 included, their payloads cut) and checks each for secrets before it leaves the \
                 session task; the per-frame work is small, but a turn has some twenty frames."
            });
            out.push(text);
        }
    }

    fn memory_missed(&self, out: &mut Vec<String>) {
        let Some(growth) = &self.memory else {
            return;
        };
        let on = growth.iter().find(|g| g.history).map(|g| g.per_turn());
        for g in growth
            .iter()
            .filter(|g| !g.history && g.per_turn() > 1024.0)
        {
            out.push(format!(
                "**Session memory without history** grows {:.0} B per turn (§6). Without a \
                 store, the conversation log in memory is the only copy of what a reconnect must \
                 replay (calls, outputs, replies), and the issue rules out bounding memory by \
                 forgetting. With the store that `agent run` keeps by default, old items move to \
                 it and the session grows {} per turn.",
                g.per_turn(),
                on.map_or("(not measured)".to_owned(), |b| format!("{b:.0} B"))
            ));
        }
    }

    fn telephony_missed(&self, out: &mut Vec<String>) {
        use crate::report_telephony::{CPU_PER_CALL_SECOND_MS, VS_JS, counted};
        let Some(t) = &self.telephony else {
            return;
        };
        let Some(level) = counted(&t.ours).max_by(|a, b| {
            a.cpu_ms_per_call_second()
                .total_cmp(&b.cpu_ms_per_call_second())
        }) else {
            return;
        };
        // 20 ms caller frames: 50 per call-second in, each forwarded as one append; the
        // answer's frames out per call-second follow from what the callers heard.
        let frames_per_call_second = |l: &crate::telephony::Level| {
            let call_seconds = l.frames.0 as f64 / 50.0;
            50.0 + l.deltas.1 as f64 / call_seconds.max(1.0)
        };
        let worst = level.cpu_ms_per_call_second();
        if worst > CPU_PER_CALL_SECOND_MS {
            let frames = frames_per_call_second(level);
            out.push(format!(
                "**`agent serve` CPU per call-second** ({worst:.3} ms at {} calls, target \
                 {CPU_PER_CALL_SECOND_MS:.3} ms): a call-second moves {frames:.1} frames: 50 \
                 caller frames in, each read from Twilio's socket, parsed and written to the \
                 model's socket as an append, and the answer's frames out with their marks. That \
                 is {:.1} µs of server CPU per frame, both sockets' system calls and wake-ups \
                 included: frames arrive in real time, so each one wakes the server on its own.",
                level.calls,
                worst * 1e3 / frames
            ));
        }
        let Some(js) = t.js_best() else {
            return;
        };
        let Some(ours) = t.ours_at(js.calls) else {
            return;
        };
        let ratio = js.cpu_ms_per_call_second() / ours.cpu_ms_per_call_second().max(1e-9);
        if ratio < VS_JS {
            let frames = frames_per_call_second(ours);
            out.push(format!(
                "**Against the JS transport** ({ratio:.1}× at {} calls, target {VS_JS:.0}×): the \
                 JS transport spends {:.1} µs per frame moved and this server {:.1} µs. A {VS_JS:.0}× \
                 lead would need {:.2} µs per frame, while each frame still takes a socket read \
                 and a socket write, with a wake-up, before any parsing.",
                js.calls,
                js.cpu_ms_per_call_second() * 1e3 / frames,
                ours.cpu_ms_per_call_second() * 1e3 / frames,
                js.cpu_ms_per_call_second() * 1e3 / frames / VS_JS
            ));
        }
    }
}
