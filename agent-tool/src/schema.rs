//! Tool parameter schemas in the exact shape OpenAI function calling expects.
//!
//! schemars produces a JSON Schema document; the model needs something narrower. [`for_type`]
//! and [`normalize`] turn either into a function-parameters schema:
//!
//! - the root is `"type": "object"` with `properties` and `required`;
//! - no `$schema`, no `title`, and subschemas are inlined (no `$ref`, no `$defs`), except where a
//!   type is recursive, which cannot be inlined;
//! - every object has `"additionalProperties": false`;
//! - integer/number `format`s (`int32`, `uint8`, `double`, ...) are dropped: they are schemars
//!   hints, not constraints, and strict mode rejects them;
//! - unions of constants (what schemars emits for documented unit enum variants) become one
//!   `enum`, with the variants' docs folded into the description.
//!
//! **Strict mode** (the agent setting `tool_options.strict`, on by default) adds what OpenAI's
//! strict structured outputs require: every property is listed in `required`, the optional ones
//! accept `null` (`"type": ["string", "null"]`, or an `anyOf` with `{"type": "null"}`), `oneOf`
//! becomes `anyOf`, and only the keywords in [`STRICT_KEYWORDS`] survive — everything else
//! (`default`, `examples`, `minLength`, `maxLength`, `uniqueItems`, `minProperties`,
//! `patternProperties`, `propertyNames`, `allOf`, `not`, `if`/`then`/`else`, `prefixItems`,
//! `contains`, `dependentRequired`, `unevaluatedProperties`, `deprecated`, `readOnly`, ...) is
//! removed, and string `format`s outside [`STRICT_STRING_FORMATS`] are dropped.
//! [`check_strict`] verifies the result and explains what a schema cannot express (a map type,
//! for example, needs `additionalProperties` to be a schema, which strict mode forbids).
//!
//! In **relaxed** mode, optional parameters are simply left out of `required`.

use std::{collections::BTreeSet, fmt};

use schemars::{JsonSchema, generate::SchemaSettings};
use serde_json::{Map, Value, json};

/// Keywords a schema node may keep in strict mode. `$ref` and `$defs` only appear for recursive
/// types, which OpenAI accepts but which cannot be inlined.
pub const STRICT_KEYWORDS: &[&str] = &[
    // any type
    "type",
    "description",
    "enum",
    "const",
    "anyOf",
    "$ref",
    "$defs",
    // objects
    "properties",
    "required",
    "additionalProperties",
    // strings
    "pattern",
    "format",
    // numbers
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    // arrays
    "items",
    "minItems",
    "maxItems",
];

/// String formats that strict mode accepts; any other `format` is dropped.
pub const STRICT_STRING_FORMATS: &[&str] = &[
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
];

/// Keywords that only carry documentation for humans or other tools; removed in both modes.
const ALWAYS_DROPPED: &[&str] = &["$schema", "$id", "$comment", "title", "$anchor"];

/// The function-parameters schema for `T` (normally a `#[derive(JsonSchema)]` struct).
pub fn for_type<T: JsonSchema>(strict: bool) -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.inline_subschemas = true;
            settings.meta_schema = None;
        })
        .into_generator();
    let schema = generator.into_root_schema_for::<T>();
    normalize(schema.to_value(), strict)
}

/// Turns any JSON Schema (generated or hand-written, as in an HTTP tool's `parameters`) into
/// the function-parameters shape described in the [module docs](self).
pub fn normalize(schema: Value, strict: bool) -> Value {
    let mut root = match schema {
        Value::Object(map) => map,
        // `true` / anything else: an object that takes no parameters.
        _ => Map::new(),
    };
    let mut defs = Map::new();
    for key in ["$defs", "definitions"] {
        if let Some(Value::Object(found)) = root.remove(key) {
            defs.extend(found);
        }
    }
    root.insert("type".into(), Value::from("object"));
    let mut root = Value::Object(root);
    let mut recursive = BTreeSet::new();
    inline_refs(&mut root, &defs, &mut Vec::new(), &mut recursive);
    clean(&mut root, strict);

    let Value::Object(mut root) = root else {
        return json!({"type": "object", "properties": {}, "required": [], "additionalProperties": false});
    };
    root.insert("type".into(), Value::from("object"));
    root.entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    root.entry("required")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !recursive.is_empty() {
        let mut kept = Map::new();
        for name in recursive {
            if let Some(def) = defs.get(&name) {
                let mut def = def.clone();
                inline_refs(
                    &mut def,
                    &defs,
                    &mut vec![name.clone()],
                    &mut BTreeSet::new(),
                );
                clean(&mut def, strict);
                kept.insert(name, def);
            }
        }
        root.insert("$defs".into(), Value::Object(kept));
    }
    Value::Object(root)
}

fn def_name(reference: &str) -> Option<&str> {
    reference
        .strip_prefix("#/$defs/")
        .or_else(|| reference.strip_prefix("#/definitions/"))
}

/// Replaces `$ref`s to local definitions with the definitions themselves. Recursive types keep
/// their `$ref` (rewritten to `#/$defs/...`) and are recorded in `recursive`.
fn inline_refs(
    node: &mut Value,
    defs: &Map<String, Value>,
    stack: &mut Vec<String>,
    recursive: &mut BTreeSet<String>,
) {
    if let Value::Object(map) = node
        && let Some(Value::String(reference)) = map.get("$ref")
        && let Some(name) = def_name(reference).map(str::to_owned)
    {
        if stack.contains(&name) {
            map.insert("$ref".into(), Value::from(format!("#/$defs/{name}")));
            recursive.insert(name);
            return;
        }
        if let Some(def) = defs.get(&name) {
            let mut inlined = def.clone();
            stack.push(name);
            inline_refs(&mut inlined, defs, stack, recursive);
            stack.pop();
            map.remove("$ref");
            // Sibling keywords (a property's own description) win over the definition's.
            if let Value::Object(mut inlined) = inlined {
                for (key, value) in std::mem::take(map) {
                    inlined.insert(key, value);
                }
                *map = inlined;
            }
            // The definition's subschemas were handled above, with the right stack.
            return;
        }
    }
    for_each_subschema(node, &mut |sub| inline_refs(sub, defs, stack, recursive));
}

/// Calls `f` on every direct subschema of `node` (properties, items, branches, definitions), for
/// code that rewrites a schema recursively.
pub fn for_each_subschema(node: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    let Value::Object(map) = node else { return };
    for (key, value) in map.iter_mut() {
        match key.as_str() {
            "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas" => {
                if let Value::Object(children) = value {
                    children.values_mut().for_each(&mut *f);
                }
            }
            "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                if let Value::Array(children) = value {
                    children.iter_mut().for_each(&mut *f);
                }
            }
            "items" => match value {
                Value::Array(children) => children.iter_mut().for_each(&mut *f),
                other => f(other),
            },
            "additionalProperties"
            | "not"
            | "if"
            | "then"
            | "else"
            | "contains"
            | "propertyNames"
            | "unevaluatedProperties"
            | "unevaluatedItems" => f(value),
            _ => {}
        }
    }
}

fn type_names(map: &Map<String, Value>) -> Vec<&str> {
    match map.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn is_object_schema(map: &Map<String, Value>) -> bool {
    type_names(map).contains(&"object") || map.contains_key("properties")
}

/// Normalizes one schema node and, recursively, its subschemas.
fn clean(node: &mut Value, strict: bool) {
    // Children first: a parent's rewrites (nullable wrapping, enum folding) see clean children.
    for_each_subschema(node, &mut |sub| clean(sub, strict));
    let Value::Object(map) = node else {
        // Boolean schemas: `true` accepts anything; keep it (strict check reports it).
        return;
    };
    for key in ALWAYS_DROPPED {
        map.remove(*key);
    }
    merge_all_of(map);
    collapse_const_union(map);

    let types = type_names(map);
    let numeric_only = !types.is_empty()
        && types
            .iter()
            .all(|t| matches!(*t, "integer" | "number" | "null"));
    if numeric_only {
        map.remove("format");
    }

    if strict {
        if let Some(one_of) = map.remove("oneOf") {
            match map.get_mut("anyOf") {
                Some(Value::Array(any_of)) => {
                    if let Value::Array(more) = one_of {
                        any_of.extend(more);
                    }
                }
                _ => {
                    map.insert("anyOf".into(), one_of);
                }
            }
        }
        map.retain(|key, _| STRICT_KEYWORDS.contains(&key.as_str()));
        let drop_format = match map.get("format") {
            Some(Value::String(format)) => {
                !STRICT_STRING_FORMATS.contains(&format.as_str())
                    || !type_names(map).contains(&"string")
            }
            Some(_) => true,
            None => false,
        };
        if drop_format {
            map.remove("format");
        }
    }

    if is_object_schema(map) {
        map.insert("type".into(), object_type(map));
        match map.get("additionalProperties") {
            None | Some(Value::Bool(true)) => {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            Some(Value::Object(extra)) if extra.is_empty() => {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            _ => {}
        }
        map.entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if strict {
            require_all(map);
        }
    }
}

/// Keeps `null` in an object's type list if it was there.
fn object_type(map: &Map<String, Value>) -> Value {
    if type_names(map).contains(&"null") {
        json!(["object", "null"])
    } else {
        Value::from("object")
    }
}

/// Strict mode: every property is required; those that were optional now accept `null`.
fn require_all(map: &mut Map<String, Value>) {
    let required: BTreeSet<String> = match map.get("required") {
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect(),
        _ => BTreeSet::new(),
    };
    let mut all = Vec::new();
    if let Some(Value::Object(properties)) = map.get_mut("properties") {
        for (name, schema) in properties.iter_mut() {
            if !required.contains(name) {
                make_nullable(schema);
            }
            all.push(Value::from(name.clone()));
        }
    }
    map.insert("required".into(), Value::Array(all));
}

/// Whether a schema node accepts `null`: a `null` type, a `null` in its `enum`, or an `anyOf`
/// branch that does (how strict mode marks a parameter optional).
pub fn accepts_null(map: &Map<String, Value>) -> bool {
    if type_names(map).contains(&"null") {
        return true;
    }
    if let Some(Value::Array(values)) = map.get("enum")
        && values.contains(&Value::Null)
    {
        return true;
    }
    if let Some(Value::Array(branches)) = map.get("anyOf") {
        return branches
            .iter()
            .any(|b| b.as_object().is_some_and(accepts_null));
    }
    false
}

/// Makes `schema` accept `null` as well as what it accepted before.
fn make_nullable(schema: &mut Value) {
    let Value::Object(map) = schema else {
        *schema = json!({"anyOf": [schema.clone(), {"type": "null"}]});
        return;
    };
    if accepts_null(map) {
        return;
    }
    if let Some(ty) = map.get_mut("type") {
        match ty {
            Value::String(t) => *ty = json!([t.clone(), "null"]),
            Value::Array(ts) => ts.push(Value::from("null")),
            _ => {}
        }
        if let Some(Value::Array(values)) = map.get_mut("enum") {
            values.push(Value::Null);
        }
        if let Some(value) = map.remove("const") {
            map.insert("enum".into(), json!([value, null]));
        }
        return;
    }
    if let Some(Value::Array(branches)) = map.get_mut("anyOf") {
        branches.push(json!({"type": "null"}));
        return;
    }
    let description = map.remove("description");
    let inner = Value::Object(std::mem::take(map));
    map.insert("anyOf".into(), json!([inner, {"type": "null"}]));
    if let Some(description) = description {
        map.insert("description".into(), description);
    }
}

/// Folds `allOf` branches into their parent (schemars emits them for flattened structs).
fn merge_all_of(map: &mut Map<String, Value>) {
    let Some(Value::Array(branches)) = map.remove("allOf") else {
        return;
    };
    for branch in branches {
        let Value::Object(branch) = branch else {
            continue;
        };
        for (key, value) in branch {
            match (key.as_str(), map.get_mut(&key), value) {
                ("properties", Some(Value::Object(mine)), Value::Object(theirs)) => {
                    for (k, v) in theirs {
                        mine.entry(k).or_insert(v);
                    }
                }
                ("required", Some(Value::Array(mine)), Value::Array(theirs)) => {
                    for name in theirs {
                        if !mine.contains(&name) {
                            mine.push(name);
                        }
                    }
                }
                (_, Some(_), _) => {}
                (_, None, value) => {
                    map.insert(key, value);
                }
            }
        }
    }
}

/// `anyOf`/`oneOf` whose branches are all constants (documented unit enum variants) becomes a
/// single `enum`, with the variants' docs appended to the description.
fn collapse_const_union(map: &mut Map<String, Value>) {
    let key = if map.contains_key("oneOf") {
        "oneOf"
    } else if map.contains_key("anyOf") {
        "anyOf"
    } else {
        return;
    };
    let Some(Value::Array(branches)) = map.get(key) else {
        return;
    };
    let mut values = Vec::new();
    let mut types: Vec<String> = Vec::new();
    let mut notes = Vec::new();
    let mut inherited_description = None;
    for branch in branches {
        let Some(branch) = branch.as_object() else {
            return;
        };
        if branch.keys().any(|k| {
            !matches!(
                k.as_str(),
                "const" | "enum" | "type" | "description" | "title"
            )
        }) {
            return;
        }
        let branch_types = type_names(branch);
        if let Some(value) = branch.get("const") {
            values.push(value.clone());
            if let Some(description) = branch.get("description").and_then(Value::as_str) {
                notes.push(format!(
                    "{value}: {}",
                    description.trim().trim_end_matches('.')
                ));
            }
        } else if let Some(Value::Array(more)) = branch.get("enum") {
            values.extend(more.iter().cloned());
            if let Some(description) = branch.get("description") {
                inherited_description.get_or_insert_with(|| description.clone());
            }
        } else if branch_types == ["null"] {
            values.push(Value::Null);
        } else {
            return;
        }
        for t in branch_types {
            if !types.iter().any(|have| have == t) {
                types.push(t.to_owned());
            }
        }
    }
    if values.is_empty() {
        return;
    }
    if values.contains(&Value::Null) && !types.iter().any(|t| t == "null") {
        types.push("null".into());
    }
    map.remove(key);
    map.insert("enum".into(), Value::Array(values));
    match types.len() {
        0 => {}
        1 => {
            map.insert("type".into(), Value::from(types.remove(0)));
        }
        _ => {
            map.insert("type".into(), Value::from(types));
        }
    }
    if let Some(Value::String(inner)) = inherited_description {
        match map.get_mut("description") {
            // An `Option<Enum>` field: keep the field's doc, and the variants' docs after it.
            Some(Value::String(outer)) => {
                if let Some(at) = inner.find("Values: ")
                    && !outer.contains("Values: ")
                {
                    *outer = format!("{}. {}", outer.trim_end_matches('.'), &inner[at..]);
                }
            }
            _ => {
                map.insert("description".into(), Value::String(inner));
            }
        }
    }
    if !notes.is_empty() {
        let notes = notes.join("; ");
        let description = match map.get("description").and_then(Value::as_str) {
            Some(existing) => format!("{}. Values: {notes}.", existing.trim_end_matches('.')),
            None => format!("Values: {notes}."),
        };
        map.insert("description".into(), Value::from(description));
    }
}

/// What keeps a schema from being accepted in strict mode; each problem names its JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the schema does not meet strict mode: {}", problems.join("; "))]
pub struct StrictSchemaError {
    /// One line per problem, e.g. `/properties/tags: additionalProperties must be false`.
    pub problems: Vec<String>,
}

/// Checks the rules strict mode imposes (see the [module docs](self)). Use it on a normalized
/// strict schema; `agent check` reports its problems before a session is opened.
pub fn check_strict(schema: &Value) -> Result<(), StrictSchemaError> {
    let mut problems = Vec::new();
    match schema.as_object() {
        Some(root) => {
            if root.get("type") != Some(&Value::from("object")) {
                problems.push("/: the root must be `\"type\": \"object\"`".to_owned());
            }
            if root.contains_key("anyOf") {
                problems.push("/: the root may not be an `anyOf`".to_owned());
            }
            check_node(schema, "", true, &mut problems);
        }
        None => problems.push("/: the root must be a JSON object".to_owned()),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(StrictSchemaError { problems })
    }
}

fn check_node(node: &Value, path: &str, is_root: bool, problems: &mut Vec<String>) {
    let at = if path.is_empty() { "/" } else { path };
    let Some(map) = node.as_object() else {
        problems.push(format!("{at}: boolean schemas are not allowed"));
        return;
    };
    for key in map.keys() {
        if !STRICT_KEYWORDS.contains(&key.as_str()) {
            problems.push(format!("{at}: keyword `{key}` is not supported"));
        }
    }
    if map.contains_key("$defs") && !is_root {
        problems.push(format!("{at}: `$defs` may only appear at the root"));
    }
    if let Some(Value::String(format)) = map.get("format")
        && !STRICT_STRING_FORMATS.contains(&format.as_str())
    {
        problems.push(format!("{at}: format `{format}` is not supported"));
    }
    let types = type_names(map);
    if !map.contains_key("type")
        && !map.contains_key("anyOf")
        && !map.contains_key("$ref")
        && !map.contains_key("enum")
        && !map.contains_key("const")
    {
        problems.push(format!(
            "{at}: every schema needs a `type` (or `anyOf`/`enum`)"
        ));
    }
    for t in &types {
        if !matches!(
            *t,
            "string" | "number" | "integer" | "boolean" | "object" | "array" | "null"
        ) {
            problems.push(format!("{at}: unknown type `{t}`"));
        }
    }
    if is_object_schema(map) {
        if map.get("additionalProperties") != Some(&Value::Bool(false)) {
            problems.push(format!(
                "{at}: `additionalProperties` must be false (maps with free-form keys cannot be expressed)"
            ));
        }
        let properties: BTreeSet<&str> = map
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let required: BTreeSet<&str> = map
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for missing in properties.difference(&required) {
            problems.push(format!(
                "{at}: property `{missing}` must be listed in `required`"
            ));
        }
        for extra in required.difference(&properties) {
            problems.push(format!(
                "{at}: `required` names `{extra}`, which is not a property"
            ));
        }
    }
    let mut children: Vec<(String, &Value)> = Vec::new();
    for (key, value) in map {
        match key.as_str() {
            "properties" | "$defs" => {
                if let Some(entries) = value.as_object() {
                    for (name, child) in entries {
                        children.push((format!("{path}/{key}/{name}"), child));
                    }
                }
            }
            "anyOf" => {
                if let Some(entries) = value.as_array() {
                    for (i, child) in entries.iter().enumerate() {
                        children.push((format!("{path}/anyOf/{i}"), child));
                    }
                }
            }
            "items" => children.push((format!("{path}/items"), value)),
            "additionalProperties" if value.is_object() => {
                children.push((format!("{path}/additionalProperties"), value));
            }
            _ => {}
        }
    }
    for (child_path, child) in children {
        check_node(child, &child_path, false, problems);
    }
}

/// One parameter, summarized for people (`agent tools`) and for argument errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSummary {
    /// The property name.
    pub name: String,
    /// A short rendering of its type, e.g. `integer (1..=10)` or `"low" | "high"`.
    pub kind: String,
    /// Whether a value must be given (in strict mode, one that is not `null`).
    pub required: bool,
    /// The property's description, if any.
    pub description: Option<String>,
}

impl fmt::Display for ParamSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let need = if self.required {
            "required"
        } else {
            "optional"
        };
        write!(f, "{}: {} ({need})", self.name, self.kind)
    }
}

/// Summarizes the top-level parameters of a function-parameters schema.
pub fn summarize(schema: &Value) -> Vec<ParamSummary> {
    let Some(root) = schema.as_object() else {
        return Vec::new();
    };
    let required: BTreeSet<&str> = root
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = root.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, prop)| {
            let nullable = prop.as_object().is_some_and(accepts_null);
            ParamSummary {
                name: name.clone(),
                kind: describe(prop),
                required: required.contains(name.as_str()) && !nullable,
                description: prop
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }
        })
        .collect()
}

/// What a valid argument object looks like, in one line; used as `expected` in argument errors.
pub fn describe_expected(schema: &Value) -> String {
    let params = summarize(schema);
    if params.is_empty() {
        return "an empty JSON object `{}` (this tool takes no arguments)".to_owned();
    }
    let fields: Vec<String> = params.iter().map(|p| format!("`{p}`")).collect();
    format!("a JSON object with {}", fields.join(", "))
}

/// A short, human rendering of a schema's type.
fn describe(schema: &Value) -> String {
    let Some(map) = schema.as_object() else {
        return "any".to_owned();
    };
    if let Some(Value::Array(values)) = map.get("enum") {
        let rendered: Vec<String> = values
            .iter()
            .filter(|v| !v.is_null())
            .map(Value::to_string)
            .collect();
        return rendered.join(" | ");
    }
    if let Some(value) = map.get("const") {
        return value.to_string();
    }
    if let Some(Value::Array(branches)) = map.get("anyOf").or_else(|| map.get("oneOf")) {
        let rendered: Vec<String> = branches
            .iter()
            .filter(|b| b.get("type") != Some(&Value::from("null")))
            .map(describe)
            .collect();
        return rendered.join(" | ");
    }
    let types: Vec<&str> = type_names(map)
        .into_iter()
        .filter(|t| *t != "null")
        .collect();
    let base = match types.as_slice() {
        ["array"] => match map.get("items") {
            Some(items) => format!("array of {}", describe(items)),
            None => "array".to_owned(),
        },
        [] => "any".to_owned(),
        many => many.join(" | "),
    };
    let bound = |key: &str| map.get(key).map(Value::to_string);
    match (bound("minimum"), bound("maximum")) {
        (Some(min), Some(max)) => format!("{base} ({min}..={max})"),
        (Some(min), None) => format!("{base} (>= {min})"),
        (None, Some(max)) => format!("{base} (<= {max})"),
        (None, None) => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemars::JsonSchema;
    use serde::Deserialize;

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Address {
        /// Street and number.
        street: String,
        /// Postal code, if known.
        zip: Option<String>,
    }

    /// How urgent it is.
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Priority {
        Low,
        High,
    }

    /// Documented variants become `oneOf` consts in schemars; they must still be one enum.
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Unit {
        /// Degrees Celsius.
        Celsius,
        /// Degrees Fahrenheit.
        Fahrenheit,
    }

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Args {
        /// Who to ship to.
        name: String,
        /// Where to ship.
        address: Address,
        priority: Priority,
        unit: Option<Unit>,
        tags: Vec<String>,
        #[schemars(range(min = 1, max = 10))]
        count: u8,
        ratio: Option<f64>,
    }

    fn prop<'a>(schema: &'a Value, path: &str) -> &'a Value {
        schema
            .pointer(path)
            .unwrap_or_else(|| panic!("no {path} in {schema:#}"))
    }

    fn walk_keys(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    out.push(k.clone());
                    walk_keys(c, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|c| walk_keys(c, out)),
            _ => {}
        }
    }

    #[test]
    fn root_shape_in_both_modes() {
        for strict in [true, false] {
            let s = for_type::<Args>(strict);
            assert_eq!(s["type"], "object");
            assert_eq!(s["additionalProperties"], false);
            let mut keys = Vec::new();
            walk_keys(&s, &mut keys);
            for banned in ["$schema", "title", "$ref", "$defs", "definitions", "oneOf"] {
                // `oneOf` survives only for data-carrying enums in relaxed mode; Args has none.
                assert!(!keys.iter().any(|k| k == banned), "{banned} in {s:#}");
            }
        }
    }

    #[test]
    fn nested_struct_is_inlined_and_closed() {
        let s = for_type::<Args>(true);
        let address = prop(&s, "/properties/address");
        assert_eq!(address["type"], "object");
        assert_eq!(address["additionalProperties"], false);
        assert_eq!(address["required"], json!(["street", "zip"]));
        assert_eq!(
            address["properties"]["zip"]["type"],
            json!(["string", "null"])
        );
        assert_eq!(
            address["properties"]["street"]["description"],
            "Street and number."
        );
        assert_eq!(s["properties"]["address"]["description"], "Where to ship.");

        let relaxed = for_type::<Args>(false);
        assert_eq!(
            relaxed["properties"]["address"]["required"],
            json!(["street"])
        );
    }

    #[test]
    fn enums_are_enum_schemas() {
        let s = for_type::<Args>(true);
        let priority = prop(&s, "/properties/priority");
        assert_eq!(priority["type"], "string");
        assert_eq!(priority["enum"], json!(["low", "high"]));

        let unit = prop(&s, "/properties/unit");
        assert_eq!(
            unit["enum"],
            json!(["celsius", "fahrenheit", null]),
            "{unit:#}"
        );
        assert_eq!(unit["type"], json!(["string", "null"]));
        let description = unit["description"].as_str().unwrap_or_default();
        assert!(description.contains("Degrees Celsius"), "{description}");
    }

    #[test]
    fn option_is_nullable_and_required_only_in_strict() {
        let strict = for_type::<Args>(true);
        assert_eq!(
            strict["required"],
            json!([
                "name", "address", "priority", "unit", "tags", "count", "ratio"
            ])
        );
        assert_eq!(
            strict["properties"]["ratio"]["type"],
            json!(["number", "null"])
        );

        let relaxed = for_type::<Args>(false);
        let required = relaxed["required"].as_array().unwrap();
        assert!(!required.contains(&json!("unit")));
        assert!(!required.contains(&json!("ratio")));
        assert!(required.contains(&json!("name")));
    }

    #[test]
    fn vec_has_items() {
        let s = for_type::<Args>(true);
        assert_eq!(prop(&s, "/properties/tags/type"), "array");
        assert_eq!(prop(&s, "/properties/tags/items/type"), "string");
    }

    #[test]
    fn numeric_bounds_kept_and_formats_dropped() {
        for strict in [true, false] {
            let s = for_type::<Args>(strict);
            let count = prop(&s, "/properties/count");
            assert_eq!(count["type"], "integer");
            assert_eq!(count["minimum"], 1);
            assert_eq!(count["maximum"], 10);
            assert!(count.get("format").is_none(), "{count:#}");
            assert!(s["properties"]["ratio"].get("format").is_none());
        }
    }

    #[test]
    fn generated_strict_schemas_pass_the_checker() {
        check_strict(&for_type::<Args>(true)).unwrap();
        assert!(check_strict(&for_type::<Args>(false)).is_err());
    }

    #[test]
    fn strict_drops_unsupported_keywords() {
        let raw = json!({
            "type": "object",
            "title": "X",
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 5, "default": "a", "format": "uri"},
                "when": {"type": "string", "format": "date-time"},
                "set": {"type": "array", "items": {"type": "integer", "format": "int32"}, "uniqueItems": true},
                "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]}
            },
            "required": ["name"]
        });
        let s = normalize(raw.clone(), true);
        check_strict(&s).unwrap();
        assert_eq!(s["properties"]["name"], json!({"type": "string"}));
        assert_eq!(s["properties"]["when"]["format"], "date-time");
        assert!(s["properties"]["set"].get("uniqueItems").is_none());
        assert_eq!(
            s["properties"]["either"]["anyOf"][2],
            json!({"type": "null"})
        );

        let relaxed = normalize(raw, false);
        assert_eq!(relaxed["properties"]["name"]["minLength"], 1);
        assert_eq!(relaxed["required"], json!(["name"]));
    }

    #[test]
    fn refs_are_inlined_from_hand_written_schemas() {
        let raw = json!({
            "type": "object",
            "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}},
            "properties": {"at": {"$ref": "#/$defs/Point", "description": "Where."}},
            "required": ["at"]
        });
        let s = normalize(raw, true);
        assert_eq!(s["properties"]["at"]["type"], "object");
        assert_eq!(s["properties"]["at"]["description"], "Where.");
        assert!(s.get("$defs").is_none());
        check_strict(&s).unwrap();
    }

    #[test]
    fn recursive_types_keep_a_ref() {
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Tree {
            children: Vec<Tree>,
        }
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Root {
            tree: Tree,
        }
        let s = for_type::<Root>(true);
        assert!(s["$defs"]["Tree"].is_object(), "{s:#}");
        check_strict(&s).unwrap();
    }

    #[test]
    fn maps_are_reported_in_strict_mode() {
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct WithMap {
            labels: std::collections::BTreeMap<String, String>,
        }
        let err = check_strict(&for_type::<WithMap>(true)).unwrap_err();
        assert!(err.problems[0].contains("/properties/labels"), "{err}");
    }

    #[test]
    fn empty_and_odd_roots_become_empty_objects() {
        #[derive(JsonSchema)]
        struct Nothing {}
        for s in [
            for_type::<Nothing>(true),
            normalize(Value::Bool(true), true),
        ] {
            assert_eq!(
                s,
                json!({"type": "object", "properties": {}, "required": [], "additionalProperties": false})
            );
        }
    }

    #[test]
    fn summaries_read_well() {
        let s = for_type::<Args>(true);
        let summary = summarize(&s);
        let count = summary.iter().find(|p| p.name == "count").unwrap();
        assert_eq!(count.to_string(), "count: integer (1..=10) (required)");
        let unit = summary.iter().find(|p| p.name == "unit").unwrap();
        assert_eq!(unit.kind, "\"celsius\" | \"fahrenheit\"");
        assert!(!unit.required);
        assert!(describe_expected(&s).starts_with("a JSON object with `name: string (required)`"));
    }
}
