//! `calculate`: arithmetic the model should not do in its head.

mod expression;

use agent_tool::tool;
use serde_json::{Value, json};

pub use expression::{CalcError, MAX_DEPTH, MAX_LENGTH, evaluate};

link_anchor!();

/// Evaluates an arithmetic expression exactly as written and returns the number. Use it for any
/// arithmetic instead of computing in your head. Supports + - * / % (remainder), ^ (power),
/// parentheses, decimals, and the functions sqrt, abs, round, floor, ceil, ln, log10, exp, sin,
/// cos, tan, min, max and the constants pi and e.
#[tool(deterministic)]
pub fn calculate(
    /// The expression, e.g. "(12.5 * 4) / 3" or "2 ^ 10 - sqrt(16)".
    expression: String,
) -> Result<Value, CalcError> {
    let result = evaluate(&expression)?;
    Ok(json!({ "expression": expression.trim(), "result": tidy(result) }))
}

/// A result as a person reads it: integers without `.0`, and no binary-fraction noise
/// (`0.1 + 0.2` is `0.3`).
fn tidy(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        // Exact: |value| < 2^53 and integral.
        #[allow(clippy::cast_possible_truncation)]
        return Value::from(value as i64);
    }
    // Large integers keep every digit f64 has; fractions lose the noise past 12 digits.
    let rounded: f64 = if value.fract() == 0.0 {
        value
    } else {
        format!("{value:.11e}").parse().unwrap_or(value)
    };
    serde_json::Number::from_f64(rounded).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_read_well() {
        assert_eq!(
            calculate("2 + 2".into()).unwrap(),
            json!({"expression": "2 + 2", "result": 4})
        );
        assert_eq!(calculate("0.1 + 0.2".into()).unwrap()["result"], json!(0.3));
        assert_eq!(
            calculate("1 / 3".into()).unwrap()["result"],
            json!(0.333333333333)
        );
        assert_eq!(
            calculate("-2^63".into()).unwrap()["result"],
            json!(-9.223372036854776e18)
        );
        let err = calculate("1/0".into()).unwrap_err();
        assert_eq!(err.to_string(), "division by zero");
    }
}
