//! Handoff targets: the agent files `handoffs = [...]` names, loaded and resolved with the
//! agent, and checked against it.
//!
//! Every agent reachable from the starting one is loaded once (targets may hand back, so the
//! graph may have cycles), resolved against the same registry, and checked for what a handoff
//! cannot change: the voice, the audio formats and the model stay the starting agent's (see
//! [`crate::session::handoff`]). A target that sets another one is reported, since its file
//! would promise what the conversation cannot give.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    path::{Path, PathBuf},
    sync::Arc,
};

use toml::Spanned;

use super::{Agent, AgentFile, Diagnostic, spec::AgentKind};
use crate::{session::handoff::transfer_tool_name, tool::ToolRegistry};

/// One agent this agent may hand the conversation to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffTarget {
    /// The target agent's name.
    pub name: String,
    /// The transfer tool the model calls (`transfer_to_NAME`).
    pub tool: String,
    /// When to hand off: the target's `handoff_description`, else its `description`.
    pub description: Option<String>,
    /// The target's agent file.
    pub path: PathBuf,
}

/// Where a `handoffs` entry points: a path (it has a `/` or ends in `.toml`), or the name of
/// an agent file beside `from`.
fn target_path(from: &Path, entry: &str) -> PathBuf {
    let base = from.parent().unwrap_or(Path::new("."));
    if entry.contains('/') || entry.ends_with(".toml") {
        base.join(entry)
    } else {
        base.join(format!("{entry}.toml"))
    }
}

/// Loads every agent reachable from `root` by handoffs and attaches them: `root.handoffs`
/// and each member's name its targets, and `root.members` holds the others. Problems in a
/// target's own file are reported there; problems with an entry, at the entry.
pub(super) fn attach_team(mut root: Agent, registry: &ToolRegistry) -> (Agent, Vec<Diagnostic>) {
    let mut problems = Vec::new();
    if root.file.spec.handoffs.is_empty() {
        return (root, problems);
    }
    let root_name = root.name().to_owned();
    let mut by_path: HashMap<PathBuf, String> = HashMap::new();
    by_path.insert(canonical(&root.file.path), root_name.clone());
    let mut members: BTreeMap<String, Agent> = BTreeMap::new();
    let mut queue = VecDeque::from([root_name.clone()]);
    // The root is resolved already; it joins `members` only while the graph is walked.
    members.insert(root_name.clone(), root.clone());
    while let Some(name) = queue.pop_front() {
        let Some(file) = members.get(&name).map(|a| a.file.clone()) else {
            continue;
        };
        let mut targets = Vec::new();
        for entry in &file.spec.handoffs {
            let path = target_path(&file.path, entry.get_ref());
            let key = canonical(&path);
            let target_name = match by_path.get(&key) {
                Some(known) => known.clone(),
                None => match load_member(&file, entry, &path, registry, &mut problems) {
                    Some(agent) => {
                        let target = agent.name().to_owned();
                        if members.contains_key(&target) {
                            problems.push(file.diagnostic(
                                entry.span(),
                                format!(
                                    "handoff target {} is named `{target}`, like another agent of this conversation",
                                    path.display()
                                ),
                                Some("give each agent of a handoff team its own `name`".into()),
                            ));
                            continue;
                        }
                        by_path.insert(key, target.clone());
                        queue.push_back(target.clone());
                        members.insert(target.clone(), agent);
                        target
                    }
                    None => continue,
                },
            };
            if target_name == name {
                problems.push(file.diagnostic(
                    entry.span(),
                    format!("`{name}` lists itself in `handoffs`"),
                    Some("remove it: an agent cannot hand the conversation to itself".into()),
                ));
                continue;
            }
            let Some(target) = members.get(&target_name) else {
                continue;
            };
            let tool = transfer_tool_name(&target_name);
            if target.tools.contains(&tool) || members[&name].tools.contains(&tool) {
                problems.push(file.diagnostic(
                    entry.span(),
                    format!("a tool named `{tool}` exists already; the handoff needs that name"),
                    Some("rename the tool".into()),
                ));
                continue;
            }
            let spec = &target.file.spec;
            targets.push(HandoffTarget {
                name: target_name.clone(),
                tool,
                description: spec
                    .handoff_description
                    .clone()
                    .or_else(|| spec.description.clone()),
                path: target.file.path.clone(),
            });
        }
        if let Some(agent) = members.get_mut(&name) {
            agent.handoffs = targets;
        }
    }
    for member in members.values().filter(|m| m.name() != root_name) {
        problems.extend(pinned_problems(&root.file, &member.file));
    }
    if let Some(r) = members.remove(&root_name) {
        root.handoffs = r.handoffs;
    }
    root.members = Arc::new(members);
    (root, problems)
}

/// Loads and resolves the target of `entry`; its problems join `problems`.
fn load_member(
    from: &AgentFile,
    entry: &Spanned<String>,
    path: &Path,
    registry: &ToolRegistry,
    problems: &mut Vec<Diagnostic>,
) -> Option<Agent> {
    let file = match AgentFile::load(path) {
        Ok(file) => file,
        Err(super::AgentError::Read(err)) => {
            problems.push(from.diagnostic(
                entry.span(),
                format!("handoff target `{}`: {err}", entry.get_ref()),
                Some(format!(
                    "write {} or fix the entry: a name is an agent file beside this one, a path is relative to it",
                    path.display()
                )),
            ));
            return None;
        }
        Err(err) => {
            problems.extend(err.diagnostics().iter().cloned());
            return None;
        }
    };
    if file.spec.kind == AgentKind::Transcription {
        problems.push(from.diagnostic(
            entry.span(),
            format!(
                "handoff target `{}` is a transcription agent, which cannot converse",
                file.spec.name
            ),
            None,
        ));
        return None;
    }
    if !file.spec.mcp_clients.is_empty() {
        problems.push(
            file.diagnostic_at_key(
                "mcp_clients",
                "a handoff target cannot have `[[mcp_clients]]` yet",
                Some(
                    "declare them in the agent the conversation starts with, or use hosted \
                 `[[mcp_servers]]`"
                        .into(),
                ),
            ),
        );
        return None;
    }
    let (agent, found) = file.resolve_own(registry);
    problems.extend(found);
    Some(agent)
}

/// What `member` sets that the conversation started by `root` cannot change.
fn pinned_problems(root: &AgentFile, member: &AgentFile) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    let (r, m) = (&root.spec, &member.spec);
    let hint = |what: &str, value: &str| {
        Some(format!(
            "remove it, or set it to {value}: a handoff keeps the {what} of the agent the \
             conversation started with (`{}`)",
            r.name
        ))
    };
    if let Some(voice) = &m.voice
        && r.voice.as_ref().map(|v| v.get_ref()) != Some(voice.get_ref())
    {
        let (message, fix) = match &r.voice {
            Some(theirs) => (
                format!(
                    "voice `{}` differs from `{}`, the voice of `{}`, which hands conversations to this agent",
                    voice.get_ref(),
                    theirs.get_ref(),
                    r.name
                ),
                format!("set it to `{}`, or remove it", theirs.get_ref()),
            ),
            None => (
                format!(
                    "voice `{}` is set here, but `{}`, which hands conversations to this agent, uses the server's default voice",
                    voice.get_ref(),
                    r.name
                ),
                format!(
                    "set voice = \"{}\" in {} too, or remove it here",
                    voice.get_ref(),
                    root.path.display()
                ),
            ),
        };
        problems.push(member.diagnostic(
            voice.span(),
            message,
            Some(format!(
                "{fix}: a handoff keeps the voice of the agent the conversation started with"
            )),
        ));
    }
    let written = written_keys(&member.source);
    if written.model && m.model != r.model {
        problems.push(member.diagnostic_at_key(
            "model",
            format!(
                "model `{}` differs from `{}`, the model of `{}`",
                m.model, r.model, r.name
            ),
            hint("model", &format!("`{}`", r.model)),
        ));
    }
    for (key, is_written, mine, theirs) in [
        (
            "input_format",
            written.input_format,
            m.audio.input_format,
            r.audio.input_format,
        ),
        (
            "output_format",
            written.output_format,
            m.audio.output_format,
            r.audio.output_format,
        ),
    ] {
        if is_written && mine != theirs {
            problems.push(member.diagnostic_at_key(
                key,
                format!(
                    "audio {key} `{}` differs from `{}`, the format of `{}`",
                    name_of(mine),
                    name_of(theirs),
                    r.name
                ),
                hint("audio formats", &format!("`{}`", name_of(theirs))),
            ));
        }
    }
    problems
}

fn name_of(format: super::spec::AudioFormatName) -> String {
    serde_json::to_value(format)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Which of the pinned keys a file writes out (defaults are not a difference).
struct Written {
    model: bool,
    input_format: bool,
    output_format: bool,
}

fn written_keys(source: &str) -> Written {
    let table: toml::Table = toml::from_str(source).unwrap_or_default();
    let audio = table.get("audio").and_then(toml::Value::as_table);
    let in_audio = |key: &str| audio.is_some_and(|a| a.contains_key(key));
    Written {
        model: table.contains_key("model"),
        input_format: in_audio("input_format"),
        output_format: in_audio("output_format"),
    }
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}
