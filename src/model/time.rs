//! Event-time helpers. All internal times are milliseconds since the Unix epoch (UTC);
//! text on the wire is RFC 3339.

use chrono::{DateTime, SecondsFormat, Utc};

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// The latest instant we accept (9999-12-31T23:59:59.999Z); later values are certainly bugs.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Parses an RFC 3339 timestamp into epoch milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
        .filter(|ms| (0..=MAX_TIME_MS).contains(ms))
}

/// Formats epoch milliseconds as RFC 3339 in UTC with millisecond precision.
pub fn format_rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A compact human form (`2026-01-12 14:03`) for terminal output.
pub fn format_short(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// Parses durations such as `90s`, `10m`, `1h`, `7d` (integer amount plus one unit).
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (amount, unit) = text.split_at(split);
    let amount: i64 = amount.parse().ok()?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => HOUR_MS,
        "d" => DAY_MS,
        _ => return None,
    };
    amount.checked_mul(unit_ms)
}

/// Renders a duration in the largest whole unit that fits (`2h`, `90m`, `3d`).
pub fn format_duration(ms: i64) -> String {
    for (unit, size) in [("d", DAY_MS), ("h", HOUR_MS), ("m", 60_000), ("s", 1_000)] {
        if ms >= size && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_at_millisecond_precision() {
        let ms = parse_rfc3339("2026-01-05T09:30:00.250+01:00").unwrap();
        assert_eq!(format_rfc3339(ms), "2026-01-05T08:30:00.250Z");
    }

    #[test]
    fn rejects_garbage_and_pre_epoch_times() {
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), None);
    }

    #[test]
    fn durations_parse_and_render() {
        assert_eq!(parse_duration_ms("10m"), Some(600_000));
        assert_eq!(parse_duration_ms("2d"), Some(2 * DAY_MS));
        assert_eq!(parse_duration_ms("5 parsecs"), None);
        assert_eq!(parse_duration_ms("h"), None);
        assert_eq!(format_duration(2 * HOUR_MS), "2h");
        assert_eq!(format_duration(90 * 60_000), "90m");
    }
}
