//! A fast path for the common shape of agent events: one flat JSON object whose values
//! are plain strings (no escapes), integers, or null.
//!
//! The scanner either produces exactly what serde_json would, or gives up (`None`) and
//! lets serde_json decode the message (and report the precise error if it is bad). It
//! gives up on anything it does not fully understand: escapes, control characters,
//! nested values, fractions, exponents, very long numbers, `true`/`false`, duplicate
//! fields, trailing characters. A property test checks the two paths agree.

use std::borrow::Cow;

use super::decode::{RawEvent, RawTime, Text};

/// Scans `text`, or returns `None` to ask for the general decoder.
pub(super) fn scan_flat(text: &str) -> Option<RawEvent<'_>> {
    let mut cursor = Cursor::object(text)?;
    let mut raw = RawEvent::default();
    let mut seen: u32 = 0;
    if cursor.peek()? == b'}' {
        cursor.pos += 1;
        return cursor.at_end().then_some(raw);
    }
    loop {
        let (key, value) = cursor.field()?;
        let bit = match key {
            "schema_version" => 0,
            "event_id" => 1,
            "time" => 2,
            "agent_id" => 3,
            "action" => 4,
            "system" => 5,
            "owner" => 6,
            "credential_id" => 7,
            "session_id" => 8,
            "resource" => 9,
            "bytes_in" => 10,
            "bytes_out" => 11,
            "outcome" => 12,
            "approval_id" => 13,
            "attributes" => 14,
            _ => 31,
        };
        if bit != 31 {
            if seen & (1 << bit) != 0 {
                return None;
            }
            seen |= 1 << bit;
        }
        match bit {
            0 => {
                raw.schema_version = match value.unsigned()? {
                    None => None,
                    Some(version) => Some(u32::try_from(version).ok()?),
                }
            }
            1 => raw.event_id = value.text()?,
            2 => {
                raw.time = match value {
                    Value::Null => None,
                    Value::Str(s) => Some(RawTime::Text(Cow::Borrowed(s))),
                    Value::Int(i) => Some(RawTime::Millis(i)),
                }
            }
            3 => raw.agent_id = value.text()?,
            4 => raw.action = value.text()?,
            5 => raw.system = value.text()?,
            6 => raw.owner = value.text()?,
            7 => raw.credential_id = value.text()?,
            8 => raw.session_id = value.text()?,
            9 => raw.resource = value.text()?,
            10 => raw.bytes_in = value.unsigned()?,
            11 => raw.bytes_out = value.unsigned()?,
            12 => raw.outcome = value.text()?,
            13 => raw.approval_id = value.text()?,
            // A non-null attributes value is an object: the general decoder's job.
            14 if matches!(value, Value::Null) => {}
            14 => return None,
            _ => {}
        }
        cursor.skip_ws();
        match cursor.peek()? {
            b',' => {
                cursor.pos += 1;
                cursor.skip_ws();
            }
            b'}' => {
                cursor.pos += 1;
                return cursor.at_end().then_some(raw);
            }
            _ => return None,
        }
    }
}

/// The `time` field of a flat object, read without the fields after it. `None` where
/// the object is not flat and plain up to it, or has none (the caller decodes it whole).
pub(super) fn scan_time(text: &str) -> Option<RawTime<'_>> {
    let mut cursor = Cursor::object(text)?;
    loop {
        let (key, value) = cursor.field()?;
        if key == "time" {
            return match value {
                Value::Null => None,
                Value::Str(s) => Some(RawTime::Text(Cow::Borrowed(s))),
                Value::Int(i) => Some(RawTime::Millis(i)),
            };
        }
        cursor.skip_ws();
        cursor.expect(b',')?;
        cursor.skip_ws();
    }
}

#[derive(Clone, Copy)]
enum Value<'a> {
    Null,
    Str(&'a str),
    Int(i64),
}

impl<'a> Value<'a> {
    /// A string field: a string or null; anything else needs the general decoder.
    fn text(self) -> Option<Option<Text<'a>>> {
        match self {
            Value::Null => Some(None),
            Value::Str(s) => Some(Some(Text(Cow::Borrowed(s)))),
            Value::Int(_) => None,
        }
    }

    /// An unsigned field: a non-negative integer or null.
    fn unsigned(self) -> Option<Option<u64>> {
        match self {
            Value::Null => Some(None),
            Value::Int(i) => u64::try_from(i).ok().map(Some),
            Value::Str(_) => None,
        }
    }
}

struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor past the opening brace of the object `text` holds (and any space).
    #[inline]
    fn object(text: &'a str) -> Option<Self> {
        let mut cursor = Cursor {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        };
        cursor.skip_ws();
        cursor.expect(b'{')?;
        cursor.skip_ws();
        Some(cursor)
    }

    /// The next `"key": value` pair.
    #[inline(always)]
    fn field(&mut self) -> Option<(&'a str, Value<'a>)> {
        let key = self.string()?;
        self.skip_ws();
        self.expect(b':')?;
        self.skip_ws();
        Some((key, self.value()?))
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos == self.bytes.len()
    }

    /// A string without escapes or control characters.
    // Inlined into both scans: called out of line, a decode cost 8% more instructions.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.pos;
        let rest = &self.bytes[start..];
        let len = plain_prefix(rest);
        if rest.get(len) != Some(&b'"') {
            return None;
        }
        self.pos = start + len + 1;
        // Both ends are ASCII quotes, so these are character boundaries.
        self.text.get(start..start + len)
    }

    #[inline(always)]
    fn value(&mut self) -> Option<Value<'a>> {
        match self.peek()? {
            b'"' => self.string().map(Value::Str),
            b'n' => {
                let end = self.pos + 4;
                (self.bytes.get(self.pos..end)? == b"null").then(|| {
                    self.pos = end;
                    Value::Null
                })
            }
            b'-' | b'0'..=b'9' => self.integer().map(Value::Int),
            _ => None,
        }
    }

    /// An integer of at most 18 digits (so it cannot overflow), in canonical form.
    fn integer(&mut self) -> Option<i64> {
        let negative = self.peek()? == b'-';
        if negative {
            self.pos += 1;
        }
        let start = self.pos;
        let mut value: i64 = 0;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            value = value * 10 + i64::from(digit - b'0');
            self.pos += 1;
            if self.pos - start > 18 {
                return None;
            }
        }
        let digits = self.pos - start;
        let leading_zero = digits > 1 && self.bytes[start] == b'0';
        // `-0` is a float to serde_json (it keeps the sign), which an integer field
        // refuses: the general decoder answers for it.
        let negative_zero = negative && value == 0;
        if digits == 0
            || leading_zero
            || negative_zero
            || matches!(self.peek(), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        Some(if negative { -value } else { value })
    }
}

/// Eight copies of a byte.
const fn splat(byte: u8) -> u64 {
    u64::from_le_bytes([byte; 8])
}

/// Length of the run of plain string bytes at the start of `bytes`: up to the first
/// quote, backslash or control character (or the end).
///
/// Strings in events are short (ids, names), so a general `memchr` costs more in setup
/// than it saves; this reads eight bytes per step with the classic "has a zero byte"
/// trick: `(x - 0x01…) & !x & 0x80…` marks the bytes of `x` below one (and, through the
/// borrow, possibly bytes after a marked one, never before it, so the lowest mark is
/// exact). Bytes of 0x80 and above are never marked.
fn plain_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = splat(0x01);
    const HIGH: u64 = splat(0x80);
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let quote = x ^ splat(b'"');
        let backslash = x ^ splat(b'\\');
        let marks = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (x.wrapping_sub(splat(0x20)) & !x);
        let marks = marks & HIGH;
        if marks != 0 {
            return at + (marks.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let tail = chunks.remainder();
    at + tail
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .unwrap_or(tail.len())
}

#[cfg(test)]
mod tests {
    use super::super::{decode_event, Limits};
    use super::*;
    use proptest::prelude::*;

    fn via_serde(text: &str) -> Result<super::super::Event<'_>, super::super::DecodeError> {
        let raw: RawEvent<'_> =
            serde_json::from_str(text).map_err(|e| super::super::DecodeError::NotJson {
                detail: e.to_string(),
            })?;
        raw.validate()
    }

    #[test]
    fn takes_the_common_shape_and_declines_the_rest() {
        let plain = r#"{"event_id":"e","time":"2026-01-05T00:00:00Z","agent_id":"a","action":"r","system":"s","bytes_in":12,"owner":null,"extra":7}"#;
        assert!(scan_flat(plain).is_some());
        for declined in [
            r#"{"event_id":"e\n"}"#,
            r#"{"event_id":"e","attributes":{"k":"v"}}"#,
            r#"{"bytes_in":1.5}"#,
            r#"{"bytes_in":-1}"#,
            r#"{"bytes_in":007}"#,
            r#"{"bytes_in":-0}"#,
            r#"{"event_id":"a","event_id":"b"}"#,
            r#"{"event_id":"a"} trailing"#,
            r#"{"flag":true}"#,
            r#"{"event_id":5}"#,
            r#"["not an object"]"#,
            r#"{"event_id":"unterminated}"#,
        ] {
            assert!(scan_flat(declined).is_none(), "{declined}");
        }
    }

    fn plain_prefix_by_bytes(bytes: &[u8]) -> usize {
        bytes
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .unwrap_or(bytes.len())
    }

    #[test]
    fn plain_prefix_stops_at_the_first_quote_backslash_or_control_byte() {
        assert_eq!(plain_prefix(b"agent-0001\",\"action"), 10);
        assert_eq!(plain_prefix(b"abcdefghijklmnop\\q"), 16);
        assert_eq!(plain_prefix(b"abcdefg\x1f"), 7);
        assert_eq!(plain_prefix("caf\u{e9}\u{7f}\"".as_bytes()), 6);
        assert_eq!(plain_prefix(b"no end in sight"), 15);
        assert_eq!(plain_prefix(b""), 0);
    }

    proptest! {
        #[test]
        fn plain_prefix_agrees_with_a_byte_by_byte_search(bytes in prop::collection::vec(prop::sample::select(vec![0u8, 0x1f, 0x20, b'"', b'\\', b'a', b'!', 0x7f, 0x80, 0xa2, 0xff]), 0..40)) {
            prop_assert_eq!(plain_prefix(&bytes), plain_prefix_by_bytes(&bytes));
        }
    }

    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z:._/-]{0,12}".prop_map(|s| format!("\"{s}\"")),
            "[ -~]{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            "\\PC{0,4}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            (-5i64..2_000_000_000_000).prop_map(|n| n.to_string()),
            Just("null".to_owned()),
            Just("1e3".to_owned()),
            Just("-0".to_owned()),
            Just("{\"k\":\"v\"}".to_owned()),
            Just("true".to_owned()),
        ]
    }

    fn key() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "schema_version",
            "event_id",
            "time",
            "agent_id",
            "action",
            "system",
            "owner",
            "credential_id",
            "bytes_in",
            "bytes_out",
            "outcome",
            "attributes",
            "other",
        ])
    }

    fn valid_time() -> impl Strategy<Value = String> {
        prop_oneof![
            (0i64..4_000_000_000_000).prop_map(|ms| ms.to_string()),
            (0i64..4_000_000_000_000)
                .prop_map(|ms| format!("\"{}\"", crate::model::time::format_rfc3339(ms))),
            Just("\"2026-03-29T01:30:00.5+02:00\"".to_owned()),
        ]
    }

    proptest! {
        /// The consumer's merge orders records by the time `event_time` reads; the
        /// engine judges them by the time a full decode reads: they must agree.
        #[test]
        fn the_time_read_alone_is_the_time_a_full_decode_reads(
            time in valid_time(),
            extras in prop::collection::vec((prop::sample::select(vec!["attributes", "resource", "bytes_in", "other"]), field()), 0..4),
            order in prop::collection::vec(0usize..100, 9),
            spaces in prop::bool::ANY,
        ) {
            let mut pairs: Vec<(String, String)> = vec![
                ("event_id".into(), "\"e-1\"".into()),
                ("time".into(), time),
                ("agent_id".into(), "\"agent-1\"".into()),
                ("action".into(), "\"read\"".into()),
                ("system".into(), "\"crm\"".into()),
            ];
            pairs.extend(extras.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
            let mut keyed: Vec<(usize, (String, String))> = order.iter().copied().zip(pairs).collect();
            keyed.sort_by_key(|(rank, _)| *rank);
            let sep = if spaces { " ,\n " } else { "," };
            let body: Vec<String> = keyed.iter().map(|(_, (k, v))| format!("\"{k}\" : {v}")).collect();
            let text = format!(" {{ {} }} ", body.join(sep));
            if let Ok(event) = decode_event(text.as_bytes(), &Limits::default()) {
                prop_assert_eq!(super::super::event_time(text.as_bytes(), &Limits::default()), Some(event.time_ms), "{}", text);
            }
        }
    }

    #[test]
    fn a_time_behind_a_nested_value_or_an_escape_is_read_by_a_full_decode() {
        let limits = Limits::default();
        for text in [
            r#"{"attributes":{"k":"v"},"time":1000,"event_id":"e","agent_id":"a","action":"r","system":"s"}"#,
            r#"{"event_id":"e\u0041","time":"1970-01-01T00:00:01Z","agent_id":"a","action":"r","system":"s"}"#,
        ] {
            assert!(scan_time(text).is_none(), "{text}");
            assert_eq!(
                super::super::event_time(text.as_bytes(), &limits),
                Some(1000),
                "{text}"
            );
        }
        assert_eq!(
            super::super::event_time(br#"{"time":"yesterday"}"#, &limits),
            None
        );
        assert_eq!(
            super::super::event_time(br#"{"event_id":"e"}"#, &limits),
            None
        );
    }

    proptest! {
        #[test]
        fn agrees_with_serde_json_whenever_it_answers(pairs in prop::collection::vec((key(), field()), 0..14), spaces in prop::bool::ANY) {
            let sep = if spaces { " , " } else { "," };
            let body: Vec<String> = pairs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let text = format!("{{{}}}", body.join(sep));
            if let Some(raw) = scan_flat(&text) {
                let fast = raw.validate();
                let slow = via_serde(&text);
                prop_assert_eq!(fast, slow, "{}", text);
            }
            // The public decoder never panics, whichever path it takes.
            let _ = decode_event(text.as_bytes(), &Limits::default());
        }
    }
}
