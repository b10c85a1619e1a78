//! `current_time`: what time it is, where.
//!
//! Settings (`[tool_config.current_time]`, checked when the agent file loads): `timezone`, the
//! zone used when the model gives none (defaults to the machine's zone).

use agent_tool::{ToolContext, ToolError, tool};
use jiff::{Timestamp, tz::TimeZone};
use serde::{Deserialize, Deserializer, Serialize, de::Error as _};

link_anchor!();

/// The settings key and tool name.
pub const NAME: &str = "current_time";

/// `[tool_config.current_time]`. Deserializing resolves the zone, so the loader reports an
/// unknown one with the file's line and column.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeSettings {
    /// The IANA zone used when the model names none.
    #[serde(default, deserialize_with = "known_zone")]
    pub timezone: Option<String>,
}

fn known_zone<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let wanted = String::deserialize(deserializer)?;
    match resolve_zone(&wanted) {
        Ok(_) => Ok(Some(wanted)),
        Err(ToolError::InvalidArguments { message, .. }) => Err(D::Error::custom(message)),
        Err(other) => Err(D::Error::custom(other)),
    }
}

/// What the model reads.
#[derive(Debug, Serialize)]
pub struct CurrentTime {
    /// The zone's IANA name.
    pub timezone: String,
    /// RFC 3339 with offset, e.g. `2025-06-10T14:03:12+02:00`.
    pub iso: String,
    /// How a person says it, e.g. `Tuesday, June 10, 2025, 2:03 PM`.
    pub spoken: String,
    /// The UTC offset, e.g. `+02:00`.
    pub utc_offset: String,
    /// The zone's abbreviation right now, e.g. `CEST`.
    pub abbreviation: String,
}

/// The current date and time. Use it whenever the answer depends on today's date or the time
/// of day, or when the user asks what time it is somewhere.
#[tool(settings = TimeSettings)]
pub fn current_time(
    /// An IANA time zone such as "Europe/Paris" or "America/New_York"; the agent's default
    /// zone when omitted.
    timezone: Option<String>,
    ctx: ToolContext,
) -> Result<CurrentTime, ToolError> {
    let settings: TimeSettings = ctx.setting(NAME)?.unwrap_or_default();
    let (name, zone) = match timezone.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(wanted) => resolve_zone(wanted)?,
        None => match settings.timezone {
            Some(configured) => resolve_zone(&configured)?,
            None => {
                let zone = TimeZone::system();
                let name = zone.iana_name().unwrap_or("UTC").to_owned();
                (name, zone)
            }
        },
    };
    Ok(describe(Timestamp::now(), name, zone))
}

fn describe(now: Timestamp, name: String, zone: TimeZone) -> CurrentTime {
    let zoned = now.to_zoned_datetime(zone);
    CurrentTime {
        timezone: name,
        iso: zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        spoken: zoned.strftime("%A, %B %-d, %Y, %-I:%M %p").to_string(),
        utc_offset: zoned.strftime("%:z").to_string(),
        abbreviation: zoned.strftime("%Z").to_string(),
    }
}

/// Finds a zone by exact name, by name ignoring case, or by its city ("paris", "New York").
fn resolve_zone(wanted: &str) -> Result<(String, TimeZone), ToolError> {
    if let Ok(zone) = TimeZone::get(wanted) {
        return Ok((zone.iana_name().unwrap_or(wanted).to_owned(), zone));
    }
    let normalized = wanted.replace(' ', "_").to_ascii_lowercase();
    let db = jiff::tz::db();
    let mut by_city = Vec::new();
    for name in db.available() {
        let name = name.as_str();
        if name.to_ascii_lowercase() == normalized
            && let Ok(zone) = TimeZone::get(name)
        {
            return Ok((name.to_owned(), zone));
        }
        let city = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
        if city == normalized && name.contains('/') {
            by_city.push(name.to_owned());
        }
    }
    by_city.sort();
    if let [only] = by_city.as_slice()
        && let Ok(zone) = TimeZone::get(only)
    {
        return Ok((only.clone(), zone));
    }
    let hint = if by_city.is_empty() {
        String::new()
    } else {
        format!(" (did you mean `{}`?)", by_city.join("` or `"))
    };
    Err(ToolError::invalid_arguments(
        NAME,
        format!("unknown time zone `{wanted}`{hint}"),
        "an IANA time zone name such as `Europe/Paris`, `America/New_York` or `UTC`, or null for the agent's default",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_tool::ToolConfig;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn named_zones_and_cities() {
        let now: Timestamp = "2025-06-10T12:03:12Z".parse().unwrap();
        let (name, zone) = resolve_zone("Europe/Paris").unwrap();
        let out = describe(now, name, zone);
        assert_eq!(out.timezone, "Europe/Paris");
        assert_eq!(out.iso, "2025-06-10T14:03:12+02:00");
        assert_eq!(out.spoken, "Tuesday, June 10, 2025, 2:03 PM");
        assert_eq!(out.utc_offset, "+02:00");
        assert_eq!(out.abbreviation, "CEST");

        assert_eq!(resolve_zone("new york").unwrap().0, "America/New_York");
        assert_eq!(resolve_zone("europe/berlin").unwrap().0, "Europe/Berlin");
        assert_eq!(resolve_zone("UTC").unwrap().0, "UTC");
    }

    #[test]
    fn settings_are_checked_when_the_agent_loads() {
        let registry = crate::registry().unwrap();
        let tool = registry.get(NAME).unwrap();
        tool.check_settings(&json!({"timezone": "Asia/Tokyo"}))
            .unwrap();
        tool.check_settings(&json!({})).unwrap();
        let err = tool
            .check_settings(&json!({"time_zone": "UTC"}))
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("time_zone"), "{err}");
        let err = tool
            .check_settings(&json!({"timezone": "Mars/Olympus_Mons"}))
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("timezone"), "{err}");
        assert!(err.message.contains("unknown time zone"), "{err}");
    }

    #[test]
    fn unknown_zones_are_clear_errors() {
        let err = resolve_zone("Mars/Olympus_Mons").unwrap_err();
        let ToolError::InvalidArguments {
            message, expected, ..
        } = err
        else {
            panic!()
        };
        assert_eq!(message, "unknown time zone `Mars/Olympus_Mons`");
        assert!(expected.contains("Europe/Paris"));
    }

    #[test]
    fn the_agent_default_applies() {
        let ctx = ToolContext::standalone().with_config(Arc::new(
            ToolConfig::new().with_setting(NAME, json!({"timezone": "Asia/Tokyo"})),
        ));
        assert_eq!(
            current_time(None, ctx.clone()).unwrap().timezone,
            "Asia/Tokyo"
        );
        assert_eq!(
            current_time(Some("UTC".into()), ctx).unwrap().utc_offset,
            "+00:00"
        );
        assert!(current_time(None, ToolContext::standalone()).is_ok());
    }
}
