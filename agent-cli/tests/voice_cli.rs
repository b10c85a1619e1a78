//! `agent run` with audio, as a user would run it: the offline demo that speaks the shipped
//! sample WAV and records the scripted answers, G.711 output, the transcription agent, and the
//! message of a build without audio devices.

mod common;

use common::{agent, text, workspace};

/// Milliseconds of scripted speech in one scenario of a scenario file: the scripted server
/// speaks 60 ms per character of every `say`.
fn scripted_audio_ms(scenarios: &str, scenario: &str) -> u64 {
    let file = agent_testkit::ScenarioFile::load(workspace().join(scenarios)).unwrap();
    file.get(scenario)
        .unwrap()
        .turns
        .iter()
        .flat_map(|t| &t.model)
        .filter_map(|m| m.say.as_deref())
        .map(|say| 60 * say.chars().count() as u64)
        .sum()
}

#[test]
fn offline_demo_speaks_the_sample_and_records_the_scripted_audio() {
    let data = tempfile::tempdir().unwrap();
    let wav = data.path().join("reply.wav");
    let out = agent(
        &[
            "run",
            "agents/support.toml",
            "--offline",
            "--scenario",
            "follow-up and ticket",
            "--input-audio",
            "agents/audio/question.wav",
            "--output-audio",
            wav.to_str().unwrap(),
            "--no-pace",
        ],
        data.path(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    // The sample's one utterance became the first turn (transcribed as its scripted text);
    // the later turns were typed.
    assert!(
        stdout.contains("you (spoken) › What's the status of order A1003?"),
        "{stdout}"
    );
    assert!(
        stdout.contains("you › Is that the backpack? Could it come sooner?"),
        "{stdout}"
    );
    assert!(stdout.contains("→ create_ticket("), "{stdout}");

    let reader = hound::WavReader::open(&wav).unwrap();
    let spec = reader.spec();
    assert_eq!(spec.channels, 1);
    assert_eq!(spec.sample_rate, 24_000);
    assert_eq!(spec.bits_per_sample, 16);
    assert_eq!(spec.sample_format, hound::SampleFormat::Int);
    let expected_ms = scripted_audio_ms("agents/support.scenarios.toml", "follow-up and ticket");
    assert_eq!(
        u64::from(reader.duration()),
        expected_ms * 24,
        "every scripted reply, whole"
    );
    let samples: Vec<i16> = reader.into_samples().map(Result::unwrap).collect();
    let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
    assert!(
        (6_000..=7_000).contains(&peak),
        "the scripted 0.2 full-scale tone, got peak {peak}"
    );
    assert!(stdout.contains(&format!("wrote {expected_ms} ms of assistant audio")));
}

#[test]
fn g711_sessions_record_8k_audio() {
    let data = tempfile::tempdir().unwrap();
    let agent_file = data.path().join("phone.toml");
    std::fs::write(
        &agent_file,
        "name = \"phone\"\ninstructions = \"Answer briefly.\"\n\
         [audio]\ninput_format = \"g711_ulaw\"\noutput_format = \"g711_ulaw\"\n\
         [transcription]\nmodel = \"gpt-4o-mini-transcribe\"\n",
    )
    .unwrap();
    std::fs::write(
        data.path().join("phone.scenarios.toml"),
        "[[scenario]]\nname = \"call\"\n[[scenario.turn]]\nuser = \"Hello?\"\n\
         [[scenario.turn.model]]\nsay = \"Hi, how can I help?\"\n",
    )
    .unwrap();
    let wav = data.path().join("call.wav");
    let out = agent(
        &[
            "run",
            agent_file.to_str().unwrap(),
            "--offline",
            "--input-audio",
            "agents/audio/question.wav",
            "--output-audio",
            wav.to_str().unwrap(),
            "--no-pace",
        ],
        data.path(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("you (spoken) › Hello?"), "{stdout}");
    let reader = hound::WavReader::open(&wav).unwrap();
    assert_eq!(reader.spec().sample_rate, 8_000);
    assert_eq!(
        u64::from(reader.duration()),
        60 * "Hi, how can I help?".len() as u64 * 8
    );
}

#[test]
fn the_transcription_agent_runs_offline() {
    let data = tempfile::tempdir().unwrap();
    let out = agent(
        &["run", "agents/transcriber.toml", "--offline", "--no-pace"],
        data.path(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let file =
        agent_testkit::ScenarioFile::load(workspace().join("agents/transcriber.scenarios.toml"))
            .unwrap();
    let completed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("✓ [")).collect();
    let turns = &file.scenarios[0].turns;
    assert_eq!(completed.len(), turns.len(), "{stdout}");
    for (n, (line, turn)) in completed.iter().zip(turns).enumerate() {
        let text = turn.user.as_deref().unwrap();
        // `✓ [00:00.000 → 00:04.800] item_t0_user: text`: a span, the item id, the words.
        assert!(line.contains(" → "), "{line}");
        assert!(line.ends_with(&format!("item_t{n}_user: {text}")), "{line}");
    }
    assert!(stdout.contains("… ["), "live deltas are shown: {stdout}");
}

#[test]
fn a_transcription_agent_streams_a_wav_file() {
    let data = tempfile::tempdir().unwrap();
    let out = agent(
        &[
            "run",
            "agents/transcriber.toml",
            "--offline",
            "--input-audio",
            "agents/audio/question.wav",
            "--no-pace",
        ],
        data.path(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("item_t0_user: Yesterday I finished the export"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 scripted turn(s) were not spoken"),
        "{stdout}"
    );
}

#[cfg(not(feature = "audio-device"))]
#[test]
fn voice_without_the_feature_says_how_to_enable_it() {
    let data = tempfile::tempdir().unwrap();
    let out = agent(
        &["run", "agents/support.toml", "--offline", "--voice"],
        data.path(),
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--features audio-device"), "{stderr}");
    assert!(stderr.contains("libasound2-dev"), "{stderr}");
}

#[test]
fn agent_test_checks_the_transcripts() {
    let data = tempfile::tempdir().unwrap();
    let out = agent(&["test", "agents/transcriber.toml"], data.path());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("✓ turn 3: transcribed as \"No blockers from me.\""),
        "{stdout}"
    );
    assert!(stdout.contains("3 passed, 0 failed"), "{stdout}");
}

#[test]
fn live_mode_streams_a_file_to_a_loopback_server_and_records_the_reply() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let file = agent_testkit::ScenarioFile::load(workspace().join("agents/support.scenarios.toml"))
        .unwrap();
    let scenario = file.get("order status").unwrap().clone();
    let server = runtime
        .block_on(async {
            agent_testkit::ScriptedServer::start(agent_testkit::ServerConfig::new(scenario))
        })
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let wav = data.path().join("live.wav");
    let out = agent(
        &[
            "run",
            "agents/support.toml",
            "--url",
            &server.url(),
            "--input-audio",
            "agents/audio/question.wav",
            "--no-pace",
            "--output-audio",
            wav.to_str().unwrap(),
        ],
        data.path(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("you (spoken) › Hi! Where is my order A1001?"),
        "{stdout}"
    );
    let expected_ms = scripted_audio_ms("agents/support.scenarios.toml", "order status");
    let reader = hound::WavReader::open(&wav).unwrap();
    assert_eq!(u64::from(reader.duration()), expected_ms * 24);
    let violations = runtime.block_on(server.violations());
    assert!(violations.is_empty(), "{violations:?}");
}
