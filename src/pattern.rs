//! `*` patterns for matching actions and systems.
//!
//! A leaf module: detector instances (`match` tables), the agent registry (allowed
//! systems, high-risk actions) and the simulator all name systems and actions with the
//! same patterns, so the type lives below all of them rather than inside one.

/// A name pattern: exact text, or text with `*` wildcards that match any run of
/// characters (`hr.*`, `s3://finance*`, `tool_call:*`, `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    parts: Vec<String>,
    wildcard: bool,
}

impl Pattern {
    /// Compiles a pattern. Every string is a valid pattern.
    pub fn new(text: &str) -> Self {
        Pattern {
            parts: text.split('*').map(str::to_owned).collect(),
            wildcard: text.contains('*'),
        }
    }

    /// True if `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        if !self.wildcard {
            return self.parts[0] == name;
        }
        let (first, rest) = match self.parts.split_first() {
            Some(split) => split,
            None => return true,
        };
        let Some(mut remaining) = name.strip_prefix(first.as_str()) else {
            return false;
        };
        let (last, middle) = match rest.split_last() {
            Some(split) => split,
            None => return true,
        };
        for part in middle {
            match remaining.find(part.as_str()) {
                Some(at) => remaining = &remaining[at + part.len()..],
                None => return false,
            }
        }
        remaining.ends_with(last.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_runs_of_characters() {
        assert!(Pattern::new("*").matches("anything"));
        assert!(Pattern::new("hr.*").matches("hr.payroll"));
        assert!(!Pattern::new("hr.*").matches("crm"));
        assert!(Pattern::new("s3://*/secrets*").matches("s3://corp/secrets-vault"));
        assert!(!Pattern::new("a*b*c").matches("acb"));
        assert!(Pattern::new("exact").matches("exact"));
        assert!(!Pattern::new("exact").matches("exactly"));
        assert!(!Pattern::new("ab*ba").matches("aba"));
    }
}
