//! How a conversation looks in the terminal.
//!
//! Replies stream in as they arrive; tool calls show their arguments, a short result and how
//! long they took. Only this module writes conversation output, so the format is one place.

use std::time::Duration;

use agent_core::{
    cost::format_usd,
    session::{CloseReason, NotRun, SessionEvent},
};

/// The longest tool argument or result shown on one line.
const SHORT: usize = 160;

/// Renders session events as a readable conversation on stdout.
#[derive(Debug, Default)]
pub struct Console {
    /// A reply is being streamed and the line is still open.
    in_reply: bool,
    /// Scrubs secrets from the streamed reply.
    stream: agent_core::redact::StreamScrubber,
    /// Show warnings (malformed frames, unknown events).
    pub verbose: bool,
}

impl Console {
    /// A console that hides warnings unless `verbose`.
    pub fn new(verbose: bool) -> Self {
        Console {
            in_reply: false,
            stream: agent_core::redact::StreamScrubber::new(),
            verbose,
        }
    }

    /// Prints what the user said.
    pub fn user(&mut self, text: &str) {
        self.end_reply();
        crate::output::outln!("you › {text}");
    }

    /// Prints a line that is not part of the conversation, e.g. a scenario header.
    pub fn note(&mut self, text: &str) {
        self.end_reply();
        crate::output::outln!("{text}");
    }

    /// Renders one event.
    pub fn show(&mut self, event: &SessionEvent) {
        match event {
            SessionEvent::TextDelta { delta, .. } | SessionEvent::TranscriptDelta { delta, .. } => {
                if !self.in_reply {
                    crate::output::out!("assistant › ");
                    self.in_reply = true;
                }
                // A secret can be split across deltas: the scrubber holds back what could be
                // the start of one.
                crate::output::stdout(&self.stream.push(delta));
            }
            SessionEvent::UserTranscript { text, .. } => {
                self.end_reply();
                crate::output::outln!("you (spoken) › {}", text.trim());
            }
            SessionEvent::Interrupted { audio_end_ms, .. } => {
                self.end_reply();
                crate::output::outln!("  (interrupted: you heard {audio_end_ms} ms of that)");
            }
            SessionEvent::ToolCallStarted {
                name, arguments, ..
            } => {
                self.end_reply();
                crate::output::outln!("  → {name}({})", shorten(arguments));
            }
            SessionEvent::ApprovalRequested {
                kind,
                name,
                arguments,
                timeout,
                ..
            } => {
                self.end_reply();
                let whose = match kind {
                    agent_core::session::ApprovalKind::Mcp { server_label } => {
                        format!(" (MCP server `{server_label}`)")
                    }
                    _ => String::new(),
                };
                crate::output::outln!(
                    "  ? approve {name}{whose}({})? y to run it, n or a reason to refuse ({} s)",
                    shorten(arguments),
                    timeout.as_secs()
                );
            }
            SessionEvent::ApprovalDecided {
                name,
                approved,
                how,
                ..
            } => {
                self.end_reply();
                let mark = if *approved { '✓' } else { '✗' };
                crate::output::outln!("  {mark} {name}: {how}");
            }
            SessionEvent::ToolCallFinished {
                name,
                duration,
                result,
                ..
            } => {
                self.end_reply();
                match result {
                    Ok(output) => crate::output::outln!(
                        "  ← {name} {}: {}",
                        format_duration(*duration),
                        shorten(output)
                    ),
                    Err(error) => crate::output::outln!(
                        "  ✗ {name} {}: {}",
                        format_duration(*duration),
                        shorten(error)
                    ),
                }
            }
            SessionEvent::GuardrailTripped {
                guardrail,
                stage,
                reason,
                ..
            } => {
                self.end_reply();
                let what = match stage {
                    agent_core::guardrail::GuardrailStage::Input => "the message",
                    agent_core::guardrail::GuardrailStage::Output => "the answer",
                };
                crate::output::outln!("  ⛔ guardrail `{guardrail}` stopped {what}: {reason}");
            }
            SessionEvent::Handoff { from, to, .. } => {
                self.end_reply();
                crate::output::outln!("  ⇄ {from} hands the conversation to {to}");
            }
            SessionEvent::ToolCallNotRun {
                name, why, output, ..
            } => {
                self.end_reply();
                let why = match why {
                    NotRun::AlreadyRan => "already ran before; its stored output was reused",
                    NotRun::Interrupted => "was interrupted by a crash; not run again",
                    NotRun::ToolRoundLimit => "not run: max_tool_rounds reached",
                    NotRun::NotApproved => "not run: not approved",
                    _ => "not run",
                };
                crate::output::outln!("  ↺ {name} {why}: {}", shorten(output));
            }
            SessionEvent::TurnFailed { failure } => {
                self.end_reply();
                crate::output::errln!("! the turn did not complete: {failure}");
            }
            SessionEvent::ResponseDone { status, .. } => {
                if status != "completed" {
                    self.end_reply();
                    crate::output::outln!("  (response {status})");
                }
                self.end_reply();
            }
            SessionEvent::Error {
                code,
                message,
                fatal,
            } => {
                self.end_reply();
                let code = code.as_deref().unwrap_or("error");
                let kind = if *fatal { "fatal error" } else { "error" };
                crate::output::errln!("! {kind} ({code}): {message}");
            }
            SessionEvent::Reconnecting {
                attempt,
                max_attempts,
                delay,
                reason,
            } => {
                self.end_reply();
                crate::output::errln!(
                    "… connection lost ({reason}); reconnecting in {} (attempt {attempt}/{max_attempts})",
                    format_duration(*delay)
                );
            }
            SessionEvent::RollingOver { reason } => {
                self.end_reply();
                crate::output::errln!("… {reason}: moving to a fresh session");
            }
            SessionEvent::Reconnected {
                replayed_items,
                rollover,
            } if self.verbose || !*rollover => {
                crate::output::errln!(
                    "… reconnected; {replayed_items} item(s) of the conversation restored"
                );
            }
            SessionEvent::Cost(report) if self.verbose => {
                self.end_reply();
                crate::output::outln!("  {}", crate::summary::cost_line(report));
            }
            SessionEvent::BudgetWarning {
                spent_usd,
                limit_usd,
            } => {
                self.end_reply();
                crate::output::errln!(
                    "! budget: {} of ${limit_usd:.2} spent (80% reached)",
                    format_usd(*spent_usd)
                );
            }
            SessionEvent::BudgetExhausted {
                spent_usd,
                limit_usd,
            } => {
                self.end_reply();
                crate::output::errln!(
                    "! budget reached: {} of ${limit_usd:.2} spent; the current answer finishes, then the session ends",
                    format_usd(*spent_usd)
                );
            }
            SessionEvent::Warning { message } if self.verbose => {
                self.end_reply();
                crate::output::errln!("warning: {message}");
            }
            SessionEvent::Closed { reason } => {
                self.end_reply();
                if *reason != CloseReason::Requested {
                    crate::output::errln!("session ended: {reason}");
                }
            }
            _ => {}
        }
    }

    fn end_reply(&mut self) {
        if self.in_reply {
            crate::output::stdout(&(self.stream.finish() + "\n"));
            self.in_reply = false;
        }
    }
}

/// One line, at most [`SHORT`] characters, for arguments and results.
pub fn shorten(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= SHORT {
        one_line
    } else {
        let cut: String = one_line.chars().take(SHORT - 1).collect();
        format!("{cut}…")
    }
}

/// `3 ms`, `1.25 s`.
pub fn format_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_long_results_on_one_line() {
        assert_eq!(shorten("a\n  b"), "a b");
        let long = "x".repeat(500);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), SHORT);
        assert!(short.ends_with('…'));
    }

    #[test]
    fn formats_durations() {
        assert_eq!(format_duration(Duration::from_millis(3)), "3 ms");
        assert_eq!(format_duration(Duration::from_millis(1250)), "1.25 s");
    }
}
