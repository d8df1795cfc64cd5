//! `*` patterns for matching actions and systems.
//!
//! A leaf module: detector instances (`match` tables), the agent registry (allowed
//! systems, high-risk actions) and the simulator all name systems and actions with the
//! same patterns, so the type lives below all of them rather than inside one.

/// A name pattern: exact text, or text with `*` wildcards that match any run of
/// characters (`hr.*`, `s3://finance*`, `tool_call:*`, `*`).
#[derive(Debug, Clone)]
pub struct Pattern {
    parts: Vec<String>,
    /// Searchers for the parts between two wildcards, built once: a pattern is matched
    /// against names on every event (sensitive systems, high-risk actions), and setting
    /// a searcher up cost more than searching names this short.
    middle: Vec<memchr::memmem::Finder<'static>>,
    wildcard: bool,
}

/// Two patterns are equal when their text is: `middle` is derived from `parts`. (A field
/// that is not must join this comparison.)
impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.parts == other.parts
    }
}

impl Eq for Pattern {}

impl Pattern {
    /// Compiles a pattern. Every string is a valid pattern.
    pub fn new(text: &str) -> Self {
        let parts: Vec<String> = text.split('*').map(str::to_owned).collect();
        let middle = match parts.len() {
            0..=2 => Vec::new(),
            n => parts[1..n - 1]
                .iter()
                .map(|part| memchr::memmem::Finder::new(part.as_bytes()).into_owned())
                .collect(),
        };
        Pattern {
            parts,
            middle,
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
        // Empty ends (`*x*`, most sensitive-system patterns) are skipped rather than
        // compared: a zero-length comparison is still a call to `memcmp`.
        let mut remaining = name;
        if !first.is_empty() {
            let Some(after) = name.strip_prefix(first.as_str()) else {
                return false;
            };
            remaining = after;
        }
        let Some(last) = rest.last() else {
            return true;
        };
        for finder in &self.middle {
            // A byte search: in UTF-8, a match of whole UTF-8 text starts and ends on
            // character boundaries.
            match finder.find(remaining.as_bytes()) {
                Some(at) => remaining = &remaining[at + finder.needle().len()..],
                None => return false,
            }
        }
        last.is_empty() || remaining.ends_with(last.as_str())
    }
}

/// Several patterns, matched as one: does any of them match?
///
/// Checked on every event (the high-risk action lists), so the patterns are bucketed
/// by the character they must start with: a name is tried only against the patterns
/// that could match it, plus those that start with a wildcard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatternSet {
    /// Patterns that start with literal text, by their first byte (sorted).
    by_first: Vec<(u8, Vec<Pattern>)>,
    /// Patterns that start with `*` (or are empty).
    anywhere: Vec<Pattern>,
}

impl PatternSet {
    /// Compiles a list of patterns.
    pub fn new<S: AsRef<str>>(texts: &[S]) -> Self {
        let mut set = PatternSet::default();
        for text in texts {
            let text = text.as_ref();
            let pattern = Pattern::new(text);
            match text.as_bytes().first() {
                Some(&first) if first != b'*' => {
                    match set.by_first.binary_search_by_key(&first, |(b, _)| *b) {
                        Ok(at) => set.by_first[at].1.push(pattern),
                        Err(at) => set.by_first.insert(at, (first, vec![pattern])),
                    }
                }
                _ => set.anywhere.push(pattern),
            }
        }
        set
    }

    /// True if any of the patterns matches `name`.
    pub fn matches(&self, name: &str) -> bool {
        // A pattern that starts with literal text matches only names with that prefix.
        let literal = name.as_bytes().first().is_some_and(|first| {
            self.by_first
                .binary_search_by_key(first, |(b, _)| *b)
                .is_ok_and(|at| self.by_first[at].1.iter().any(|p| p.matches(name)))
        });
        literal || self.anywhere.iter().any(|p| p.matches(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_set_matches_exactly_when_one_of_its_patterns_does(
            texts in prop::collection::vec("[ab*:]{0,4}", 0..6),
            name in "[ab:]{0,5}",
        ) {
            let one_by_one = texts.iter().any(|t| Pattern::new(t).matches(&name));
            prop_assert_eq!(PatternSet::new(&texts).matches(&name), one_by_one);
        }
    }

    /// A wildcard match by brute force over characters, to check the fast one against.
    fn glob(pattern: &[char], name: &[char]) -> bool {
        match pattern.split_first() {
            None => name.is_empty(),
            Some(('*', rest)) => (0..=name.len()).any(|skip| glob(rest, &name[skip..])),
            Some((c, rest)) => name.first() == Some(c) && glob(rest, &name[1..]),
        }
    }

    proptest! {
        #[test]
        fn a_pattern_matches_as_a_brute_force_glob_does(
            text in "[aé*b]{0,6}",
            name in "[aéb]{0,7}",
        ) {
            let chars = |s: &str| s.chars().collect::<Vec<char>>();
            prop_assert_eq!(
                Pattern::new(&text).matches(&name),
                glob(&chars(&text), &chars(&name))
            );
        }
    }

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
