//! Transcription scenarios (`type = "transcription"`): turns with only `user` text parse, the
//! rules that make no sense for them are reported, and the shipped transcriber's scenarios
//! parse.

use std::path::PathBuf;

use agent_testkit::ScenarioFile;

#[test]
fn transcription_turns_need_no_model_step() {
    let text = "[[scenario]]\nname = \"dictation\"\ntype = \"transcription\"\n\
                [[scenario.turn]]\nuser = \"one\"\n[[scenario.turn]]\nuser = \"two\"\n";
    let file = ScenarioFile::from_str(text, "t.toml").unwrap();
    let scenario = &file.scenarios[0];
    assert!(scenario.transcription);
    assert_eq!(scenario.turns.len(), 2);
    assert!(scenario.turns.iter().all(|t| t.model.is_empty()));
}

#[test]
fn transcription_turns_cannot_answer_or_expect() {
    let text = "[[scenario]]\nname = \"x\"\ntype = \"transcription\"\n\
                [[scenario.turn]]\nuser = \"hi\"\n  [[scenario.turn.model]]\n  say = \"hello\"\n\
                  [[scenario.turn.expect]]\n  reply_contains = \"hello\"\n";
    let err = ScenarioFile::from_str(text, "t.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("has a model step"), "{err}");
    assert!(err.contains("has expectations"), "{err}");

    let text = "[[scenario]]\nname = \"x\"\ntype = \"transcription\"\n[[scenario.turn]]\n";
    let err = ScenarioFile::from_str(text, "t.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no `user`"), "{err}");

    let text =
        "[[scenario]]\nname = \"x\"\ntype = \"dictation\"\n[[scenario.turn]]\nuser = \"a\"\n";
    let err = ScenarioFile::from_str(text, "t.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("t.toml:3:8: unknown scenario type"), "{err}");
}

#[test]
fn realtime_scenarios_still_need_model_steps() {
    let text = "[[scenario]]\nname = \"x\"\n[[scenario.turn]]\nuser = \"hi\"\n";
    let err = ScenarioFile::from_str(text, "t.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no model step"), "{err}");
}

#[test]
fn the_transcriber_scenarios_parse() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../agents/transcriber.scenarios.toml");
    let file = ScenarioFile::load(path).unwrap_or_else(|e| panic!("{e}"));
    assert!(file.scenarios.iter().all(|s| s.transcription));
    assert!(file.scenarios[0].turns.len() >= 2);
}
