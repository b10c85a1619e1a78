//! BENCHMARKS.md §9 (telephony: simulated Twilio calls through `agent serve`) and its target
//! rows.

use std::fmt::Write as _;

use crate::{
    report::{Report, mark},
    telephony::{GENERATOR_LAG_P99, Level, SUSTAINED_P99, TelephonyResult},
};

/// Serve CPU per call-second at most this, ms.
pub(crate) const CPU_PER_CALL_SECOND_MS: f64 = 0.5;
/// Frame in → append out p99 at most this at [`P99_LEVEL`] calls, µs.
const P99_US: u32 = 10_000;
const P99_LEVEL: usize = 500;
/// At least this many times less CPU per call-second than the JS transport.
pub(crate) const VS_JS: f64 = 10.0;

fn ms(us: u32) -> String {
    format!("{:.2} ms", f64::from(us) / 1e3)
}

/// The levels that count: the generator kept real time.
pub(crate) fn counted(levels: &[Level]) -> impl Iterator<Item = &Level> {
    levels.iter().filter(|l| l.generator_kept_up())
}

impl TelephonyResult {
    /// The largest level the JS transport sustained.
    pub(crate) fn js_best(&self) -> Option<&Level> {
        self.js
            .iter()
            .filter(|l| l.sustained(self.turn_every))
            .max_by_key(|l| l.calls)
    }

    /// Our row at the same level as `level`.
    pub(crate) fn ours_at(&self, calls: usize) -> Option<&Level> {
        self.ours.iter().find(|l| l.calls == calls)
    }
}

impl Report {
    pub(crate) fn telephony_targets(&self, md: &mut String) {
        let Some(t) = &self.telephony else {
            return;
        };
        let worst = counted(&t.ours).max_by(|a, b| {
            a.cpu_ms_per_call_second()
                .total_cmp(&b.cpu_ms_per_call_second())
        });
        match worst {
            Some(l) => {
                let _ = writeln!(
                    md,
                    "| `agent serve`: ≤ 0.5 ms CPU per call-second | {:.3} ms at most ({} calls) | {} |",
                    l.cpu_ms_per_call_second(),
                    l.calls,
                    mark(l.cpu_ms_per_call_second() <= CPU_PER_CALL_SECOND_MS)
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "| `agent serve`: ≤ 0.5 ms CPU per call-second | no level counted (the generator fell behind) | |"
                );
            }
        }
        match t.ours.iter().find(|l| l.calls == P99_LEVEL) {
            Some(l) if l.generator_kept_up() => {
                let _ = writeln!(
                    md,
                    "| Twilio frame in → `input_audio_buffer.append` out: p99 ≤ 10 ms at 500 calls | {} | {} |",
                    ms(l.frame_to_append_us.1),
                    mark(l.frame_to_append_us.1 <= P99_US)
                );
            }
            Some(l) => {
                let _ = writeln!(
                    md,
                    "| frame in → append out: p99 ≤ 10 ms at 500 calls | not counted: the generator fell behind (lag p99 {}) | |",
                    ms(l.lag_us.1)
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "| frame in → append out: p99 ≤ 10 ms at 500 calls | not run | |"
                );
            }
        }
        let lost: i64 = counted(&t.ours).map(|l| l.frames_lost().max(0)).sum();
        let _ = writeln!(
            md,
            "| `agent serve`: 0 frames lost | {lost} lost over the counted levels | {} |",
            mark(lost == 0 && counted(&t.ours).next().is_some())
        );
        let js = t.js_best();
        match js.and_then(|j| Some((j, t.ours_at(j.calls)?))) {
            Some((j, ours)) => {
                let ratio = j.cpu_ms_per_call_second() / ours.cpu_ms_per_call_second().max(1e-9);
                let _ = writeln!(
                    md,
                    "| ≥ 10× less CPU per call-second than openai-agents-js's Twilio transport | {ratio:.1}× at {} calls ({:.3} vs {:.3} ms) | {} |",
                    j.calls,
                    ours.cpu_ms_per_call_second(),
                    j.cpu_ms_per_call_second(),
                    mark(ratio >= VS_JS)
                );
            }
            None => {
                let why = t
                    .js_skipped
                    .clone()
                    .unwrap_or_else(|| "it sustained no level in real time (see §9)".to_owned());
                let _ = writeln!(
                    md,
                    "| ≥ 10× less CPU per call-second than openai-agents-js's Twilio transport | not measured: {why} | |"
                );
            }
        }
    }

    pub(crate) fn telephony_section(&self, md: &mut String) {
        if self.telephony.is_none() && self.partial {
            return;
        }
        let _ = writeln!(md, "## 9. Telephony: simulated Twilio calls\n");
        let Some(t) = &self.telephony else {
            let _ = writeln!(md, "Not run (`--only` left it out).\n");
            return;
        };
        let _ = writeln!(
            md,
            "Simulated Twilio calls on loopback (`agent-bench/src/telephony*.rs`). Each caller \
             signs its `/twilio/voice` webhook, opens the media stream the TwiML names and sends \
             a stamped 20 ms μ-law frame every 20 ms of real time; every {:.0} s it speaks for \
             1 s, which starts a tool turn (the scripted model calls `calculate`, the server runs \
             it, then 2 s of answer audio reach the caller, who plays it in real time and echoes \
             the marks). Calls ramp up over 5 s; numbers are taken over a {:.0} s window after \
             that. **Processes:** the server under test is a child process (the shipped `dist` `agent \
             serve`, history on; or node); the load generator and agent-testkit's scripted \
             Realtime server share the bench process, on threads named apart, so their CPU is \
             read apart (`/proc/self/task`). Latency: the generator stamps each frame with its \
             call and the microsecond it wrote it; the scripted server reads the stamp in the \
             append (one clock). Audio delta in → Twilio frame out matches each delta the \
             scripted server flushed with the next `media` frame its caller read. A level whose \
             generator lags more than {} at p99 (or could not place every call) is reported but \
             not counted. A server sustains a level when, over the window, it does the tool turns \
             the callers ask for (90 % at least), delivers every answer frame, and frame in → \
             append out stays under {} at p99; frames lost are counted over the whole run.\n",
            t.turn_every.as_secs_f64(),
            t.steady.as_secs_f64(),
            ms(GENERATOR_LAG_P99.as_micros() as u32),
            ms(SUSTAINED_P99.as_micros() as u32),
        );
        table(md, "`agent serve`", &t.ours, t.turn_every);
        if t.js.is_empty() {
            let why = t.js_skipped.as_deref().unwrap_or("no level ran");
            let _ = writeln!(
                md,
                "\nopenai-agents-js's Twilio transport: not run ({why}).\n"
            );
        } else {
            let _ = writeln!(
                md,
                "\nopenai-agents-js's `TwilioRealtimeTransportLayer` (`@openai/agents-extensions@{}`, node {}), \
                 its model URL pointed at the same scripted server, from the smallest level up \
                 until one is not sustained. It has no webhook: the callers open its stream \
                 directly. Equal work is checked from both ends: frames forwarded, answer \
                 frames delivered, tool outputs received.\n",
                crate::peer_install::JS_EXTENSIONS,
                t.node
            );
            table(md, "JS transport", &t.js, t.turn_every);
            if let Some(why) = &t.js_skipped {
                let _ = writeln!(md, "\nThe JS transport stopped there: {why}.");
            }
        }
        shortfalls(md, t);
        let _ = writeln!(md);
    }
}

fn table(md: &mut String, name: &str, levels: &[Level], turn_every: std::time::Duration) {
    let _ = writeln!(
        md,
        "\n{name}:\n\n| calls | counted | server CPU per call-second | server RSS per call | frame in → append out p50 / p99 | delta in → frame out p50 / p99 | frames sent / at the model (lost) | answer frames sent / heard | tool turns asked / done (in window / expected) | generator CPU / scripted server CPU | generator lag p50 / p99 / max | failed calls |\n| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for l in levels {
        let counted = match (l.generator_kept_up(), l.sustained(turn_every)) {
            (false, _) => "no: generator behind",
            (true, true) => "yes, sustained",
            (true, false) => "yes, **not sustained**",
        };
        let _ = writeln!(
            md,
            "| {} | {counted} | {:.3} ms | {:.1} KB | {} / {} | {} / {} | {} / {} ({}) | {} / {} | {} / {} ({} / {:.0}) | {:.2} / {:.2} cores | {} / {} / {} | {} |",
            l.calls,
            l.cpu_ms_per_call_second(),
            l.rss_per_call() / 1024.0,
            ms(l.frame_to_append_us.0),
            ms(l.frame_to_append_us.1),
            ms(l.delta_to_frame_us.0),
            ms(l.delta_to_frame_us.1),
            l.frames.0,
            l.frames.1,
            l.frames_lost(),
            l.deltas.0,
            l.deltas.1,
            l.turns.0,
            l.turns.1,
            l.turns_in_window,
            l.turns_expected(turn_every),
            l.generator_cpu / l.steady_secs.max(1e-9),
            l.model_cpu / l.steady_secs.max(1e-9),
            ms(l.lag_us.0),
            ms(l.lag_us.1),
            ms(l.lag_us.2),
            l.failed
        );
    }
}

/// Everything that went wrong, in words: failures, anomalies, violations.
fn shortfalls(md: &mut String, t: &TelephonyResult) {
    let rows = t
        .ours
        .iter()
        .map(|l| ("`agent serve`", l))
        .chain(t.js.iter().map(|l| ("JS transport", l)));
    for (name, l) in rows {
        match l.frames_lost() {
            0 => {}
            lost if lost > 0 => {
                let _ = writeln!(
                    md,
                    "\n- {name}, {} calls: {lost} caller frames ({} ms of audio) never reached the model.",
                    l.calls,
                    lost * 20
                );
            }
            added => {
                let _ = writeln!(
                    md,
                    "\n- {name}, {} calls: the model got {} frames' worth of audio more than the callers sent (silence the server added).",
                    l.calls, -added
                );
            }
        }
        let owed = [
            ("answer deltas sent", "Twilio frames heard", l.deltas),
            ("tool turns asked for", "done", l.turns),
        ];
        for (asked, done, (wanted, got)) in owed {
            if got < wanted {
                let _ = writeln!(
                    md,
                    "\n- {name}, {} calls: {wanted} {asked}, {got} {done}.",
                    l.calls
                );
            }
        }
        for why in &l.failures {
            let _ = writeln!(md, "\n- {name}, {} calls: a call failed: {why}", l.calls);
        }
        if l.anomalies.0 > 0 || l.anomalies.1 > 0 {
            let _ = writeln!(
                md,
                "\n- {name}, {} calls: {} appends carried no stamp (audio the server added or changed), {} Twilio frames matched no delta.",
                l.calls, l.anomalies.0, l.anomalies.1
            );
        }
        for v in &l.violations {
            let _ = writeln!(md, "\n- {name}, {} calls: protocol violation: {v}", l.calls);
        }
    }
}
