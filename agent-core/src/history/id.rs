//! Conversation ids and timestamps.
//!
//! Ids sort by creation time as plain strings (`conv_` + ten base-32 digits of the creation
//! millisecond + six random ones), so a listing sorted by id is in creation order and two
//! processes creating conversations in the same millisecond still get different ids.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Crockford's base 32 in lower case: no `i l o u`, and ASCII order equals numeric order.
const BASE32: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// The id of a stored conversation, e.g. `conv_01jh6x2k3m_7f3a9c`.
///
/// Any non-empty string is accepted when reading (an imported conversation keeps its id);
/// [`ConversationId::generate`] makes new ones.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConversationId(String);

impl ConversationId {
    /// A new id, unique and sortable by creation time.
    pub fn generate() -> Self {
        Self::generate_at(Timestamp::now(), fastrand::u32(..))
    }

    fn generate_at(at: Timestamp, random: u32) -> Self {
        let millis = u64::try_from(at.as_millis()).unwrap_or(0);
        let mut id = String::with_capacity(22);
        id.push_str("conv_");
        push_base32(&mut id, millis, 10);
        id.push('_');
        push_base32(&mut id, u64::from(random), 6);
        ConversationId(id)
    }

    /// Wraps an id read from a database, a command line or an import.
    pub fn new(id: impl Into<String>) -> Self {
        ConversationId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for ConversationId {
    fn from(id: String) -> Self {
        ConversationId(id)
    }
}

impl From<&str> for ConversationId {
    fn from(id: &str) -> Self {
        ConversationId(id.to_owned())
    }
}

impl AsRef<str> for ConversationId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Appends the low `digits * 5` bits of `value`, most significant digit first.
fn push_base32(out: &mut String, value: u64, digits: u32) {
    for i in (0..digits).rev() {
        let index = (value >> (i * 5)) & 31;
        out.push(char::from(BASE32[index as usize]));
    }
}

/// A point in time, in milliseconds since the Unix epoch (UTC).
///
/// Stored as an integer so the database sorts and compares it cheaply; [`fmt::Display`] gives
/// RFC 3339 in UTC (`2025-01-02T03:04:05Z`) without a date-time dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time (the epoch if the clock is set before 1970).
    pub fn now() -> Self {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(millis)
    }

    /// The time `millis` milliseconds after the epoch.
    pub fn from_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// Milliseconds since the epoch.
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// `YYYY-MM-DD HH:MM` in UTC, for tables where seconds are noise.
    pub fn to_short_string(self) -> String {
        let (date, (hour, minute, _)) = self.parts();
        format!("{date} {hour:02}:{minute:02}")
    }

    fn parts(self) -> (String, (i64, i64, i64)) {
        let seconds = self.0.div_euclid(1000);
        let days = seconds.div_euclid(86_400);
        let in_day = seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        (
            format!("{year:04}-{month:02}-{day:02}"),
            (in_day / 3600, in_day % 3600 / 60, in_day % 60),
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (date, (hour, minute, second)) = self.parts();
        write!(f, "{date}T{hour:02}:{minute:02}:{second:02}Z")
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_as_utc() {
        assert_eq!(
            Timestamp::from_millis(0).to_string(),
            "1970-01-01T00:00:00Z"
        );
        // 2024-02-29T23:59:59.999Z, a leap day.
        assert_eq!(
            Timestamp::from_millis(1_709_251_199_999).to_string(),
            "2024-02-29T23:59:59Z"
        );
        assert_eq!(
            Timestamp::from_millis(1_735_787_045_000).to_short_string(),
            "2025-01-02 03:04"
        );
        assert_eq!(
            Timestamp::from_millis(-1000).to_string(),
            "1969-12-31T23:59:59Z"
        );
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let early = ConversationId::generate_at(Timestamp::from_millis(1_000), u32::MAX);
        let late = ConversationId::generate_at(Timestamp::from_millis(1_001), 0);
        assert!(early < late, "{early} < {late}");
        assert_eq!(early.as_str().len(), "conv_0000000000_000000".len());
        assert!(late.as_str().starts_with("conv_"));
        assert_ne!(ConversationId::generate(), ConversationId::generate());
    }
}
