//! `agent run` against broken and hostile Realtime servers on loopback, as a user runs it with
//! piped input: every case ends (or recovers) within a bounded time, opens a bounded number of
//! connections, prints the exact reason on stderr, and exits 0 only when every turn completed.
//! Also Ctrl-C and final close codes with stdin still open, two runs resuming one conversation,
//! calls that already ran before a restart, and audio runs that keep their history.

mod common;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use agent_testkit::{
    scenario::{ModelStep, Scenario, ScriptedCall, Turn},
    server::{
        ConnectionFaults, ErrorSpec, Faults, MalformedDone, ScriptedServer, ServerConfig,
        ServerHandle,
    },
};
use common::text;
use serde_json::json;

/// An agent file with every deadline and backoff at 200 ms or less.
fn agent_file(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("hostile.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"hostile\"\ninstructions = \"test\"\ntools = [\"calculate\", \"create_ticket\"]\n\
             data_dir = \"data\"\n{extra}\n\
             [connection]\nmax_reconnect_attempts = 2\nreconnect_delay_secs = 0.01\n\
             reconnect_max_delay_secs = 0.05\n\
             [timeouts]\nresponse_idle_secs = 0.2\ncancel_secs = 0.2\n"
        ),
    )
    .unwrap();
    path
}

fn question() -> Scenario {
    Scenario::new("question")
        .turn(Turn::user("what is new?").model(ModelStep::say("Nothing much, all is well.")))
}

struct Server {
    runtime: tokio::runtime::Runtime,
    handle: Option<ServerHandle>,
}

impl Server {
    fn start(config: ServerConfig) -> Server {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let handle = runtime
            .block_on(async { ScriptedServer::start(config) })
            .unwrap();
        Server {
            runtime,
            handle: Some(handle),
        }
    }

    fn with_faults(faults: Faults) -> Server {
        Server::start(ServerConfig::new(question()).faults(faults))
    }

    fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().unwrap()
    }

    fn url(&self) -> String {
        self.handle().url()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.runtime.block_on(handle.shutdown());
        }
    }
}

fn run(args: &[&str], dir: &Path) -> Command {
    let mut command = common::command(args, dir);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// `agent run FILE --url URL --no-history` with `input` piped in; its output and how long it took.
fn run_piped(file: &Path, url: &str, input: &str, dir: &Path) -> (Output, Duration) {
    let began = Instant::now();
    let mut child = run(
        &["run", file.to_str().unwrap(), "--url", url, "--no-history"],
        dir,
    )
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = wait(child, Duration::from_secs(20));
    (out, began.elapsed())
}

/// Waits for the process, killing it (and failing the test) past `limit`.
fn wait(mut child: Child, limit: Duration) -> Output {
    let began = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if began.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}\nstdout: {}\nstderr: {}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// A failed case: exit code 1, this line on stderr, within `limit`, at most `connections`.
fn assert_fails(case: &str, faults: Faults, stderr_line: &str, connections: usize) {
    assert_fails_with(case, faults, stderr_line, connections, None)
}

/// Like [`assert_fails`], with `response_idle_secs` replaced, for a case whose point is not a
/// deadline (a loaded CI machine must not make the deadline fire first).
fn assert_fails_with(
    case: &str,
    faults: Faults,
    stderr_line: &str,
    connections: usize,
    response_idle_secs: Option<f64>,
) {
    let dir = tempfile::tempdir().unwrap();
    let file = agent_file(dir.path(), "");
    if let Some(idle) = response_idle_secs {
        let text = std::fs::read_to_string(&file).unwrap();
        let text = text.replace(
            "response_idle_secs = 0.2",
            &format!("response_idle_secs = {idle}"),
        );
        std::fs::write(&file, text).unwrap();
    }
    let server = Server::with_faults(faults);
    let (out, took) = run_piped(&file, &server.url(), "what is new?\n", dir.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{case}\n{stderr}");
    assert!(
        stderr.lines().any(|l| l == stderr_line),
        "{case}: expected the line\n{stderr_line}\nin\n{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("error: ")
                && l.ends_with(" turn(s) or session(s) did not complete:")),
        "{case}\n{stderr}"
    );
    assert!(
        server.handle().connections() <= connections,
        "{case}: {} connections",
        server.handle().connections()
    );
    assert!(took < Duration::from_secs(5), "{case}: {took:?}");
}

#[test]
fn a_stalled_response_fails_the_turn_with_a_message() {
    assert_fails(
        "stall",
        Faults::none().on_every_connection(ConnectionFaults::new().stall_after(7)),
        "! the turn did not complete: the response was cut off (response resp_0002 sent nothing for 200 ms, and the server did not confirm its cancellation in time), and it had already been asked for again once",
        3,
    );
}

#[test]
fn an_error_instead_of_a_response_is_shown_and_fails_the_turn() {
    let refusal = ErrorSpec::new(
        "invalid_request_error",
        "rate_limit_exceeded",
        "Too many responses at once.",
    );
    assert_fails(
        "refused",
        Faults::none()
            .on_every_connection(ConnectionFaults::new().fail_response_create(refusal, usize::MAX)),
        "! the turn did not complete: the server refused to respond (rate_limit_exceeded): Too many responses at once.",
        1,
    );
}

#[test]
fn a_drop_between_create_and_created_on_every_connection_is_bounded() {
    assert_fails(
        "drop on create",
        Faults::none().on_every_connection(ConnectionFaults::new().drop_on_response_create()),
        "! the turn did not complete: the response was cut off (the connection dropped), and it had already been asked for again once",
        3,
    );
}

#[test]
fn session_expired_on_every_request_ends_the_run_instead_of_rolling_over_forever() {
    assert_fails(
        "session expired",
        Faults::none().on_every_connection(ConnectionFaults::new().session_expired_on_request()),
        "session ended: connection lost: gave up after 2 new connection(s) within 60 s without a completed response: the server expired the session: Your session hit the maximum duration of 60 minutes.",
        3,
    );
}

#[test]
fn a_frame_over_the_limit_is_named_and_does_not_loop() {
    // 17 MB, over the default 16 MiB limit. Writing and reading that much takes a while on a
    // busy machine: the response deadline is not what this case is about.
    assert_fails_with(
        "oversized",
        Faults::none()
            .on_every_connection(ConnectionFaults::new().oversized_frame_after(7, 17_000_000)),
        "! the turn did not complete: the response was cut off (the server sent a message of 17000000 bytes, over the 16777216-byte limit (max_message_bytes); the connection cannot continue after it), and it had already been asked for again once",
        3,
        Some(5.0),
    );
}

#[test]
fn a_model_that_loops_on_tools_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let file = agent_file(dir.path(), "");
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("[timeouts]", "[limits]\nmax_tool_rounds = 3\n[timeouts]"),
    )
    .unwrap();
    let server = Server::with_faults(
        Faults::none().on_every_connection(ConnectionFaults::new().tool_loop("calculate")),
    );
    let (out, took) = run_piped(&file, &server.url(), "what is new?\n", dir.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.lines().any(|l| l == "! the turn did not complete: the model called tools 3 rounds in a row without answering; the turn was stopped (max_tool_rounds = 3)"),
        "{stderr}"
    );
    assert_eq!(server.handle().count_received("response.create"), 4);
    assert_eq!(server.handle().connections(), 1);
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_malformed_response_done_is_survived_and_the_run_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let file = agent_file(dir.path(), "");
    let server = Server::with_faults(Faults::none().on_every_connection(
        ConnectionFaults::new().malformed_response_done(MalformedDone::OutputNotList),
    ));
    let (out, took) = run_piped(&file, &server.url(), "what is new?\n", dir.path());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("assistant › Nothing much, all is well."),
        "{stdout}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn ctrl_c_ends_a_run_within_a_second_while_stdin_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let file = agent_file(dir.path(), "");
    // A server that stops mid-answer: the run would otherwise wait on it.
    let server = Server::with_faults(
        Faults::none().on_every_connection(ConnectionFaults::new().stall_after(7)),
    );
    let mut child = run(
        &["run", file.to_str().unwrap(), "--url", &server.url()],
        dir.path(),
    )
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"what is new?\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pressed = Instant::now();
    interrupt(&child);
    let out = wait(child, Duration::from_secs(5));
    let took = pressed.elapsed();
    drop(stdin);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l == "interrupted: the run was stopped with Ctrl-C"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(1), "{took:?}\n{stderr}");
    // What was said so far was stored, and the conversation was released.
    let mut resumed = run(
        &[
            "run",
            file.to_str().unwrap(),
            "--url",
            &server.url(),
            "--resume",
            "latest",
        ],
        dir.path(),
    )
    .spawn()
    .unwrap();
    drop(resumed.stdin.take());
    let out = wait(resumed, Duration::from_secs(10));
    assert!(
        !text(&out.stderr).contains("is in use by another run"),
        "{}",
        text(&out.stderr)
    );
}

/// Sends SIGINT, as Ctrl-C in a terminal does.
fn interrupt(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_final_close_code_ends_the_run_at_once_while_stdin_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let file = agent_file(dir.path(), "");
    let server = Server::with_faults(
        Faults::none().on_every_connection(ConnectionFaults::new().close_after(
            7,
            1008,
            "policy violation",
        )),
    );
    let began = Instant::now();
    let mut child = run(
        &[
            "run",
            file.to_str().unwrap(),
            "--url",
            &server.url(),
            "--no-history",
        ],
        dir.path(),
    )
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"what is new?\n").unwrap();
    let out = wait(child, Duration::from_secs(5));
    drop(stdin);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.lines().any(|l| l
            == "session ended: the server ended the session (close code 1008: policy violation); reconnecting would not help"),
        "{stderr}"
    );
    assert!(began.elapsed() < Duration::from_secs(3));
    assert_eq!(server.handle().connections(), 1);
}

#[test]
fn a_second_run_cannot_resume_a_conversation_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let file = agent_file(dir.path(), "");
    let server = Server::start(ServerConfig::new(
        Scenario::new("two runs")
            .turn(Turn::user("first").model(ModelStep::say("one")))
            .turn(Turn::user("second").model(ModelStep::say("two")))
            .turn(Turn::user("third").model(ModelStep::say("three"))),
    ));
    let url = server.url();
    let args = |resume: bool| {
        let mut args = vec!["run", file.to_str().unwrap(), "--url", url.as_str()];
        if resume {
            args.extend(["--resume", "latest"]);
        }
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let spawn = |resume: bool, line: &[u8]| {
        let args = args(resume);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = run(&args, dir.path()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(line).unwrap();
        (child, stdin)
    };
    // A first run stores a conversation.
    let (first, input) = spawn(false, b"first\n");
    drop(input);
    let out = wait(first, Duration::from_secs(10));
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Run A resumes it and stays open (its stdin is not closed).
    let (a, a_input) = spawn(true, b"second\n");
    std::thread::sleep(Duration::from_millis(500));
    // Run B tries the same conversation while A holds it.
    let (b, b_input) = spawn(true, b"third\n");
    drop(b_input);
    let out = wait(b, Duration::from_secs(10));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is in use by another run (`agent run` (pid "),
        "{stderr}"
    );
    assert!(stderr.contains("its lease expires in"), "{stderr}");
    // A finishes normally and nothing of it is lost; then the conversation can be resumed.
    drop(a_input);
    let out = wait(a, Duration::from_secs(10));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let show = common::agent(&["history", "show", "latest"], dir.path());
    let shown = text(&show.stdout);
    assert!(
        shown.contains("first") && shown.contains("second"),
        "{shown}"
    );
    let (c, c_input) = spawn(true, b"third\n");
    drop(c_input);
    let out = wait(c, Duration::from_secs(10));
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_call_that_ran_before_a_restart_is_not_run_again_after_resume() {
    let dir = tempfile::tempdir().unwrap();
    let file = agent_file(dir.path(), "");
    let ticket = || {
        Scenario::new("ticket").turn(
            Turn::user("open a ticket")
                .model(ModelStep::calls([ScriptedCall::new(
                    "create_ticket",
                    json!({"subject": "Broken zipper", "description": "The zipper of order A1003 broke.", "priority": "normal"}),
                )]))
                .model(ModelStep::say("Ticket opened.")),
        )
    };
    // Tickets are appended, one JSON line each, in the data folder (`AGENT_DATA_DIR`).
    let tickets = || {
        std::fs::read_to_string(dir.path().join("tickets.jsonl"))
            .map(|all| all.lines().count())
            .unwrap_or(0)
    };
    let first = Server::start(ServerConfig::new(ticket()));
    let mut a = run(
        &["run", file.to_str().unwrap(), "--url", &first.url()],
        dir.path(),
    )
    .spawn()
    .unwrap();
    a.stdin
        .take()
        .unwrap()
        .write_all(b"open a ticket\n")
        .unwrap();
    let out = wait(a, Duration::from_secs(10));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let made = tickets();
    assert!(made > 0, "the first run opened a ticket");
    // A new server that reuses the same call id (as a replayed response would) after resume.
    let second = Server::start(ServerConfig::new(ticket()));
    let mut b = run(
        &[
            "run",
            file.to_str().unwrap(),
            "--url",
            &second.url(),
            "--resume",
            "latest",
        ],
        dir.path(),
    )
    .spawn()
    .unwrap();
    b.stdin
        .take()
        .unwrap()
        .write_all(b"open a ticket\n")
        .unwrap();
    let out = wait(b, Duration::from_secs(10));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("↺ create_ticket already ran before; its stored output was reused"),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert_eq!(tickets(), made, "no second ticket");
}

#[test]
fn audio_runs_store_their_history_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let agent_path = dir.path().join("spoken.toml");
    std::fs::write(
        &agent_path,
        std::fs::read_to_string(common::workspace().join("agents/support.toml"))
            .unwrap()
            .replace(
                "instructions_file = \"support.md\"",
                "instructions = \"help\"",
            )
            // Not about handoffs: the billing agent stays behind.
            .replace("handoffs = [\"billing\"]\n", ""),
    )
    .unwrap();
    for file in ["billing.toml", "billing.md"] {
        std::fs::copy(
            common::workspace().join("agents").join(file),
            dir.path().join(file),
        )
        .unwrap();
    }
    // The longer scenario first: a resume continues the first scenario that fits.
    let turns = [
        ("What's the status of order A1003?", "It is on its way."),
        ("Thanks.", "You're welcome."),
        ("Bye.", "Goodbye."),
    ];
    let scenario = |name: &str, count: usize| {
        let mut toml = format!("[[scenario]]\nname = \"{name}\"\n");
        for (user, say) in &turns[..count] {
            toml.push_str(&format!(
                "[[scenario.turn]]\nuser = \"{user}\"\n[[scenario.turn.model]]\nsay = \"{say}\"\n"
            ));
        }
        toml
    };
    std::fs::write(
        dir.path().join("spoken.scenarios.toml"),
        format!(
            "{}\n{}",
            scenario("three turns", 3),
            scenario("two turns", 2)
        ),
    )
    .unwrap();
    let wav = common::workspace().join("agents/audio/question.wav");
    let wav = wav.to_str().unwrap();
    let path = agent_path.to_str().unwrap();
    let out = common::agent(
        &[
            "run",
            path,
            "--offline",
            "--scenario",
            "two turns",
            "--input-audio",
            wav,
            "--no-pace",
        ],
        dir.path(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("(conversation stored as conv_"), "{stdout}");
    let show = text(&common::agent(&["history", "show", "latest"], dir.path()).stdout);
    let asked = show.find("What's the status of order A1003?").expect(&show);
    let answered = show.find("It is on its way.").expect(&show);
    assert!(asked < answered, "the spoken question comes first:\n{show}");
    let out = common::agent(
        &[
            "run",
            path,
            "--offline",
            "--resume",
            "latest",
            "--input-audio",
            wav,
            "--no-pace",
        ],
        dir.path(),
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("item(s) restored, continuing at turn 3"),
        "{stderr}"
    );
    let show = text(&common::agent(&["history", "show", "latest"], dir.path()).stdout);
    assert!(show.contains("Goodbye."), "{show}");
}
