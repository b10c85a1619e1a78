//! How a `#[tool]` announces itself: a [`ToolRegistration`] submitted to `inventory` at link
//! time, which a registry (agent-core's `ToolRegistry::from_inventory`) collects.

use std::sync::Arc;

use super::Tool;

/// A tool submitted to `inventory` by `#[tool]`; iterate them with
/// `inventory::iter::<ToolRegistration>`.
///
/// A crate's submissions are linked only if the program uses the crate: a binary that merely
/// depends on a tool crate should name it (`use my_tools as _;`).
#[derive(Debug)]
pub struct ToolRegistration {
    constructor: fn() -> Arc<dyn Tool>,
    source: &'static str,
}

impl ToolRegistration {
    /// A registration; `source` says where the tool is defined (`crate::module (file:line)`),
    /// so a duplicate-name error can name both places.
    pub const fn new(constructor: fn() -> Arc<dyn Tool>, source: &'static str) -> Self {
        ToolRegistration {
            constructor,
            source,
        }
    }

    /// A fresh instance of the tool.
    pub fn construct(&self) -> Arc<dyn Tool> {
        (self.constructor)()
    }

    /// Where the tool is defined.
    pub fn source(&self) -> &'static str {
        self.source
    }
}

inventory::collect!(ToolRegistration);

/// Whether the Realtime API accepts `name` as a function name: 1 to 64 ASCII letters, digits,
/// `_` or `-`.
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_api_accepts() {
        for good in ["a", "lookup_order", "get-weather", "X9", &"x".repeat(64)] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", "has space", "dot.ted", "é", &"x".repeat(65)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
