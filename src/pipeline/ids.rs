//! Deterministic output ids.
//!
//! An alert id is a hash of (detector id, agent id, triggering event id), so a replay,
//! a restart after a crash, or the Kafka path all give the same id for the same finding
//! and consumers can deduplicate at-least-once delivery. A fleet alert's id names its
//! episode instead of an event (see [`fleet_alert_id`]).

fn hash_fields(domain: &str, fields: &[&str]) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(domain.as_bytes());
    for field in fields {
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        hasher.update(&(field.len() as u64).to_le_bytes());
        hasher.update(field.as_bytes());
    }
    hasher.finalize().to_hex()[..32].to_owned()
}

/// The id of the alert that `detector_id` raises about `agent_id` for `event_id`.
pub fn alert_id(detector_id: &str, agent_id: &str, event_id: &str) -> String {
    hash_fields("agentwatch.alert.v1", &[detector_id, agent_id, event_id])
}

/// The id of the fleet alert `detector_id` raises for one episode of a fleet
/// `pattern` on `system`: the episode is named by its earliest agent's first sighting,
/// not by the event that announced it, so the members of a group that announce one
/// episode at different events (having learnt of each other's latest sightings late)
/// publish one id, the one a single instance publishes.
pub fn fleet_alert_id(detector_id: &str, pattern: &str, system: &str, episode_ms: i64) -> String {
    hash_fields(
        "agentwatch.fleet_alert.v1",
        &[detector_id, pattern, system, &episode_ms.to_string()],
    )
}

/// The id of the command with `action` issued for `alert_id`.
pub fn command_id(alert_id: &str, action: &str) -> String {
    hash_fields("agentwatch.command.v1", &[alert_id, action])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_field_boundaries_matter() {
        assert_eq!(alert_id("d", "a", "e"), alert_id("d", "a", "e"));
        assert_eq!(alert_id("d", "a", "e").len(), 32);
        assert_ne!(alert_id("d", "ab", "c"), alert_id("d", "a", "bc"));
        assert_ne!(
            fleet_alert_id("d", "failures", "crm", 1),
            fleet_alert_id("d", "failures", "crm", 2)
        );
        assert_ne!(
            command_id("x", "suspend_agent"),
            command_id("x", "require_approval")
        );
    }
}
