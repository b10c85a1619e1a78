//! `agent history list|show|export|import`: the stored conversations.
//!
//! A thin layer over `agent_core::history`: the store does the work, this module only picks
//! the database file and formats for the terminal. Everything goes to stdout, so `export`
//! pipes into files and other tools.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::ExitCode,
};

use agent_core::history::{
    self, ConversationEvent, ConversationId, ConversationSummary, HistoryStore, PhoneCallRecord,
    StoredEvent, StoredItem, chat, default_path,
};
use agent_core::protocol::{ContentPart, Item, Role};
use agent_core::session::handoff::TRANSFER_PREFIX;
use anyhow::Context as _;

/// The longest tool argument or output shown on one line of `show` (without `--full`).
const SHORT: usize = 160;

/// The widest title shown by `list`.
const TITLE_WIDTH: usize = 60;

/// Arguments of `agent history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The history database, an SQLite file or a `postgres://` URL [default:
    /// $AGENT_HISTORY_DB, else $XDG_DATA_HOME/agent/history.sqlite3, else
    /// ~/.local/share/agent/history.sqlite3].
    /// Named like `agent run --history-db`, so a hint names one flag for both; `--db` also works.
    #[arg(
        long = "history-db",
        visible_alias = "db",
        value_name = "PATH|URL",
        global = true
    )]
    pub db: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: HistoryCommand,
}

/// The `agent history` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum HistoryCommand {
    /// List stored conversations, most recently updated first.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a conversation as a transcript.
    Show {
        /// The conversation's id, a unique prefix of it, or `latest`.
        id: String,
        /// Show tool arguments and outputs in full instead of shortened.
        #[arg(long)]
        full: bool,
    },
    /// Print a conversation on stdout, for a text model or another tool.
    Export {
        /// The conversation's id, a unique prefix of it, or `latest`.
        id: String,
        /// `chat-completions`: a JSON array of Chat Completions messages (audio as its
        /// transcript). `jsonl`: every stored Realtime item, one JSON object per line.
        #[arg(long, value_enum, default_value_t = ExportFormat::ChatCompletions)]
        format: ExportFormat,
    },
    /// Delete a conversation and everything stored about it (its items, tool-call records
    /// and, for a phone call, the caller's number). There is no undo.
    Delete {
        /// The conversation's id, a unique prefix of it, or `latest`.
        id: String,
    },
    /// Store a conversation from a file written by `export` (either format) and print its id,
    /// for `agent run --resume ID`. Anything else is refused with the reason: other JSON, items
    /// a session cannot replay, unknown roles, empty files, files over 64 MiB.
    Import {
        /// A JSON array of Chat Completions messages, or Realtime items one per line.
        file: PathBuf,
        /// The agent name to record.
        #[arg(long, default_value = "imported")]
        agent: String,
        /// The model name to record.
        #[arg(long, default_value = "")]
        model: String,
    },
}

/// The formats `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A JSON array of Chat Completions messages.
    ChatCompletions,
    /// Realtime conversation items, one JSON object per line.
    Jsonl,
}

/// Runs `agent history`.
pub fn run(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let path = match args.db {
        Some(path) => path,
        None => default_path()?,
    };
    let text = match args.command {
        HistoryCommand::List { json } => {
            if !exists(&path) {
                if json {
                    "[]\n".to_owned()
                } else {
                    format!(
                        "no stored conversations (no history database at {} yet)\n",
                        path.display()
                    )
                }
            } else {
                let store = open(&path)?;
                let list = store.conversations()?;
                let calls = store.phone_calls()?;
                if json {
                    serde_json::to_string_pretty(&with_calls(&list, &calls)?)? + "\n"
                } else {
                    table(&list, &calls)
                }
            }
        }
        HistoryCommand::Show { id, full } => {
            let (summary, items, events) = load(&path, &id)?;
            transcript(&summary, &items, &events, full)
        }
        HistoryCommand::Export { id, format } => {
            let (_, stored, _) = load(&path, &id)?;
            let items: Vec<Item> = stored.into_iter().map(|stored| stored.item).collect();
            match format {
                ExportFormat::ChatCompletions => {
                    serde_json::to_string_pretty(&chat::to_chat_messages(&items))? + "\n"
                }
                ExportFormat::Jsonl => history::to_jsonl(&items),
            }
        }
        HistoryCommand::Delete { id } => {
            if !exists(&path) {
                anyhow::bail!(
                    "no conversation `{id}`: there is no history database at {}",
                    path.display()
                );
            }
            let mut store = open(&path)?;
            let id = store.resolve(&id)?;
            store.delete_conversation(&id)?;
            format!("deleted {id}\n")
        }
        HistoryCommand::Import { file, agent, model } => {
            let items = history::read_import(&file)
                .with_context(|| format!("cannot import {}", file.display()))?;
            let id = open(&path)?.import(&agent, &model, &items)?;
            format!("{id}\n")
        }
    };
    // A closed pipe (`agent history export ID | head`) ends the program quietly.
    crate::output::stdout(&text);
    Ok(ExitCode::SUCCESS)
}

/// Whether there is a database to read: a file that exists, or any PostgreSQL URL (a server
/// is asked, never assumed empty).
fn exists(path: &Path) -> bool {
    history::is_database_url(path) || path.exists()
}

fn open(path: &Path) -> anyhow::Result<HistoryStore> {
    Ok(HistoryStore::open(path)?)
}

/// The conversation `query` names, its items and its events. A missing database file is
/// reported as such rather than created empty.
fn load(
    path: &Path,
    query: &str,
) -> anyhow::Result<(ConversationSummary, Vec<StoredItem>, Vec<StoredEvent>)> {
    if !exists(path) {
        anyhow::bail!(
            "no conversation `{query}`: there is no history database at {} yet (run an agent \
             first, or pass --history-db PATH)",
            path.display()
        );
    }
    let store = open(path)?;
    let id = store.resolve(query)?;
    Ok((
        store.conversation(&id)?,
        store.items(&id)?,
        store.events(&id)?,
    ))
}

/// The `--json` list: each summary, with `phone_call` for the conversations that were calls.
fn with_calls(
    list: &[ConversationSummary],
    calls: &HashMap<ConversationId, PhoneCallRecord>,
) -> anyhow::Result<Vec<serde_json::Value>> {
    list.iter()
        .map(|summary| {
            let mut value = serde_json::to_value(summary)?;
            if let (Some(call), Some(object)) = (calls.get(&summary.id), value.as_object_mut()) {
                object.insert("phone_call".into(), serde_json::to_value(call)?);
            }
            Ok(value)
        })
        .collect()
}

/// The `list` table; with CALLER and CALLEE columns when some conversations were phone calls.
fn table(list: &[ConversationSummary], calls: &HashMap<ConversationId, PhoneCallRecord>) -> String {
    if list.is_empty() {
        return "no stored conversations\n".to_owned();
    }
    let phone = list.iter().any(|c| calls.contains_key(&c.id));
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            let mut row = vec![c.id.to_string(), c.agent.clone()];
            if phone {
                let call = calls.get(&c.id);
                row.push(call.map_or("-".into(), |call| call.caller.clone()));
                row.push(call.map_or("-".into(), |call| call.callee.clone()));
            }
            row.extend([
                c.updated_at.to_short_string(),
                c.item_count.to_string(),
                shorten(c.title.as_deref().unwrap_or("-"), TITLE_WIDTH),
            ]);
            row
        })
        .collect();
    let mut header = vec!["ID", "AGENT"];
    if phone {
        header.extend(["CALLER", "CALLEE"]);
    }
    header.extend(["UPDATED (UTC)", "ITEMS", "TITLE"]);
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let (items, title) = (header.len() - 2, header.len() - 1);
    let mut text = String::new();
    let header: Vec<String> = header.into_iter().map(str::to_owned).collect();
    for row in std::iter::once(header).chain(rows) {
        let mut line = String::new();
        for (column, (cell, width)) in row.iter().zip(&widths).enumerate() {
            let width = *width;
            match column {
                c if c == title => line.push_str(cell),
                c if c == items => line.push_str(&format!("{cell:>width$}  ")),
                _ => line.push_str(&format!("{cell:<width$}  ")),
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// The `show` transcript: a header, then one line per message, call and output, with the
/// conversation's events (guardrail trips) where they happened. A transfer call reads as the
/// handoff it was, not as a tool call.
fn transcript(
    summary: &ConversationSummary,
    items: &[StoredItem],
    events: &[StoredEvent],
    full: bool,
) -> String {
    let clip = |text: &str| {
        if full {
            text.to_owned()
        } else {
            shorten(text, SHORT)
        }
    };
    let mut text = format!(
        "{} · agent {} · model {} · started {} · {} items\n\n",
        summary.id,
        summary.agent,
        if summary.model.is_empty() {
            "-"
        } else {
            &summary.model
        },
        summary.created_at,
        summary.item_count,
    );
    // Handoffs show at their transfer call; the other events after the item they followed.
    let handoffs: HashMap<&str, (&str, &str)> = events
        .iter()
        .filter_map(|e| match &e.event {
            ConversationEvent::Handoff { call_id, from, to } => {
                Some((call_id.as_str(), (from.as_str(), to.as_str())))
            }
            _ => None,
        })
        .collect();
    let calls: std::collections::HashSet<&str> = items
        .iter()
        .filter_map(|stored| match &stored.item {
            Item::FunctionCall(call) => Some(call.call_id.as_str()),
            _ => None,
        })
        .collect();
    let mut pending = events
        .iter()
        .filter(|e| {
            !matches!(&e.event, ConversationEvent::Handoff { call_id, .. }
                if calls.contains(call_id.as_str()))
        })
        .peekable();
    let mut names: HashMap<&str, &str> = HashMap::new();
    for stored in items {
        while let Some(event) = pending.next_if(|e| e.after_item < stored.seq) {
            text.push_str(&event_line(&event.event));
            text.push('\n');
        }
        let line = match &stored.item {
            Item::Message(message) => {
                let spoken = message.content.iter().any(|part| {
                    matches!(
                        part,
                        ContentPart::InputAudio { .. } | ContentPart::OutputAudio { .. }
                    )
                });
                let who = match (&message.role, spoken) {
                    (Role::User, true) => "you (spoken)",
                    (Role::User, false) => "you",
                    (Role::Assistant, _) => "assistant",
                    (Role::System, _) => "system",
                    (other, _) => other.as_str(),
                };
                let words = message_text(&message.content);
                format!("{who} › {words}")
            }
            Item::FunctionCall(call) if call.name.starts_with(TRANSFER_PREFIX) => {
                names.insert(&call.call_id, &call.name);
                match handoffs.get(call.call_id.as_str()) {
                    Some((from, to)) => format!("  ⇄ handoff: {from} → {to}"),
                    // Stored before handoffs were recorded: the target is in the name.
                    None => format!("  ⇄ handoff → {}", &call.name[TRANSFER_PREFIX.len()..]),
                }
            }
            Item::FunctionCall(call) => {
                names.insert(&call.call_id, &call.name);
                format!("  → {}({})", call.name, clip(&call.arguments))
            }
            Item::FunctionCallOutput(output) => {
                let name = names
                    .get(output.call_id.as_str())
                    .copied()
                    .unwrap_or("tool");
                // The handoff line said it all.
                if name.starts_with(TRANSFER_PREFIX) {
                    continue;
                }
                format!("  ← {name}: {}", clip(&output.output))
            }
            other => format!("  · {} item", other.item_type()),
        };
        text.push_str(&line);
        text.push('\n');
    }
    for event in pending {
        text.push_str(&event_line(&event.event));
        text.push('\n');
    }
    text
}

/// One line of the transcript for an event.
fn event_line(event: &ConversationEvent) -> String {
    match event {
        ConversationEvent::Handoff { from, to, .. } => format!("  ⇄ handoff: {from} → {to}"),
        ConversationEvent::GuardrailTripped {
            guardrail,
            stage,
            reason,
        } => format!("  ⚠ guardrail {guardrail} tripped on {stage}: {reason}"),
        ConversationEvent::Other { kind, .. } => format!("  · {kind} event"),
        _ => "  · event".to_owned(),
    }
}

/// What a message said: its texts and transcripts, `[audio]` for audio never transcribed,
/// `[image]` for images.
fn message_text(parts: &[ContentPart]) -> String {
    let pieces: Vec<&str> = parts
        .iter()
        .filter_map(|part| match part {
            ContentPart::InputAudio {
                transcript: None, ..
            }
            | ContentPart::OutputAudio {
                transcript: None, ..
            } => Some(chat::AUDIO_PLACEHOLDER),
            ContentPart::InputImage { .. } => Some("[image]"),
            other => other.text().map(str::trim).filter(|text| !text.is_empty()),
        })
        .collect();
    if pieces.is_empty() {
        "(nothing said)".to_owned()
    } else {
        pieces.join(" ")
    }
}

/// `text` on one line, cut to `max` characters with an ellipsis.
fn shorten(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut short: String = one_line.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_core::history::Timestamp;

    fn summary() -> ConversationSummary {
        ConversationSummary {
            id: ConversationId::new("conv_0000000001_aaaaaa"),
            agent: "support".into(),
            model: "gpt-realtime".into(),
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(60_000),
            item_count: 12,
            title: Some("Where is order A1001?".into()),
        }
    }

    fn stored(seq: u64, item: Item) -> StoredItem {
        StoredItem {
            seq,
            key: format!("k{seq}"),
            item,
            server_item_id: None,
            created_at: Timestamp::from_millis(0),
        }
    }

    #[test]
    fn table_aligns_columns() {
        let mut other = summary();
        other.id = ConversationId::new("conv_x");
        other.title = None;
        other.item_count = 3;
        let text = table(&[summary(), other], &HashMap::new());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ID                      AGENT    UPDATED (UTC)     ITEMS  TITLE"
        );
        assert_eq!(
            lines[1],
            "conv_0000000001_aaaaaa  support  1970-01-01 00:01     12  Where is order A1001?"
        );
        assert_eq!(
            lines[2],
            "conv_x                  support  1970-01-01 00:01      3  -"
        );
    }

    #[test]
    fn phone_calls_show_their_caller_and_callee() {
        let mut call = summary();
        call.id = ConversationId::new("conv_call");
        call.agent = "phone".into();
        let calls = HashMap::from([(
            call.id.clone(),
            PhoneCallRecord::starting("twilio", "CA1", "+15550111", "+15550100"),
        )]);
        let text = table(&[summary(), call.clone()], &calls);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("ID                      AGENT    CALLER     CALLEE     UPDATED"),
            "{text}"
        );
        assert!(
            lines[1].contains("support  -          -          1970"),
            "{text}"
        );
        assert!(
            lines[2].contains("phone    +15550111  +15550100  1970"),
            "{text}"
        );
        let json = with_calls(&[call], &calls).unwrap();
        assert_eq!(json[0]["phone_call"]["caller"], "+15550111");
    }

    #[test]
    fn transcript_reads_like_a_conversation() {
        let items = [
            stored(1, Item::user_text("Where is A1001?")),
            stored(
                2,
                Item::function_call("c1", "lookup_order", "{\"order_id\": \"A1001\"}"),
            ),
            stored(3, Item::function_call_output("c1", "x".repeat(500))),
            stored(
                4,
                Item::message(
                    Role::Assistant,
                    vec![ContentPart::OutputAudio {
                        audio: None,
                        transcript: Some("It shipped.".into()),
                    }],
                ),
            ),
            stored(
                5,
                Item::message(
                    Role::User,
                    vec![ContentPart::InputAudio {
                        audio: None,
                        transcript: None,
                    }],
                ),
            ),
        ];
        let text = transcript(&summary(), &items, &[], false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("conv_0000000001_aaaaaa · agent support"));
        assert_eq!(lines[2], "you › Where is A1001?");
        assert_eq!(lines[3], "  → lookup_order({\"order_id\": \"A1001\"})");
        assert!(lines[4].starts_with("  ← lookup_order: xxx"));
        assert_eq!(
            lines[4].chars().count(),
            "  ← lookup_order: ".chars().count() + SHORT
        );
        assert_eq!(lines[5], "assistant › It shipped.");
        assert_eq!(lines[6], "you (spoken) › [audio]");
        let full = transcript(&summary(), &items, &[], true);
        assert!(full.contains(&"x".repeat(500)));
    }

    fn event(seq: u64, after_item: u64, event: ConversationEvent) -> StoredEvent {
        StoredEvent {
            seq,
            after_item,
            created_at: Timestamp::from_millis(0),
            event,
        }
    }

    #[test]
    fn handoffs_and_trips_read_as_what_happened() {
        let items = [
            stored(1, Item::user_text("I was charged twice")),
            stored(2, Item::function_call("t1", "transfer_to_billing", "{}")),
            stored(
                3,
                Item::function_call_output("t1", "{\"transferred_to\":\"billing\"}"),
            ),
            stored(
                4,
                Item::assistant_text("[answer stopped by the guardrail `no guarantees`]"),
            ),
            stored(5, Item::function_call("t2", "transfer_to_support", "{}")),
        ];
        let events = [
            // Recorded before the call itself was stored: shown at the call anyway.
            event(
                1,
                1,
                ConversationEvent::Handoff {
                    call_id: "t1".into(),
                    from: "support".into(),
                    to: "billing".into(),
                },
            ),
            event(
                2,
                3,
                ConversationEvent::GuardrailTripped {
                    guardrail: "no guarantees".into(),
                    stage: "output".into(),
                    reason: "never guarantee a date".into(),
                },
            ),
        ];
        let text = transcript(&summary(), &items, &events, false);
        let lines: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(
            lines,
            [
                "you › I was charged twice",
                "  ⇄ handoff: support → billing",
                "  ⚠ guardrail no guarantees tripped on output: never guarantee a date",
                "assistant › [answer stopped by the guardrail `no guarantees`]",
                "  ⇄ handoff → support",
            ]
        );
    }
}
