//! `agent check` catches, before any session, what used to fail only when the model called a
//! tool: misspelled or mistyped `[tool_config.NAME]` settings, tables for tools the agent does
//! not have, and tool schemas that strict mode cannot express.

mod common;

use common::{agent, text};

/// Writes `source` as `agent.toml` in a fresh folder and runs `agent check` on it.
fn check(source: &str) -> (Option<i32>, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, source).unwrap();
    let out = agent(&["check", file.to_str().unwrap()], dir.path());
    (out.status.code(), text(&out.stderr), dir)
}

#[test]
fn misspelled_settings_fail_with_line_column_and_a_suggestion() {
    let (code, stderr, _dir) = check(
        "name = \"fetcher\"\ntools = [\"http_get\", \"current_time\"]\n\n[tool_config.http_get]\nallowed_hosts = [\"example.com\"]\nbogus = 1\n\n[tool_config.curent_time]\ntimezone = \"UTC\"\n",
    );
    assert_eq!(code, Some(1), "{stderr}");
    for expected in [
        "agent.toml:5:1: `[tool_config.http_get]`: unknown field `allowed_hosts`",
        "hint: did you mean `allow_hosts`?",
        "agent.toml:6:1: `[tool_config.http_get]`: unknown field `bogus`",
        "agent.toml:8:14: `[tool_config.curent_time]` configures `curent_time`, which is not one of this agent's tools",
        "did you mean `[tool_config.current_time]`?",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn setting_values_are_checked_too() {
    let (code, stderr, _dir) = check(
        "name = \"fetcher\"\ntools = [\"http_get\", \"current_time\"]\n[tool_config.http_get]\nallow_hosts = [\"exa mple.com\"]\ntimeout_secs = 0\n[tool_config.current_time]\ntimezone = \"Mars/Olympus_Mons\"\n",
    );
    assert_eq!(code, Some(1), "{stderr}");
    for expected in [
        "agent.toml:4:1: `[tool_config.http_get]`: `allow_hosts`: `exa mple.com` is not a host name",
        "agent.toml:7:1: `[tool_config.current_time]`: `timezone`: unknown time zone `Mars/Olympus_Mons`",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }

    let (code, stderr, _dir) = check(
        "name = \"fetcher\"\ntools = [\"http_get\"]\n[tool_config.http_get]\nallow_hosts = [\"example.com\"]\ntimeout_secs = 5\n",
    );
    assert_eq!(code, Some(0), "{stderr}");
}

const MAP_TOOL: &str = r#"
[[http_tools]]
name = "tag_order"
description = "Tags an order."
url = "http://127.0.0.1:9/orders/{order_id}"
method = "POST"
parameters = { type = "object", properties = { order_id = { type = "string" }, labels = { type = "object", additionalProperties = { type = "string" } } }, required = ["order_id", "labels"] }
"#;

#[test]
fn strict_mode_problems_are_errors() {
    let (code, stderr, _dir) = check(&format!("name = \"tagger\"\n{MAP_TOOL}"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("agent.toml:4:8: tool `tag_order` cannot be used in strict mode: /properties/labels: `additionalProperties` must be false"),
        "{stderr}"
    );
    assert!(stderr.contains("strict = false"), "{stderr}");
    assert!(!stderr.contains(": ok"), "{stderr}");

    let (code, stderr, _dir) = check(&format!(
        "name = \"tagger\"\n[tool_options]\nstrict = false\n{MAP_TOOL}"
    ));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains(": ok"), "{stderr}");
}

#[test]
fn http_tools_take_no_settings() {
    let (code, stderr, _dir) = check(&format!(
        "name = \"tagger\"\n[tool_options]\nstrict = false\n[tool_config.tag_order]\nretries = 3\n{MAP_TOOL}"
    ));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "agent.toml:5:1: `[tool_config.tag_order]`: tool `tag_order` takes no settings"
        ),
        "{stderr}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    // A bad voice and a bad timeout (the file's own checks), an unknown tool (resolution), a
    // misspelled setting (settings) and a map-typed HTTP tool (strict mode): five stages' worth.
    let (code, stderr, _dir) = check(&format!(
        "name = \"many\"\nvoice = \"marine\"\ntools = [\"lookup_ordr\", \"current_time\"]\n\
         [timeouts]\nconnect_secs = -1\n[tool_config.current_time]\ntimezon = \"UTC\"\n{MAP_TOOL}"
    ));
    assert_eq!(code, Some(1), "{stderr}");
    for expected in [
        "agent.toml:2:9: ",
        "did you mean marin",
        "agent.toml:3:10: unknown tool `lookup_ordr`",
        "did you mean `lookup_order`?",
        "agent.toml:5:",
        "connect_secs",
        "agent.toml:7:1: `[tool_config.current_time]`: unknown field `timezon`",
        "tool `tag_order` cannot be used in strict mode",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(!stderr.contains(": ok"), "{stderr}");
}

/// Writes an agent with a server-side tool and `serve.toml` (with `browser` as its
/// `[browser]` section) in a fresh folder, and runs `agent check serve.toml`.
fn check_serve(browser: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("clock.toml"),
        "name = \"clock\"\ntools = [\"current_time\"]\n",
    )
    .unwrap();
    let serve = dir.path().join("serve.toml");
    std::fs::write(
        &serve,
        format!(
            "listen = \"127.0.0.1:8080\"\npublic_base_url = \"https://voice.example.com\"\n\n{browser}\n\n[[route]]\nagent = \"clock.toml\"\nsip_users = [\"clock\"]\nbrowser = true\n"
        ),
    )
    .unwrap();
    let out = agent(&["check", serve.to_str().unwrap()], dir.path());
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_serve_config_is_checked_with_every_agent_it_routes_to() {
    let (code, stdout, stderr) = check_serve("[browser]\ncalls = true\nclient_secrets = true\n");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("agent `clock`, 1 tool(s), reached by sip:clock, browsers (/agents/clock)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("ok — 1 route(s) on 127.0.0.1:8080"),
        "{stderr}"
    );
}

#[test]
fn client_secrets_without_attach_are_refused_for_an_agent_with_server_tools() {
    // Its tools would never run on a page's call: the model would wait on them forever.
    let (code, _, stderr) = check_serve("[browser]\nclient_secrets = true\nattach = false\n");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("clock.toml")
            && stderr.contains("(current_time) would never run")
            && stderr.contains("set attach = true"),
        "{stderr}"
    );
}

#[test]
fn a_handoff_target_with_another_voice_or_format_is_reported_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("front.toml"),
        "name = \"front\"\ninstructions = \"x\"\nvoice = \"marin\"\nhandoffs = [\"back\"]\n\
         [audio]\ninput_format = \"g711_ulaw\"\noutput_format = \"g711_ulaw\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("back.toml"),
        "name = \"back\"\ninstructions = \"y\"\nhandoff_description = \"the back office\"\n\
         voice = \"cedar\"\n[audio]\noutput_format = \"pcm16\"\n",
    )
    .unwrap();
    let front = dir.path().join("front.toml");
    let out = agent(&["check", front.to_str().unwrap()], dir.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("back.toml:4:9"),
        "points at the voice: {stderr}"
    );
    assert!(
        stderr.contains("voice `cedar` differs from `marin`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("output_format `pcm16` differs from `g711_ulaw`"),
        "{stderr}"
    );
    // The same team with the formats and the voice left to the front agent passes.
    std::fs::write(
        dir.path().join("back.toml"),
        "name = \"back\"\ninstructions = \"y\"\nhandoff_description = \"the back office\"\n",
    )
    .unwrap();
    let out = agent(&["check", front.to_str().unwrap()], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
}
