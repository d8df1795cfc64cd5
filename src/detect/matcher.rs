//! Which events an instance looks at: include and exclude [`Pattern`]s per field.

use crate::pattern::Pattern;

/// Include and exclude patterns for one field, compiled once when the instance is
/// loaded. Every instance matches every event against two of these, so the common
/// shapes are special-cased: the default `*` costs nothing and one exact name is one
/// comparison. Only real pattern lists walk their patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldMatcher {
    /// `["*"]` with no excludes, the default: answered without looking at the name.
    Everything,
    /// One exact name and no excludes.
    Exactly(String),
    /// Names that match any include pattern and no exclude pattern.
    Patterns {
        /// Any of these selects a name...
        include: Vec<Pattern>,
        /// ...unless one of these matches it.
        exclude: Vec<Pattern>,
    },
}

impl FieldMatcher {
    /// Matches names that match any `include` pattern and no `exclude` pattern.
    pub fn new(include: &[String], exclude: &[String]) -> Self {
        if exclude.is_empty() {
            if include.iter().any(|p| p == "*") {
                return FieldMatcher::Everything;
            }
            if let [only] = include {
                if !only.contains('*') {
                    return FieldMatcher::Exactly(only.clone());
                }
            }
        }
        FieldMatcher::Patterns {
            include: include.iter().map(|p| Pattern::new(p)).collect(),
            exclude: exclude.iter().map(|p| Pattern::new(p)).collect(),
        }
    }

    /// True if `name` is selected.
    #[inline]
    pub fn matches(&self, name: &str) -> bool {
        match self {
            FieldMatcher::Everything => true,
            FieldMatcher::Exactly(only) => only == name,
            FieldMatcher::Patterns { include, exclude } => {
                include.iter().any(|p| p.matches(name)) && !exclude.iter().any(|p| p.matches(name))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_win_over_includes() {
        let m = FieldMatcher::new(&["*".into()], &["healthcheck*".into()]);
        assert!(m.matches("crm"));
        assert!(!m.matches("healthcheck.ping"));
    }

    #[test]
    fn common_shapes_compile_to_their_cheap_forms() {
        let star = FieldMatcher::new(&["*".into()], &[]);
        assert_eq!(star, FieldMatcher::Everything);
        assert!(star.matches("") && star.matches("anything"));
        let exact = FieldMatcher::new(&["crm".into()], &[]);
        assert_eq!(exact, FieldMatcher::Exactly("crm".into()));
        assert!(exact.matches("crm") && !exact.matches("crm2"));
        let none = FieldMatcher::new(&[], &[]);
        assert!(
            !none.matches("crm"),
            "an empty include list selects nothing"
        );
        let list = FieldMatcher::new(&["hr.*".into(), "crm".into()], &[]);
        assert!(list.matches("hr.payroll") && list.matches("crm") && !list.matches("iam"));
    }
}
