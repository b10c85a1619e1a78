//! The turns scenario of §5 and the callgrind profile, read from
//! `agent-bench/scenarios/turns.scenarios.toml` (beside its agent file, `turns.toml`).
//!
//! The file holds one turn: a typed user message, a response with three function calls, then
//! a spoken answer. A run of N turns plays that turn N times in one session, so the number of
//! turns is a parameter of each run and the work per turn comes from the file, not from code.

use std::path::{Path, PathBuf};

use agent_testkit::{
    scenario::{Scenario, ScenarioFile},
    server::AudioSettings,
};

/// The folder of the scenario and its agent, relative to the workspace.
const DIR: &str = "agent-bench/scenarios";
/// The scenario's name in the file.
const NAME: &str = "turns";

/// The turn every client plays, and the agent file the CLI runs it with.
#[derive(Debug, Clone)]
pub struct Turns {
    /// `agent-bench/scenarios/turns.toml`: what `agent run` loads.
    pub agent_file: PathBuf,
    /// The scenario as the file has it (one turn).
    pub scenario: Scenario,
    /// What the user types each turn.
    pub user_text: String,
}

/// What one turn gives each client to do, derived from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkPerTurn {
    /// Responses the server plays (one per model step).
    pub responses: usize,
    /// Function calls the client must answer.
    pub calls: usize,
    /// `response.output_audio.delta` events the server sends.
    pub audio_deltas: usize,
}

impl Turns {
    /// Reads and checks the scenario file.
    pub fn load(workspace: &Path) -> anyhow::Result<Turns> {
        let dir = workspace.join(DIR);
        let agent_file = dir.join("turns.toml");
        let file = ScenarioFile::load(ScenarioFile::beside(&agent_file))?;
        let scenario = file
            .get(NAME)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("{} has no scenario named {NAME}", file.origin))?;
        let user_text = match scenario.turns.as_slice() {
            [turn] => turn.user.clone().unwrap_or_default(),
            _ => anyhow::bail!("{}: the {NAME} scenario must hold one turn", file.origin),
        };
        anyhow::ensure!(
            !user_text.trim().is_empty(),
            "{}: the turn needs `user` text (the clients type it)",
            file.origin
        );
        Ok(Turns {
            agent_file,
            scenario,
            user_text,
        })
    }

    /// The scenario with its turn played `n` times.
    pub fn repeated(&self, n: usize) -> Scenario {
        let mut scenario = Scenario::new(format!("{NAME} x {n}"));
        for _ in 0..n {
            for turn in &self.scenario.turns {
                scenario = scenario.turn(turn.clone());
            }
        }
        scenario
    }

    /// Responses, calls and audio deltas per turn, with the server's audio settings.
    pub fn work_per_turn(&self, audio: &AudioSettings) -> WorkPerTurn {
        let steps = self.scenario.turns.iter().flat_map(|t| t.model.iter());
        let mut work = WorkPerTurn {
            responses: 0,
            calls: 0,
            audio_deltas: 0,
        };
        for step in steps {
            work.responses += 1;
            work.calls += step.calls.len();
            let ms = match (step.audio_ms, &step.say) {
                (Some(ms), _) => ms,
                (None, Some(text)) => audio.ms_per_char * text.chars().count() as u32,
                (None, None) => 0,
            };
            work.audio_deltas += ms.div_ceil(audio.chunk_ms.max(1)) as usize;
        }
        work
    }
}
