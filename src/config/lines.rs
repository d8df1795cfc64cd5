//! Line numbers for problems in TOML files, shared by the service config and detector
//! loaders so both point operators at the same kind of `file:line`.

/// A TOML parse or type error as `file:line: message`.
pub(crate) fn toml_problem(file: &str, text: &str, error: &toml::de::Error) -> String {
    let line = error
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1)
        .unwrap_or(1);
    format!("{file}:{line}: {}", error.message().trim())
}

/// The 1-based line where `key` is assigned or its table starts (1 if not found).
pub(crate) fn line_of_key(text: &str, key: &str) -> usize {
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
}
