//! Durable conversations for `agent run`: every run is stored as it happens, and
//! `--resume ID` continues a stored one in a new session.
//!
//! Items go to the SQLite history store through a writer thread (the session loop never waits
//! on the disk); the store is flushed before the process exits.

use std::{path::Path, sync::Arc};

use agent_core::{
    agent::Agent,
    history::{ConversationId, HistoryStore, HistoryWriter},
    protocol::{Item, Role},
    session::{SessionConfig, log::message_text},
};
use agent_testkit::scenario::Scenario;
use anyhow::{Context, bail};

/// Where a run's conversation is stored, and what it continues.
pub struct Persistence {
    writer: HistoryWriter,
    /// The conversation's id, printed so the user can resume it.
    pub id: ConversationId,
    resumed: Vec<(String, Item)>,
}

impl Persistence {
    /// Opens the store (`db`, or the default path) and creates a conversation, or loads the
    /// one `resume` names (an id, a unique prefix, or `latest`).
    pub fn open(db: Option<&Path>, resume: Option<&str>, agent: &Agent) -> anyhow::Result<Self> {
        let mut store = match db {
            Some(path) => HistoryStore::open(path),
            None => HistoryStore::open_default(),
        }
        .context("cannot open the conversation history (use --no-history to run without it)")?;
        let (id, resumed) = match resume {
            Some(query) => {
                let id = store.resolve(query)?;
                let items = store
                    .items(&id)?
                    .into_iter()
                    .map(|stored| stored.into_keyed())
                    .collect();
                (id, items)
            }
            None => (
                store.create_conversation(agent.name(), &agent.spec().model)?,
                Vec::new(),
            ),
        };
        Ok(Persistence {
            writer: HistoryWriter::spawn(store)?,
            id,
            resumed,
        })
    }

    /// Makes the session replay the resumed items and store every new one.
    pub fn apply(&self, config: &mut SessionConfig) {
        config.history = self.resumed.clone();
        config.history_sink = Some(Arc::new(self.writer.conversation(self.id.clone())));
    }

    /// How many items were resumed.
    pub fn resumed_items(&self) -> usize {
        self.resumed.len()
    }

    /// The user messages of the resumed conversation, in order.
    pub fn resumed_user_texts(&self) -> Vec<String> {
        self.resumed
            .iter()
            .filter(|(_, item)| item.as_message().is_some_and(|m| m.role == Role::User))
            .filter_map(|(_, item)| message_text(item))
            .collect()
    }

    /// Waits until everything is on disk.
    pub async fn finish(self) -> anyhow::Result<()> {
        self.writer
            .flush()
            .await
            .context("the conversation history could not be written completely")?;
        Ok(())
    }
}

/// For an offline resume: the scenario whose opening user turns match the stored conversation,
/// and how many of its turns are already done.
pub fn continue_point(
    scenarios: &[Scenario],
    said: &[String],
) -> anyhow::Result<(Scenario, usize)> {
    for scenario in scenarios {
        let users: Vec<&str> = scenario
            .turns
            .iter()
            .filter_map(|t| t.user.as_deref())
            .collect();
        if users.len() >= said.len() && users.iter().zip(said).all(|(a, b)| a.trim() == b.trim()) {
            let done = scenario
                .turns
                .iter()
                .scan(0, |users_seen, turn| {
                    if turn.user.is_some() {
                        *users_seen += 1;
                    }
                    Some(*users_seen)
                })
                .take_while(|seen| *seen <= said.len())
                .count();
            return Ok((scenario.clone(), done));
        }
    }
    bail!(
        "no scenario starts with this conversation's {} message(s); pass --scenario NAME or resume it live",
        said.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_testkit::scenario::{ModelStep, Turn};

    #[test]
    fn finds_where_to_continue() {
        let a = Scenario::new("a")
            .turn(Turn::user("one").model(ModelStep::say("x")))
            .turn(Turn::user("two").model(ModelStep::say("y")))
            .turn(Turn::user("three").model(ModelStep::say("z")));
        let b = Scenario::new("b").turn(Turn::user("other").model(ModelStep::say("x")));
        let scenarios = [b, a];
        let (found, done) = continue_point(&scenarios, &["one".into(), "two".into()]).unwrap();
        assert_eq!((found.name.as_str(), done), ("a", 2));
        let (_, done) = continue_point(&scenarios, &[]).unwrap();
        assert_eq!(done, 0);
        assert!(continue_point(&scenarios, &["nope".into()]).is_err());
    }
}

/// `agent run`'s history options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HistoryArgs {
    /// Continue a stored conversation (an id, a unique prefix, or `latest`; see
    /// `agent history list`) in a new session.
    #[arg(long, value_name = "ID")]
    pub resume: Option<String>,
    /// The history database (default: $AGENT_HISTORY_DB, else the user's data directory).
    #[arg(long, value_name = "FILE")]
    pub history_db: Option<std::path::PathBuf>,
    /// Do not store the conversation.
    #[arg(long, conflicts_with = "resume")]
    pub no_history: bool,
}

impl HistoryArgs {
    /// Opens the store for this run, unless history is off.
    pub fn open(&self, agent: &Agent) -> anyhow::Result<Option<Persistence>> {
        if self.no_history {
            return Ok(None);
        }
        Persistence::open(self.history_db.as_deref(), self.resume.as_deref(), agent).map(Some)
    }
}
