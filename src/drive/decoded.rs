//! A batch of records together with the events decoded from them, so that decoding can
//! happen on another thread than the engine's and cross over with its batch.
//!
//! The events borrow their records' bytes, so the two travel as one value (a
//! `self_cell`), and the records come back out for reuse once the engine is done. A
//! decoded batch gives the engine exactly what decoding on its own thread gives (the
//! same function under the same limits; under other limits, it decodes again).

use crate::model::{decode_event, DecodeError, Event, Limits};

use super::Records;

/// What decoding a batch's records gave, in record order, and under which limits.
#[derive(Debug)]
pub struct Decoded<'a> {
    limits: Limits,
    events: Vec<Result<Event<'a>, DecodeError>>,
}

impl<'a> Decoded<'a> {
    /// Decodes every record of `records` under `limits`.
    pub fn of<R: Records + ?Sized>(records: &'a R, limits: Limits) -> Self {
        Decoded {
            limits,
            events: (0..records.len())
                .map(|index| decode_event(records.payload(index), &limits))
                .collect(),
        }
    }

    /// Record `index` as decoded (lent: the engine reads it where it lies), or `None`
    /// if it was decoded under other limits than `limits`. A decoding error is cloned
    /// (it is rare, and the caller reports it by value).
    pub fn get(&self, index: usize, limits: &Limits) -> Option<Result<&Event<'a>, DecodeError>> {
        if self.limits != *limits {
            return None;
        }
        self.events
            .get(index)
            .map(|event| event.as_ref().map_err(Clone::clone))
    }
}

/// Declares `$name`, a batch of `$records` (a [`Records`] type) together with its
/// [`Decoded`] events, itself [`Records`]. The calling module must have [`Decoded`] in
/// scope (`self_cell` names the dependent type by a bare identifier).
macro_rules! decoded_batch {
    ($(#[$meta:meta])* $name:ident, $records:ty) => {
        ::self_cell::self_cell!(
            $(#[$meta])*
            pub struct $name {
                owner: $records,
                #[covariant]
                dependent: Decoded,
            }

            impl {Debug}
        );

        impl $name {
            /// Decodes every record of `records` under `limits`.
            pub fn decode_all(records: $records, limits: $crate::model::Limits) -> Self {
                $name::new(records, |records| Decoded::of(records, limits))
            }

            /// The records as read.
            pub fn raw(&self) -> &$records {
                self.borrow_owner()
            }

            /// The records back, to be refilled.
            pub fn into_raw(self) -> $records {
                self.into_owner()
            }
        }

        impl $crate::drive::Records for $name {
            fn len(&self) -> usize {
                $crate::drive::Records::len(self.borrow_owner())
            }

            fn at(&self, index: usize) -> $crate::drive::At {
                $crate::drive::Records::at(self.borrow_owner(), index)
            }

            fn payload(&self, index: usize) -> &[u8] {
                $crate::drive::Records::payload(self.borrow_owner(), index)
            }

            fn key(&self, index: usize) -> Option<&[u8]> {
                $crate::drive::Records::key(self.borrow_owner(), index)
            }

            fn decode(
                &self,
                index: usize,
                limits: &$crate::model::Limits,
            ) -> Result<::std::borrow::Cow<'_, $crate::model::Event<'_>>, $crate::model::DecodeError> {
                match self.borrow_dependent().get(index, limits) {
                    Some(decoded) => decoded.map(::std::borrow::Cow::Borrowed),
                    None => $crate::model::decode_event(
                        $crate::drive::Records::payload(self.borrow_owner(), index),
                        limits,
                    )
                    .map(::std::borrow::Cow::Owned),
                }
            }
        }
    };
}
pub(crate) use decoded_batch;

decoded_batch!(
    /// Lines and the events decoded from them.
    DecodedLines,
    super::lines::LineBatch
);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::drive::lines::{LineBatch, LineReader};
    use std::borrow::Cow;

    pub(crate) fn lines(text: &str) -> LineBatch {
        let mut batch = LineBatch::default();
        LineReader::new(text.as_bytes())
            .fill(&mut batch, u64::MAX)
            .unwrap();
        batch
    }

    pub(crate) const VALID: &str = r#"{"schema_version":1,"event_id":"e1","time":"2026-01-05T00:00:02Z","agent_id":"a","action":"read","system":"crm"}"#;

    #[test]
    fn a_decoded_batch_gives_what_decoding_in_place_gives() {
        let text = format!("{VALID}\nnot json\n{}\n", "x".repeat(40));
        let raw = lines(&text);
        let limits = Limits::default();
        let expected: Vec<_> = (0..raw.len())
            .map(|i| decode_event(raw.payload(i), &limits))
            .collect();
        let decoded = DecodedLines::decode_all(lines(&text), limits);
        let ahead: Vec<_> = (0..decoded.len())
            .map(|i| decoded.borrow_dependent().get(i, &limits))
            .collect();
        assert_eq!(
            ahead,
            expected
                .iter()
                .map(|e| Some(e.as_ref().map_err(Clone::clone)))
                .collect::<Vec<_>>()
        );
        let got: Vec<_> = (0..decoded.len())
            .map(|i| decoded.decode(i, &limits).map(Cow::into_owned))
            .collect();
        assert_eq!(got, expected);
        assert!(got[0].is_ok() && got[1].is_err());
    }

    #[test]
    fn an_event_decoded_ahead_is_lent_not_copied() {
        let decoded = DecodedLines::decode_all(lines(VALID), Limits::default());
        let lent = decoded.decode(0, &Limits::default()).unwrap();
        assert!(matches!(lent, Cow::Borrowed(_)), "{lent:?}");
        let tight = Limits {
            max_message_bytes: 1 << 10,
        };
        let again = decoded.decode(0, &tight).unwrap();
        assert!(matches!(again, Cow::Owned(_)), "{again:?}");
        assert_eq!(lent, again);
    }

    #[test]
    fn other_limits_than_the_batch_was_decoded_with_decode_again() {
        let decoded = DecodedLines::decode_all(lines(VALID), Limits::default());
        let tight = Limits {
            max_message_bytes: 10,
        };
        assert!(decoded.decode(0, &Limits::default()).is_ok());
        assert!(decoded.borrow_dependent().get(0, &tight).is_none());
        assert!(matches!(
            decoded.decode(0, &tight),
            Err(DecodeError::TooLarge { .. })
        ));
        assert_eq!(decoded.into_raw().payload(0), VALID.as_bytes());
    }
}
