//! The built-in tools every agent can list in its `tools = [...]`.
//!
//! - `current_time` ([`time`]): the date and time, in an optional IANA time zone;
//! - [`calculate`]: arithmetic through a small, safe parser (no eval, no panics);
//! - [`http_get`]: fetches a URL from the agent's allowlist of hosts, with SSRF
//!   protection, size and time limits;
//! - the guardrail `payment_card_numbers` ([`guardrails`]), for `type = "rust"` under an agent
//!   file's `[guardrails]`;
//! - the support demo over a bundled data set (`agents/data/support/`): [`lookup_order`],
//!   [`search_help_center`] and [`create_ticket`](support).
//!
//! Each tool is a plain function with `#[tool]`, so it is registered through `inventory`. A
//! program gets them with [`registry`], which also makes sure the linker kept them: a binary
//! that never names this crate would silently lose its tools, and one that calls `registry()`
//! cannot. Per-agent settings arrive through [`ToolContext::setting`], keyed by tool name (the
//! agent file's `[tool_config.<tool>]` tables); each tool documents its own.
//!
//! [`ToolContext::setting`]: agent_tool::ToolContext::setting
//! [`lookup_order`]: support::lookup_order
//! [`search_help_center`]: support::search_help_center

/// Defines `LINK`, a function pointer [`link`] references so the module's object code (and with
/// it the module's `inventory` submission) is always linked.
macro_rules! link_anchor {
    () => {
        /// Referenced by [`crate::link`] so this module's tool submission is linked.
        pub(crate) const LINK: fn() = {
            #[inline(never)]
            fn anchor() {
                std::hint::black_box(module_path!());
            }
            anchor
        };
    };
}

pub mod calculate;
pub mod guardrails;
pub mod http_get;
mod net_policy;
pub mod support;
pub mod time;

use agent_core::tool::{RegistryError, ToolRegistry};

pub use net_policy::{HostAllowlist, is_special_address};

/// The names of the built-in tools, in the order `agent tools` documents them.
pub const BUILTIN_TOOLS: &[&str] = &[
    "current_time",
    "calculate",
    "http_get",
    "lookup_order",
    "search_help_center",
    "create_ticket",
];

/// Every registered tool — the built-ins and any `#[tool]` in crates linked into the program —
/// checked for duplicate names.
///
/// Calling this is what keeps the built-ins linked in; it also fails loudly, naming the tool,
/// if one of them went missing anyway.
pub fn registry() -> Result<ToolRegistry, RegistryError> {
    link();
    let registry = ToolRegistry::from_inventory()?;
    if let Some(missing) = BUILTIN_TOOLS.iter().find(|name| !registry.contains(name)) {
        return Err(RegistryError::NotLinked {
            name: (*missing).to_owned(),
        });
    }
    Ok(registry)
}

/// References every module that submits a tool, so the linker cannot drop their `inventory`
/// submissions. [`registry`] calls it; call it yourself if you build the registry another way.
pub fn link() {
    std::hint::black_box([
        guardrails::LINK,
        time::LINK,
        calculate::LINK,
        http_get::LINK,
        support::orders::LINK,
        support::help_center::LINK,
        support::tickets::LINK,
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_tool::schema;

    #[test]
    fn every_builtin_registers_with_a_strict_schema() {
        let registry = registry().unwrap();
        for name in BUILTIN_TOOLS {
            let tool = registry.get(name).unwrap();
            assert!(!tool.description().is_empty(), "{name}");
            schema::check_strict(tool.parameters(true)).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
