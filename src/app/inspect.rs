//! `agentwatch inspect AGENT_ID --state DIR`: what the engine believes is normal for an
//! agent, and its registry record. This is how an owner answers "why was my agent
//! flagged?" without reading RocksDB or the detector code.

use std::fmt::Write as _;

use crate::detect::DetectorSet;
use crate::identity::AgentRecord;
use crate::model::time::{format_duration, format_short};
use crate::pipeline::Policy;
use crate::state::{AgentState, SeenTable};

/// Renders everything known about `agent_id`. `state` is `None` when the engine has
/// never seen the agent; `record` is `None` when the registry does not know it (or there
/// is no registry). `detectors` names the detector slots in the state.
pub fn render_inspection(
    agent_id: &str,
    state: Option<&AgentState>,
    record: Option<&AgentRecord>,
    detectors: &DetectorSet,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "agent {agent_id}");
    render_record(&mut out, record);
    match state {
        None => {
            let _ = writeln!(
                out,
                "\nno state: the engine has never seen an event from this agent"
            );
        }
        Some(state) => render_state(&mut out, state, detectors),
    }
    out
}

fn render_record(out: &mut String, record: Option<&AgentRecord>) {
    let Some(record) = record else {
        let _ = writeln!(out, "  registry: not registered (or no registry given)");
        return;
    };
    let spec = &record.spec;
    let _ = writeln!(
        out,
        "  owner: {} · tier {}{}",
        record.owner().unwrap_or("NONE (unowned)"),
        spec.tier.as_str(),
        spec.description
            .as_deref()
            .map(|d| format!(" · {d}"))
            .unwrap_or_default()
    );
    let list = |items: &Option<Vec<String>>| {
        items
            .as_ref()
            .map_or("not restricted".to_owned(), |v| v.join(", "))
    };
    let _ = writeln!(out, "  allowed systems: {}", list(&spec.allowed_systems));
    let _ = writeln!(out, "  allowed actions: {}", list(&spec.allowed_actions));
    if !spec.high_risk_actions.is_empty() {
        let _ = writeln!(
            out,
            "  high-risk actions (need approval): {}",
            spec.high_risk_actions.join(", ")
        );
    }
    for credential in &record.credentials {
        let _ = writeln!(
            out,
            "  credential {}: issued {}, {}",
            credential.id,
            format_short(credential.issued_ms),
            credential
                .expires_ms
                .map_or("never expires".to_owned(), |e| format!(
                    "expires {}",
                    format_short(e)
                ))
        );
    }
    if let Some(hours) = &spec.working_hours {
        let days: Vec<String> = hours
            .days
            .iter()
            .map(|d| format!("{d:?}").to_lowercase())
            .collect();
        let _ = writeln!(
            out,
            "  working hours: {} {}-{} ({})",
            days.join(","),
            hours.start,
            hours.end,
            hours.zone_label()
        );
    }
}

fn render_state(out: &mut String, state: &AgentState, detectors: &DetectorSet) {
    let baseline = &state.baseline;
    let _ = writeln!(
        out,
        "\nactivity: {} events ({} learned from) between {} and {} UTC ({} of history)",
        baseline.events,
        baseline.learned,
        format_short(baseline.first_seen_ms),
        format_short(baseline.last_seen_ms),
        format_duration(baseline.last_seen_ms - baseline.first_seen_ms)
    );
    if let Some(owner) = &baseline.owner {
        let _ = writeln!(out, "  owner named by its events: {owner}");
    }
    render_table(out, "systems", &baseline.systems);
    render_table(out, "actions", &baseline.actions);
    render_table(out, "credentials seen", &baseline.credentials);
    render_detector_numbers(out, state, detectors);
    render_heat_map(out, baseline.hours.counts());
    let policy = Policy::default();
    let risk = state
        .risk
        .at(baseline.last_seen_ms, policy.risk_half_life_ms);
    let _ = writeln!(
        out,
        "\nrisk: {risk:.2} at its last event (half-life {}); response tiers at {:?}",
        format_duration(policy.risk_half_life_ms),
        policy.tier_risk
    );
    let _ = writeln!(out, "  {}", maturity(&policy, baseline));
    match state.response.in_force(baseline.last_seen_ms) {
        Some(action) => {
            let _ = writeln!(
                out,
                "  in force: {} until {} UTC",
                action.as_str(),
                format_short(state.response.until_ms)
            );
        }
        None => {
            let _ = writeln!(out, "  no command in force");
        }
    }
    let _ = writeln!(out, "\nrecent alerts (newest last):");
    if state.recent.iter().next().is_none() {
        let _ = writeln!(out, "  none");
    }
    for alert in state.recent.iter() {
        let detector = detectors
            .iter()
            .find(|i| i.key == alert.detector)
            .map_or_else(
                || format!("detector#{:08x}", alert.detector),
                |i| i.id.clone(),
            );
        let _ = writeln!(
            out,
            "  {} UTC  {:<20} {:<8} {:?} score {:.2}",
            format_short(alert.time_ms),
            detector,
            alert.severity.as_str(),
            alert.anomaly,
            alert.score
        );
    }
}

/// Whether the agent's behavioural findings may revoke or suspend yet, and if not, what
/// its baseline still needs: an owner of a slow agent sees why its alerts only ask for
/// approval.
fn maturity(policy: &Policy, baseline: &crate::baseline::Baseline) -> String {
    if policy.is_mature(baseline, baseline.last_seen_ms) {
        return "behavioural findings may revoke or suspend (the baseline is mature)".into();
    }
    let mut needs = Vec::new();
    let mature_at = baseline.first_seen_ms + policy.mature_after_ms;
    if baseline.last_seen_ms < mature_at {
        needs.push(format!("is a week old ({} UTC)", format_short(mature_at)));
    }
    if baseline.events < policy.mature_after_events {
        needs.push(format!(
            "holds {} events ({} more)",
            policy.mature_after_events,
            policy.mature_after_events - baseline.events
        ));
    }
    format!(
        "behavioural findings only ask for approval until the baseline {}",
        needs.join(" and ")
    )
}

fn render_table(out: &mut String, title: &str, table: &SeenTable) {
    let _ = writeln!(out, "\n{title} (first seen, last seen UTC, uses):");
    if table.is_empty() {
        let _ = writeln!(out, "  none");
        return;
    }
    let mut rows: Vec<_> = table.iter().collect();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));
    for seen in rows {
        let _ = writeln!(
            out,
            "  {:<28} {}  {}  {:>8}",
            seen.name,
            format_short(seen.first_ms),
            format_short(seen.last_ms),
            seen.count
        );
    }
}

fn render_detector_numbers(out: &mut String, state: &AgentState, detectors: &DetectorSet) {
    let _ = writeln!(out, "\ntypical behaviour:");
    let mut any = false;
    for slot in &state.slots {
        let Some(instance) = detectors.iter().find(|i| i.key == slot.key) else {
            continue;
        };
        let Some(line) = instance.detector.describe(&slot.state) else {
            continue;
        };
        any = true;
        let _ = writeln!(out, "  {:<14} {line}", instance.id);
    }
    if !any {
        let _ = writeln!(out, "  not enough history yet");
    }
}

/// Hour-of-week activity as a 7 × 24 grid of shades, darkest for the busiest hour.
fn render_heat_map(out: &mut String, counts: &[u8]) {
    const SHADES: &[u8] = b" .:-=+*#%@";
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let max = counts.iter().copied().max().unwrap_or(0);
    let _ = writeln!(out, "\nactive hours (UTC; ' ' never, '@' busiest):");
    let _ = writeln!(out, "       0     6     12    18   23");
    for (day, name) in DAYS.iter().enumerate() {
        let row: String = counts[day * 24..(day + 1) * 24]
            .iter()
            .map(|&c| {
                if c == 0 || max == 0 {
                    ' '
                } else {
                    let level = 1 + (usize::from(c) * (SHADES.len() - 2)) / usize::from(max);
                    char::from(SHADES[level.min(SHADES.len() - 1)])
                }
            })
            .collect();
        let _ = writeln!(out, "  {name}  |{row}|");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_agent_is_told_what_its_baseline_needs_before_findings_may_revoke() {
        use crate::model::time::DAY_MS;
        let policy = Policy::default();
        let baseline = |days: i64, events: u64| crate::baseline::Baseline {
            first_seen_ms: 0,
            last_seen_ms: days * DAY_MS,
            events,
            ..Default::default()
        };
        let slow = maturity(&policy, &baseline(30, 300));
        assert!(
            slow.contains("only ask for approval") && slow.contains("700 more"),
            "{slow}"
        );
        assert!(!slow.contains("week old"), "{slow}");
        let young = maturity(&policy, &baseline(2, 5_000));
        assert!(
            young.contains("week old") && !young.contains("more"),
            "{young}"
        );
        let mature = maturity(&policy, &baseline(30, 5_000));
        assert!(mature.contains("may revoke"), "{mature}");
    }

    #[test]
    fn the_heat_map_marks_never_and_busiest_hours() {
        let mut counts = vec![0u8; 168];
        counts[9] = 200; // monday 09:00
        counts[10] = 20;
        let mut out = String::new();
        render_heat_map(&mut out, &counts);
        let monday = out.lines().find(|l| l.contains("mon")).unwrap();
        let cells: Vec<char> = monday.split('|').nth(1).unwrap().chars().collect();
        assert_eq!(cells.len(), 24);
        assert_eq!(cells[9], '@');
        assert!(cells[10] != ' ' && cells[10] != '@');
        assert_eq!(cells[0], ' ');
    }
}
