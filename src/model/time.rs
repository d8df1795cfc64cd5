//! Event-time helpers. All internal times are milliseconds since the Unix epoch (UTC);
//! text on the wire is RFC 3339.

use chrono::{DateTime, SecondsFormat, Utc};

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a minute.
pub const MINUTE_MS: i64 = 60_000;
/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// The latest instant we accept (9999-12-31T23:59:59.999Z); later values are certainly bugs.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Parses an RFC 3339 timestamp into epoch milliseconds.
///
/// The shape producers almost always send (`2026-01-05T09:30:00Z`, optionally with a
/// fraction) is parsed directly; every other form (offsets, leap seconds, lowercase
/// separators) goes through chrono.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    parse_utc_fast(text)
        .or_else(|| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.timestamp_millis())
        })
        .filter(|ms| (0..=MAX_TIME_MS).contains(ms))
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`, or `None` for anything else (including any value
/// out of range, which chrono then judges).
fn parse_utc_fast(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || *b.last()? != b'Z' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        b.get(range)?.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let fraction = &b[19..b.len() - 1];
    let millis = match fraction.split_first() {
        None => 0,
        Some((b'.', decimals)) if (1..=9).contains(&decimals.len()) => {
            let value = digits(20..20 + decimals.len())?;
            let scale = 10i64.pow(decimals.len() as u32);
            value * 1000 / scale
        }
        _ => return None,
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1_000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats epoch milliseconds as RFC 3339 in UTC with millisecond precision.
pub fn format_rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A point in time as epoch milliseconds, written as an RFC 3339 string (UTC, with
/// milliseconds, as [`format_rfc3339`]) on the wire. Outputs keep their times as this
/// number, so nothing reads a time back from text; it is formatted once, when the
/// output is serialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `ms` milliseconds after the Unix epoch.
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_rfc3339(self.0))
    }
}

impl PartialEq<&str> for Timestamp {
    fn eq(&self, other: &&str) -> bool {
        parse_rfc3339(other) == Some(self.0)
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_rfc3339(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        parse_rfc3339(&text)
            .map(Timestamp)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time")))
    }
}

/// A compact human form (`2026-01-12 14:03`) for terminal output.
pub fn format_short(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// Hours in a week: the slots of an hour-of-week profile.
pub const HOURS_PER_WEEK: usize = 168;
/// 1970-01-01 was a Thursday; Monday 1970-01-05 00:00 UTC is hour 96.
const FIRST_MONDAY_HOUR: i64 = 96;

/// The hour of the week (0 = Monday 00:00-01:00 UTC) of a time: the slot the learned
/// activity profile and the registry's declared working hours are both indexed by.
pub fn hour_of_week(time_ms: i64) -> usize {
    let hour = time_ms.div_euclid(HOUR_MS) - FIRST_MONDAY_HOUR;
    hour.rem_euclid(HOURS_PER_WEEK as i64) as usize
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

/// Parses a duration that must be above zero (timeouts, windows, bounds): the one rule
/// shared by CLI flags, the service config and detector parameters, each of which adds
/// its own message naming the flag, key or parameter.
pub fn parse_positive_duration_ms(text: &str) -> Option<i64> {
    parse_duration_ms(text).filter(|ms| *ms > 0)
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

    proptest::proptest! {
        #[test]
        fn fast_path_agrees_with_chrono(ms in 0i64..MAX_TIME_MS, precision in 0usize..4) {
            let time = DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
            let text = match precision {
                0 => time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                1 => time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                2 => time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
                _ => time.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string(),
            };
            let chrono = DateTime::parse_from_rfc3339(&text).ok().map(|t| t.timestamp_millis());
            proptest::prop_assert_eq!(parse_utc_fast(&text), chrono, "{}", text);
        }
    }

    #[test]
    fn fast_path_declines_what_it_does_not_know() {
        for text in [
            "2026-02-30T00:00:00Z",
            "2026-01-05T24:00:00Z",
            "2026-01-05T09:30:00+01:00",
            "2026-01-05t09:30:00z",
            "2026-01-05T09:30:60Z",
        ] {
            assert_eq!(parse_utc_fast(text), None, "{text}");
        }
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00.5Z"),
            Some(1_709_208_000_500)
        );
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
