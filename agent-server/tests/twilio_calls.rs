//! End to end through real sockets on loopback: the fake Twilio calls `agent serve`, whose
//! session talks to the scripted Realtime server. One happy call (greeting, a tool call, a
//! barge-in); a slow tool's filler, an output guardrail and a handoff on a call; then one test
//! per refusal.

mod common;

use std::{collections::BTreeMap, time::Duration};

use agent_testkit::{
    Direction, ModelStep, Scenario, ScriptedCall, Turn,
    twilio::{CallRecord, CallSpec, CallerStep, Signing, StreamStart, Twiml, http},
};
use base64::Engine as _;
use common::{
    AUTH_TOKEN, CALLER, Harness, NUMBER, Options, assert_one_filler_then_one_follow_up, frames,
    positions, tool_names,
};
use serde_json::{Value, json};

const GREETING_MS: u64 = 600;
const ANSWER_MS: u64 = 3_000;

fn scenario() -> Scenario {
    Scenario::new("phone call")
        .turn(greeting())
        .turn(
            Turn::user("Where is my order A1001?")
                .model(ModelStep::calls([ScriptedCall::new(
                    "caller_lookup",
                    json!({"order_id": "A1001"}),
                )]))
                .model(
                    ModelStep::say("Your order A1001 shipped yesterday and arrives on Friday.")
                        .audio_ms(ANSWER_MS as u32),
                ),
        )
        .turn(Turn::user("Stop, thanks.").model(ModelStep::say("Goodbye.").audio_ms(400)))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// The model greets the caller, with [`GREETING_MS`] of audio.
fn greeting() -> Turn {
    Turn::model_first()
        .model(ModelStep::say("Hello, thanks for calling the shop.").audio_ms(GREETING_MS as u32))
}

/// A call from [`CALLER`] to [`NUMBER`] as `call_sid`, the caller following `script`; the
/// server must not end it.
async fn call(h: &Harness, call_sid: &str, script: Vec<CallerStep>) -> CallRecord {
    let record = h
        .twilio
        .call(&CallSpec::new(call_sid, CALLER, NUMBER, script))
        .await
        .unwrap();
    assert!(!record.ended_by_server, "{record:?}");
    record
}

/// The end of a call's test: the scripted server saw no protocol violation, every client
/// event conforms to the spec, and the server stops once its calls are over.
async fn finish(h: Harness) {
    assert_eq!(h.scripted.violations().await, Vec::<String>::new());
    h.assert_client_events_conform().await;
    h.until_no_calls().await;
    h.stop().await;
}

async fn events_of(h: &Harness, kind: &str) -> Vec<Value> {
    h.scripted
        .received()
        .await
        .into_iter()
        .filter_map(|e| e.value)
        .filter(|v| v["type"] == kind)
        .collect()
}

#[tokio::test]
async fn a_call_greets_runs_a_tool_and_truncates_at_the_last_mark_on_barge_in() {
    let h = Harness::start(scenario(), Options::default()).await;
    let script = vec![
        CallerStep::WaitHeard {
            ms: GREETING_MS,
            within: secs(10),
        },
        CallerStep::Speak(ms(400)),
        // 400 ms of the answer, then the caller talks over it.
        CallerStep::WaitHeard {
            ms: GREETING_MS + 400,
            within: secs(15),
        },
        CallerStep::Speak(ms(400)),
        CallerStep::WaitQuiet {
            quiet: ms(800),
            within: secs(15),
        },
        CallerStep::HangUp,
    ];
    let record = call(&h, "CA100", script).await;

    // The caller heard the greeting, part of the answer, and the goodbye.
    assert_eq!(record.clears.len(), 1, "one barge-in, one clear");
    let (heard_at_clear, dropped) = record.clears[0];
    assert!(dropped > 0, "the clear dropped queued audio");
    assert!(
        record.heard_ms() < GREETING_MS + ANSWER_MS,
        "the answer was cut"
    );
    assert!(!record.events("mark").is_empty());

    // The truncate is at a mark that came back: at least what the caller had heard when
    // they spoke, never past what they heard by the clear.
    let truncates = events_of(&h, "conversation.item.truncate").await;
    assert_eq!(truncates.len(), 1, "{truncates:?}");
    assert_eq!(truncates[0]["item_id"], "item_t1s1o0");
    let end = truncates[0]["audio_end_ms"].as_u64().unwrap();
    let heard_of_answer = heard_at_clear - GREETING_MS;
    assert!(
        (400..=heard_of_answer).contains(&end),
        "truncated at {end}, heard {heard_of_answer}"
    );
    assert_eq!(end % 100, 0, "a mark position");

    // The tool ran once and saw the call through its context, without the stream token.
    let outputs = events_of(&h, "conversation.item.create").await;
    let output = outputs
        .iter()
        .find(|e| e["item"]["type"] == "function_call_output")
        .expect("the tool's output");
    let text = output["item"]["output"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "caller {CALLER} called {NUMBER} over twilio (call CA100)"
        )),
        "{text}"
    );
    assert!(
        text.contains("parameters: {}"),
        "the token is not a parameter tools see: {text}"
    );

    // μ-law passed through as audio/pcmu both ways.
    let update = &events_of(&h, "session.update").await[0]["session"]["audio"];
    assert_eq!(update["input"]["format"]["type"], "audio/pcmu");
    assert_eq!(update["output"]["format"]["type"], "audio/pcmu");
    assert!(h.scripted.count_received("input_audio_buffer.append") > 50);
    finish(h).await;
}

/// The harness's agent with `top` among its top-level keys and `tables` after its own.
fn agent_file(top: &str, tables: &str) -> String {
    format!(
        "name = \"phone\"\ninstructions = \"You answer the phone for a shop. Greet the caller first.\"\n\
         output_modalities = [\"audio\"]\n{top}\n\n[turn_detection]\ntype = \"server_vad\"\n\
         silence_duration_ms = 200\n\n{tables}\n"
    )
}

/// The ids of the responses the scripted server started, in order.
fn response_ids(log: &[(Direction, Value)]) -> Vec<String> {
    log.iter()
        .filter(|(d, v)| *d == Direction::FromServer && v["type"] == "response.created")
        .map(|(_, v)| v["response"]["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The audio (μ-law) the scripted server sent for `response_id`, in order.
fn audio_of(log: &[(Direction, Value)], response_id: &str) -> Vec<u8> {
    log.iter()
        .filter(|(d, v)| {
            *d == Direction::FromServer
                && v["type"] == "response.output_audio.delta"
                && v["response_id"] == response_id
        })
        .flat_map(|(_, v)| {
            base64::engine::general_purpose::STANDARD
                .decode(v["delta"].as_str().unwrap())
                .unwrap()
        })
        .collect()
}

/// A filler is due this soon; the tool ([`common::SLOW_TOOL_MS`]) runs well past it.
const FILLER_AFTER_MS: u64 = 150;

/// A tool slower than `filler_after_ms` on a phone call: the filler (one out-of-band response)
/// is asked for while the tool runs and its audio reaches the caller, between the greeting and
/// the answer; the answer is asked for once, after the tool's output and the filler's end.
#[tokio::test]
async fn a_slow_tool_gets_a_filler_the_caller_hears_before_the_answer() {
    const ANSWER: u32 = 1_000;
    let scenario = Scenario::new("slow tool").turn(greeting()).turn(
        Turn::user("Where is my order A1001?")
            .model(ModelStep::calls([ScriptedCall::new(
                "slow_lookup",
                json!({"order_id": "A1001"}),
            )]))
            .model(ModelStep::say("Your order A1001 shipped yesterday.").audio_ms(ANSWER)),
    );
    let tables = format!("[tool_options]\nfiller_after_ms = {FILLER_AFTER_MS}");
    let options = Options {
        agent: Some(agent_file("tools = [\"slow_lookup\"]", &tables)),
        ..Options::default()
    };
    let h = Harness::start(scenario, options).await;
    let script = vec![
        CallerStep::WaitHeard {
            ms: GREETING_MS,
            within: secs(10),
        },
        CallerStep::Speak(ms(400)),
        CallerStep::WaitHeard {
            ms: GREETING_MS + u64::from(ANSWER),
            within: secs(15),
        },
        CallerStep::WaitQuiet {
            quiet: ms(500),
            within: secs(10),
        },
        CallerStep::HangUp,
    ];
    let record = call(&h, "CA800", script).await;
    assert!(record.clears.is_empty(), "nothing was cut off");

    // One filler, asked for while the tool ran; one follow-up, after it ended.
    let log = frames(&h.scripted).await;
    let filler_id = assert_one_filler_then_one_follow_up(&log);
    let responses = response_ids(&log);

    // The caller heard every response's audio whole and in order: the greeting, the filler,
    // then the answer.
    assert_eq!(
        responses.len(),
        4,
        "greeting, call, filler, answer: {responses:?}"
    );
    assert_eq!(responses[2], filler_id);
    let filler_audio = audio_of(&log, &filler_id);
    assert!(!filler_audio.is_empty(), "the filler was spoken");
    let sent: Vec<u8> = responses.iter().flat_map(|id| audio_of(&log, id)).collect();
    assert_eq!(
        record.heard.len(),
        sent.len(),
        "heard {} ms",
        record.heard_ms()
    );
    assert!(
        record.heard == sent,
        "the caller heard the audio in the order it was made"
    );

    finish(h).await;
}

/// An answer that trips an output guardrail on a phone call: playback at Twilio is cleared,
/// the answer is cancelled and truncated at the last mark Twilio echoed (what the caller
/// heard), and the model, told why, answers again, which the caller hears whole.
#[tokio::test]
async fn an_answer_that_trips_a_guardrail_is_cleared_truncated_at_the_last_mark_and_redone() {
    const ANSWER: u64 = 3_000;
    const AGAIN: u64 = 800;
    let scenario = Scenario::new("promise").turn(greeting()).turn(
        Turn::user("Will my refund come?")
            .model(
                ModelStep::say(
                    "Let me see. Your refund was approved this morning, and it is \
                         guaranteed to reach your card by Friday at the latest.",
                )
                .audio_ms(ANSWER as u32),
            )
            .model(
                ModelStep::say("Billing will check your refund and email you.")
                    .audio_ms(AGAIN as u32),
            ),
    );
    let tables = "[guardrails]\noutput_debounce_ms = 0\n\n[[guardrails.output]]\n\
                  type = \"blocklist\"\nname = \"no promises\"\nwords = [\"guaranteed\"]\n\
                  message = \"never promise an outcome\"";
    let options = Options {
        agent: Some(agent_file("tools = [\"caller_lookup\"]", tables)),
        // The answer streams over about a second, as a live one would, so the word that
        // trips comes while the caller is hearing it.
        event_delay: ms(20),
        ..Options::default()
    };
    let h = Harness::start(scenario, options).await;
    let script = vec![
        CallerStep::WaitHeard {
            ms: GREETING_MS,
            within: secs(10),
        },
        CallerStep::Speak(ms(400)),
        CallerStep::WaitAnswer {
            quiet: ms(1_000),
            within: secs(20),
        },
        CallerStep::HangUp,
    ];
    let record = call(&h, "CA810", script).await;

    // Twilio was told to drop what it still had queued of the answer, once.
    assert_eq!(record.clears.len(), 1, "{:?}", record.clears);
    let (heard_at_clear, dropped) = record.clears[0];
    assert!(dropped > 0, "the clear dropped queued audio");
    let heard_of_answer = heard_at_clear - GREETING_MS;
    assert!(heard_of_answer < ANSWER, "the answer was cut off");

    // Cancelled, and truncated at a mark that came back: where the caller's playback was.
    let log = frames(&h.scripted).await;
    let kinds: Vec<&str> = log
        .iter()
        .filter(|(d, _)| *d == Direction::FromClient)
        .filter_map(|(_, v)| v["type"].as_str())
        .filter(|k| *k != "input_audio_buffer.append")
        .collect();
    let cancels = positions(&log, Direction::FromClient, |v| {
        v["type"] == "response.cancel"
    });
    assert_eq!(cancels.len(), 1, "{kinds:?}");
    let truncates = positions(&log, Direction::FromClient, |v| {
        v["type"] == "conversation.item.truncate"
    });
    assert_eq!(truncates.len(), 1, "{kinds:?}");
    let truncate = &log[truncates[0]].1;
    assert_eq!(truncate["item_id"], "item_t1s0o0", "{truncate}");
    let end = truncate["audio_end_ms"].as_u64().unwrap();
    let echoed: Vec<u64> = record
        .marks
        .iter()
        .map(|(_, heard)| *heard)
        .filter(|heard| (GREETING_MS..=heard_at_clear).contains(heard))
        .map(|heard| heard - GREETING_MS)
        .collect();
    assert!(
        end > 0 && echoed.contains(&end),
        "truncated at {end}, marks echoed at {echoed:?}"
    );
    assert!(
        end <= heard_of_answer,
        "truncated at {end}, heard {heard_of_answer}"
    );

    // Then the model was told why, and answered again; the caller heard all of that answer.
    let notes = positions(&log, Direction::FromClient, |v| {
        v["type"] == "conversation.item.create"
            && v["item"]["role"] == "system"
            && v["item"]["content"][0]["text"]
                .as_str()
                .is_some_and(|t| t.contains("`no promises`"))
    });
    assert_eq!(notes.len(), 1, "{kinds:?}");
    assert!(
        cancels[0] < notes[0] && truncates[0] < notes[0],
        "{kinds:?}"
    );
    let creates_after = positions(&log, Direction::FromClient, |v| {
        v["type"] == "response.create"
    })
    .into_iter()
    .filter(|&i| i > notes[0])
    .count();
    assert_eq!(creates_after, 1, "{kinds:?}");
    let responses = response_ids(&log);
    let again = audio_of(&log, responses.last().unwrap());
    assert_eq!(
        again.len() as u64 / 8,
        AGAIN,
        "the last answer is the one asked for again"
    );
    assert_eq!(
        record.heard_ms(),
        heard_at_clear + AGAIN,
        "the new answer was heard whole"
    );

    finish(h).await;
}

/// A handoff on a phone call: the session switches to the target's instructions and tools,
/// and its `session.update` leaves the audio alone (μ-law both ways, the voice), so the
/// caller goes on hearing the agent, in the same voice, after the handoff.
#[tokio::test]
async fn a_handoff_on_a_call_keeps_the_phone_formats_and_the_voice() {
    const DESK: u32 = 800;
    let scenario = Scenario::new("handoff").turn(
        Turn::model_first()
            .model(ModelStep::calls([ScriptedCall::new(
                "transfer_to_desk",
                json!({}),
            )]))
            .model(ModelStep::calls([ScriptedCall::new(
                "caller_lookup",
                json!({"order_id": "A1001"}),
            )]))
            .model(ModelStep::say("The order desk here: A1001 shipped yesterday.").audio_ms(DESK)),
    );
    let desk = "name = \"desk\"\nhandoff_description = \"orders\"\n\
                instructions = \"You are the order desk.\"\noutput_modalities = [\"audio\"]\n\
                tools = [\"caller_lookup\"]\n";
    let options = Options {
        agent: Some(agent_file(
            "voice = \"marin\"\ntools = [\"caller_lookup\"]\nhandoffs = [\"desk\"]",
            "",
        )),
        files: vec![("desk.toml", desk.to_owned())],
        ..Options::default()
    };
    let h = Harness::start(scenario, options).await;
    let script = vec![
        CallerStep::WaitHeard {
            ms: u64::from(DESK),
            within: secs(15),
        },
        CallerStep::HangUp,
    ];
    let record = call(&h, "CA820", script).await;
    assert_eq!(
        record.heard_ms(),
        u64::from(DESK),
        "the desk's answer, heard"
    );

    let updates = events_of(&h, "session.update").await;
    assert_eq!(
        updates.len(),
        2,
        "the call's, then the handoff's: {updates:#?}"
    );
    let phone = &updates[0]["session"]["audio"];
    assert_eq!(phone["input"]["format"]["type"], "audio/pcmu");
    assert_eq!(phone["output"]["format"]["type"], "audio/pcmu");
    let handoff = &updates[1]["session"];
    assert_eq!(
        handoff["instructions"], "You are the order desk.",
        "{handoff}"
    );
    let tools = tool_names(handoff);
    assert!(
        tools.contains(&"caller_lookup") && tools.contains(&"end_call"),
        "{tools:?}"
    );
    assert!(
        handoff.get("audio").is_none() && handoff.get("voice").is_none(),
        "formats and voice stay: {handoff}"
    );
    // The model's session after the handoff: still μ-law, still the voice it started with.
    let log = frames(&h.scripted).await;
    let (_, updated) = log
        .iter()
        .rfind(|(d, v)| *d == Direction::FromServer && v["type"] == "session.updated")
        .expect("the handoff's session.updated");
    let audio = &updated["session"]["audio"];
    assert_eq!(
        updated["session"]["instructions"],
        "You are the order desk."
    );
    assert_eq!(audio["input"]["format"]["type"], "audio/pcmu", "{audio}");
    assert_eq!(audio["output"]["format"]["type"], "audio/pcmu", "{audio}");
    assert_eq!(audio["output"]["voice"], "marin", "{audio}");
    let outputs = events_of(&h, "conversation.item.create").await;
    assert!(
        outputs
            .iter()
            .filter(|e| e["item"]["type"] == "function_call_output")
            .any(|e| e["item"]["output"].as_str().unwrap().contains("desk"))
    );
    finish(h).await;
}

#[tokio::test]
async fn a_bad_signature_gets_403_and_starts_nothing() {
    let h = Harness::start(scenario(), Options::default()).await;
    let params = [("CallSid", "CA200"), ("From", CALLER), ("To", NUMBER)];
    for signing in [Signing::WrongToken, Signing::HostUrl, Signing::Missing] {
        let answer = h
            .twilio
            .voice("/twilio/voice", &params, signing)
            .await
            .unwrap();
        assert_eq!(answer.answer.status, 403, "{signing:?}");
        assert!(!answer.answer.body.contains(AUTH_TOKEN));
    }
    // A valid signature over other parameters does not cover changed ones.
    let signature = agent_testkit::twilio::sign(
        AUTH_TOKEN,
        &format!("http://{}/twilio/voice", h.addr),
        &params,
    );
    let answer = http::request(
        h.addr,
        "POST",
        "/twilio/voice",
        &[
            ("x-twilio-signature", &signature),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        b"CallSid=CA200&From=%2B15550111&To=%2B15550199",
        secs(5),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 403);
    assert_eq!(h.state.tokens.waiting(), 0);
    assert_eq!(h.state.capacity.in_use(), 0);
    assert_eq!(h.scripted.connections(), 0, "no session");
    h.stop().await;
}

/// A TwiML answer's stream URL and token for `call_sid`.
async fn stream_token(h: &Harness, call_sid: &str) -> (String, BTreeMap<String, String>) {
    let params = [("CallSid", call_sid), ("From", CALLER), ("To", NUMBER)];
    let answer = h
        .twilio
        .voice("/twilio/voice", &params, Signing::Valid)
        .await
        .unwrap();
    match answer.twiml {
        Twiml::Connect { url, parameters } => (url, parameters),
        other => panic!("{other:?}: {}", answer.answer.body),
    }
}

async fn refused(h: &Harness, url: &str, start: StreamStart, script: &[CallerStep]) {
    let record = h.twilio.stream(url, start, script, secs(10)).await.unwrap();
    assert!(record.ended_by_server, "{record:?}");
    assert_eq!(record.close.as_ref().map(|c| c.0), Some(1008), "{record:?}");
    assert!(record.heard.is_empty());
}

#[tokio::test]
async fn streams_without_a_valid_unused_token_for_their_call_are_closed() {
    let h = Harness::start(
        scenario(),
        Options {
            limits: "stream_token_secs = 0.3",
            ..Options::default()
        },
    )
    .await;
    let wait = [CallerStep::Silence(secs(5))];
    // Missing token.
    let (url, _) = stream_token(&h, "CA301").await;
    refused(&h, &url, StreamStart::new("CA301", BTreeMap::new()), &wait).await;
    // Stolen: another call's token; it is used up, so the rightful stream is refused too.
    let (url, token) = stream_token(&h, "CA302").await;
    refused(&h, &url, StreamStart::new("CA999", token.clone()), &wait).await;
    refused(&h, &url, StreamStart::new("CA302", token), &wait).await;
    // Replayed: a token that already started a call.
    let (url, token) = stream_token(&h, "CA303").await;
    let first = h
        .twilio
        .stream(
            &url,
            StreamStart::new("CA303", token.clone()),
            &[CallerStep::HangUp],
            secs(10),
        )
        .await
        .unwrap();
    assert!(!first.ended_by_server, "{first:?}");
    refused(&h, &url, StreamStart::new("CA303", token), &wait).await;
    // Expired.
    let (url, token) = stream_token(&h, "CA304").await;
    tokio::time::sleep(ms(500)).await;
    refused(&h, &url, StreamStart::new("CA304", token), &wait).await;
    // Media before start, and a start without a valid callSid.
    let (url, token) = stream_token(&h, "CA305").await;
    let mut start = StreamStart::new("CA305", token);
    start.send_start = false;
    refused(&h, &url, start, &wait).await;
    let (url, token) = stream_token(&h, "CA306").await;
    refused(&h, &url, StreamStart::new("CA-306!", token), &wait).await;
    assert_eq!(
        h.scripted.connections(),
        1,
        "only the rightful call got a session"
    );
    h.until_no_calls().await;
    h.stop().await;
}

#[tokio::test]
async fn malformed_twilio_messages_are_skipped() {
    let h = Harness::start(scenario(), Options::default()).await;
    let script = vec![
        CallerStep::Raw("not json".into()),
        CallerStep::Raw(r#"{"event":"teleport"}"#.into()),
        CallerStep::Raw(r#"{"event":"media","media":{"payload":"***"}}"#.into()),
        CallerStep::Raw(r#"{"event":"media"}"#.into()),
        CallerStep::Raw(r#"{"event":"mark","mark":{"name":"never-sent"}}"#.into()),
        CallerStep::Dtmf('5'),
        CallerStep::WaitHeard {
            ms: GREETING_MS,
            within: secs(10),
        },
        CallerStep::HangUp,
    ];
    let record = call(&h, "CA400", script).await;
    assert!(record.heard_ms() >= GREETING_MS);
    for append in events_of(&h, "input_audio_buffer.append").await {
        assert_ne!(append["audio"], "***", "a bad payload was passed on");
    }
    assert_eq!(h.scripted.violations().await, Vec::<String>::new());
    h.until_no_calls().await;
    h.stop().await;
}

#[tokio::test]
async fn an_oversized_frame_closes_only_that_call() {
    let options = Options {
        limits: "max_frame_bytes = 16384",
        ..Options::default()
    };
    let h = Harness::start(scenario(), options).await;
    let big = format!(
        r#"{{"event":"media","media":{{"payload":"{}"}}}}"#,
        "A".repeat(20_000)
    );
    let hostile = CallSpec::new(
        "CA501",
        CALLER,
        NUMBER,
        vec![CallerStep::Raw(big), CallerStep::Silence(secs(5))],
    );
    let calm = CallSpec::new(
        "CA502",
        CALLER,
        NUMBER,
        vec![
            CallerStep::WaitHeard {
                ms: GREETING_MS,
                within: secs(10),
            },
            CallerStep::Silence(ms(500)),
            CallerStep::HangUp,
        ],
    );
    let (hostile, calm) = tokio::join!(h.twilio.call(&hostile), h.twilio.call(&calm));
    let hostile = hostile.unwrap();
    assert!(hostile.ended_by_server);
    assert_eq!(hostile.close.map(|c| c.0), Some(1009), "message too big");
    let calm = calm.unwrap();
    assert!(!calm.ended_by_server, "{calm:?}");
    assert!(calm.heard_ms() >= GREETING_MS);
    h.until_no_calls().await;
    h.stop().await;
}

#[tokio::test]
async fn at_capacity_or_draining_calls_are_rejected_busy() {
    let h = Harness::start(
        scenario(),
        Options {
            max_calls: 1,
            ..Options::default()
        },
    )
    .await;
    let ready = http::request(h.addr, "GET", "/readyz", &[], b"", secs(5))
        .await
        .unwrap();
    assert_eq!(ready.status, 200);
    let (_url, _token) = stream_token(&h, "CA601").await;
    let params = [("CallSid", "CA602"), ("From", CALLER), ("To", NUMBER)];
    let busy = h
        .twilio
        .voice("/twilio/voice", &params, Signing::Valid)
        .await
        .unwrap();
    assert_eq!(
        busy.twiml,
        Twiml::Reject {
            reason: "busy".into()
        }
    );
    let full = http::request(h.addr, "GET", "/readyz", &[], b"", secs(5))
        .await
        .unwrap();
    assert_eq!(full.status, 503);
    // An unknown number is rejected outright; a route's path reaches its agent.
    let params = [("CallSid", "CA603"), ("From", CALLER), ("To", "+15550199")];
    let unknown = h
        .twilio
        .voice("/twilio/voice", &params, Signing::Valid)
        .await
        .unwrap();
    assert_eq!(
        unknown.twiml,
        Twiml::Reject {
            reason: "rejected".into()
        }
    );
    h.state.capacity.start_draining();
    let draining = http::request(h.addr, "GET", "/readyz", &[], b"", secs(5))
        .await
        .unwrap();
    assert_eq!(
        (draining.status, draining.body.as_str()),
        (503, "draining\n")
    );
    let params = [("CallSid", "CA604"), ("From", CALLER), ("To", NUMBER)];
    let answer = h
        .twilio
        .voice("/twilio/voice/shop", &params, Signing::Valid)
        .await
        .unwrap();
    assert_eq!(
        answer.twiml,
        Twiml::Reject {
            reason: "busy".into()
        }
    );
    let health = http::request(h.addr, "GET", "/healthz", &[], b"", secs(5))
        .await
        .unwrap();
    assert_eq!(health.status, 200);
    assert_eq!(h.scripted.connections(), 0);
    h.stop().await;
}

#[tokio::test]
async fn oversized_and_slow_requests_are_refused() {
    let options = Options {
        limits: "max_body_bytes = 1024\nrequest_timeout_secs = 0.5",
        ..Options::default()
    };
    let h = Harness::start(scenario(), options).await;
    let body = format!("CallSid=CA700&From={}", "1".repeat(4_000));
    let signature =
        agent_testkit::twilio::sign(AUTH_TOKEN, &format!("http://{}/twilio/voice", h.addr), &[]);
    let answer = http::request(
        h.addr,
        "POST",
        "/twilio/voice",
        &[("x-twilio-signature", &signature)],
        body.as_bytes(),
        secs(5),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 413);
    // The media stream is a WebSocket or nothing.
    let plain = http::request(h.addr, "GET", "/twilio/media-stream", &[], b"", secs(5))
        .await
        .unwrap();
    assert_eq!(plain.status, 400);
    // A client that announces a body and never sends it gets 408, not a held worker.
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut slow = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    slow.write_all(b"POST /twilio/voice HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nCall")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(secs(5), slow.read_to_end(&mut answer))
        .await
        .expect("answered within the deadline")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    h.stop().await;
}

#[test]
fn the_example_serve_toml_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../agents/serve.toml");
    let config = agent_server::ServeConfig::load(&path).unwrap();
    assert_eq!(config.route_for_number("+15550100"), Some(0));
    assert!(config.routes[0].agent_path.ends_with("support.toml"));
}
