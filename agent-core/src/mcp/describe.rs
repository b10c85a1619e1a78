//! Errors of the SDK and the HTTP client as one readable line: the chain of causes, without
//! the SDK's transport type names, scrubbed of known secrets (these lines reach the model).

use std::error::Error;

use rmcp::{ServiceError, service::ClientInitializeError, transport::DynamicTransportError};

/// `err` and its causes, joined by `: `, each said once.
pub(crate) fn error_chain(err: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    collect(err, &mut parts);
    crate::redact::scrub(&parts.join(": ")).into_owned()
}

fn collect(err: &(dyn Error + 'static), parts: &mut Vec<String>) {
    // Wrappers whose text is a type name plus their cause: only the cause says anything.
    if err.downcast_ref::<DynamicTransportError>().is_some()
        || matches!(
            err.downcast_ref::<ServiceError>(),
            Some(ServiceError::TransportSend(_))
        )
    {
        if let Some(source) = err.source() {
            collect(source, parts);
        }
        return;
    }
    if let Some(ClientInitializeError::TransportError { error, context }) =
        err.downcast_ref::<ClientInitializeError>()
    {
        parts.push(context.to_string());
        collect(error, parts);
        return;
    }
    let text = err.to_string();
    if !parts.last().is_some_and(|last| last.contains(&text)) {
        parts.push(text);
    }
    if let Some(source) = err.source() {
        collect(source, parts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {inner}")]
    struct Outer {
        #[source]
        inner: Inner,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("connection refused")]
    struct Inner;

    #[test]
    fn causes_are_joined_once_without_type_names() {
        assert_eq!(
            error_chain(&Outer { inner: Inner }),
            "outer: connection refused"
        );
        let wrapped = ServiceError::TransportSend(DynamicTransportError::from_parts(
            "rmcp::transport::worker::WorkerTransport<Some<Long<Type>>>",
            std::any::TypeId::of::<Inner>(),
            Box::new(Inner),
        ));
        assert_eq!(error_chain(&wrapped), "connection refused");
        let init = ClientInitializeError::TransportError {
            error: DynamicTransportError::from_parts(
                "T",
                std::any::TypeId::of::<Inner>(),
                Box::new(Inner),
            ),
            context: "send initialize request".into(),
        };
        assert_eq!(
            error_chain(&init),
            "send initialize request: connection refused"
        );
    }
}
