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

/// The slot of length `hold_ms`, counted from the Unix epoch, that an episode named
/// `episode_ms` falls in: what a fleet alert's id carries (see [`fleet_alert_id`]).
pub fn episode_slot(episode_ms: i64, hold_ms: i64) -> i64 {
    episode_ms.div_euclid(hold_ms.max(1))
}

/// The id of the fleet alert `detector_id` raises for one episode of a fleet
/// `pattern` on `system`.
///
/// The episode is named by its earliest agent's first sighting (`episode_ms`), not by
/// the event that announced it, so members of a group that announce one episode at
/// different events still agree, as long as each knows that sighting. A member whose
/// view lacks it (the sighting was still in flight, or with a member killed before it
/// published it) names the episode by a later agent's, minutes later in an outage. So
/// the id carries the slot of length `hold_ms` (the pattern's quiet time before it is
/// announced again, counted from the Unix epoch) that the name falls in: names minutes
/// apart share a slot unless they straddle its edge. Two episodes of one pattern never
/// share one: the second starts only after the first's cover lapsed, a hold after its
/// last fleet-wide sighting, so their names are at least `hold_ms` apart.
pub fn fleet_alert_id(
    detector_id: &str,
    pattern: &str,
    system: &str,
    episode_ms: i64,
    hold_ms: i64,
) -> String {
    let slot = episode_slot(episode_ms, hold_ms);
    hash_fields(
        "agentwatch.fleet_alert.v2",
        &[detector_id, pattern, system, &slot.to_string()],
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
    fn names_of_one_episode_a_few_minutes_apart_share_an_id_and_two_episodes_do_not() {
        const MINUTE: i64 = 60_000;
        let hold = 60 * MINUTE;
        let start = 1_000 * hold;
        let id = |name: i64| fleet_alert_id("d", "failures", "crm", name, hold);
        assert_eq!(id(start + 2 * MINUTE), id(start + 9 * MINUTE));
        assert_eq!(id(start), id(start + hold - 1));
        // The next episode is named a hold or more after this one's name.
        assert_ne!(id(start + 2 * MINUTE), id(start + 2 * MINUTE + hold));
        assert_ne!(id(start - 1), id(start), "slots have edges");
        assert_ne!(
            fleet_alert_id("d", "failures", "crm", start, hold),
            fleet_alert_id("d", "first_use", "crm", start, hold)
        );
    }

    #[test]
    fn ids_are_stable_and_field_boundaries_matter() {
        assert_eq!(alert_id("d", "a", "e"), alert_id("d", "a", "e"));
        assert_eq!(alert_id("d", "a", "e").len(), 32);
        assert_ne!(alert_id("d", "ab", "c"), alert_id("d", "a", "bc"));
        assert_ne!(
            fleet_alert_id("d", "failures", "crm", 1, 10),
            fleet_alert_id("d", "failures", "system2", 1, 10)
        );
        assert_ne!(
            command_id("x", "suspend_agent"),
            command_id("x", "require_approval")
        );
    }
}
