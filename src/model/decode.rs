//! Strict, bounded decoding of agent-event v1.
//!
//! Strict about what the engine needs (required fields, types, lengths, known outcomes),
//! tolerant of what it does not (unknown top-level fields are ignored so producers can
//! evolve first). Every rejection carries a stable code, so a dead-letter queue can be
//! triaged by class without reading payloads.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::event::{Event, Outcome};
use super::scan;
use super::time::{parse_rfc3339, MAX_TIME_MS};
use super::watermark::OutOfRange;
use super::SCHEMA_VERSION;

/// Size bounds applied before and during decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted message in bytes; larger ones are rejected unparsed.
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 * 1024,
        }
    }
}

const MAX_EVENT_ID: usize = 128;
const MAX_AGENT_ID: usize = 256;
const MAX_ACTION: usize = 128;
const MAX_SYSTEM: usize = 256;
const MAX_CONTEXT: usize = 256;
const MAX_RESOURCE: usize = 1024;
const MAX_ATTRIBUTES: usize = 32;
const MAX_ATTRIBUTE_KEY: usize = 128;
const MAX_ATTRIBUTE_VALUE: usize = 1024;

/// Why a message is not a valid agent-event v1.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The message exceeds [`Limits::max_message_bytes`].
    #[error("message of {size} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Size of the message.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The bytes are not UTF-8.
    #[error("message is not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The text is not JSON.
    #[error("message is not JSON: {detail}")]
    NotJson {
        /// The parser's explanation, with position.
        detail: String,
    },
    /// A required field is absent or null.
    #[error("required field `{field}` is missing")]
    MissingField {
        /// The missing field.
        field: &'static str,
    },
    /// A field (or the whole message) has the wrong JSON type.
    #[error("wrong type: {detail}")]
    WrongType {
        /// The parser's explanation, with position.
        detail: String,
    },
    /// A string field is longer than the contract allows.
    #[error("field `{field}` is {len} bytes long; the limit is {max}")]
    TooLong {
        /// The offending field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A field has the right type but a value outside the contract.
    #[error("invalid value: {detail}")]
    InvalidValue {
        /// What is wrong.
        detail: String,
    },
    /// More attributes than the contract allows.
    #[error("{count} attributes; the limit is {max}")]
    TooManyAttributes {
        /// How many were sent.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A well-formed event whose time is too far from its source's watermark or the wall
    /// clock (see [`super::watermark`]). Not raised by [`decode_event`], which sees one
    /// message alone, but by the drivers right after it, so that such an event takes
    /// the same road as undecodable ones: an invalid line in `replay`, a dead letter in
    /// `run`, counted under its own code either way.
    #[error("time out of range: {0}")]
    TimeOutOfRange(#[from] OutOfRange),
    /// A well-formed event whose Kafka record key is not its `agent_id`. Partitions are
    /// shared out among a group's instances by key, so such an event could land on an
    /// instance that does not hold its agent's state; it is set aside, like the time
    /// check raised by the service right after decoding.
    #[error("the record key is not the event's agent_id")]
    KeyMismatch,
}

impl DecodeError {
    /// A stable, machine-readable code for dead-letter headers and metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::NotUtf8 { .. } => "not_utf8",
            DecodeError::NotJson { .. } => "not_json",
            DecodeError::MissingField { .. } => "missing_field",
            DecodeError::WrongType { .. } => "wrong_type",
            DecodeError::TooLong { .. } => "too_long",
            DecodeError::InvalidValue { .. } => "invalid_value",
            DecodeError::TooManyAttributes { .. } => "too_many_attributes",
            DecodeError::TimeOutOfRange(_) => "time_out_of_range",
            DecodeError::KeyMismatch => "key_mismatch",
        }
    }

    /// Every code a rejected event can carry, for pre-registering metric series.
    pub const CODES: [&'static str; 10] = [
        "too_large",
        "not_utf8",
        "not_json",
        "missing_field",
        "wrong_type",
        "too_long",
        "invalid_value",
        "too_many_attributes",
        "time_out_of_range",
        "key_mismatch",
    ];

    fn from_json(err: serde_json::Error) -> Self {
        use serde_json::error::Category;
        let detail = err.to_string();
        match err.classify() {
            Category::Syntax | Category::Eof | Category::Io => DecodeError::NotJson { detail },
            Category::Data if detail.starts_with("invalid type") => {
                DecodeError::WrongType { detail }
            }
            Category::Data => DecodeError::InvalidValue { detail },
        }
    }
}

/// The event time of a message, for ordering records before they are decoded in full
/// (the Kafka consumer's merge by event time): read from the `time` field alone, where
/// the message is a flat object up to it, else by decoding the whole message. `None`
/// if it has no valid time. Consumers used to decode every record twice, once for its
/// time and once in its batch.
pub fn event_time(bytes: &[u8], limits: &Limits) -> Option<i64> {
    let quick = (bytes.len() <= limits.max_message_bytes)
        .then(|| std::str::from_utf8(bytes).ok())
        .flatten()
        .and_then(scan::scan_time);
    match quick {
        Some(time) => time.millis().ok(),
        None => decode_event(bytes, limits).ok().map(|event| event.time_ms),
    }
}

/// Decodes one message into an [`Event`] that borrows from `bytes` where it can.
pub fn decode_event<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Event<'a>, DecodeError> {
    if bytes.len() > limits.max_message_bytes {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            max: limits.max_message_bytes,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    // Nearly every event is a flat object of plain strings and integers: a dedicated
    // scanner reads those without serde's generic machinery. Anything else (escapes,
    // nested values, odd numbers, malformed input) goes through serde_json, which also
    // produces the precise error for bad input.
    let raw = match scan::scan_flat(text) {
        Some(raw) => raw,
        None => serde_json::from_str(text).map_err(DecodeError::from_json)?,
    };
    raw.validate()
}

#[derive(Deserialize, Default)]
pub(super) struct RawEvent<'a> {
    pub(super) schema_version: Option<u32>,
    #[serde(borrow)]
    pub(super) event_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub(super) time: Option<RawTime<'a>>,
    #[serde(borrow)]
    pub(super) agent_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub(super) action: Option<Text<'a>>,
    #[serde(borrow)]
    pub(super) system: Option<Text<'a>>,
    #[serde(borrow)]
    pub(super) owner: Option<Text<'a>>,
    #[serde(borrow)]
    pub(super) credential_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub(super) session_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub(super) resource: Option<Text<'a>>,
    pub(super) bytes_in: Option<u64>,
    pub(super) bytes_out: Option<u64>,
    #[serde(borrow)]
    pub(super) outcome: Option<Text<'a>>,
    #[serde(borrow)]
    pub(super) approval_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub(super) attributes: Option<Attributes<'a>>,
}

impl<'a> RawEvent<'a> {
    /// Checks the contract and builds the event (shared by both decoding paths).
    pub(super) fn validate(self) -> Result<Event<'a>, DecodeError> {
        if let Some(version) = self.schema_version {
            if version != SCHEMA_VERSION {
                return Err(DecodeError::InvalidValue {
                    detail: format!("schema_version {version} is not supported (expected 1)"),
                });
            }
        }
        let event_id = required(self.event_id, "event_id", MAX_EVENT_ID)?;
        let time_ms = self
            .time
            .ok_or(DecodeError::MissingField { field: "time" })?
            .millis()?;
        let agent_id = required(self.agent_id, "agent_id", MAX_AGENT_ID)?;
        let action = required(self.action, "action", MAX_ACTION)?;
        let system = required(self.system, "system", MAX_SYSTEM)?;
        let outcome = match self.outcome {
            None => Outcome::Success,
            Some(Text(text)) => Outcome::parse(&text).ok_or_else(|| DecodeError::InvalidValue {
                detail: format!(
                    "outcome {:?} is not one of success, failure, denied",
                    truncate(&text)
                ),
            })?,
        };
        let attributes = self.attributes.map(|a| a.0).unwrap_or_default();
        if attributes.len() > MAX_ATTRIBUTES {
            return Err(DecodeError::TooManyAttributes {
                count: attributes.len(),
                max: MAX_ATTRIBUTES,
            });
        }
        for (key, value) in &attributes {
            check_len("attributes key", key, MAX_ATTRIBUTE_KEY)?;
            check_len("attributes value", value, MAX_ATTRIBUTE_VALUE)?;
        }
        Ok(Event {
            event_id,
            time_ms,
            agent_id,
            action,
            system,
            owner: optional(self.owner, "owner", MAX_CONTEXT)?,
            credential_id: optional(self.credential_id, "credential_id", MAX_CONTEXT)?,
            session_id: optional(self.session_id, "session_id", MAX_CONTEXT)?,
            resource: optional(self.resource, "resource", MAX_RESOURCE)?,
            bytes_in: self.bytes_in.unwrap_or(0),
            bytes_out: self.bytes_out.unwrap_or(0),
            outcome,
            approval_id: optional(self.approval_id, "approval_id", MAX_CONTEXT)?,
            attributes,
        })
    }
}

fn required<'a>(
    value: Option<Text<'a>>,
    field: &'static str,
    max: usize,
) -> Result<Cow<'a, str>, DecodeError> {
    let Some(Text(text)) = value else {
        return Err(DecodeError::MissingField { field });
    };
    if text.is_empty() {
        return Err(DecodeError::InvalidValue {
            detail: format!("field `{field}` is empty"),
        });
    }
    check_len(field, &text, max)?;
    Ok(text)
}

fn optional<'a>(
    value: Option<Text<'a>>,
    field: &'static str,
    max: usize,
) -> Result<Option<Cow<'a, str>>, DecodeError> {
    match value {
        None => Ok(None),
        Some(Text(text)) if text.is_empty() => Ok(None),
        Some(Text(text)) => check_len(field, &text, max).map(|()| Some(text)),
    }
}

fn check_len(field: &'static str, text: &str, max: usize) -> Result<(), DecodeError> {
    if text.len() > max {
        return Err(DecodeError::TooLong {
            field,
            len: text.len(),
            max,
        });
    }
    Ok(())
}

fn truncate(text: &str) -> &str {
    match text.char_indices().nth(64) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// A JSON string that borrows from the input unless it contains escapes.
pub(super) struct Text<'a>(pub(super) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// `time` as either RFC 3339 text or epoch milliseconds.
pub(super) enum RawTime<'a> {
    Text(Cow<'a, str>),
    Millis(i64),
}

impl RawTime<'_> {
    /// Milliseconds since the Unix epoch, checked as the contract asks.
    fn millis(self) -> Result<i64, DecodeError> {
        match self {
            RawTime::Millis(ms) if (0..=MAX_TIME_MS).contains(&ms) => Ok(ms),
            RawTime::Millis(ms) => Err(DecodeError::InvalidValue {
                detail: format!("time {ms} is outside 0..={MAX_TIME_MS} epoch milliseconds"),
            }),
            RawTime::Text(text) => parse_rfc3339(&text).ok_or_else(|| DecodeError::InvalidValue {
                detail: format!("time {:?} is not an RFC 3339 timestamp", truncate(&text)),
            }),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawTime<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimeVisitor;
        impl<'de> Visitor<'de> for TimeVisitor {
            type Value = RawTime<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an RFC 3339 string or epoch milliseconds")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(RawTime::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawTime::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawTime::Millis(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(RawTime::Millis(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        deserializer.deserialize_any(TimeVisitor)
    }
}

/// The attributes object, kept as ordered pairs (no hashing on the hot path).
pub(super) struct Attributes<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Attributes<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AttributesVisitor;
        impl<'de> Visitor<'de> for AttributesVisitor {
            type Value = Attributes<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of string values")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut pairs = Vec::new();
                while let Some((Text(key), Text(value))) = map.next_entry::<Text, Text>()? {
                    pairs.push((key, value));
                }
                Ok(Attributes(pairs))
            }
        }
        deserializer.deserialize_map(AttributesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"{"event_id":"e1","time":"2026-01-05T09:30:00Z","agent_id":"a1","action":"read","system":"crm","bytes_out":10}"#;

    fn decode(text: &str) -> Result<Event<'_>, DecodeError> {
        decode_event(text.as_bytes(), &Limits::default())
    }

    #[test]
    fn valid_event_borrows_its_strings() {
        let event = decode(VALID).unwrap();
        assert!(matches!(event.agent_id, Cow::Borrowed("a1")));
        assert_eq!(event.bytes(), 10);
        assert_eq!(event.outcome, Outcome::Success);
    }

    #[test]
    fn epoch_millis_and_unknown_fields_are_accepted() {
        let event = decode(
            r#"{"event_id":"e","time":1767605400000,"agent_id":"a","action":"r","system":"s","future_field":[1,2]}"#,
        )
        .unwrap();
        assert_eq!(event.time_ms, 1_767_605_400_000);
    }

    #[test]
    fn each_kind_of_bad_input_has_its_own_code() {
        let cases: &[(&[u8], &str)] = &[
            (b"\xff\xfe{}", "not_utf8"),
            (b"{\"event_id\": ", "not_json"),
            (b"not json at all", "not_json"),
            (br#"{"time":"2026-01-05T09:30:00Z","agent_id":"a","action":"r","system":"s"}"#, "missing_field"),
            (br#"{"event_id":7,"time":"2026-01-05T09:30:00Z","agent_id":"a","action":"r","system":"s"}"#, "wrong_type"),
            (br#"[1,2,3]"#, "wrong_type"),
            (br#"{"event_id":"e","time":"noon","agent_id":"a","action":"r","system":"s"}"#, "invalid_value"),
            (br#"{"event_id":"e","time":1,"agent_id":"a","action":"r","system":"s","outcome":"maybe"}"#, "invalid_value"),
            (br#"{"event_id":"e","time":1,"agent_id":"a","action":"r","system":"s","bytes_in":-4}"#, "invalid_value"),
            (br#"{"event_id":"e","time":1,"agent_id":"","action":"r","system":"s"}"#, "invalid_value"),
        ];
        for (input, code) in cases {
            let err = decode_event(input, &Limits::default()).unwrap_err();
            assert_eq!(
                err.code(),
                *code,
                "input {:?} gave {err}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn oversized_fields_and_messages_are_rejected() {
        let long_agent = format!(
            r#"{{"event_id":"e","time":1,"agent_id":"{}","action":"r","system":"s"}}"#,
            "a".repeat(257)
        );
        assert_eq!(decode(&long_agent).unwrap_err().code(), "too_long");
        let big = vec![b' '; 70_000];
        assert_eq!(
            decode_event(&big, &Limits::default()).unwrap_err(),
            DecodeError::TooLarge {
                size: 70_000,
                max: 65_536
            }
        );
        let attrs: Vec<String> = (0..33).map(|i| format!(r#""k{i}":"v""#)).collect();
        let many = format!(
            r#"{{"event_id":"e","time":1,"agent_id":"a","action":"r","system":"s","attributes":{{{}}}}}"#,
            attrs.join(",")
        );
        assert_eq!(decode(&many).unwrap_err().code(), "too_many_attributes");
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let event = decode(
            r#"{"event_id":"e\"1","time":1,"agent_id":"a\u00e9","action":"r","system":"s"}"#,
        )
        .unwrap();
        assert_eq!(event.event_id, "e\"1");
        assert_eq!(event.agent_id, "aé");
    }
}
