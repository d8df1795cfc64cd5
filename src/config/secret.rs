//! Configuration values that may be secrets.

/// A librdkafka property value. Values that came from `${ENV}` references, and values of
/// properties whose name says they are secret (`*password*`, `*secret*`, `*.key.pem`…),
/// print as `<redacted>` in `Debug` output so that a config dump in a log never leaks them.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    sensitive: bool,
}

impl Secret {
    /// A value and whether it must be hidden.
    pub fn new(value: String, sensitive: bool) -> Self {
        Secret { value, sensitive }
    }

    /// The real value, for handing to librdkafka only.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// True if the value is hidden from `Debug` output.
    pub fn is_sensitive(&self) -> bool {
        self.sensitive
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.sensitive {
            f.write_str("<redacted>")
        } else {
            write!(f, "{:?}", self.value)
        }
    }
}

/// True for librdkafka properties that carry credentials or key material.
pub fn is_secret_property(name: &str) -> bool {
    const MARKERS: [&str; 5] = ["password", "secret", "key.pem", "sasl.jaas", "token"];
    let name = name.to_ascii_lowercase();
    MARKERS.iter().any(|marker| name.contains(marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_values_never_print() {
        let secret = Secret::new("hunter2".into(), true);
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(secret.expose(), "hunter2");
        let plain = Secret::new("SASL_SSL".into(), false);
        assert_eq!(format!("{plain:?}"), "\"SASL_SSL\"");
    }

    #[test]
    fn credential_properties_are_recognised() {
        assert!(is_secret_property("sasl.password"));
        assert!(is_secret_property("ssl.key.password"));
        assert!(is_secret_property("ssl.key.pem"));
        assert!(is_secret_property("sasl.oauthbearer.client.secret"));
        assert!(!is_secret_property("security.protocol"));
        assert!(!is_secret_property("sasl.username"));
    }
}
