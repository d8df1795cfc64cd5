//! Label values of agentwatch's metrics, as enums.
//!
//! Every value a label can take is a variant, so a typo cannot create a new series and
//! [`Metrics::new`](super::Metrics::new) can pre-register each one at zero (dashboards
//! and `rate()` see series from the start). Adding a metric with a fixed set of label
//! values: add its enum here with `ALL` and `as_str`.

macro_rules! label_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in the order they are pre-registered.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }
    };
}

label_enum! {
    /// `agentwatch_events_total{result}`: what became of a consumed event.
    EventResult {
        /// Decoded and run through the engine.
        Processed => "processed",
        /// Rejected by the decoder or the time bounds.
        Invalid => "invalid",
        /// A second copy of a record the rekey router forwarded again after a
        /// takeover: skipped, its event was processed (see `kafka::forwarded`).
        Duplicate => "duplicate",
    }
}

label_enum! {
    /// `output` label of the produced-records metrics: which stream a record went to.
    Output {
        /// An alert (alert v1 JSON).
        Alert => "alerts",
        /// A response command (command v1 JSON).
        Command => "commands",
        /// A dead letter (the original bytes).
        DeadLetter => "dlq",
        /// An agent state or partition position on the changelog topic.
        Changelog => "changelog",
        /// A credential's first use, shared with the other instances.
        Credentials => "credentials",
        /// A sighting of a fleet pattern, shared with the other instances.
        Fleet => "fleet",
        /// An event forwarded to the repartition topic, keyed by its agent.
        Repartition => "repartition",
    }
}

label_enum! {
    /// `agentwatch_registry_changes_total{source}`: where an agent registry change came
    /// from.
    RegistrySource {
        /// The registry file, re-read after it changed.
        File => "file",
        /// The registry topic.
        Topic => "topic",
    }
}

label_enum! {
    /// `agentwatch_records_rejected_total{source}`: where a refused approval or registry
    /// record was read.
    RecordSource {
        /// The approvals file (`[approvals] file`, `replay --approvals`).
        ApprovalsFile => "approvals_file",
        /// The approvals topic.
        ApprovalsTopic => "approvals_topic",
        /// The registry topic.
        RegistryTopic => "registry_topic",
        /// The registry file (`[registry] file`).
        RegistryFile => "registry_file",
        /// The shared credentials topic.
        CredentialsTopic => "credentials_topic",
        /// The shared fleet topic.
        FleetTopic => "fleet_topic",
    }
}

/// `agentwatch_records_rejected_total{code}`: the codes a refused record can have (the
/// `code()` of the approval and registry record errors), pre-registered at zero.
pub const RECORD_REJECTION_CODES: [&str; 6] = [
    "malformed",
    "invalid",
    "key_mismatch",
    "unsigned",
    "unknown_key",
    "bad_signature",
];

label_enum! {
    /// `agentwatch_approval_changes_total{source}`: where an approval change came from.
    ApprovalSource {
        /// The approvals file, re-read after it changed.
        File => "file",
        /// The approvals topic.
        Topic => "topic",
    }
}

label_enum! {
    /// `agentwatch_registry_reloads_total{result}`: what became of a re-read registry
    /// file.
    ReloadResult {
        /// The new file is in force.
        Applied => "applied",
        /// The new file was invalid; the previous one stays in force.
        Rejected => "rejected",
    }
}

label_enum! {
    /// `agentwatch_findings_absorbed_total{reason}`: why a finding within its budget
    /// raised no alert of its own.
    Absorbed {
        /// The agent's pending model explains it: new behaviour being learned.
        BeingLearned => "being_learned",
        /// Many agents show it at once: part of a fleet event.
        Fleet => "fleet",
        /// Evidence only of a fleet pattern (see `Finding::fleet_only`) that this agent
        /// shows alone.
        FleetOnly => "fleet_only",
    }
}
