//! Durable conversations for `agent run`: every run is stored as it happens, and
//! `--resume ID` continues a stored one in a new session.
//!
//! Items go to the SQLite history store through a writer thread (the session loop never waits
//! on the disk); the store is flushed before the process exits, and after Ctrl-C in a text run.
//! (Ctrl-C in an audio run ends the process at once: what was committed stays, what was still
//! queued for the writer is lost.) A run holds a lease on its
//! conversation, renewed by a heartbeat, so a second run that resumes it meanwhile is refused
//! with a clear error instead of silently losing items; a crashed run's lease expires within
//! [`LEASE_TTL`]. Tool calls are recorded as started before they run and as finished with their
//! output, so a resumed conversation never runs a call twice.

use std::{path::Path, sync::Arc, time::Duration};

use agent_core::{
    agent::Agent,
    history::{ConversationId, HistoryError, HistoryStore, HistoryWriter},
    protocol::{Item, Role},
    session::{PriorCall, SessionConfig, log::message_text},
};
use agent_testkit::scenario::Scenario;
use anyhow::{Context, bail};

/// How long a run's claim on its conversation lasts without a heartbeat.
pub const LEASE_TTL: Duration = Duration::from_secs(15);
/// How often the heartbeat renews it.
const LEASE_RENEW: Duration = Duration::from_secs(5);

/// Where a run's conversation is stored, and what it continues.
pub struct Persistence {
    writer: HistoryWriter,
    /// The conversation's id, printed so the user can resume it.
    pub id: ConversationId,
    resumed: Vec<(String, Item)>,
    prior_calls: Vec<PriorCall>,
    holder: String,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

impl Persistence {
    /// Opens the store (`db`, or the default path) and creates a conversation, or loads the
    /// one `resume` names (an id, a unique prefix, or `latest`); either way the run holds its
    /// lease until [`finish`](Self::finish).
    pub fn open(db: Option<&Path>, resume: Option<&str>, agent: &Agent) -> anyhow::Result<Self> {
        let mut store = match db {
            Some(path) => HistoryStore::open(path),
            None => HistoryStore::open_default(),
        }
        .context("cannot open the conversation history (use --no-history to run without it)")?;
        let holder = holder();
        let id = match resume {
            Some(query) => store.resolve(query)?,
            None => store.create_conversation(agent.name(), &agent.spec().model)?,
        };
        if let Err(err) = store.acquire_lease(&id, &holder, LEASE_TTL) {
            match &err {
                // A run on this machine that no longer exists (killed) cannot renew its lease:
                // waiting for it to expire would only make the user wait.
                HistoryError::ConversationInUse { holder: other, .. } if holder_is_gone(other) => {
                    tracing::info!("taking over {id} from {other}, which is no longer running");
                    store.release_lease(&id, other)?;
                    store.acquire_lease(&id, &holder, LEASE_TTL)?;
                }
                _ => return Err(err.into()),
            }
        }
        let (resumed, prior_calls) = match resume {
            Some(_) => {
                let items = store
                    .items(&id)?
                    .into_iter()
                    .map(|stored| stored.into_keyed())
                    .collect();
                let calls = store.calls(&id)?.into_iter().map(PriorCall::from).collect();
                (items, calls)
            }
            None => (Vec::new(), Vec::new()),
        };
        let writer = HistoryWriter::spawn(store)?;
        let heartbeat = tokio::runtime::Handle::try_current()
            .ok()
            .map(|runtime| runtime.spawn(renew(writer.clone(), id.clone(), holder.clone())));
        Ok(Persistence {
            writer,
            id,
            resumed,
            prior_calls,
            holder,
            heartbeat,
        })
    }

    /// Makes the session replay the resumed items, reuse the calls already recorded, and
    /// store every new item under the run's lease.
    pub fn apply(&self, config: &mut SessionConfig) {
        config.history = self.resumed.clone();
        config.prior_calls = self.prior_calls.clone();
        config.history_sink = Some(Arc::new(
            self.writer
                .leased_conversation(self.id.clone(), &self.holder),
        ));
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

    /// Waits (at most `within`) until everything is on disk, then gives the conversation up.
    pub async fn finish(self, within: Duration) -> anyhow::Result<()> {
        if let Some(heartbeat) = &self.heartbeat {
            heartbeat.abort();
        }
        let done = async {
            self.writer
                .flush()
                .await
                .context("the conversation history could not be written completely")?;
            self.writer
                .release_lease(&self.id, &self.holder)
                .await
                .context("could not release the conversation")?;
            anyhow::Ok(())
        };
        match tokio::time::timeout(within, done).await {
            Ok(result) => result,
            Err(_) => bail!(
                "the conversation history was still being written after {within:?}; the last items may be missing"
            ),
        }
    }
}

/// Renews the lease until the run ends; stops, loudly, if another run took it.
async fn renew(writer: HistoryWriter, id: ConversationId, holder: String) {
    let mut tick = tokio::time::interval(LEASE_RENEW);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(err) = writer.renew_lease(&id, &holder, LEASE_TTL).await {
            tracing::error!("{err}");
            return;
        }
    }
}

/// Who holds a lease, for the message another run sees: the process and host, plus a random
/// part so two runs in one process differ.
fn holder() -> String {
    format!(
        "`agent run` (pid {} on {}, run {:08x})",
        std::process::id(),
        host_name(),
        fastrand::u32(..)
    )
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| {
            let file = std::path::Path::new("/etc/hostname");
            agent_core::fs_limits::read_text(file, 4096, "host name file").ok()
        })
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".to_owned())
}

/// Whether `holder` (as [`holder`] writes it) is a run on this machine whose process is gone.
/// Only Linux can tell (`/proc`); elsewhere the lease is left to expire.
fn holder_is_gone(holder: &str) -> bool {
    let Some(rest) = holder.split("(pid ").nth(1) else {
        return false;
    };
    let Some((pid, rest)) = rest.split_once(" on ") else {
        return false;
    };
    let Some((host, _)) = rest.split_once(", run ") else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    cfg!(target_os = "linux")
        && host == host_name()
        && pid != std::process::id()
        && Path::new("/proc/self").exists()
        && !Path::new(&format!("/proc/{pid}")).exists()
}

/// What an offline run plays: every scenario from its start, or, with `--resume`, the one
/// scenario the stored conversation started, from its next turn, with the resumed store.
pub fn offline_plan(
    scenarios: &[Scenario],
    history: &HistoryArgs,
    agent: &Agent,
) -> anyhow::Result<Vec<(Scenario, usize, Option<Persistence>)>> {
    if history.resume.is_none() {
        return Ok(scenarios.iter().map(|s| (s.clone(), 0, None)).collect());
    }
    let persistence = history.open(agent)?;
    let said = persistence
        .as_ref()
        .map(Persistence::resumed_user_texts)
        .unwrap_or_default();
    let (scenario, done) = continue_point(scenarios, &said)?;
    Ok(vec![(scenario, done, persistence)])
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
    fn a_run_on_this_machine_that_is_gone_gives_up_its_lease() {
        assert!(!holder_is_gone(&holder()), "this very process is alive");
        let dead = format!(
            "`agent run` (pid {} on {}, run 00000000)",
            u32::MAX - 1,
            host_name()
        );
        assert_eq!(holder_is_gone(&dead), cfg!(target_os = "linux"));
        let elsewhere = format!("`agent run` (pid {} on another-host, run 0)", u32::MAX - 1);
        assert!(!holder_is_gone(&elsewhere));
        assert!(!holder_is_gone("someone else"));
    }

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
    /// The history database: an SQLite file, or a `postgres://` URL (default:
    /// $AGENT_HISTORY_DB, else a file in the user's data directory).
    #[arg(long, value_name = "FILE|URL")]
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
