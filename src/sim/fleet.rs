//! The simulated fleet as the agent registry would declare it: what a well-run organisation would have declared
//! about the agents it simulates.

use super::attacks::retired_credential;
use super::profiles::{AgentSpec, Profile};
use crate::identity::{AgentRecordV1, IssuedCredential, TrustTier, Weekday, WorkingHours};
use crate::model::time::{format_rfc3339, parse_rfc3339, DAY_MS, HOUR_MS};

/// Registry records for `agents` over a simulation of `days` from `start_ms`: each agent
/// may use its profile's systems and actions (researchers also their `source-*`
/// discoveries), holds one credential per week (valid until half a day into the next
/// week, so rotation has slack) and one retired credential that expired before the
/// simulation; office assistants declare their working hours.
pub fn fleet_registry(agents: &[AgentSpec], start_ms: i64, days: u32) -> Vec<AgentRecordV1> {
    let weeks = (i64::from(days) + 6) / 7;
    let retired_issued = parse_rfc3339("2025-10-01T00:00:00Z").unwrap_or(start_ms - 90 * DAY_MS);
    agents
        .iter()
        .map(|agent| {
            let mut systems: Vec<String> = agent.systems.iter().map(|s| s.name.clone()).collect();
            if agent.profile == Profile::Researcher {
                systems.push(format!("source-*.r{}", agent.index));
            }
            let mut credentials: Vec<IssuedCredential> = (0..weeks)
                .map(|week| IssuedCredential {
                    id: format!("cred-{:04}-w{week}", agent.index),
                    issued_at: format_rfc3339(start_ms + week * 7 * DAY_MS - HOUR_MS),
                    expires_at: Some(format_rfc3339(
                        start_ms + (week + 1) * 7 * DAY_MS + 12 * HOUR_MS,
                    )),
                })
                .collect();
            credentials.push(IssuedCredential {
                id: retired_credential(agent),
                issued_at: format_rfc3339(retired_issued),
                expires_at: Some(format_rfc3339(start_ms - 4 * DAY_MS)),
            });
            let working_hours = (agent.profile == Profile::OfficeAssistant).then(|| WorkingHours {
                days: Weekday::WORKDAYS.to_vec(),
                start: "08:00".into(),
                end: "18:00".into(),
                utc_offset: Some(format!(
                    "{}{:02}:00",
                    if agent.utc_offset_h < 0 { '-' } else { '+' },
                    agent.utc_offset_h.abs()
                )),
                // Simulated schedules keep a fixed offset all year.
                timezone: None,
            });
            AgentRecordV1 {
                schema_version: None,
                agent_id: agent.id.clone(),
                owner: agent.owner.clone(),
                description: Some(format!("simulated {} agent", agent.profile.name())),
                tier: if agent.profile == Profile::NightlyBatch {
                    TrustTier::Privileged
                } else {
                    TrustTier::Standard
                },
                allowed_systems: Some(systems),
                allowed_actions: Some(
                    agent
                        .profile
                        .action_names()
                        .iter()
                        .map(|a| (*a).to_owned())
                        .collect(),
                ),
                high_risk_actions: Vec::new(),
                credentials,
                working_hours,
                signature: None,
            }
        })
        .collect()
}
