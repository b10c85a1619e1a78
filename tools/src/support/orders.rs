//! `lookup_order`: an order's status, items and delivery details.

use std::sync::OnceLock;

use agent_tool::{ToolError, tool};
use serde_json::Value;

link_anchor!();

/// The tool name.
pub const NAME: &str = "lookup_order";
const ORDERS_JSON: &str = include_str!("../../../agents/data/support/orders.json");
const ID_FORMAT: &str = "order ids are a letter followed by 4 digits, like A1001";

fn orders() -> &'static [Value] {
    static ORDERS: OnceLock<Vec<Value>> = OnceLock::new();
    ORDERS.get_or_init(|| serde_json::from_str(ORDERS_JSON).unwrap_or_default())
}

/// Looks up an order by its id and returns its status (processing, shipped, delivered,
/// cancelled or returned), items, total, and delivery or refund details. Call it for any
/// question about an order; never guess an order's status.
#[tool(deterministic)]
pub fn lookup_order(
    /// The order id as the customer says it, e.g. "A1001".
    order_id: String,
) -> Result<Value, ToolError> {
    let id = normalize_id(&order_id).ok_or_else(|| {
        ToolError::invalid_arguments(NAME, format!("`{order_id}` is not an order id"), ID_FORMAT)
    })?;
    orders()
        .iter()
        .find(|order| order["id"] == id.as_str())
        .cloned()
        .ok_or_else(|| {
            ToolError::failed(format!(
                "order {id} not found; check the id with the customer ({ID_FORMAT})"
            ))
        })
}

/// `a 1001`, `A-1001`, ` a1001 ` → `A1001`; anything else that is not letter + 4 digits → None.
fn normalize_id(raw: &str) -> Option<String> {
    let compact: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '#')
        .collect::<String>()
        .to_ascii_uppercase();
    let mut chars = compact.chars();
    let letter = chars.next()?;
    let digits: String = chars.collect();
    (letter.is_ascii_alphabetic()
        && digits.len() == 4
        && digits.bytes().all(|b| b.is_ascii_digit()))
    .then(|| format!("{letter}{digits}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_set_is_complete() {
        let orders = orders();
        assert!(orders.len() >= 8);
        for status in ["shipped", "delivered", "processing", "cancelled"] {
            assert!(orders.iter().any(|o| o["status"] == status), "{status}");
        }
    }

    #[test]
    fn finds_orders_however_they_are_spoken() {
        for spoken in ["A1001", "a1001", " a 1001 ", "A-1001", "#A1001"] {
            assert_eq!(
                lookup_order(spoken.into()).unwrap()["status"],
                "shipped",
                "{spoken}"
            );
        }
    }

    #[test]
    fn unknown_and_malformed_ids_are_clear() {
        let err = lookup_order("Z9999".into()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "order Z9999 not found; check the id with the customer (order ids are a letter followed by 4 digits, like A1001)"
        );
        let err = lookup_order("my order".into()).unwrap_err();
        assert!(matches!(err, ToolError::InvalidArguments { .. }));
        assert!(err.to_string().contains("like A1001"), "{err}");
    }
}
