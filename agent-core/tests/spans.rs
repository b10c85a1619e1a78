//! The session's `tracing` spans, seen by a recording subscriber while a session runs against
//! the scripted server: call → turn → response → tool call, whatever task each runs on; the
//! tool runs inside its span (what it logs lands there); the counts, ids and outcomes are the
//! wire's. agent-cli's tests/otel_cli.rs checks the same spans after an OTLP export.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use agent_core::{
    agent::{AgentFile, ConnectOverrides},
    session::{PlatformIds, Session, SessionEvent},
    tool::{Tool, ToolContext, ToolError, ToolOutput, ToolRegistry},
};
use agent_testkit::{
    scenario::{ModelStep, Scenario, ScriptedCall, Turn},
    server::{ScriptedServer, ServerConfig},
};
use async_trait::async_trait;
use serde_json::{Value, json};
use tracing::{
    Subscriber,
    field::{Field, Visit},
    span,
};
use tracing_subscriber::{Layer, layer::Context, prelude::*, registry::LookupSpan};

/// One span as the recorder saw it.
#[derive(Debug, Clone)]
struct Recorded {
    name: &'static str,
    id: u64,
    parent: Option<u64>,
    fields: HashMap<String, String>,
    /// The messages of events logged inside it.
    events: Vec<String>,
    closed: bool,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Recorded>>>);

impl Recorder {
    fn spans(&self) -> Vec<Recorded> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn with(&self, id: &span::Id, f: impl FnOnce(&mut Recorded)) {
        let mut spans = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(span) = spans.iter_mut().rev().find(|s| s.id == id.into_u64()) {
            f(span);
        }
    }
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        let parent = ctx
            .span(id)
            .and_then(|s| s.parent())
            .map(|p| p.id().into_u64());
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Recorded {
                name: attrs.metadata().name(),
                id: id.into_u64(),
                parent,
                fields,
                events: Vec::new(),
                closed: false,
            });
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, _ctx: Context<'_, S>) {
        self.with(id, |span| values.record(&mut Fields(&mut span.fields)));
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        self.with(&span.id(), |span| span.events.push(message));
    }

    fn on_close(&self, id: span::Id, _ctx: Context<'_, S>) {
        self.with(&id, |span| span.closed = true);
    }
}

/// Logs one line (inside whatever span it runs in) and answers.
struct Noisy(&'static str, Value);

#[async_trait]
impl Tool for Noisy {
    fn name(&self) -> &str {
        self.0
    }
    fn description(&self) -> &str {
        "logs a line"
    }
    fn parameters(&self, _strict: bool) -> &Value {
        &self.1
    }
    async fn call(&self, _args: Value, ctx: ToolContext) -> Result<ToolOutput, ToolError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        tracing::info!("{} ran {}", self.0, ctx.call_id());
        match self.0 {
            "broken" => Err(ToolError::Failed {
                message: "it broke".into(),
            }),
            _ => Ok(ToolOutput::text("fine")),
        }
    }
}

#[tokio::test]
async fn a_session_s_spans_form_the_call_turn_response_tool_tree() {
    let recorder = Recorder::default();
    let _guard = tracing_subscriber::registry()
        .with(recorder.clone())
        .set_default();
    let schema = json!({"type": "object", "properties": {}, "additionalProperties": false});
    let mut registry = ToolRegistry::new();
    for name in ["noisy", "broken"] {
        registry
            .register(Arc::new(Noisy(name, schema.clone())), "tests/spans.rs")
            .unwrap();
    }
    let agent = AgentFile::parse(
        "spans.toml",
        "name = \"spanner\"\ninstructions = \"x\"\ntools = [\"noisy\", \"broken\"]\n".to_owned(),
    )
    .unwrap()
    .resolve(&registry)
    .unwrap();
    let scenario = Scenario::new("spans").turn(
        Turn::user("go")
            .model(ModelStep::calls([
                ScriptedCall::new("noisy", json!({})),
                ScriptedCall::new("broken", json!({})),
            ]))
            .model(ModelStep::say("done")),
    );
    let server = ScriptedServer::start(ServerConfig::new(scenario)).unwrap();
    let overrides = ConnectOverrides {
        url: Some(server.url()),
        key_optional: true,
        ..Default::default()
    };
    let mut config = agent.session_config(&overrides, None).unwrap();
    config.platform_ids = PlatformIds::twilio("CA123", "MZ456");
    let mut session = Session::start(config).await.unwrap();
    let session_id = session.session_id.clone().expect("a session id");
    session.handle.send_text("go").await.unwrap();
    let mut usage = HashMap::new();
    let mut calls = HashMap::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), session.events.recv())
            .await
            .expect("an event within 20 s")
            .expect("the session goes on");
        match event {
            SessionEvent::ResponseDone {
                response_id,
                usage: Some(used),
                ..
            } => {
                usage.insert(response_id, used);
            }
            SessionEvent::ToolCallStarted { call_id, name, .. } => {
                calls.insert(call_id, name);
            }
            SessionEvent::Idle => break,
            _ => {}
        }
    }
    session.handle.close().await.unwrap();
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_secs(10), session.events.recv()).await
    {
        if matches!(event, SessionEvent::Closed { .. }) {
            break;
        }
    }
    // The runner drops its spans as its task ends, just after `Closed`.
    let spans = {
        let mut waited = 0;
        loop {
            let spans = recorder.spans();
            if spans.iter().all(|s| s.closed) || waited > 200 {
                break spans;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            waited += 1;
        }
    };
    let named = |name: &str| spans.iter().filter(|s| s.name == name).collect::<Vec<_>>();
    let parent_of = |span: &Recorded| {
        spans
            .iter()
            .find(|s| Some(s.id) == span.parent)
            .unwrap_or_else(|| panic!("no parent for {span:#?}"))
    };

    let call = named("call");
    assert_eq!(call.len(), 1, "{spans:#?}");
    let call = call[0];
    assert_eq!(call.parent, None);
    assert_eq!(call.fields["agent.name"], "spanner");
    assert_eq!(call.fields["openai.session_id"], session_id);
    assert_eq!(call.fields["call.transport"], "twilio");
    assert_eq!(call.fields["twilio.call_sid"], "CA123");
    assert_eq!(call.fields["twilio.stream_sid"], "MZ456");
    assert_eq!(call.fields["call.close_reason"], "requested");
    assert_eq!(call.fields["call.turns"], "1");

    let turn = named("turn");
    assert_eq!(turn.len(), 1);
    let turn = turn[0];
    assert_eq!(parent_of(turn).name, "call");
    assert_eq!(turn.fields["turn.responses"], "2");
    assert_eq!(turn.fields["turn.tool_calls"], "2");

    let responses = named("response");
    assert_eq!(responses.len(), 2);
    for response in &responses {
        assert_eq!(parent_of(response).id, turn.id);
        let used = &usage[&response.fields["gen_ai.response.id"]];
        assert_eq!(
            response.fields["gen_ai.usage.input_tokens"],
            used.input_tokens.to_string()
        );
        assert_eq!(
            response.fields["gen_ai.usage.output_tokens"],
            used.output_tokens.to_string()
        );
        assert!(response.fields["cost.usd"].parse::<f64>().unwrap() > 0.0);
    }

    let tools = named("tool_call");
    assert_eq!(tools.len(), 2);
    for tool in &tools {
        let response = parent_of(tool);
        assert_eq!(response.name, "response");
        assert_eq!(
            response.fields["gen_ai.response.id"],
            tool.fields["gen_ai.response.id"]
        );
        let name = &tool.fields["tool.name"];
        let call_id = &tool.fields["tool.call_id"];
        assert_eq!(&calls[call_id], name);
        // The tool ran inside its span, on its own task.
        assert_eq!(tool.events, [format!("{name} ran {call_id}")]);
        let (outcome, error) = match name.as_str() {
            "noisy" => ("ok", None),
            _ => ("error", Some("failed")),
        };
        assert_eq!(tool.fields["tool.outcome"], outcome);
        assert_eq!(tool.fields.get("error.type").map(String::as_str), error);
        assert!(tool.fields["tool.duration_ms"].parse::<f64>().unwrap() >= 20.0);
    }
    assert!(
        spans.iter().all(|s| s.closed),
        "every span closed: {spans:#?}"
    );
}
