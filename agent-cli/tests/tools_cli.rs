//! `agent tools --json` run as a user would: the built binary lists every built-in tool, and each
//! schema meets the strict-mode rules (checked here independently of agent-core's checker).

use std::process::Command;

use serde_json::Value;

const BUILTINS: &[&str] = &[
    "current_time",
    "calculate",
    "http_get",
    "lookup_order",
    "search_help_center",
    "create_ticket",
];

fn agent(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_agent"))
        .args(args)
        .output()
        .expect("the agent binary runs");
    assert!(
        output.status.success(),
        "agent {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// The strict-mode rules, applied to one schema node; problems are collected with their path.
fn check(node: &Value, path: &str, problems: &mut Vec<String>) {
    const ALLOWED: &[&str] = &[
        "type",
        "description",
        "enum",
        "const",
        "anyOf",
        "properties",
        "required",
        "additionalProperties",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "items",
        "minItems",
        "maxItems",
    ];
    let Some(map) = node.as_object() else {
        problems.push(format!("{path}: not an object schema"));
        return;
    };
    for key in map.keys() {
        if !ALLOWED.contains(&key.as_str()) {
            problems.push(format!("{path}: keyword `{key}`"));
        }
    }
    if let Some(format) = map.get("format") {
        let ok = [
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
        if !format.as_str().is_some_and(|f| ok.contains(&f)) {
            problems.push(format!("{path}: format {format}"));
        }
    }
    if let Some(properties) = map.get("properties").and_then(Value::as_object) {
        if map.get("additionalProperties") != Some(&Value::Bool(false)) {
            problems.push(format!("{path}: additionalProperties is not false"));
        }
        let required: Vec<&str> = map
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (name, child) in properties {
            if !required.contains(&name.as_str()) {
                problems.push(format!("{path}: `{name}` is not required"));
            }
            check(child, &format!("{path}/properties/{name}"), problems);
        }
    }
    if let Some(items) = map.get("items") {
        check(items, &format!("{path}/items"), problems);
    }
    if let Some(branches) = map.get("anyOf").and_then(Value::as_array) {
        for (i, branch) in branches.iter().enumerate() {
            check(branch, &format!("{path}/anyOf/{i}"), problems);
        }
    }
}

#[test]
fn tools_json_lists_every_builtin_with_a_strict_schema() {
    let listing: Value = serde_json::from_str(&agent(&["tools", "--json"])).expect("JSON output");
    let tools = listing.as_array().expect("a JSON array");
    for name in BUILTINS {
        let tool = tools
            .iter()
            .find(|t| t["name"] == *name)
            .unwrap_or_else(|| panic!("`{name}` missing from `agent tools --json`"));
        assert!(
            tool["description"].as_str().is_some_and(|d| d.len() > 20),
            "{name} needs a real description"
        );
        let parameters = &tool["parameters"];
        assert_eq!(parameters["type"], "object", "{name}");
        let mut problems = Vec::new();
        check(parameters, "", &mut problems);
        assert!(problems.is_empty(), "{name}: {problems:#?}\n{parameters:#}");
        // And agent-core's own checker agrees.
        agent_core::tool::schema::check_strict(parameters)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let create_ticket = tools.iter().find(|t| t["name"] == "create_ticket").unwrap();
    assert_eq!(
        create_ticket["parameters"]["properties"]["priority"]["enum"],
        serde_json::json!(["low", "normal", "high", "urgent"])
    );
}

#[test]
fn tools_lists_humans_the_same_tools() {
    let text = agent(&["tools"]);
    for name in BUILTINS {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "`{name}` missing:\n{text}"
        );
    }
    assert!(text.contains("expression: string (required)"), "{text}");
    let relaxed: Value = serde_json::from_str(&agent(&["tools", "--json", "--relaxed"])).unwrap();
    let current_time = relaxed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "current_time")
        .unwrap();
    assert_eq!(
        current_time["parameters"]["required"],
        serde_json::json!([])
    );
}
