//! Scenarios: which attack families and which legitimate changes a simulation carries.
//!
//! Detection tuned on one kind of traffic fails on others: strong attacks alone say
//! nothing about moderate ones, and a fleet that never changes says nothing about the
//! rollouts, outages and reorganisations every real fleet goes through. A scenario names
//! the mix, so tests and people can ask for exactly the traffic they want to judge the
//! engine on, and the default stays the traffic earlier versions produced.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A legitimate change in the fleet's behaviour. Never labelled as an incident: a
/// detector that answers one of these with an alert is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// A new shared system is rolled out to about 60% of agents over a few hours and
    /// stays in their normal mix.
    Rollout,
    /// A shared system is down for 90 minutes: every call to it fails, callers retry.
    Outage,
    /// About 8% of agents take on a new job for good: pace ×2, transfer sizes ×3.
    JobChange,
    /// A few office-hours agents move their working day 3 hours later for good.
    ShiftChange,
    /// Clocks go forward in the agents' zones: same local hours, one hour earlier in UTC.
    Dst,
    /// Agents that join the fleet mid-stream (first event after day 5).
    Joiners,
    /// Agents that stop for good.
    Retire,
}

impl ChangeKind {
    /// Every kind, in the order they are planned and listed.
    pub const ALL: [ChangeKind; 7] = [
        ChangeKind::Rollout,
        ChangeKind::Outage,
        ChangeKind::JobChange,
        ChangeKind::ShiftChange,
        ChangeKind::Dst,
        ChangeKind::Joiners,
        ChangeKind::Retire,
    ];

    /// The name used in `--scenario` and in the changes file.
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Rollout => "rollout",
            ChangeKind::Outage => "outage",
            ChangeKind::JobChange => "job_change",
            ChangeKind::ShiftChange => "shift_change",
            ChangeKind::Dst => "dst",
            ChangeKind::Joiners => "joiners",
            ChangeKind::Retire => "retire",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Which attack families and legitimate changes a simulation carries. Written and read
/// as a comma-separated list of parts (see [`Scenario::PARTS`]), e.g. `moderate,outage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scenario {
    strong: bool,
    moderate: bool,
    changes: u8,
}

impl Default for Scenario {
    /// [`Scenario::STRONG`]: the traffic earlier versions produced, byte for byte.
    fn default() -> Self {
        Scenario::STRONG
    }
}

const ALL_CHANGES: u8 = (1 << ChangeKind::ALL.len()) - 1;

impl Scenario {
    /// No attacks and no changes: a steady, healthy fleet.
    pub const QUIET: Scenario = Scenario {
        strong: false,
        moderate: false,
        changes: 0,
    };
    /// The strong attacks (huge exfiltration, sensitive first access, runaway loops,
    /// and with a registry the identity and policy attacks) on a steady fleet.
    pub const STRONG: Scenario = Scenario {
        strong: true,
        ..Scenario::QUIET
    };
    /// The moderate attacks (moderate and slow exfiltration, moderate runaway, access to
    /// a peer's system) on a steady fleet.
    pub const MODERATE: Scenario = Scenario {
        moderate: true,
        ..Scenario::QUIET
    };
    /// Every legitimate change, with the strong attacks.
    pub const CHANGE: Scenario = Scenario {
        strong: true,
        moderate: false,
        changes: ALL_CHANGES,
    };
    /// Every legitimate change, with strong and moderate attacks.
    pub const MIXED: Scenario = Scenario {
        strong: true,
        moderate: true,
        changes: ALL_CHANGES,
    };

    /// The names `--scenario` accepts, with what each adds; parts combine with commas.
    pub const PARTS: [(&'static str, &'static str); 12] = [
        ("strong", "strong attacks (the default)"),
        ("moderate", "moderate attacks"),
        ("change", "every legitimate change + strong attacks"),
        (
            "mixed",
            "every legitimate change + strong and moderate attacks",
        ),
        ("quiet", "nothing: a steady fleet without attacks"),
        ("rollout", "a new system rolled out to ~60% of agents"),
        ("outage", "a 90-minute outage of a shared system"),
        ("job_change", "~8% of agents change job: pace x2, sizes x3"),
        ("shift_change", "a few office agents work 3 hours later"),
        ("dst", "clocks go forward in the office agents' zones"),
        ("joiners", "agents joining after day 5"),
        ("retire", "agents that stop"),
    ];

    /// Whether the strong attacks are injected.
    pub fn strong(self) -> bool {
        self.strong
    }

    /// Whether the moderate attacks are injected.
    pub fn moderate(self) -> bool {
        self.moderate
    }

    /// Whether the change `kind` happens.
    pub fn has(self, kind: ChangeKind) -> bool {
        self.changes & kind.bit() != 0
    }

    /// Whether any legitimate change happens.
    pub fn has_changes(self) -> bool {
        self.changes != 0
    }

    /// This scenario plus the change `kind`.
    pub fn with(self, kind: ChangeKind) -> Self {
        Scenario {
            changes: self.changes | kind.bit(),
            ..self
        }
    }

    /// Both scenarios' attacks and changes.
    pub fn union(self, other: Scenario) -> Self {
        Scenario {
            strong: self.strong || other.strong,
            moderate: self.moderate || other.moderate,
            changes: self.changes | other.changes,
        }
    }

    fn part(name: &str) -> Option<Scenario> {
        let named = match name {
            "strong" => Scenario::STRONG,
            "moderate" => Scenario::MODERATE,
            "change" => Scenario::CHANGE,
            "mixed" => Scenario::MIXED,
            "quiet" => Scenario::QUIET,
            _ => {
                let kind = ChangeKind::ALL.into_iter().find(|k| k.name() == name)?;
                Scenario::QUIET.with(kind)
            }
        };
        Some(named)
    }
}

impl FromStr for Scenario {
    type Err = Error;

    /// Parses a comma-separated list of [`Scenario::PARTS`]; the result is their union.
    fn from_str(text: &str) -> Result<Self, Error> {
        let mut scenario = Scenario::QUIET;
        for name in text.split(',').map(str::trim) {
            let part = Scenario::part(name).ok_or_else(|| Error::InvalidInput {
                context: "scenario".into(),
                detail: format!(
                    "unknown part {name:?}; expected a comma-separated list of {}",
                    Scenario::PARTS.map(|(n, _)| n).join(", ")
                ),
            })?;
            scenario = scenario.union(part);
        }
        Ok(scenario)
    }
}

impl fmt::Display for Scenario {
    /// The shortest list of parts that parses back to this scenario.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, named) in [
            ("mixed", Scenario::MIXED),
            ("change", Scenario::CHANGE),
            ("strong", Scenario::STRONG),
            ("moderate", Scenario::MODERATE),
            ("quiet", Scenario::QUIET),
        ] {
            if *self == named {
                return f.write_str(name);
            }
        }
        let mut parts: Vec<&str> = Vec::new();
        if self.strong {
            parts.push("strong");
        }
        if self.moderate {
            parts.push("moderate");
        }
        parts.extend(
            ChangeKind::ALL
                .into_iter()
                .filter(|k| self.has(*k))
                .map(ChangeKind::name),
        );
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_parse_and_combine() {
        assert_eq!("strong".parse::<Scenario>().unwrap(), Scenario::default());
        let mix: Scenario = "moderate, outage,rollout".parse().unwrap();
        assert!(mix.moderate() && !mix.strong());
        assert!(mix.has(ChangeKind::Outage) && mix.has(ChangeKind::Rollout));
        assert!(!mix.has(ChangeKind::Dst));
        let change: Scenario = "change".parse().unwrap();
        assert!(ChangeKind::ALL.iter().all(|k| change.has(*k)));
        assert!(change.strong() && !change.moderate());
        assert_eq!(
            "change,moderate".parse::<Scenario>().unwrap(),
            Scenario::MIXED
        );
        let quiet: Scenario = "quiet".parse().unwrap();
        assert!(!quiet.strong() && !quiet.moderate() && !quiet.has_changes());
    }

    #[test]
    fn unknown_parts_are_refused_with_the_list() {
        let error = "strong,flood".parse::<Scenario>().unwrap_err().to_string();
        assert!(error.contains("\"flood\""), "{error}");
        assert!(error.contains("job_change"), "{error}");
    }

    #[test]
    fn display_parses_back() {
        for text in ["strong", "moderate", "change", "mixed", "quiet", "dst"] {
            let scenario: Scenario = text.parse().unwrap();
            assert_eq!(scenario.to_string(), text);
        }
        let odd: Scenario = "moderate,retire,joiners".parse().unwrap();
        assert_eq!(odd.to_string(), "moderate,joiners,retire");
        assert_eq!(odd.to_string().parse::<Scenario>().unwrap(), odd);
        for (name, _) in Scenario::PARTS {
            assert!(name.parse::<Scenario>().is_ok(), "{name}");
        }
    }
}
