//! Validates Realtime events against the official JSON Schemas in the shared spec folder.
//!
//! Reusable by any test in the workspace: include it with
//! `#[path = "../../agent-core/tests/common/spec.rs"] mod spec;` (adjust the path) or copy it.
//! It needs `jsonschema` and `serde_json` as (dev-)dependencies, and a `Dialect` enum with `Ga`
//! and `Beta` variants in the including module (`use super::Dialect`): agent-core's tests
//! re-export `agent_core::protocol::Dialect`, agent-testkit's use `agent_testkit::Dialect`, so
//! the testkit (which must not depend on agent-core) validates with the same code.
//!
//! ```ignore
//! let Some(spec) = spec::spec() else { return }; // prints one "skipped" line when missing
//! spec.validate_client_text(Dialect::Ga, &frame)?; // strict: no nulls, no undeclared fields
//! ```
//!
//! The folder is `$REALTIME_SPEC_DIR` (relative paths are taken from the workspace root) or
//! `../shared/realtime-spec` beside the workspace root. When it is missing, [`spec`] prints one
//! line saying the conformance checks were skipped and returns `None`, unless
//! `REALTIME_SPEC_REQUIRED=1`, in which case it panics (CI sets it).
//!
//! Validation follows the spec folder's `validate.py`: the event's `type` selects the schema
//! (`realtime-schemas.json` for GA, `realtime-beta-wire-schemas.json` for beta), and `oneOf` is
//! relaxed to `anyOf` because the spec has overlapping branches. Two options mirror its flags:
//! `allow_null` (accept `null` for any declared property, as live servers send) and strict mode
//! (reject undeclared properties, which live servers answer with `unknown_parameter`). One
//! documented patch: in the beta schemas, `turn_detection` and `input_audio_noise_reduction`
//! of the session objects accept `null`, which their own descriptions name as the way to turn
//! them off but the converted schema forgot.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};

use super::Dialect;

/// Which side sends an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Sent by the client (the agent).
    Client,
    /// Sent by the server.
    Server,
}

/// How strictly to validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mode {
    /// Accept `null` for any declared property (`validate.py --allow-null`).
    pub allow_null: bool,
    /// Reject properties the schema does not declare (`validate.py --strict`).
    pub strict: bool,
}

impl Mode {
    /// The spec's default: no nulls, undeclared properties allowed.
    pub const DEFAULT: Mode = Mode {
        allow_null: false,
        strict: false,
    };
    /// For recorded server traffic: nulls allowed.
    pub const ALLOW_NULL: Mode = Mode {
        allow_null: true,
        strict: false,
    };
    /// For what we send: no nulls, no undeclared properties.
    pub const STRICT: Mode = Mode {
        allow_null: false,
        strict: true,
    };
}

/// The loaded spec folder.
pub struct Spec {
    /// The spec folder.
    pub dir: PathBuf,
    ga: Schemas,
    beta: Schemas,
}

struct Schemas {
    defs: serde_json::Map<String, Value>,
    types: HashMap<(String, Direction), String>,
    beta_patch: bool,
    compiled: Mutex<HashMap<Mode, &'static jsonschema::ValidatorMap>>,
}

/// Prints one line to the terminal even while the test harness captures output.
pub fn report(line: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The workspace root: the parent of the including crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The spec folder: `$REALTIME_SPEC_DIR` or `<workspace root>/../shared/realtime-spec`.
pub fn spec_dir() -> PathBuf {
    match std::env::var_os("REALTIME_SPEC_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("../shared/realtime-spec"),
    }
}

/// Whether a missing spec folder must fail the tests (`REALTIME_SPEC_REQUIRED=1`).
pub fn spec_required() -> bool {
    std::env::var("REALTIME_SPEC_REQUIRED").is_ok_and(|v| v == "1")
}

const SCHEMA_FILES: [&str; 2] = ["realtime-schemas.json", "realtime-beta-wire-schemas.json"];

/// The loaded spec, or `None` (after one printed line) when the folder is missing and not
/// required. Panics when it is required and missing, or present but unreadable.
pub fn spec() -> Option<&'static Spec> {
    static SPEC: OnceLock<Option<Spec>> = OnceLock::new();
    SPEC.get_or_init(|| {
        let dir = spec_dir();
        let missing: Vec<_> = SCHEMA_FILES
            .iter()
            .filter(|f| !dir.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            let why = if dir.is_dir() {
                format!("{} lacks {missing:?}", dir.display())
            } else {
                format!("{} does not exist", dir.display())
            };
            if spec_required() {
                panic!(
                    "REALTIME_SPEC_REQUIRED=1 but the Realtime spec folder is missing: {why}; \
                     set REALTIME_SPEC_DIR to the folder holding realtime-schemas.json"
                );
            }
            report(format!(
                "conformance tests skipped: the Realtime spec folder is missing ({why}); set \
                 REALTIME_SPEC_DIR, or REALTIME_SPEC_REQUIRED=1 to make this an error"
            ));
            return None;
        }
        Some(Spec::load(dir))
    })
    .as_ref()
}

impl Spec {
    fn load(dir: PathBuf) -> Spec {
        let read = |name: &str| -> Value {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
        };
        Spec {
            ga: Schemas::new(read(SCHEMA_FILES[0]), false),
            beta: Schemas::new(read(SCHEMA_FILES[1]), true),
            dir,
        }
    }

    fn schemas(&self, dialect: Dialect) -> &Schemas {
        match dialect {
            Dialect::Ga => &self.ga,
            Dialect::Beta => &self.beta,
        }
    }

    /// The schema name (`$defs` key) that an event type selects, if any.
    pub fn schema_for(
        &self,
        dialect: Dialect,
        direction: Direction,
        event_type: &str,
    ) -> Option<&str> {
        self.schemas(dialect)
            .types
            .get(&(event_type.to_owned(), direction))
            .map(String::as_str)
    }

    /// Validates a client event the way we send it, in strict mode: no `null` where the schema
    /// has none, and no property the schema does not declare (live servers answer those with
    /// `unknown_parameter`). Use [`Spec::validate`] for other modes.
    pub fn validate_client_event(&self, dialect: Dialect, event: &Value) -> Result<(), String> {
        self.validate(dialect, Direction::Client, event, Mode::STRICT)
    }

    /// Parses a client text frame and validates it like [`Spec::validate_client_event`].
    pub fn validate_client_text(&self, dialect: Dialect, text: &str) -> Result<(), String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        self.validate_client_event(dialect, &value)
    }

    /// Validates a server event, accepting `null` in declared properties as live servers send.
    pub fn validate_server_event(&self, dialect: Dialect, event: &Value) -> Result<(), String> {
        self.validate(dialect, Direction::Server, event, Mode::ALLOW_NULL)
    }

    /// Validates `event` against the schema its `type` selects for `direction` in `dialect`.
    pub fn validate(
        &self,
        dialect: Dialect,
        direction: Direction,
        event: &Value,
        mode: Mode,
    ) -> Result<(), String> {
        let event_type = event.get("type").and_then(Value::as_str).unwrap_or("");
        let Some(name) = self.schema_for(dialect, direction, event_type) else {
            return Err(format!(
                "no {dialect:?} {direction:?} event schema for type {event_type:?}"
            ));
        };
        let schemas = self.schemas(dialect);
        let map = schemas.compiled(mode);
        let pointer = format!("#/$defs/{name}");
        let validator = map
            .get(&pointer)
            .ok_or_else(|| format!("no validator compiled for {pointer}"))?;
        let errors: Vec<String> = validator
            .iter_errors(event)
            .take(5)
            .map(|e| {
                format!(
                    "at /{}: {}",
                    e.instance_path().as_str().trim_start_matches('/'),
                    e
                )
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("{name} ({dialect:?}): {}", errors.join("; ")))
        }
    }

    /// Validates `value` against the named schema (`$defs` key), e.g. a REST body such as
    /// `RealtimeCallRejectRequest`.
    pub fn validate_named(
        &self,
        dialect: Dialect,
        name: &str,
        value: &Value,
        mode: Mode,
    ) -> Result<(), String> {
        let map = self.schemas(dialect).compiled(mode);
        let pointer = format!("#/$defs/{name}");
        let validator = map
            .get(&pointer)
            .ok_or_else(|| format!("no validator compiled for {pointer}"))?;
        let errors: Vec<String> = validator
            .iter_errors(value)
            .take(5)
            .map(|e| {
                format!(
                    "at /{}: {e}",
                    e.instance_path().as_str().trim_start_matches('/')
                )
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("{name} ({dialect:?}): {}", errors.join("; ")))
        }
    }

    /// The lines of a JSONL file in the spec folder, numbered from 1, blank lines skipped.
    pub fn jsonl(&self, relative: &str) -> Vec<(usize, String)> {
        let path = self.dir.join(relative);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(index, line)| (index + 1, line.to_owned()))
            .collect()
    }

    /// The schema name of each line of an `*.index.tsv` file, by line number.
    pub fn index(&self, relative: &str) -> BTreeMap<usize, String> {
        self.jsonl(relative)
            .into_iter()
            .skip(1)
            .filter_map(|(_, row)| {
                let mut cells = row.split('\t');
                Some((cells.next()?.parse().ok()?, cells.next()?.to_owned()))
            })
            .collect()
    }

    /// The transcript files, sorted, relative to the spec folder.
    pub fn transcripts(&self) -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(self.dir.join("transcripts"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .filter(|name| name.ends_with(".jsonl"))
                    .map(|name| format!("transcripts/{name}"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }
}

impl Schemas {
    fn new(document: Value, beta_patch: bool) -> Schemas {
        let defs = document
            .get("$defs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let types = type_map(&defs);
        Schemas {
            defs,
            types,
            beta_patch,
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// The compiled validators for a mode, built once and kept for the test run.
    fn compiled(&self, mode: Mode) -> &'static jsonschema::ValidatorMap {
        let mut cache = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        cache.entry(mode).or_insert_with(|| {
            let mut defs = serde_json::Map::new();
            for (name, schema) in &self.defs {
                defs.insert(name.clone(), transform(schema.clone(), mode));
            }
            if self.beta_patch {
                patch_beta_nullable(&mut defs);
            }
            let root =
                json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": defs});
            let map = jsonschema::validator_map_for(&root)
                .unwrap_or_else(|e| panic!("the spec's schemas do not compile: {e}"));
            Box::leak(Box::new(map))
        })
    }
}

/// `type` string and direction → schema name, like `validate.py`: union members win over the
/// legacy schemas that share a type.
fn type_map(defs: &serde_json::Map<String, Value>) -> HashMap<(String, Direction), String> {
    let mut members = std::collections::HashSet::new();
    for union in ["RealtimeClientEvent", "RealtimeServerEvent"] {
        for key in ["anyOf", "oneOf"] {
            for alt in defs
                .get(union)
                .and_then(|u| u.get(key))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = alt
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.rsplit('/').next())
                {
                    members.insert(name.to_owned());
                }
            }
        }
    }
    let mut names: Vec<&String> = defs.keys().collect();
    names.sort_by_key(|name| (!members.contains(*name), (*name).clone()));
    let mut map = HashMap::new();
    for name in names {
        let direction = if name.starts_with("RealtimeClientEvent") {
            Direction::Client
        } else if name.starts_with("RealtimeServerEvent") {
            Direction::Server
        } else {
            continue;
        };
        if name == "RealtimeClientEvent" || name == "RealtimeServerEvent" {
            continue;
        }
        let kind = &defs[name.as_str()]["properties"]["type"];
        let event_type = kind.get("const").and_then(Value::as_str).or_else(|| {
            match kind
                .get("enum")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
            {
                Some([single]) => single.as_str(),
                _ => None,
            }
        });
        if let Some(event_type) = event_type {
            map.entry((event_type.to_owned(), direction))
                .or_insert_with(|| name.clone());
        }
    }
    map
}

/// `validate.py`'s transform: relax `oneOf` to `anyOf`, optionally allow `null` for declared
/// properties and reject undeclared ones.
fn transform(schema: Value, mode: Mode) -> Value {
    match schema {
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| transform(v, mode)).collect())
        }
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (key, value) in map {
                if key == "properties" {
                    let Value::Object(props) = value else {
                        out.insert(key, value);
                        continue;
                    };
                    let mut new_props = serde_json::Map::new();
                    for (name, prop) in props {
                        let mut prop = transform(prop, mode);
                        if mode.allow_null && name != "type" {
                            prop = json!({"anyOf": [prop, {"type": "null"}]});
                        }
                        new_props.insert(name, prop);
                    }
                    out.insert(key, Value::Object(new_props));
                } else {
                    out.insert(key, transform(value, mode));
                }
            }
            if out.contains_key("oneOf")
                && !out.contains_key("anyOf")
                && let Some(one_of) = out.remove("oneOf")
            {
                out.insert("anyOf".to_owned(), one_of);
            }
            let objectish = match out.get("type") {
                None => true,
                Some(Value::String(t)) => t == "object",
                Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
                Some(_) => false,
            };
            if mode.strict
                && out.contains_key("properties")
                && !out.contains_key("additionalProperties")
                && objectish
            {
                out.insert("additionalProperties".to_owned(), Value::Bool(false));
            }
            Value::Object(out)
        }
        other => other,
    }
}

/// Beta session objects: `turn_detection: null` and `input_audio_noise_reduction: null` turn
/// those features off (their descriptions say so), but the converted schema is not nullable.
fn patch_beta_nullable(defs: &mut serde_json::Map<String, Value>) {
    for def in [
        "RealtimeSessionCreateRequest",
        "RealtimeTranscriptionSessionCreateRequest",
        "RealtimeSession",
    ] {
        for prop in ["turn_detection", "input_audio_noise_reduction"] {
            if let Some(slot) = defs
                .get_mut(def)
                .and_then(|d| d.get_mut("properties"))
                .and_then(|p| p.get_mut(prop))
            {
                let original = slot.take();
                *slot = json!({"anyOf": [original, {"type": "null"}]});
            }
        }
    }
}
