//! Temperature tools for realtime agents: an example of a tool crate outside the framework.
//!
//! The crate depends on `agent-tool` only, so it compiles in seconds without the runtime
//! (WebSockets, TLS, SQLite). Its tools reach `agent run`, `agent test` and `agent mock`
//! through the binary in `agent/`, which links it and calls `agent_cli::main()`.

use agent_tool::{ToolContext, ToolError, tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A temperature scale.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Degrees Celsius.
    Celsius,
    /// Degrees Fahrenheit.
    Fahrenheit,
    /// Kelvin.
    Kelvin,
}

impl Scale {
    fn symbol(self) -> &'static str {
        match self {
            Scale::Celsius => "°C",
            Scale::Fahrenheit => "°F",
            Scale::Kelvin => "K",
        }
    }

    fn to_kelvin(self, value: f64) -> f64 {
        match self {
            Scale::Celsius => value + 273.15,
            Scale::Fahrenheit => (value - 32.0) * 5.0 / 9.0 + 273.15,
            Scale::Kelvin => value,
        }
    }

    fn value_of(self, kelvin: f64) -> f64 {
        match self {
            Scale::Celsius => kelvin - 273.15,
            Scale::Fahrenheit => (kelvin - 273.15) * 9.0 / 5.0 + 32.0,
            Scale::Kelvin => kelvin,
        }
    }
}

/// The agent file's `[tool_config.convert_temperature]`, checked when the file loads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversionSettings {
    /// Decimal places in the answer (default 1).
    pub decimals: Option<u8>,
}

/// What the model reads back.
#[derive(Debug, PartialEq, Serialize)]
pub struct Conversion {
    /// The converted value, rounded.
    pub value: f64,
    /// Its scale.
    pub scale: Scale,
    /// The conversion as a sentence, e.g. "100 °C is 212 °F".
    pub text: String,
}

/// Converts a temperature between Celsius, Fahrenheit and Kelvin. Use it whenever the user asks
/// for a temperature in another scale, instead of converting it yourself.
#[tool(settings = ConversionSettings)]
pub fn convert_temperature(
    /// The temperature to convert.
    value: f64,
    /// The scale `value` is in.
    from: Scale,
    /// The scale wanted.
    to: Scale,
    ctx: ToolContext,
) -> Result<Conversion, ToolError> {
    let settings: ConversionSettings = ctx.setting("convert_temperature")?.unwrap_or_default();
    let kelvin = from.to_kelvin(value);
    if !kelvin.is_finite() || kelvin < 0.0 {
        return Err(ToolError::invalid_arguments(
            "convert_temperature",
            format!("{value} {} is below absolute zero", from.symbol()),
            "a temperature at or above absolute zero (0 K, -273.15 °C, -459.67 °F)",
        ));
    }
    let factor = 10f64.powi(i32::from(settings.decimals.unwrap_or(1).min(6)));
    let converted = (to.value_of(kelvin) * factor).round() / factor;
    Ok(Conversion {
        value: converted,
        scale: to,
        text: format!("{value} {} is {converted} {}", from.symbol(), to.symbol()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_tool::{ToolConfig, check_settings_as};
    use std::sync::Arc;

    #[test]
    fn converts_between_scales() {
        let ctx = ToolContext::standalone;
        let boiling = convert_temperature(100.0, Scale::Celsius, Scale::Fahrenheit, ctx()).unwrap();
        assert_eq!(boiling.value, 212.0);
        assert_eq!(boiling.text, "100 °C is 212 °F");
        let freezing = convert_temperature(32.0, Scale::Fahrenheit, Scale::Kelvin, ctx()).unwrap();
        assert_eq!(freezing.value, 273.2);
    }

    #[test]
    fn below_absolute_zero_is_an_error_the_model_reads() {
        let err = convert_temperature(
            -300.0,
            Scale::Celsius,
            Scale::Kelvin,
            ToolContext::standalone(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("below absolute zero"), "{err}");
    }

    #[test]
    fn settings_are_used_and_checked() {
        let config = ToolConfig::new()
            .with_setting("convert_temperature", serde_json::json!({"decimals": 3}));
        let ctx = ToolContext::standalone().with_config(Arc::new(config));
        let body = convert_temperature(98.6, Scale::Fahrenheit, Scale::Celsius, ctx).unwrap();
        assert_eq!(body.value, 37.0);
        let err = check_settings_as::<ConversionSettings>(&serde_json::json!({"decimal": 2}))
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("decimal"));
    }
}
