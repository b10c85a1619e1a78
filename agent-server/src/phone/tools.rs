//! `end_call` and `transfer_call`: the call-control tools every phone agent gets.
//!
//! They are registered per call, next to the agent's own tools, and hold nothing but a sender
//! to their call's bridge: the tool only asks, and the bridge acts once the answer the model is
//! giving has been played (see [`super::policy`]). So a model that says goodbye and calls
//! `end_call` in the same breath is heard to the end, and the hang-up never cuts it off.
//!
//! `transfer_call` takes a target *name* from the agent file's `[phone.transfer_targets]`: the
//! schema lists the names, and a name outside the list is answered as an error. The model
//! never sees or writes a number, so it cannot be talked into dialling one.

use std::{collections::BTreeMap, sync::Arc};

use agent_core::{
    agent::{PhoneSpec, TransferDestination},
    protocol::ToolDefinition,
    session::SessionConfig,
    tool::{RegistryError, Tool, ToolContext, ToolError, ToolOutput, ToolRegistry},
};
use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The name of the hang-up tool.
pub const END_CALL: &str = "end_call";
/// The name of the transfer tool.
pub const TRANSFER_CALL: &str = "transfer_call";

/// What a call-control tool asks of its call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallRequest {
    /// Hang up once the goodbye has been played.
    EndCall,
    /// Transfer once the current answer has been played.
    Transfer {
        /// The target's name in the agent file.
        name: String,
        /// Where it goes.
        destination: TransferDestination,
    },
}

/// The bridge's end of the call-control tools: requests arrive here.
pub type CallRequests = mpsc::Receiver<CallRequest>;

/// Adds `end_call` (always) and `transfer_call` (when the agent has transfer targets) to a
/// call's session config: registered with the tools and described in `session.update`.
/// Returns where their requests arrive. An agent that already has a tool of either name keeps
/// its own, and the error says so.
pub fn add_call_tools(
    config: &mut SessionConfig,
    phone: &PhoneSpec,
) -> Result<CallRequests, RegistryError> {
    let (tx, rx) = mpsc::channel(4);
    let mut registry: ToolRegistry = (*config.tools).clone();
    let mut tools: Vec<Arc<dyn Tool>> = vec![Arc::new(EndCall::new(tx.clone()))];
    let targets: BTreeMap<String, TransferDestination> = phone
        .transfer_targets
        .iter()
        .filter_map(|(name, value)| {
            TransferDestination::parse(value).map(|dest| (name.clone(), dest))
        })
        .collect();
    if !targets.is_empty() {
        tools.push(Arc::new(TransferCall::new(tx, targets)));
    }
    let strict = true;
    let definitions = config.session.tools.get_or_insert_with(Vec::new);
    for tool in tools {
        definitions.push(ToolDefinition::function(
            tool.name(),
            tool.description(),
            tool.parameters(strict).clone(),
        ));
        registry.register(tool, "agent serve (phone call control)")?;
    }
    config.tools = Arc::new(registry);
    Ok(rx)
}

/// Hangs up after the goodbye.
#[derive(Debug)]
struct EndCall {
    requests: mpsc::Sender<CallRequest>,
    parameters: Value,
}

impl EndCall {
    fn new(requests: mpsc::Sender<CallRequest>) -> Self {
        EndCall {
            requests,
            parameters: json!({"type": "object", "properties": {}, "required": [],
                "additionalProperties": false}),
        }
    }
}

#[async_trait]
impl Tool for EndCall {
    fn name(&self) -> &str {
        END_CALL
    }

    fn description(&self) -> &str {
        "Hang up the phone call. Say goodbye first, in the same answer: the call ends once \
         everything you said has been played to the caller."
    }

    fn parameters(&self, _strict: bool) -> &Value {
        &self.parameters
    }

    async fn call(&self, _args: Value, _ctx: ToolContext) -> Result<ToolOutput, ToolError> {
        send(&self.requests, CallRequest::EndCall).await?;
        Ok(ToolOutput::text(
            "The call ends once your goodbye has been played. Say nothing more.",
        ))
    }
}

/// Transfers to a named target.
#[derive(Debug)]
struct TransferCall {
    requests: mpsc::Sender<CallRequest>,
    targets: BTreeMap<String, TransferDestination>,
    parameters: Value,
}

impl TransferCall {
    fn new(
        requests: mpsc::Sender<CallRequest>,
        targets: BTreeMap<String, TransferDestination>,
    ) -> Self {
        let names: Vec<&String> = targets.keys().collect();
        let parameters = json!({
            "type": "object",
            "properties": {"target": {"type": "string", "enum": names,
                "description": "Who to transfer the caller to."}},
            "required": ["target"],
            "additionalProperties": false,
        });
        TransferCall {
            requests,
            targets,
            parameters,
        }
    }
}

#[async_trait]
impl Tool for TransferCall {
    fn name(&self) -> &str {
        TRANSFER_CALL
    }

    fn description(&self) -> &str {
        "Transfer the phone call to one of the listed targets. Tell the caller first, in the \
         same answer: the transfer happens once everything you said has been played."
    }

    fn parameters(&self, _strict: bool) -> &Value {
        &self.parameters
    }

    async fn call(&self, args: Value, _ctx: ToolContext) -> Result<ToolOutput, ToolError> {
        let name = args
            .get("target")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(destination) = self.targets.get(name) else {
            let known: Vec<&str> = self.targets.keys().map(String::as_str).collect();
            return Err(ToolError::failed(format!(
                "`{name}` is not a transfer target; choose one of: {}",
                known.join(", ")
            )));
        };
        let request = CallRequest::Transfer {
            name: name.to_owned(),
            destination: destination.clone(),
        };
        send(&self.requests, request).await?;
        Ok(ToolOutput::text(format!(
            "The caller is transferred to {name} once this answer has been played. Say nothing more."
        )))
    }
}

async fn send(requests: &mpsc::Sender<CallRequest>, request: CallRequest) -> Result<(), ToolError> {
    requests
        .send(request)
        .await
        .map_err(|_| ToolError::failed("the call has already ended"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> BTreeMap<String, TransferDestination> {
        BTreeMap::from([(
            "sales".to_owned(),
            TransferDestination::Number("+15550123".into()),
        )])
    }

    #[tokio::test]
    async fn transfer_call_refuses_a_name_outside_the_allow_list() {
        let (tx, mut rx) = mpsc::channel(4);
        let tool = TransferCall::new(tx, targets());
        let err = tool
            .call(json!({"target": "+19005550000"}), ToolContext::standalone())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("choose one of: sales"), "{err}");
        assert!(rx.try_recv().is_err(), "nothing was asked of the call");
        assert_eq!(
            tool.parameters(true)["properties"]["target"]["enum"],
            json!(["sales"])
        );
        tool.call(json!({"target": "sales"}), ToolContext::standalone())
            .await
            .unwrap();
        assert_eq!(
            rx.try_recv().unwrap(),
            CallRequest::Transfer {
                name: "sales".into(),
                destination: TransferDestination::Number("+15550123".into())
            }
        );
    }

    #[tokio::test]
    async fn end_call_after_the_call_ended_is_an_error_not_a_panic() {
        let (tx, rx) = mpsc::channel(4);
        drop(rx);
        let err = EndCall::new(tx)
            .call(json!({}), ToolContext::standalone())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("already ended"), "{err}");
    }
}
