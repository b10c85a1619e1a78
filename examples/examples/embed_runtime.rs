//! Embedding the runtime in your own program: no CLI, just the library.
//!
//! The agent is defined inline, its tools come from `agent-tools`, and the session runs against
//! the scripted server from `agent-testkit` so the example works offline. To talk to the real
//! API instead, drop the server and `ConnectOverrides::url` and export `OPENAI_API_KEY`.
//!
//! Run it: `cargo run -p examples --example embed_runtime`

use agent_core::{
    agent::{AgentFile, ConnectOverrides},
    session::{Session, SessionEvent},
};
use agent_testkit::{
    scenario::{ModelStep, Scenario, ScriptedCall, Turn},
    server::{ScriptedServer, ServerConfig},
};

const AGENT: &str = r#"
name = "embedded"
instructions = "You answer questions about orders."
tools = ["lookup_order"]
"#;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // 1. The agent: parse, check and resolve its tools against the built-in registry.
    let registry = agent_tools::registry()?;
    let agent = AgentFile::parse("embedded.toml", AGENT.to_owned())?.resolve(&registry)?;

    // 2. A stand-in for the Realtime API: the model asks for `lookup_order`, then answers.
    let scenario = Scenario::new("demo").turn(
        Turn::user("Where is order A1001?")
            .model(ModelStep::calls([ScriptedCall::new(
                "lookup_order",
                serde_json::json!({ "order_id": "A1001" }),
            )]))
            .model(ModelStep::say("Order A1001 is on its way.")),
    );
    let server = ScriptedServer::start(ServerConfig::new(scenario))?;
    let overrides = ConnectOverrides {
        url: Some(server.url()),
        key_optional: true,
        ..Default::default()
    };

    // 3. Start the session and talk to it.
    let mut session = Session::start(agent.session_config(&overrides, None)?).await?;
    session.handle.send_text("Where is order A1001?").await?;
    while let Some(event) = session.events.recv().await {
        match event {
            SessionEvent::ToolCallStarted {
                name, arguments, ..
            } => println!("tool call: {name}({arguments})"),
            SessionEvent::ToolCallFinished {
                name,
                duration,
                result,
                ..
            } => println!("tool done: {name} in {duration:?}: {result:?}"),
            SessionEvent::TextDelta { delta, .. } => print!("{delta}"),
            SessionEvent::ResponseDone { usage, .. } => {
                println!();
                if let Some(usage) = usage {
                    println!("usage: {} tokens", usage.total_tokens);
                }
            }
            SessionEvent::Idle => break,
            SessionEvent::Closed { reason } => anyhow::bail!("session closed: {reason:?}"),
            _ => {}
        }
    }
    session.handle.close().await?;
    server.shutdown().await;
    Ok(())
}
