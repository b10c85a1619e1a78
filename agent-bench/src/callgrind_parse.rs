//! Reads a `callgrind.out` file (the format valgrind's callgrind writes, see "Callgrind Format
//! Specification" in the valgrind manual) and sorts its instructions into buckets by function
//! path, for §8.
//!
//! - **Self** instructions: each function's own (exclusive) cost goes to the bucket of its
//!   name; the self columns add up to the program's total.
//! - **Inclusive** instructions of a bucket: the cost of every call that enters the bucket from
//!   a function outside it (the callee and everything below it). Buckets nest — decoding runs
//!   inside the session task, the allocator inside everything — so inclusive columns overlap and
//!   do not add up; a call chain that leaves a bucket and re-enters it is counted twice.

use std::collections::HashMap;

/// Where instructions go, in report order.
pub const BUCKETS: [&str; 11] = [
    "decode (server events: agent_core::protocol, serde_json/serde de, base64 audio)",
    "dispatch (session runner, dispatch, sequencer, tool calls, the tools)",
    "encode (client events: serde_json/serde ser)",
    "history (agent_core::history, rusqlite, SQLite)",
    "trace (agent_core::trace)",
    "console (agent_cli output)",
    "websocket / TLS (tungstenite, rustls, ring)",
    "tokio runtime, syscalls (tokio, mio, std::sys, libc wrappers)",
    "allocator (malloc, free, realloc)",
    "memcpy & co (libc string and memory functions)",
    "other (fmt, collections, start-up code, ...)",
];

/// Patterns (substrings of a demangled function name), first match wins, in this order.
const RULES: [(usize, &[&str]); 9] = [
    (4, &["agent_core::trace"]),
    (
        3,
        &[
            "agent_core::history",
            "rusqlite::",
            "sqlite3",
            "agent_cli::persist",
        ],
    ),
    (
        5,
        &[
            "agent_cli::console",
            "agent_cli::output",
            "agent_cli::conversation",
            "agent_cli::summary",
            "std::io::stdio",
        ],
    ),
    (
        0,
        &[
            "agent_core::protocol::server_event",
            "ServerEvent",
            "agent_core::protocol::lenient",
            "agent_core::protocol::peek",
            "agent_core::audio",
            "base64::",
            "serde_json::de",
            "serde_json::read",
            "serde_json::value::de",
            "serde::de",
            "serde_core::de",
            "Deserialize",
            "Visitor",
        ],
    ),
    (
        2,
        &[
            "agent_core::protocol::client_event",
            "ClientEvent",
            "serde_json::ser",
            "serde_json::value::ser",
            "serde::ser",
            "serde_core::ser",
            "Serialize",
        ],
    ),
    (
        6,
        &[
            "tungstenite::",
            "rustls::",
            "ring::",
            "aws_lc",
            "httparse::",
            "sha1",
        ],
    ),
    (
        1,
        &[
            "agent_core::session",
            "agent_core::tool",
            "agent_core::latency",
            "agent_core::cost",
            "agent_tools::",
            "agent_cli::cmd::run",
        ],
    ),
    (
        8,
        &["__rust_alloc", "__rust_dealloc", "__rust_realloc", "__rdl_"],
    ),
    (
        7,
        &[
            "tokio::",
            "mio::",
            "std::sys",
            "std::thread",
            "parking_lot",
            "std::sync",
        ],
    ),
];

/// Bucket of a function named `name` in the object file `object`.
pub fn bucket(name: &str, object: &str) -> usize {
    if let Some((b, _)) = RULES
        .iter()
        .find(|(_, patterns)| patterns.iter().any(|p| name.contains(p)))
    {
        return *b;
    }
    if object.contains("sqlite3") {
        return 3;
    }
    if object.contains("libc") {
        let lower = name.to_ascii_lowercase();
        if [
            "malloc",
            "free",
            "realloc",
            "calloc",
            "tcache",
            "unlink_chunk",
        ]
        .iter()
        .any(|p| lower.contains(p))
        {
            return 8;
        }
        if ["mem", "str", "wcs"].iter().any(|p| lower.contains(p)) {
            return 9;
        }
        return 7;
    }
    BUCKETS.len() - 1
}

/// Instructions per bucket of one profile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets {
    /// The program's total instructions.
    pub total: u64,
    /// Self instructions per bucket ([`BUCKETS`] order).
    pub self_cost: Vec<u64>,
    /// Inclusive instructions per bucket.
    pub inclusive: Vec<u64>,
    /// Self instructions of each function of the last bucket ("other"), by name, so the
    /// report can show what is in it.
    pub others: HashMap<String, u64>,
}

/// A function: its demangled name, and the object file and source file it is in (one string,
/// `object source`), so SQLite's internal functions (`yy_reduce`, ...) are found by their file.
type Function = (String, String);

/// One parsed profile: every function's self cost and every call edge's inclusive cost.
#[derive(Debug, Default)]
struct Profile {
    /// Self instructions per function.
    functions: HashMap<Function, u64>,
    /// (caller, callee) → inclusive instructions of the calls.
    calls: HashMap<(Function, Function), u64>,
    total: u64,
}

/// Parses the text of a `callgrind.out` file and sorts it into buckets.
pub fn parse(text: &str) -> anyhow::Result<Buckets> {
    let profile = read_profile(text)?;
    let mut out = Buckets {
        total: profile.total,
        self_cost: vec![0; BUCKETS.len()],
        inclusive: vec![0; BUCKETS.len()],
        others: HashMap::new(),
    };
    for ((name, object), cost) in &profile.functions {
        let b = bucket(name, object);
        out.self_cost[b] += cost;
        if b == BUCKETS.len() - 1 {
            *out.others.entry(name.clone()).or_default() += cost;
        }
    }
    for ((caller, callee), cost) in &profile.calls {
        let to = bucket(&callee.0, &callee.1);
        if bucket(&caller.0, &caller.1) != to {
            out.inclusive[to] += cost;
        }
    }
    if out.total == 0 {
        out.total = out.self_cost.iter().sum();
    }
    Ok(out)
}

/// Compressed names: `(12) name` defines id 12, `(12)` alone refers to it.
#[derive(Default)]
struct Names(HashMap<String, String>);

impl Names {
    fn resolve(&mut self, spec: &str) -> String {
        let spec = spec.trim();
        let Some(rest) = spec.strip_prefix('(') else {
            return spec.to_owned();
        };
        let Some((id, name)) = rest.split_once(')') else {
            return spec.to_owned();
        };
        let name = name.trim();
        if name.is_empty() {
            return self.0.get(id).cloned().unwrap_or_default();
        }
        self.0.insert(id.to_owned(), name.to_owned());
        name.to_owned()
    }
}

/// The parser's position in the file.
#[derive(Default)]
struct State {
    files: Names,
    functions: Names,
    objects: Names,
    positions: usize,
    object: String,
    /// The current function's source file (`fl=`), and a callee's (`cfi=`/`cfl=`).
    file: String,
    call_file: Option<String>,
    function: Function,
    call_object: Option<String>,
    callee: Option<Function>,
    /// The next cost line is a call's inclusive cost.
    in_call: bool,
}

fn read_profile(text: &str) -> anyhow::Result<Profile> {
    let mut p = Profile::default();
    let mut s = State {
        positions: 1,
        ..State::default()
    };
    for line in text.lines() {
        let first = line.bytes().next();
        if matches!(first, Some(b'0'..=b'9' | b'+' | b'-' | b'*')) {
            let cost: u64 = line
                .split_whitespace()
                .nth(s.positions)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            cost_line(&mut p, &mut s, cost);
            continue;
        }
        let Some((key, value)) = line.split_once('=').or_else(|| line.split_once(':')) else {
            continue;
        };
        match key {
            "positions" => s.positions = value.split_whitespace().count().max(1),
            "totals" | "summary" => {
                p.total = p.total.max(value.trim().parse().unwrap_or(0));
            }
            "ob" => s.object = s.objects.resolve(value),
            "cob" => s.call_object = Some(s.objects.resolve(value)),
            "fl" => s.file = s.files.resolve(value),
            "fi" | "fe" => {
                s.files.resolve(value);
            }
            "cfi" | "cfl" => s.call_file = Some(s.files.resolve(value)),
            "fn" => {
                s.function = (
                    s.functions.resolve(value),
                    format!("{} {}", s.object, s.file),
                );
                s.call_object = None;
                s.call_file = None;
            }
            "cfn" => {
                let object = s.call_object.take().unwrap_or_else(|| s.object.clone());
                let file = s.call_file.take().unwrap_or_else(|| s.file.clone());
                s.callee = Some((s.functions.resolve(value), format!("{object} {file}")));
            }
            "calls" => s.in_call = true,
            _ => {}
        }
    }
    anyhow::ensure!(
        !p.functions.is_empty() || p.total > 0,
        "no costs in the callgrind file"
    );
    Ok(p)
}

fn cost_line(p: &mut Profile, s: &mut State, cost: u64) {
    if s.in_call {
        s.in_call = false;
        if let Some(callee) = s.callee.take() {
            *p.calls.entry((s.function.clone(), callee)).or_default() += cost;
        }
    } else {
        *p.functions.entry(s.function.clone()).or_default() += cost;
    }
}
