//! An MCP tool result, as the text the model reads.
//!
//! A `function_call_output` is one string, while an MCP result is a list of content blocks
//! (text, images, audio, embedded resources, resource links), optional `structuredContent` and
//! an `isError` flag. The mapping:
//!
//! - text blocks are sent as they are, one after another (separated by a blank line);
//! - an embedded text resource is sent as its text, headed by its URI; binary content (images,
//!   audio, blobs) cannot reach the model through a function output, so it is named with its
//!   type and size instead of being dropped silently;
//! - with no content blocks, `structuredContent` is sent as JSON (servers that send both put
//!   the same data in a text block, as the MCP specification asks);
//! - `isError: true` makes the whole text a [`ToolError::Failed`], so the model sees an error;
//! - text over the server's `max_output_bytes` is refused with an error naming both sizes,
//!   rather than cut where it would mislead.
//!
//! Works on the wire JSON (`serde_json::Value`), so it does not depend on how the SDK models
//! each block and unknown block types are still described.

use serde_json::Value;

use crate::tool::{ToolError, ToolOutput};

/// The model's view of a `tools/call` result (`result` as JSON), from the server `server`'s
/// tool `tool`.
pub(crate) fn to_output(
    server: &str,
    tool: &str,
    result: &Value,
    max_bytes: usize,
) -> Result<ToolOutput, ToolError> {
    let text = render(result).unwrap_or_default();
    if text.len() > max_bytes {
        return Err(ToolError::failed(format!(
            "the result of `{tool}` (MCP server `{server}`) is {} bytes, over this agent's limit of {max_bytes} (max_output_bytes); ask for less, e.g. a narrower query or one page",
            text.len()
        )));
    }
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        let message = if text.is_empty() {
            format!("`{tool}` (MCP server `{server}`) reported an error without a message")
        } else {
            text
        };
        return Err(ToolError::failed(message));
    }
    if text.is_empty() {
        return Ok(ToolOutput::text("(the tool returned no content)"));
    }
    Ok(ToolOutput::text(text))
}

/// The text of a result: its content blocks, or its structured content when it has none;
/// `None` when it has neither.
fn render(result: &Value) -> Option<String> {
    let blocks: Vec<String> = result
        .get("content")
        .and_then(Value::as_array)
        .map(|blocks| blocks.iter().map(render_block).collect())
        .unwrap_or_default();
    if !blocks.is_empty() {
        return Some(blocks.join("\n\n"));
    }
    match result.get("structuredContent") {
        Some(Value::String(text)) => Some(text.clone()),
        Some(value) if !value.is_null() => Some(value.to_string()),
        _ => None,
    }
}

fn render_block(block: &Value) -> String {
    let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
    let mime = block
        .get("mimeType")
        .and_then(Value::as_str)
        .unwrap_or("unknown type");
    match kind {
        "text" => block
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        "image" | "audio" => format!(
            "[{kind} ({mime}, {} bytes of base64): not shown, a function output carries text only]",
            base64_len(block.get("data"))
        ),
        "resource" => render_resource(block.get("resource").unwrap_or(&Value::Null)),
        "resource_link" => {
            let uri = block.get("uri").and_then(Value::as_str).unwrap_or("?");
            match block.get("name").and_then(Value::as_str) {
                Some(name) => format!("[resource link: {name} <{uri}>]"),
                None => format!("[resource link: <{uri}>]"),
            }
        }
        other => format!("[content of type `{other}`, which this client does not show]"),
    }
}

fn render_resource(resource: &Value) -> String {
    let uri = resource.get("uri").and_then(Value::as_str).unwrap_or("?");
    if let Some(text) = resource.get("text").and_then(Value::as_str) {
        return format!("[resource <{uri}>]\n{text}");
    }
    let mime = resource
        .get("mimeType")
        .and_then(Value::as_str)
        .unwrap_or("unknown type");
    format!(
        "[resource <{uri}> ({mime}, {} bytes of base64): binary, not shown]",
        base64_len(resource.get("blob"))
    )
}

fn base64_len(data: Option<&Value>) -> usize {
    data.and_then(Value::as_str).map_or(0, str::len)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn output(result: Value) -> Result<String, ToolError> {
        to_output("srv", "tool", &result, 1000).map(ToolOutput::into_string)
    }

    #[test]
    fn text_blocks_are_sent_as_they_are() {
        assert_eq!(
            output(json!({"content": [{"type": "text", "text": "sunny, 21 °C"}]})).unwrap(),
            "sunny, 21 °C"
        );
        assert_eq!(
            output(json!({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "isError": false})).unwrap(),
            "a\n\nb"
        );
    }

    #[test]
    fn structured_content_is_json_when_there_is_no_text() {
        assert_eq!(
            output(json!({"content": [], "structuredContent": {"sum": 5}})).unwrap(),
            r#"{"sum":5}"#
        );
        // Both: the text block is the readable form.
        assert_eq!(
            output(
                json!({"content": [{"type": "text", "text": "5"}], "structuredContent": {"sum": 5}})
            )
            .unwrap(),
            "5"
        );
        assert_eq!(
            output(json!({"content": []})).unwrap(),
            "(the tool returned no content)"
        );
    }

    #[test]
    fn binary_content_is_named_not_dropped() {
        let text = output(json!({"content": [
            {"type": "image", "data": "aGVsbG8=", "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "file:///a.txt", "text": "hello"}},
            {"type": "resource", "resource": {"uri": "file:///a.bin", "blob": "AAAA", "mimeType": "application/octet-stream"}},
            {"type": "resource_link", "uri": "file:///b", "name": "b"},
            {"type": "hologram"}
        ]}))
        .unwrap();
        assert!(
            text.contains("[image (image/png, 8 bytes of base64)"),
            "{text}"
        );
        assert!(text.contains("[resource <file:///a.txt>]\nhello"), "{text}");
        assert!(text.contains("application/octet-stream, 4 bytes"), "{text}");
        assert!(text.contains("[resource link: b <file:///b>]"), "{text}");
        assert!(text.contains("`hologram`"), "{text}");
    }

    #[test]
    fn is_error_becomes_a_tool_error() {
        let err =
            output(json!({"content": [{"type": "text", "text": "no such city"}], "isError": true}))
                .unwrap_err();
        assert_eq!(err, ToolError::failed("no such city"));
        let err = output(json!({"content": [], "isError": true})).unwrap_err();
        assert!(err.to_string().contains("without a message"), "{err}");
    }

    #[test]
    fn oversized_results_are_refused_with_both_sizes() {
        let big = "x".repeat(1001);
        let err = output(json!({"content": [{"type": "text", "text": big}]})).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("1001 bytes") && message.contains("limit of 1000"),
            "{message}"
        );
    }
}
