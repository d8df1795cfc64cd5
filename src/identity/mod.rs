//! The agent registry: who each agent is, who owns it, and what it may touch.
//!
//! Behavioural baselines say what is *unusual*; the registry says what is *never
//! acceptable*. It is optional: without one, agentwatch is purely behavioural; with one,
//! its facts are authoritative (the owner named on alerts, the boundary the policy
//! detectors enforce). It is loaded from a file ([`load_file`]) and, in `run`, kept
//! current from a compacted Kafka topic, so identity changes need no restart.

mod file;
mod record;

pub use file::{
    load_file, load_signed_file, parse_records, parse_signed_records, write_file, RefusedRecord,
    SignedRecords,
};
pub use record::{AgentRecordV1, IssuedCredential, TrustTier, Weekday, WorkingHours};

use std::sync::Arc;

use hashbrown::HashMap;

use crate::model::time::{hour_of_week, parse_rfc3339, HOUR_MS};
use crate::pattern::Pattern;

/// A credential as the policy detectors check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The id events carry.
    pub id: String,
    /// Issue time (ms).
    pub issued_ms: i64,
    /// Expiry (ms), if it expires.
    pub expires_ms: Option<i64>,
}

/// A validated registry record, compiled for per-event checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    /// The record as written (for `inspect` and explanations).
    pub spec: AgentRecordV1,
    allowed_systems: Option<Vec<Pattern>>,
    allowed_actions: Option<Vec<Pattern>>,
    high_risk: Vec<Pattern>,
    /// Issued credentials.
    pub credentials: Vec<Credential>,
    /// Declared working hours: one flag per local hour of the week, plus how local
    /// time is found.
    working: Option<(Box<[bool; 168]>, LocalTime)>,
}

/// How an owner's local time follows from UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocalTime {
    /// A fixed offset in milliseconds (`utc_offset`, or UTC when nothing is declared).
    Fixed(i64),
    /// An IANA zone: the offset depends on the instant (daylight saving time).
    Zone(chrono_tz::Tz),
}

impl LocalTime {
    /// Milliseconds to add to `time_ms` (UTC) to get local time at that instant.
    fn offset_ms(self, time_ms: i64) -> i64 {
        use chrono::{Offset, TimeZone};
        match self {
            LocalTime::Fixed(offset_ms) => offset_ms,
            LocalTime::Zone(zone) => chrono::DateTime::from_timestamp_millis(time_ms)
                .map(|utc| {
                    let offset = zone.offset_from_utc_datetime(&utc.naive_utc()).fix();
                    i64::from(offset.local_minus_utc()) * 1_000
                })
                .unwrap_or(0),
        }
    }
}

impl AgentRecord {
    /// Validates and compiles a record. `require_owner` is false for records arriving on
    /// the registry topic: an identity system may publish an agent before anyone owns it,
    /// and the `unregistered_agent` detector then flags its activity instead.
    pub fn compile(spec: AgentRecordV1, require_owner: bool) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        if spec.agent_id.is_empty() || spec.agent_id.len() > 256 {
            problems.push("agent_id must be 1 to 256 characters".to_owned());
        }
        if require_owner && spec.owner.trim().is_empty() {
            problems.push(format!(
                "agent {:?} has no owner; every agent needs an accountable human",
                spec.agent_id
            ));
        }
        if spec.schema_version.is_some_and(|v| v != 1) {
            problems.push("schema_version must be 1".to_owned());
        }
        let mut credentials = Vec::with_capacity(spec.credentials.len());
        for credential in &spec.credentials {
            let issued = parse_rfc3339(&credential.issued_at);
            let expires = credential.expires_at.as_deref().map(parse_rfc3339);
            match (issued, expires) {
                (Some(issued_ms), None) => credentials.push(Credential {
                    id: credential.id.clone(),
                    issued_ms,
                    expires_ms: None,
                }),
                (Some(issued_ms), Some(Some(expires_ms))) if expires_ms > issued_ms => credentials
                    .push(Credential {
                        id: credential.id.clone(),
                        issued_ms,
                        expires_ms: Some(expires_ms),
                    }),
                (Some(_), Some(Some(_))) => problems.push(format!(
                    "credential {:?} expires before it is issued",
                    credential.id
                )),
                _ => problems.push(format!(
                    "credential {:?}: issued_at and expires_at must be RFC 3339 times",
                    credential.id
                )),
            }
        }
        let working = match &spec.working_hours {
            None => None,
            Some(hours) => match compile_hours(hours) {
                Ok(mask) => Some(mask),
                Err(problem) => {
                    problems.push(problem);
                    None
                }
            },
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        let patterns = |list: &[String]| list.iter().map(|p| Pattern::new(p)).collect();
        Ok(AgentRecord {
            allowed_systems: spec.allowed_systems.as_deref().map(patterns),
            allowed_actions: spec.allowed_actions.as_deref().map(patterns),
            high_risk: patterns(&spec.high_risk_actions),
            credentials,
            working,
            spec,
        })
    }

    /// The accountable human, if the record names one.
    pub fn owner(&self) -> Option<&str> {
        Some(self.spec.owner.trim()).filter(|o| !o.is_empty())
    }

    /// Whether `system` is inside the boundary (`None`: no boundary declared).
    pub fn allows_system(&self, system: &str) -> Option<bool> {
        self.allowed_systems
            .as_ref()
            .map(|list| list.iter().any(|p| p.matches(system)))
    }

    /// Whether `action` is inside the boundary (`None`: no boundary declared).
    pub fn allows_action(&self, action: &str) -> Option<bool> {
        self.allowed_actions
            .as_ref()
            .map(|list| list.iter().any(|p| p.matches(action)))
    }

    /// True if the record itself lists `action` as high-risk.
    pub fn is_high_risk(&self, action: &str) -> bool {
        self.high_risk.iter().any(|p| p.matches(action))
    }

    /// The issued credential with this id.
    pub fn credential(&self, id: &str) -> Option<&Credential> {
        self.credentials.iter().find(|c| c.id == id)
    }

    /// Whether `time_ms` falls inside declared working hours (`None`: none declared),
    /// judged in the owner's local time at that instant (so a `timezone` follows
    /// daylight saving time).
    pub fn within_working_hours(&self, time_ms: i64) -> Option<bool> {
        self.working.as_ref().map(|(mask, local)| {
            mask[hour_of_week(time_ms.saturating_add(local.offset_ms(time_ms)))]
        })
    }
}

/// `HH:00` to an hour (0..=24).
fn parse_hour(text: &str) -> Option<usize> {
    let (hours, minutes) = text.split_once(':')?;
    let hour: usize = hours.parse().ok()?;
    (minutes == "00" && hours.len() == 2 && hour <= 24).then_some(hour)
}

/// `+HH:MM` / `-HH:MM` to milliseconds.
fn parse_offset(text: &str) -> Option<i64> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = rest.split_once(':')?;
    let (h, m): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours.len() == 2 && minutes.len() == 2 && h < 24 && m < 60)
        .then_some(sign * (h * HOUR_MS + m * 60_000))
}

fn compile_hours(hours: &WorkingHours) -> Result<(Box<[bool; 168]>, LocalTime), String> {
    let (Some(start), Some(end)) = (parse_hour(&hours.start), parse_hour(&hours.end)) else {
        return Err(format!(
            "working_hours start {:?} and end {:?} must be whole hours like 08:00 and 18:00",
            hours.start, hours.end
        ));
    };
    if start == 24 || start == end {
        return Err("working_hours must span at least one hour, starting before 24:00".into());
    }
    let local = match (hours.utc_offset.as_deref(), hours.timezone.as_deref()) {
        (None, None) => LocalTime::Fixed(0),
        (Some(text), None) => LocalTime::Fixed(parse_offset(text).ok_or_else(|| {
            format!("working_hours utc_offset {text:?} must look like +01:00")
        })?),
        (None, Some(name)) => LocalTime::Zone(name.parse::<chrono_tz::Tz>().map_err(|_| {
            format!("working_hours timezone {name:?} is not an IANA time zone name like Europe/Berlin")
        })?),
        (Some(_), Some(_)) => {
            return Err(
                "working_hours gives both utc_offset and timezone; keep one (timezone follows daylight saving time)"
                    .into(),
            )
        }
    };
    if hours.days.is_empty() {
        return Err("working_hours days must name at least one day".into());
    }
    let mut mask = Box::new([false; 168]);
    for day in &hours.days {
        let length = if end > start {
            end - start
        } else {
            24 - start + end
        };
        for h in 0..length {
            mask[(day.index() * 24 + start + h) % 168] = true;
        }
    }
    Ok((mask, local))
}

/// All known agents, with an index from credential id to the agent it was issued to.
///
/// Whether the registry is *enforced* is a separate, explicit choice: an enforced
/// registry claims to list the whole fleet, so an agent missing from it (or registered
/// without an owner) is an `unregistered_agent`; a registry that is not enforced only
/// supplies owners, boundaries, credentials and working hours for the agents it names.
/// A list of records (a registry file) is enforced unless told otherwise; an empty
/// registry that the registry topic fills record by record is not, because a topic
/// carrying a few identities says nothing about the agents it does not name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    agents: HashMap<String, Arc<AgentRecord>>,
    issued_to: HashMap<String, String>,
    enforce: bool,
}

impl Registry {
    /// An enforced registry holding `records` (later records for the same agent win).
    pub fn new(records: impl IntoIterator<Item = AgentRecord>) -> Self {
        let mut registry = Registry {
            enforce: true,
            ..Registry::default()
        };
        for record in records {
            registry.upsert(record);
        }
        registry
    }

    /// The same registry, enforced or not (see [`Registry::enforces`]).
    pub fn with_enforce(mut self, enforce: bool) -> Self {
        self.enforce = enforce;
        self
    }

    /// Whether agents missing from the registry, or registered without an owner, are to
    /// be flagged as `unregistered_agent`. Changes applied with [`Registry::apply`]
    /// never alter it.
    pub fn enforces(&self) -> bool {
        self.enforce
    }

    /// Adds or replaces an agent's record.
    pub fn upsert(&mut self, record: AgentRecord) {
        self.remove(&record.spec.agent_id);
        for credential in &record.credentials {
            self.issued_to
                .insert(credential.id.clone(), record.spec.agent_id.clone());
        }
        self.agents
            .insert(record.spec.agent_id.clone(), Arc::new(record));
    }

    /// Applies one change from the registry topic or a reloaded file.
    pub fn apply(&mut self, update: RegistryUpdate) {
        match update {
            RegistryUpdate::Upsert(record) => self.upsert(*record),
            RegistryUpdate::Remove(agent_id) => {
                self.remove(&agent_id);
            }
        }
    }

    /// Removes an agent (a tombstone on the registry topic). Returns true if it was known.
    pub fn remove(&mut self, agent_id: &str) -> bool {
        let Some(old) = self.agents.remove(agent_id) else {
            return false;
        };
        for credential in &old.credentials {
            if self.issued_to.get(&credential.id).map(String::as_str) == Some(agent_id) {
                self.issued_to.remove(&credential.id);
            }
        }
        true
    }

    /// The record of `agent_id`.
    pub fn agent(&self, agent_id: &str) -> Option<&AgentRecord> {
        self.agents.get(agent_id).map(Arc::as_ref)
    }

    /// The agent a credential was issued to, if any record declares it.
    pub fn issued_to(&self, credential_id: &str) -> Option<&str> {
        self.issued_to.get(credential_id).map(String::as_str)
    }

    /// The registered agent ids.
    pub fn agent_ids(&self) -> impl Iterator<Item = &str> {
        self.agents.keys().map(String::as_str)
    }

    /// The records, consuming the registry.
    pub fn into_records(self) -> impl Iterator<Item = AgentRecord> {
        self.agents
            .into_values()
            .map(|record| Arc::try_unwrap(record).unwrap_or_else(|shared| (*shared).clone()))
    }

    /// Number of agents.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// True when no agent is registered.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }
}

/// A change to the registry, as the registry topic delivers it.
#[derive(Debug, Clone)]
pub enum RegistryUpdate {
    /// Add or replace an agent (boxed: records are large and changes are rare).
    Upsert(Box<AgentRecord>),
    /// Remove an agent.
    Remove(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(agent: &str) -> AgentRecordV1 {
        AgentRecordV1 {
            schema_version: None,
            agent_id: agent.into(),
            owner: "ana@example.com".into(),
            description: None,
            tier: TrustTier::Standard,
            allowed_systems: Some(vec!["crm".into(), "s3://reports/*".into()]),
            allowed_actions: None,
            high_risk_actions: vec!["delete".into()],
            credentials: vec![IssuedCredential {
                id: "k1".into(),
                issued_at: "2026-01-01T00:00:00Z".into(),
                expires_at: Some("2026-02-01T00:00:00Z".into()),
            }],
            working_hours: Some(WorkingHours {
                days: vec![Weekday::Mon, Weekday::Fri],
                start: "22:00".into(),
                end: "02:00".into(),
                utc_offset: Some("+01:00".into()),
                timezone: None,
            }),
            signature: None,
        }
    }

    #[test]
    fn boundaries_credentials_and_night_shifts() {
        let record = AgentRecord::compile(spec("a"), true).unwrap();
        assert_eq!(record.allows_system("crm"), Some(true));
        assert_eq!(record.allows_system("s3://reports/q1"), Some(true));
        assert_eq!(record.allows_system("hr.payroll"), Some(false));
        assert_eq!(record.allows_action("anything"), None);
        assert!(record.is_high_risk("delete") && !record.is_high_risk("read"));
        // Monday 2026-01-05 21:30 UTC is 22:30 local: inside the night shift.
        let monday_late = parse_rfc3339("2026-01-05T21:30:00Z").unwrap();
        assert_eq!(record.within_working_hours(monday_late), Some(true));
        // Tuesday 00:30 local (23:30 UTC Monday) is the shift's tail past midnight.
        let tuesday_early = parse_rfc3339("2026-01-05T23:30:00Z").unwrap();
        assert_eq!(record.within_working_hours(tuesday_early), Some(true));
        let tuesday_noon = parse_rfc3339("2026-01-06T11:00:00Z").unwrap();
        assert_eq!(record.within_working_hours(tuesday_noon), Some(false));
        // Friday's shift wraps into Saturday, and Sunday 23:00 local is off.
        let sunday = parse_rfc3339("2026-01-11T22:00:00Z").unwrap();
        assert_eq!(record.within_working_hours(sunday), Some(false));
    }

    fn berlin_office() -> AgentRecord {
        let mut spec = spec("berlin");
        spec.working_hours = Some(WorkingHours {
            days: Weekday::WORKDAYS.to_vec(),
            start: "09:00".into(),
            end: "17:00".into(),
            utc_offset: None,
            timezone: Some("Europe/Berlin".into()),
        });
        AgentRecord::compile(spec, true).unwrap()
    }

    #[test]
    fn a_time_zone_follows_daylight_saving_time() {
        let record = berlin_office();
        let at = |text: &str| record.within_working_hours(parse_rfc3339(text).unwrap());
        // Thursday 2026-01-15: 08:30 UTC is 09:30 CET, inside; 07:30 UTC is 08:30 CET.
        assert_eq!(at("2026-01-15T08:30:00Z"), Some(true));
        assert_eq!(at("2026-01-15T07:30:00Z"), Some(false));
        // Thursday 2026-07-16: 07:30 UTC is 09:30 CEST, inside; a fixed +01:00 would say
        // 08:30 and get it wrong.
        assert_eq!(at("2026-07-16T07:30:00Z"), Some(true));
        assert_eq!(at("2026-07-16T06:30:00Z"), Some(false));
        // The end moves with the clocks too: 16:30 UTC is 17:30 CET but 18:30 CEST.
        assert_eq!(at("2026-01-15T15:30:00Z"), Some(true));
        assert_eq!(at("2026-01-15T16:30:00Z"), Some(false));
        assert_eq!(at("2026-07-16T14:30:00Z"), Some(true));
        assert_eq!(at("2026-07-16T15:30:00Z"), Some(false));
        // Saturday 2026-07-18 10:00 local is not a working day.
        assert_eq!(at("2026-07-18T08:00:00Z"), Some(false));
        // Around the switch to summer time (Sunday 2026-03-29 01:00 UTC): Monday
        // 2026-03-30 07:00 UTC is already 09:00 CEST, while the Friday before, 07:00 UTC
        // was 08:00 CET.
        assert_eq!(at("2026-03-30T07:00:00Z"), Some(true));
        assert_eq!(at("2026-03-27T07:00:00Z"), Some(false));
    }

    #[test]
    fn a_zone_and_an_offset_exclude_each_other_and_bad_zones_are_refused() {
        let mut both = spec("a");
        both.working_hours.as_mut().unwrap().timezone = Some("Europe/Berlin".into());
        let problems = AgentRecord::compile(both, true).unwrap_err();
        assert!(
            problems[0].contains("both utc_offset and timezone"),
            "{problems:?}"
        );
        let mut bad = spec("a");
        let hours = bad.working_hours.as_mut().unwrap();
        hours.utc_offset = None;
        hours.timezone = Some("Europe/Atlantis".into());
        let problems = AgentRecord::compile(bad, true).unwrap_err();
        assert!(
            problems[0].contains("\"Europe/Atlantis\" is not an IANA time zone"),
            "{problems:?}"
        );
        // Neither: UTC.
        let mut utc = spec("a");
        utc.working_hours.as_mut().unwrap().utc_offset = None;
        let record = AgentRecord::compile(utc, true).unwrap();
        let monday_late = parse_rfc3339("2026-01-05T22:30:00Z").unwrap();
        assert_eq!(record.within_working_hours(monday_late), Some(true));
    }

    #[test]
    fn replacing_or_removing_an_agent_updates_the_credential_index() {
        let mut registry = Registry::new([AgentRecord::compile(spec("a"), true).unwrap()]);
        assert_eq!(registry.issued_to("k1"), Some("a"));
        let mut moved = spec("a");
        moved.credentials[0].id = "k2".into();
        registry.upsert(AgentRecord::compile(moved, true).unwrap());
        assert_eq!(registry.issued_to("k1"), None);
        assert_eq!(registry.issued_to("k2"), Some("a"));
        assert!(registry.remove("a"));
        assert_eq!(registry.issued_to("k2"), None);
        assert!(registry.agent("a").is_none());
    }

    #[test]
    fn enforcement_is_explicit_and_changes_do_not_alter_it() {
        let record = || AgentRecord::compile(spec("a"), true).unwrap();
        assert!(Registry::new([record()]).enforces());
        assert!(!Registry::new([record()]).with_enforce(false).enforces());
        let mut from_topic = Registry::default();
        from_topic.apply(RegistryUpdate::Upsert(Box::new(record())));
        from_topic.apply(RegistryUpdate::Remove("b".into()));
        assert!(!from_topic.enforces());
        assert_eq!(from_topic.len(), 1);
        let mut enforced = Registry::default().with_enforce(true);
        enforced.apply(RegistryUpdate::Remove("a".into()));
        assert!(enforced.enforces());
    }

    #[test]
    fn invalid_records_say_why() {
        let mut bad = spec("a");
        bad.owner = " ".into();
        bad.credentials[0].expires_at = Some("2025-01-01T00:00:00Z".into());
        bad.working_hours.as_mut().unwrap().start = "9am".into();
        let problems = AgentRecord::compile(bad.clone(), true).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("no owner"));
        assert!(problems[1].contains("expires before"));
        assert!(problems[2].contains("whole hours"));
        // The topic accepts an ownerless record (flagged by unregistered_agent instead).
        bad.credentials.clear();
        bad.working_hours = None;
        let record = AgentRecord::compile(bad, false).unwrap();
        assert_eq!(record.owner(), None);
    }
}
