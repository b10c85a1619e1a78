//! `create_ticket`: hands a problem to a person by appending a ticket to `tickets.jsonl`.
//!
//! The data directory is, in order: the `AGENT_DATA_DIR` environment variable, the agent's
//! data directory ([`ToolContext::data_dir`], set from the agent file), or the per-user data
//! directory ([`agent_core::data_dir::user_data_dir`]: `$XDG_DATA_HOME/agent`, else
//! `~/.local/share/agent`; `%APPDATA%\agent` on Windows), the same one the history database
//! uses. Each line is one JSON ticket; appends from concurrent calls never interleave.
//!
//! **Idempotent.** Each ticket keeps the call's [`ToolContext::idempotency_key`]. A call whose
//! key is already in the file (the same call asked for again, after a reconnect or a restart
//! that resumed the conversation) gets that ticket back instead of a second one. The check
//! reads the file under the same lock as the append; a demo's file is small, a real ticketing
//! API would take the key as its `Idempotency-Key` header instead.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use agent_tool::{ToolContext, ToolError, tool};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

link_anchor!();

/// The tool name.
pub const NAME: &str = "create_ticket";
/// The environment variable that overrides the data directory.
pub const DATA_DIR_ENV: &str = "AGENT_DATA_DIR";
/// The file tickets are appended to, inside the data directory.
pub const TICKETS_FILE: &str = "tickets.jsonl";
const MAX_SUBJECT: usize = 200;
const MAX_DESCRIPTION: usize = 5000;

/// How urgent a ticket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Questions and wishes.
    Low,
    /// Most problems.
    Normal,
    /// Lost or damaged orders.
    High,
    /// Safety or payment problems.
    Urgent,
}

/// One line of `tickets.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ticket {
    /// `T-<unix millis>-<n>`.
    pub id: String,
    /// When it was created (RFC 3339, UTC).
    pub created_at: String,
    /// `normal`, `high`, ...
    pub priority: Priority,
    /// One line.
    pub subject: String,
    /// The problem in full.
    pub description: String,
    /// The agent that opened it.
    pub agent: String,
    /// The session it came from.
    pub session: String,
    /// The function call that created it, to trace it back.
    pub call_id: String,
    /// The call's idempotency key (conversation and call id): one ticket per key.
    #[serde(default)]
    pub idempotency_key: String,
}

/// What the model reads.
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    /// The new ticket's id, to read out to the customer.
    pub ticket_id: String,
    /// Always `open`.
    pub status: &'static str,
    /// The priority it got.
    pub priority: Priority,
}

/// Opens a support ticket so a person follows up, and returns the ticket id to give to the
/// customer. Use it when you cannot solve the problem or the customer asks for a person.
#[tool]
pub fn create_ticket(
    /// A short summary, e.g. "Late delivery of order A1003".
    subject: String,
    /// The problem in full: what happened, order ids, what the customer wants.
    description: String,
    /// `urgent` only for safety or payment problems, `high` for lost or damaged orders,
    /// otherwise `normal` (or `low` for questions and wishes).
    priority: Priority,
    ctx: ToolContext,
) -> Result<Created, ToolError> {
    let subject = subject.trim().to_owned();
    let description = description.trim().to_owned();
    if subject.is_empty() || subject.chars().count() > MAX_SUBJECT {
        return Err(ToolError::invalid_arguments(
            NAME,
            "`subject` is empty or too long",
            format!("a one-line subject of 1 to {MAX_SUBJECT} characters"),
        ));
    }
    if description.is_empty() || description.chars().count() > MAX_DESCRIPTION {
        return Err(ToolError::invalid_arguments(
            NAME,
            "`description` is empty or too long",
            format!("1 to {MAX_DESCRIPTION} characters"),
        ));
    }
    let dir = data_dir(ctx.data_dir())?;
    // The user may have interrupted while the arguments streamed in: no side effect then.
    if ctx.is_cancelled() {
        return Err(ToolError::Cancelled);
    }
    let now = Timestamp::now();
    let ticket = Ticket {
        id: next_id(now),
        created_at: now.to_string(),
        priority,
        subject,
        description,
        agent: ctx.agent().to_owned(),
        session: ctx.session().to_owned(),
        call_id: ctx.call_id().to_owned(),
        // A call outside any conversation (`ToolContext::standalone`, in tests and examples)
        // has nothing to be idempotent with.
        idempotency_key: if ctx.conversation().is_empty() {
            String::new()
        } else {
            ctx.idempotency_key()
        },
    };
    let ticket = append_once(&dir.join(TICKETS_FILE), ticket)?;
    Ok(Created {
        ticket_id: ticket.id,
        status: "open",
        priority: ticket.priority,
    })
}

/// Where tickets go: `AGENT_DATA_DIR`, else the agent's data directory, else the per-user one.
pub fn data_dir(agent_dir: Option<&Path>) -> Result<PathBuf, ToolError> {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = agent_dir {
        return Ok(dir.to_owned());
    }
    agent_core::data_dir::user_data_dir().ok_or_else(|| {
        ToolError::failed(format!(
            "no data directory for tickets: set {DATA_DIR_ENV}, or HOME so the user data folder can be used"
        ))
    })
}

/// `T-<unix millis>-<n>`: unique within the process (the counter) and across restarts (the
/// clock).
fn next_id(now: Timestamp) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("T-{}-{n}", now.as_millisecond())
}

/// Appends `ticket`, unless a ticket with its idempotency key is already in the file: then
/// that one is returned and nothing is written.
fn append_once(path: &Path, ticket: Ticket) -> Result<Ticket, ToolError> {
    static WRITE: Mutex<()> = Mutex::new(());
    let io_error = |err: std::io::Error| {
        ToolError::failed(format!(
            "cannot save the ticket to {}: {err}",
            path.display()
        ))
    };
    // A poisoned lock only means another append panicked; the file is still usable.
    let _guard = WRITE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(existing) = find_by_key(path, &ticket.idempotency_key).map_err(io_error)? {
        return Ok(existing);
    }
    let mut line = serde_json::to_string(&ticket)
        .map_err(|err| ToolError::failed(format!("cannot encode the ticket: {err}")))?;
    line.push('\n');
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_error)?;
    }
    // Tickets quote the customer: owner-only, and scrubbed of any secret the model repeated.
    let mut file = agent_core::private_file::append(path).map_err(io_error)?;
    let line = agent_core::redact::scrub(&line);
    // One write call per line: O_APPEND keeps lines from other processes whole.
    file.write_all(line.as_bytes()).map_err(io_error)?;
    file.flush().map_err(io_error)?;
    Ok(ticket)
}

/// The ticket in `path` with idempotency key `key`, if any (lines that are not tickets, such
/// as a torn last line, are skipped).
fn find_by_key(path: &Path, key: &str) -> std::io::Result<Option<Ticket>> {
    use std::io::BufRead as _;
    if key.is_empty() {
        return Ok(None);
    }
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        if !line.contains(key) {
            continue;
        }
        if let Ok(ticket) = serde_json::from_str::<Ticket>(&line)
            && ticket.idempotency_key == key
        {
            return Ok(Some(ticket));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_tool::ToolConfig;
    use std::{collections::BTreeSet, sync::Arc};
    use tokio_util_free::token;

    mod tokio_util_free {
        /// A cancelled context without naming tokio-util in this crate's manifest.
        pub fn token() -> agent_tool::ToolContext {
            let ctx = agent_tool::ToolContext::standalone();
            ctx.token().cancel();
            ctx
        }
    }

    fn ctx(dir: &Path) -> ToolContext {
        ToolContext::standalone().with_config(Arc::new(ToolConfig::new().with_data_dir(dir)))
    }

    #[test]
    fn appends_unique_tickets_to_the_agent_data_dir() {
        // AGENT_DATA_DIR would win over the agent's directory; tests must not depend on it.
        if std::env::var_os(DATA_DIR_ENV).is_some() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut ids = BTreeSet::new();
        for i in 0..3 {
            let created = create_ticket(
                format!("Subject {i}"),
                "Details".into(),
                Priority::High,
                ctx(dir.path()),
            )
            .unwrap();
            assert!(created.ticket_id.starts_with("T-"));
            ids.insert(created.ticket_id);
        }
        assert_eq!(ids.len(), 3);
        let text = std::fs::read_to_string(dir.path().join(TICKETS_FILE)).unwrap();
        let tickets: Vec<Ticket> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(tickets.len(), 3);
        assert_eq!(tickets[2].subject, "Subject 2");
        assert_eq!(tickets[0].priority, Priority::High);
        assert_eq!(tickets[0].call_id, "local");
    }

    #[test]
    fn the_same_call_asked_for_again_gets_the_same_ticket() {
        if std::env::var_os(DATA_DIR_ENV).is_some() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let call = |call_id: &str, conversation: &str| {
            let ctx =
                agent_tool::ToolContext::new(call_id, "support", "sess_1", Default::default())
                    .with_conversation(conversation.into())
                    .with_config(Arc::new(ToolConfig::new().with_data_dir(dir.path())));
            create_ticket("Late order".into(), "A1003".into(), Priority::High, ctx).unwrap()
        };
        let first = call("call_1", "conv_1");
        // A reconnect or a resumed conversation asks for the same call again.
        let again = call("call_1", "conv_1");
        assert_eq!(again.ticket_id, first.ticket_id);
        // Another call, or the same call id in another conversation, is another ticket.
        let other_call = call("call_2", "conv_1");
        let other_conversation = call("call_1", "conv_2");
        assert_ne!(other_call.ticket_id, first.ticket_id);
        assert_ne!(other_conversation.ticket_id, first.ticket_id);
        let text = std::fs::read_to_string(dir.path().join(TICKETS_FILE)).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(
            text.contains("\"idempotency_key\":\"conv_1:call_1\""),
            "{text}"
        );
    }

    #[test]
    fn rejects_empty_fields_and_cancelled_calls() {
        let dir = tempfile::tempdir().unwrap();
        let err =
            create_ticket(" ".into(), "x".into(), Priority::Low, ctx(dir.path())).unwrap_err();
        assert!(err.to_string().contains("`subject`"), "{err}");
        let cancelled = token().with_config(Arc::new(ToolConfig::new().with_data_dir(dir.path())));
        assert_eq!(
            create_ticket("s".into(), "d".into(), Priority::Low, cancelled).unwrap_err(),
            ToolError::Cancelled
        );
        assert!(!dir.path().join(TICKETS_FILE).exists());
    }

    #[test]
    fn data_dir_falls_back_in_order() {
        if std::env::var_os(DATA_DIR_ENV).is_some() {
            return;
        }
        assert_eq!(
            data_dir(Some(Path::new("/srv/agent"))).unwrap(),
            PathBuf::from("/srv/agent")
        );
        if let Some(user) = agent_core::data_dir::user_data_dir() {
            assert_eq!(data_dir(None).unwrap(), user);
            assert!(user.ends_with("agent"));
        }
    }
}
