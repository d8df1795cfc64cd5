//! Alerts and commands as people read them, for `demo` (as they happen) and `tail`.
//! One place, so both print the same lines and a new field is shown in one change.

use crate::model::time::{format_short, parse_rfc3339};
use crate::model::{Alert, Command};

/// One line per alert and one indented line per command, for people.
pub fn format_alert(alert: &Alert, commands: &[Command]) -> String {
    let time = format_short(alert.time.millis());
    let severity = alert.severity.as_str().to_uppercase();
    let mut text = format!(
        "{time}  {severity:<8} {:<11} {}\n",
        alert.detector.id, alert.summary
    );
    if alert.suppressed > 0 {
        text.push_str(&format!(
            "{:>18}  (+{} similar findings held back by the cooldown)\n",
            "", alert.suppressed
        ));
    }
    for id in &alert.commands {
        if let Some(command) = commands.iter().find(|c| &c.command_id == id) {
            let until = parse_rfc3339(&command.expires_at)
                .map(format_short)
                .unwrap_or_default();
            let credential = command
                .credential_id
                .as_deref()
                .map(|c| format!(" (credential {c})"))
                .unwrap_or_default();
            text.push_str(&format!(
                "{:>18}  -> {} for {}{credential} until {until}; risk {:.1}\n",
                "",
                command.action.as_str(),
                command.agent_id,
                alert.risk
            ));
        }
    }
    text
}
