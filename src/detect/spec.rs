//! What a detector kind tells the loader about itself: its name, what it guards, and how
//! an instance is built from its file. Each kind declares its own [`KindSpec`] (a
//! `const SPEC`); the [`catalogue`](super::catalogue) lists them.

use serde::Deserialize;

use super::{Aspect, Detector, FleetScope};

/// How a kind is built from an instance file.
pub struct KindSpec {
    /// The `kind = "..."` name.
    pub name: &'static str,
    /// The part of the shared baseline its findings keep out until they persist.
    pub guards: Aspect,
    /// The fleet-wide pattern its findings can belong to, if any.
    pub fleet: Option<FleetScope>,
    /// Builds a detector from the instance file's full text (the kind reads its own
    /// `[params]` table, so errors point at the right line).
    pub build: fn(&str) -> Result<Box<dyn Detector>, toml::de::Error>,
}

/// Parses the `[params]` table of an instance file into a kind's typed parameters.
pub fn parse_params<P: serde::de::DeserializeOwned + Default>(
    text: &str,
) -> Result<P, toml::de::Error> {
    #[derive(Deserialize)]
    struct Doc<P> {
        #[serde(default)]
        params: Option<P>,
    }
    let doc: Doc<P> = toml::from_str(text)?;
    Ok(doc.params.unwrap_or_default())
}
