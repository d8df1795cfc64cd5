//! Half-life decay in event time.

/// The factor by which a quantity with the given half-life shrinks over `elapsed_ms`.
///
/// Counts decay so that a baseline reflects the agent's recent behaviour, not its first
/// week forever; event time (not the wall clock) drives it so a replay is deterministic.
/// Negative elapsed times (late events) do not grow anything.
pub fn decay_factor(elapsed_ms: i64, half_life_ms: i64) -> f64 {
    if elapsed_ms <= 0 || half_life_ms <= 0 {
        return 1.0;
    }
    (-(elapsed_ms as f64) / half_life_ms as f64 * std::f64::consts::LN_2).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_half_life_halves() {
        assert!((decay_factor(10, 10) - 0.5).abs() < 1e-12);
        assert!((decay_factor(30, 10) - 0.125).abs() < 1e-12);
    }

    #[test]
    fn late_events_do_not_amplify() {
        assert_eq!(decay_factor(-5, 10), 1.0);
    }
}
