//! Where a source has got to, as the state store keys it.
//!
//! Every source's next position (a Kafka partition's next offset, an input file's next
//! line) and its watermark are committed with the agent states they cover. The keys are
//! built here and nowhere else, so their bytes (which existing state directories hold)
//! cannot drift between the commands that write and read them.

use std::fmt;

/// The key of one stored position.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PositionKey(String);

impl PositionKey {
    /// A Kafka partition's next offset: `kafka/{topic}/{partition}`.
    pub fn kafka(topic: &str, partition: i32) -> Self {
        PositionKey(format!("kafka/{topic}/{partition}"))
    }

    /// A replayed file's next line: `replay:{canonical path}`.
    pub fn replay_file(canonical_path: &std::path::Path) -> Self {
        PositionKey(format!("replay:{}", canonical_path.display()))
    }

    /// Replayed standard input's next line: `replay:-`.
    pub fn replay_stdin() -> Self {
        PositionKey("replay:-".into())
    }

    /// Any other input, under a name of its own (`demo`, or a test's).
    pub fn named(name: impl Into<String>) -> Self {
        PositionKey(name.into())
    }

    /// The key of this source's watermark, stored beside its position: `{key}#watermark`.
    pub fn watermark(&self) -> Self {
        PositionKey(format!("{}#watermark", self.0))
    }

    /// The key of the next offset of source partition `source` among the records
    /// forwarded into this partition by the rekey router (see
    /// [`crate::kafka::forwarded`]): `{key}#from/{source}`.
    pub fn forwarded_from(&self, source: i32) -> Self {
        PositionKey(format!("{}{source}", self.forwarded_prefix()))
    }

    /// What every [`PositionKey::forwarded_from`] key of this one starts with.
    pub fn forwarded_prefix(&self) -> String {
        format!("{}#from/", self.0)
    }

    /// The key's bytes in the store.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for PositionKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PositionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for PositionKey {
    fn from(name: &str) -> Self {
        PositionKey::named(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_the_bytes_existing_state_holds() {
        assert_eq!(
            PositionKey::kafka("agent-events", 3).as_str(),
            "kafka/agent-events/3"
        );
        assert_eq!(PositionKey::replay_stdin().as_str(), "replay:-");
        let file = PositionKey::replay_file(std::path::Path::new("/data/x.jsonl"));
        assert_eq!(file.as_str(), "replay:/data/x.jsonl");
        assert_eq!(file.watermark().as_str(), "replay:/data/x.jsonl#watermark");
        assert_eq!(PositionKey::from("demo").as_str(), "demo");
        assert_eq!(
            PositionKey::kafka("agent-events", 3)
                .forwarded_from(1)
                .as_str(),
            "kafka/agent-events/3#from/1"
        );
    }
}
