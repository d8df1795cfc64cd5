//! Tail probabilities and the score scale.

use statrs::distribution::{ContinuousCDF, DiscreteCDF, NegativeBinomial, Poisson, StudentsT};

/// Smallest p-value we report; below this, floating point says nothing meaningful.
pub const P_FLOOR: f64 = 1e-300;

/// Maps a tail probability to the 0..1 score used on alerts and in thresholds:
/// `-log10(p) / 10`, capped at 1. The scale is logarithmic so that thresholds read as
/// orders of magnitude: 0.3 is p = 0.001, 0.5 is p = 1e-5, 1.0 is p ≤ 1e-10.
pub fn score_from_p(p: f64) -> f64 {
    if p.is_nan() {
        return 0.0;
    }
    (-(p.clamp(P_FLOOR, 1.0)).log10() / 10.0).clamp(0.0, 1.0)
}

/// The p-value a score stands for: the inverse of [`score_from_p`].
pub fn p_from_score(score: f64) -> f64 {
    10f64.powf(-10.0 * score)
}

/// Upper tail `P(T ≥ t)` of Student's t with `df` degrees of freedom. Used instead of
/// the normal tail because a baseline of a few dozen observations has an uncertain
/// spread, and heavier tails keep young baselines from over-alerting.
pub fn student_t_sf(t: f64, df: f64) -> f64 {
    if !t.is_finite() {
        return if t > 0.0 { P_FLOOR } else { 1.0 };
    }
    match StudentsT::new(0.0, 1.0, df.max(1.0)) {
        Ok(dist) => dist.sf(t).clamp(P_FLOOR, 1.0),
        Err(_) => 1.0,
    }
}

/// Upper tail `P(X ≥ k)` of a count whose mean and variance are known, modelled as
/// negative binomial (a Poisson whose rate itself varies, which is what bursty agent
/// traffic looks like), or as Poisson when the variance does not exceed the mean.
pub fn negative_binomial_sf(k: u64, mean: f64, var: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    let mean = mean.max(1e-6);
    let below = k - 1;
    let sf = if var > mean * 1.0001 {
        let r = mean * mean / (var - mean);
        let p = mean / var;
        NegativeBinomial::new(r, p).ok().map(|d| d.sf(below))
    } else {
        Poisson::new(mean).ok().map(|d| d.sf(below))
    };
    sf.unwrap_or(1.0).clamp(P_FLOOR, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn score_scale_is_orders_of_magnitude() {
        assert!((score_from_p(1e-3) - 0.3).abs() < 1e-12);
        assert!((score_from_p(1e-5) - 0.5).abs() < 1e-12);
        assert_eq!(score_from_p(1.0), 0.0);
        assert_eq!(score_from_p(0.0), 1.0);
    }

    #[test]
    fn student_t_is_heavier_than_normal_for_small_samples() {
        let few = student_t_sf(4.0, 5.0);
        let many = student_t_sf(4.0, 10_000.0);
        assert!(few > many * 10.0, "df=5 tail {few}, df=1e4 tail {many}");
        assert!((many - 3.167e-5).abs() < 2e-6);
    }

    #[test]
    fn negative_binomial_reduces_to_poisson_without_overdispersion() {
        // P(X >= 10 | Poisson(3)) = 0.001102...
        let p = negative_binomial_sf(10, 3.0, 3.0);
        assert!((p - 0.001_102).abs() < 1e-5, "{p}");
        // Overdispersion makes the same count less surprising.
        assert!(negative_binomial_sf(10, 3.0, 9.0) > p * 5.0);
    }

    proptest! {
        #[test]
        fn tails_are_probabilities_and_monotone(t in -50.0f64..50.0, df in 1.0f64..500.0, k in 0u64..500, mean in 0.01f64..100.0, extra in 0.0f64..100.0) {
            let a = student_t_sf(t, df);
            let b = student_t_sf(t + 1.0, df);
            prop_assert!((0.0..=1.0).contains(&a) && b <= a);
            let c = negative_binomial_sf(k, mean, mean + extra);
            let d = negative_binomial_sf(k + 1, mean, mean + extra);
            prop_assert!((0.0..=1.0).contains(&c) && d <= c + 1e-12);
        }

        #[test]
        fn score_is_monotone_in_p(p in 1e-300f64..1.0, q in 1e-300f64..1.0) {
            let (lo, hi) = if p < q { (p, q) } else { (q, p) };
            prop_assert!(score_from_p(lo) >= score_from_p(hi));
        }
    }
}
