//! Problems in an operator's files, each as `file:line: message`.
//!
//! A leaf module: the service config, the detector files and the agent registry file are
//! all checked the same way (every problem collected, then the file refused as a whole),
//! so operators get the same kind of `file:line` from each and one fix-and-retry cycle
//! finds them all.

use std::fmt::Display;

/// The problems found in one file, with the text they point into.
#[derive(Debug)]
pub struct Diagnostics<'a> {
    file: &'a str,
    text: &'a str,
    problems: Vec<String>,
}

impl<'a> Diagnostics<'a> {
    /// An empty collection for `file`, whose contents are `text`.
    pub fn new(file: &'a str, text: &'a str) -> Self {
        Diagnostics {
            file,
            text,
            problems: Vec::new(),
        }
    }

    /// The file's contents.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The 1-based line where `key` is assigned or its table starts (1 if not found).
    pub fn line_of(&self, key: &str) -> usize {
        line_of_key(self.text, key)
    }

    /// A problem on `line`.
    pub fn at_line(&mut self, line: usize, message: impl Display) {
        self.problems
            .push(format!("{}:{line}: {message}", self.file));
    }

    /// A problem on the line of `key` (see [`Diagnostics::line_of`]).
    pub fn at_key(&mut self, key: &str, message: impl Display) {
        let line = self.line_of(key);
        self.at_line(line, message);
    }

    /// A TOML parse or type error, on the line its span starts.
    pub fn toml(&mut self, error: &toml::de::Error) {
        self.problems
            .push(toml_problem(self.file, self.text, error));
    }

    /// Problems found so far.
    pub fn len(&self) -> usize {
        self.problems.len()
    }

    /// True while nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems, in the order they were found.
    pub fn into_problems(self) -> Vec<String> {
        self.problems
    }
}

/// A TOML parse or type error as `file:line: message`.
pub fn toml_problem(file: &str, text: &str, error: &toml::de::Error) -> String {
    let line = error
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1)
        .unwrap_or(1);
    format!("{file}:{line}: {}", error.message().trim())
}

/// The 1-based line where `key` is assigned or its table starts (1 if not found).
pub fn line_of_key(text: &str, key: &str) -> usize {
    let table = format!("[{key}]");
    let dotted_table = format!(".{key}]");
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            let quoted = format!("\"{key}\"");
            line.starts_with(&table)
                || (line.starts_with('[') && line.trim_end().ends_with(&dotted_table))
                || [key, quoted.as_str()].iter().any(|k| {
                    line.strip_prefix(k)
                        .is_some_and(|rest| rest.trim_start().starts_with('='))
                })
        })
        .map_or(1, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_tables_and_quoted_keys() {
        let text = "a = 1\n[kafka]\nbrokers = \"x\"\n[kafka.topics]\n\"sasl.password\" = \"y\"\n";
        assert_eq!(line_of_key(text, "a"), 1);
        assert_eq!(line_of_key(text, "kafka"), 2);
        assert_eq!(line_of_key(text, "brokers"), 3);
        assert_eq!(line_of_key(text, "topics"), 4);
        assert_eq!(line_of_key(text, "sasl.password"), 5);
        assert_eq!(line_of_key(text, "missing"), 1);
    }

    #[test]
    fn problems_name_file_and_line() {
        let mut found = Diagnostics::new("x.toml", "a = 1\nb = 2\n");
        found.at_key("b", "b is wrong");
        found.at_line(7, format_args!("{} too", "this"));
        assert_eq!(
            found.into_problems(),
            ["x.toml:2: b is wrong", "x.toml:7: this too"]
        );
    }
}
