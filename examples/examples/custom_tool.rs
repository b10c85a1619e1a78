//! A custom tool, defined in a user's crate with `#[tool]`.
//!
//! Run it with `cargo run -p examples --example custom_tool`. It shows the three things that
//! make a tool usable: it registers (it is in the same registry as the built-ins, which is what
//! `agent tools` lists and agent files pick from), it describes itself with the exact schema
//! the model gets, and it runs when called through the registry the way the runtime calls it —
//! with a JSON argument string, bad arguments becoming an error the model can read.

use agent_tool::{ToolContext, ToolError, tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a parcel goes.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Destination {
    /// ISO 3166 country code, e.g. "DE".
    pub country: String,
    /// Postal code, if the customer gave one.
    pub postal_code: Option<String>,
}

/// How fast it should arrive.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Speed {
    /// 3 to 5 business days.
    Standard,
    /// Next business day.
    Express,
}

/// What the model reads back.
#[derive(Debug, Serialize)]
pub struct Quote {
    /// Price in euros.
    pub price_eur: f64,
    /// Business days until delivery.
    pub days: u32,
    /// The speed quoted.
    pub speed: Speed,
}

/// Quotes the shipping price and delivery time for a parcel. Use it when the customer asks
/// what shipping costs or how long it takes.
#[tool]
pub fn shipping_quote(
    /// Where the parcel goes.
    destination: Destination,
    /// The parcel's weight in kilograms.
    #[schemars(range(min = 0.1, max = 30.0))]
    weight_kg: f64,
    /// Standard unless the customer asks for express.
    speed: Option<Speed>,
    ctx: ToolContext,
) -> Result<Quote, ToolError> {
    if !(0.1..=30.0).contains(&weight_kg) {
        return Err(ToolError::invalid_arguments(
            "shipping_quote",
            format!("{weight_kg} kg is outside what we ship"),
            "a weight between 0.1 and 30 kg",
        ));
    }
    let speed = speed.unwrap_or(Speed::Standard);
    let domestic = destination.country.eq_ignore_ascii_case("DE");
    let base = if domestic { 4.9 } else { 12.9 };
    let (factor, days) = match speed {
        Speed::Standard => (1.0, if domestic { 3 } else { 5 }),
        Speed::Express => (2.5, 1),
    };
    tracing_free_log(&ctx, &destination);
    let price_eur = ((base + weight_kg * 0.8) * factor * 100.0).round() / 100.0;
    Ok(Quote {
        price_eur,
        days,
        speed,
    })
}

/// Stands in for logging: tools see which agent and call they serve.
fn tracing_free_log(ctx: &ToolContext, destination: &Destination) {
    let _ = (ctx.agent(), ctx.call_id(), &destination.postal_code);
}

fn main() -> anyhow::Result<()> {
    // The same registry `agent tools` lists: built-ins plus every #[tool] linked in.
    let registry = agent_tools::registry()?;
    let tool = registry
        .get("shipping_quote")
        .ok_or_else(|| anyhow::anyhow!("shipping_quote did not register"))?;
    println!("registered tools: {}", registry.names().join(", "));
    println!(
        "shipping_quote comes from {}",
        registry.source("shipping_quote").unwrap_or("?")
    );
    println!("\ndescription: {}", tool.description());
    println!(
        "strict schema: {}",
        serde_json::to_string_pretty(tool.parameters(true))?
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let calls = [
        r#"{"destination": {"country": "FR", "postal_code": null}, "weight_kg": 2.5, "speed": "express"}"#,
        r#"{"destination": {"country": "DE", "postal_code": "10115"}, "weight_kg": 1, "speed": null}"#,
        r#"{"destination": {"country": "DE"}, "weight_kg": "heavy"}"#,
    ];
    for arguments in calls {
        let ctx = ToolContext::new("call_demo", "example", "session_demo", Default::default());
        let result = runtime.block_on(registry.invoke("shipping_quote", arguments, ctx));
        let output = match result {
            Ok(output) => output.into_string(),
            Err(err) => err.to_model_output(),
        };
        println!("\nshipping_quote({arguments})\n  -> {output}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_next_to_the_builtins() {
        let registry = agent_tools::registry().unwrap();
        assert!(registry.contains("shipping_quote"));
        assert!(registry.contains("calculate"));
        let source = registry.source("shipping_quote").unwrap();
        assert!(source.contains("custom_tool"), "{source}");
        agent_tool::schema::check_strict(registry.get("shipping_quote").unwrap().parameters(true))
            .unwrap();
    }

    #[tokio::test]
    async fn runs_through_the_registry() {
        let registry = agent_tools::registry().unwrap();
        let output = registry
            .invoke(
                "shipping_quote",
                r#"{"destination": {"country": "DE", "postal_code": null}, "weight_kg": 1, "speed": "standard"}"#,
                ToolContext::standalone(),
            )
            .await
            .unwrap();
        let quote: serde_json::Value = serde_json::from_str(output.as_str()).unwrap();
        assert_eq!(
            quote,
            serde_json::json!({"price_eur": 5.7, "days": 3, "speed": "standard"})
        );

        let err = registry
            .invoke(
                "shipping_quote",
                r#"{"destination": {"country": "DE"}, "weight_kg": "heavy"}"#,
                ToolContext::standalone(),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("argument `weight_kg`"), "{err}");
    }
}
