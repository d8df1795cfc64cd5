//! Detectors: a *kind* is Rust code (one file under `kinds/`), an *instance* is data
//! (`detectors/<id>.toml`). Kinds are listed in one explicit [`catalogue`]; the
//! [`loader`] validates instance files and builds a [`DetectorSet`].
//!
//! A detector is pure: given an event, the agent's shared [`Baseline`] and its own
//! per-agent [`KindState`], it returns a [`Finding`] whose score comes from a tail
//! probability, and then learns. It never looks at the wall clock and never decides
//! whether to alert; warm-up, thresholds, cooldown, risk and responses belong to
//! [`crate::pipeline::decide`], so every kind gets them identically.

pub mod catalogue;
mod config;
pub mod kinds;
mod loader;
mod matcher;
mod rule;
mod spec;

pub use config::{Response, Thresholds, Warmup};
pub use kinds::fact;
pub use kinds::{KindState, KindStateOf};
pub use loader::{instance_key, DetectorSet, Instance};
pub use rule::Rule;
pub use spec::{parse_params, KindSpec};

use std::collections::BTreeMap;

use crate::approvals::ApprovalContext;
use crate::baseline::{Baseline, PendingBaseline};
use crate::baseline::{PeerContext, PeerIndex};
use crate::identity::{AgentRecord, Registry};
use crate::model::{Anomaly, Event};

/// What a detector sees of one event.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The event being scored.
    pub event: &'a Event<'a>,
    /// The agent's shared baseline, as it was before this event.
    pub baseline: &'a Baseline,
    /// Flagged systems and hours the agent is being watched on before they are
    /// learned (see [`PendingBaseline`]).
    pub pending: &'a PendingBaseline,
    /// What the registry and the fleet's traffic say about who the agent is.
    pub identity: Identity<'a>,
}

/// Facts about the agent's identity, looked up once per event by the engine so that
/// policy detectors stay pure functions of what they are given.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity<'a> {
    /// The registry, when one is configured (`None`: agentwatch is purely behavioural).
    /// [`Registry::enforces`] says whether agents it does not list are to be flagged.
    pub registry: Option<&'a Registry>,
    /// The agent's registry record.
    pub record: Option<&'a AgentRecord>,
    /// The first agent seen using the event's credential, and when, learned from the
    /// fleet's own traffic (so shared credentials are caught even without a registry).
    pub credential_first_use: Option<(&'a str, i64)>,
    /// The accountable owner (registry, else the event's claim, else earlier claims):
    /// the agent's peers are the other agents of the same owner.
    pub owner: Option<&'a str>,
    /// Which systems each owner's agents use (see [`PeerIndex`]).
    pub peers: Option<&'a PeerIndex>,
    /// The approvals in force, when an approval source is configured (`None`: any
    /// `approval_id` is taken at its word; see [`crate::approvals`]).
    pub approvals: Option<ApprovalContext<'a>>,
}

impl Identity<'_> {
    /// How `system` relates to `agent_id`'s peers at `time_ms`, when that is known.
    pub fn peer_context(&self, system: &str, agent_id: &str, time_ms: i64) -> Option<PeerContext> {
        self.peers?.context(self.owner?, system, agent_id, time_ms)
    }
}

/// A detector's verdict on one event, before the engine decides what to do with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finding {
    /// Probability of something at least this extreme under the agent's baseline.
    pub p_value: f64,
    /// Kind of deviation.
    pub anomaly: Anomaly,
    /// What was observed (in `unit`).
    pub observed: f64,
    /// What the baseline expected (in `unit`).
    pub expected: f64,
    /// Unit of `observed` and `expected`.
    pub unit: &'static str,
    /// Name of the statistic (for a policy fact, the rule's text: [`Rule::statistic`]).
    pub statistic: &'static str,
    /// Its value (for a policy fact, [`Rule::wire_value`], kept for the alert format).
    pub statistic_value: f64,
    /// The rule a policy fact broke (`None` for statistical findings): what a policy
    /// kind's `summarize` and `explain` read, rather than a number.
    pub rule: Option<Rule>,
    /// Observations behind the baseline that was used.
    pub baseline_size: u64,
    /// The p-value of the same observation under the agent's *pending* model: what it
    /// has been doing since it was first flagged. `Some` only once that model holds
    /// enough evidence to judge. A finding the pending model explains is new
    /// behaviour being learned, not a fresh anomaly: it raises no alert.
    pub pending_p: Option<f64>,
    /// True when the observation continues an episode the detector's pending model is
    /// already tracking: an alert about it reads "new behaviour, being learned" rather
    /// than "anomalous", and may ask for approval but not revoke or suspend (see
    /// `Policy::ceiling` in [`crate::pipeline`]).
    pub learning: bool,
    /// How large the deviation is (observed over expected, e.g. 12 for twelve times the
    /// agent's typical transfer); `f64::INFINITY` when size means nothing (a rule was
    /// broken, a system never seen). A p-value says how *sure* a deviation is, not how
    /// *big*: a doubled pace is certain after an hour, yet no reason to revoke a
    /// credential, so the engine caps severity by magnitude.
    pub magnitude: f64,
    /// The fleet-wide pattern this finding is part of when it is not its kind's own
    /// ([`KindSpec::fleet`]): `rate`'s run of identical *failing* calls is what an
    /// outage's retries look like, the pattern `denied_burst`'s failures form. `None`
    /// keeps the kind's.
    pub fleet: Option<FleetScope>,
    /// The strongest command this finding may lead to, when its detector knows the
    /// deviation is real but says little about who is acting: `denied_burst`'s
    /// refusals of calls the agent has made a hundred times are its credential or its
    /// permissions changing (an expiry, a rotation, a withdrawn grant), not the agent
    /// probing. Such a finding alerts and may ask for approval; `None` leaves the
    /// instance's ceiling (see `Policy::ceiling` in [`crate::pipeline`]).
    pub response_cap: Option<crate::model::CommandAction>,
    /// True when the finding is evidence only of a fleet-wide pattern: it counts as a
    /// sighting of its [`FleetScope`], and raises a fleet alert once enough agents show
    /// it, but never an alert or command of its own. `denied_burst`'s *failures* (not
    /// refusals) of calls the agent makes routinely are the other side erroring: one
    /// agent seeing them says nothing about the agent, many at once are an outage.
    pub fleet_only: bool,
}

impl Finding {
    /// The 0..1 score (see [`crate::stats::score_from_p`]).
    pub fn score(&self) -> f64 {
        crate::stats::score_from_p(self.p_value)
    }
}

/// The part of the shared [`Baseline`] a kind reads, and so guards: a finding of the
/// kind keeps that part (and only that part) of the event out of the baseline until it
/// persists (see [`crate::state::AspectVerdicts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aspect {
    /// The kind keeps its own state and guards nothing shared.
    Own,
    /// The systems table (`new_system`).
    Systems,
    /// The hour-of-week profile (`off_hours`).
    Hours,
    /// The credentials table (`credential_misuse`).
    Credentials,
}

/// A pattern that many agents can show at once for one shared cause, so that the
/// engine treats it fleet-wide (one fleet alert, no per-agent commands) once enough
/// agents show it on the same system within a short time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FleetScope {
    /// First use of a system (a rollout).
    Novelty,
    /// Failures on a system (an outage).
    Failures,
}

/// What the engine made of an observation, for the detector's learning. Ordered from
/// mildest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Not anomalous for this detector: learn it.
    Normal,
    /// Anomalous (alerted, in cooldown, part of a fleet event, or new behaviour being
    /// learned): hold it in the pending model until it persists or lapses.
    Flagged,
    /// Anomalous while the agent's credential is revoked or the agent suspended: what
    /// escalated stays out of every model for good.
    Escalated,
}

impl Verdict {
    /// True unless the observation is normal.
    pub fn flagged(self) -> bool {
        self != Verdict::Normal
    }
}

/// A detector kind's behaviour. Few required methods on purpose: a new kind is a state
/// type, a scoring rule, a learning rule and a sentence.
pub trait Detector: Send + Sync {
    /// Fresh per-agent state.
    fn new_state(&self) -> KindState;

    /// Scores `obs` against `state`. May advance event-time windows held in `state`
    /// (a closing window is folded in unless it held an anomaly). Returns `None` when
    /// the detector has nothing to say about this event (score 0).
    fn score(&self, obs: &Observation<'_>, state: &mut KindState) -> Option<Finding>;

    /// True if scoring `obs` while the instance warms up could change nothing: the
    /// score only reads (advances no window in `state`) and cannot state a fact (a
    /// broken rule alerts in warm-up too). Such an event is not scored: no other finding
    /// can flag in warm-up, and calibration counts only warmed-up tests. Every event of
    /// a young agent is in warm-up, and on a fleet of new agents these scores were a
    /// sixth of the engine's work. Such a kind's [`Detector::learn`] must not rely on
    /// `score` having run.
    fn unscored_in_warm_up(&self, _obs: &Observation<'_>) -> bool {
        false
    }

    /// Called once after every [`Detector::score`] (or in its place, for an event
    /// [`Detector::unscored_in_warm_up`]) with the engine's [`Verdict`]. A
    /// flagged observation goes to the kind's pending model, never straight into its
    /// baseline (no poisoning by a slow attacker), and is promoted once it has
    /// persisted; an escalated one is dropped.
    fn learn(&self, obs: &Observation<'_>, state: &mut KindState, verdict: Verdict);

    /// One sentence with numbers that a person can act on.
    fn summarize(&self, obs: &Observation<'_>, finding: &Finding) -> String;

    /// How many independent tests this detector makes of an agent per day, which turns
    /// an instance's false-alarm budget into a p-value per test (see
    /// [`Instance::alert_p`]). Most kinds test every event.
    fn tests_per_day(&self, baseline: &Baseline, now_ms: i64) -> f64 {
        baseline.events_per_day(now_ms)
    }

    /// What this detector has learned about an agent, in one line for `inspect`
    /// ("why was my agent flagged?"); `None` when it keeps nothing worth showing yet.
    fn describe(&self, _state: &KindState) -> Option<String> {
        None
    }

    /// Adds the facts behind a finding to the alert's evidence context (policy kinds
    /// name the rule that was broken). Most kinds have nothing to add.
    fn explain(
        &self,
        _obs: &Observation<'_>,
        _finding: &Finding,
        _context: &mut BTreeMap<String, String>,
    ) {
    }
}
