//! Deserialize helpers for what live servers really send.
//!
//! Servers send `null` for many fields the spec types as non-null (`event_id`, arrays,
//! `status_details`, ...). These helpers turn such nulls into the field's default instead of
//! failing the whole event.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Reads a value, treating JSON `null` like an absent field (the type's default).
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Reads an optional value that some servers fill with junk (for example a debugging proxy
/// that replaced an object with a placeholder string). A value of the wrong shape becomes
/// `None` with a warning in the log instead of failing the event that carries it.
pub(crate) fn lenient_option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    match T::deserialize(&value) {
        Ok(parsed) => Ok(Some(parsed)),
        Err(error) => {
            tracing::warn!(
                %error,
                value = %value,
                "ignoring a malformed optional field in a server event"
            );
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Default, Debug, PartialEq)]
    struct Holder {
        #[serde(default, deserialize_with = "null_as_default")]
        list: Vec<u32>,
        #[serde(default, deserialize_with = "lenient_option")]
        detail: Option<Detail>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Detail {
        n: u32,
    }

    #[test]
    fn null_becomes_default() {
        let holder: Holder = serde_json::from_str(r#"{"list": null}"#).unwrap();
        assert_eq!(holder, Holder::default());
    }

    #[test]
    fn lenient_keeps_good_values_and_drops_junk() {
        let good: Holder = serde_json::from_str(r#"{"detail": {"n": 3}}"#).unwrap();
        assert_eq!(good.detail, Some(Detail { n: 3 }));
        let junk: Holder = serde_json::from_str(r#"{"detail": "__truncated__"}"#).unwrap();
        assert_eq!(junk.detail, None);
    }
}
