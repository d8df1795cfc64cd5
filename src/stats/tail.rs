//! Tail probabilities and the score scale.

use statrs::distribution::{
    Binomial, ContinuousCDF, DiscreteCDF, NegativeBinomial, Poisson, StudentsT,
};
use statrs::function::gamma::ln_gamma;

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

/// The Beta(a, b) whose mean is `rate` and whose intra-class correlation is `rho`
/// (`rho` within (0, 1)).
fn beta_shape(rate: f64, rho: f64) -> (f64, f64) {
    let rho = rho.min(1.0 - 1e-9);
    let concentration = (1.0 - rho) / rho;
    (rate * concentration, (1.0 - rate) * concentration)
}

/// `ln B(a + k, b + m − k) − ln B(a, b)`: the beta-binomial's probability of one
/// particular sequence of `k` successes in `m` trials.
///
/// With no success (`k = 0`: most of the windows `denied_burst` closes have no failed
/// call) the first difference is exactly zero; it is left out, which gives the same
/// bits for a third less work.
fn ln_beta_ratio(a: f64, b: f64, k: f64, m: f64) -> f64 {
    let successes = if k == 0.0 {
        0.0
    } else {
        ln_gamma(a + k) - ln_gamma(a)
    };
    successes + ln_gamma(b + m - k) - ln_gamma(b) + ln_gamma(a + b) - ln_gamma(a + b + m)
}

/// How much more likely `k` failures among `m` calls are when the calls' failure
/// probability is shared within the window with intra-window correlation `rho` (a
/// beta-binomial) than when calls fail independently at `rate` (a binomial): the
/// natural log of the likelihood ratio, which is how a window's evidence about whether
/// failures cluster is accumulated.
pub fn clustering_log_likelihood_ratio(k: u64, m: u64, rate: f64, rho: f64) -> f64 {
    if m == 0 || k > m {
        return 0.0;
    }
    let rate = rate.clamp(1e-9, 1.0 - 1e-9);
    let (a, b) = beta_shape(rate, rho.max(1e-9));
    let (kf, mf) = (k as f64, m as f64);
    let clustered = ln_beta_ratio(a, b, kf, mf);
    let independent = kf * rate.ln() + (mf - kf) * (1.0 - rate).ln();
    clustered - independent
}

/// Upper tail `P(X ≥ k)` of `k` successes in `m` trials whose success probability has
/// mean `rate` and intra-class correlation `rho` (beta-binomial: each batch of trials
/// draws its own probability from a Beta distribution). `rho = 0` is the binomial; the
/// larger `rho`, the more the successes cluster and the heavier the tail.
///
/// A count at or below the mean is not surprising and is reported as 1 without
/// summing. Otherwise the probabilities from `k` up are summed by their ratio
/// recurrence, stopping once the terms are falling and negligible.
pub fn beta_binomial_sf(k: u64, m: u64, rate: f64, rho: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > m {
        return 0.0;
    }
    let rate = rate.clamp(1e-9, 1.0 - 1e-9);
    if (k as f64) <= m as f64 * rate {
        return 1.0;
    }
    if rho < 1e-9 {
        return Binomial::new(rate, m)
            .map(|d| d.sf(k - 1))
            .unwrap_or(1.0)
            .clamp(P_FLOOR, 1.0);
    }
    let (a, b) = beta_shape(rate, rho);
    let (kf, mf) = (k as f64, m as f64);
    // ln P(X = k) = ln C(m, k) + ln B(a + k, b + m − k) − ln B(a, b)
    let ln_first = ln_gamma(mf + 1.0) - ln_gamma(kf + 1.0) - ln_gamma(mf - kf + 1.0)
        + ln_beta_ratio(a, b, kf, mf);
    let mut term = ln_first.exp();
    let mut sum = term;
    // With b ≥ 1 the probabilities above the mean only fall once they start falling
    // (the distribution is unimodal, or decreasing); below 1 they may rise again at m.
    let may_stop = b >= 1.0;
    let mut j = kf;
    while j < mf {
        let ratio = (mf - j) * (a + j) / ((j + 1.0) * (b + mf - j - 1.0));
        term *= ratio;
        sum += term;
        j += 1.0;
        if may_stop && ratio < 1.0 && term <= sum * 1e-16 {
            break;
        }
    }
    if sum.is_finite() {
        sum.clamp(P_FLOOR, 1.0)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_windows_barely_favour_clustering_lone_failures_independence_pairs_clustering() {
        let llr = |k| clustering_log_likelihood_ratio(k, 6, 0.001, 0.05);
        assert!(llr(0) > 0.0 && llr(0) < 1e-3, "{}", llr(0));
        assert!(llr(1) < -0.1, "{}", llr(1));
        assert!(llr(2) > 3.0, "{}", llr(2));
        // The likelihoods under the clustered model sum to one.
        let total: f64 = (0..=6u64)
            .map(|k| {
                let independent = statrs::distribution::Binomial::new(0.001, 6)
                    .map(|d| statrs::distribution::Discrete::pmf(&d, k))
                    .unwrap();
                independent * clustering_log_likelihood_ratio(k, 6, 0.001, 0.05).exp()
            })
            .sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
    }
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

    #[test]
    fn beta_binomial_matches_its_sum_and_reduces_to_the_binomial() {
        // Reference values: the pmf summed from k to m with log-gamma (Python).
        for (k, m, rate, rho, expected) in [
            (10, 50, 0.05, 0.1, 0.060_998_516_278_917_7),
            (20, 25, 0.02, 0.02, 1.152_100_445_785_715e-13),
            (5, 40, 0.02, 0.3, 0.054_265_024_184_504_27),
            (3, 10, 0.1, 0.05, 0.106_129_597_529_562_12),
        ] {
            let p = beta_binomial_sf(k, m, rate, rho);
            assert!(
                (p - expected).abs() <= expected * 1e-9,
                "{k} of {m} at {rate}, rho {rho}: {p} against {expected}"
            );
        }
        let binomial = Binomial::new(0.02, 100).unwrap().sf(7);
        assert!((beta_binomial_sf(8, 100, 0.02, 0.0) - binomial).abs() < 1e-15);
        assert!((beta_binomial_sf(8, 100, 0.02, 1e-7) - binomial).abs() < binomial * 1e-3);
        // Clustering makes the same burst less surprising, by orders of magnitude.
        let far = Binomial::new(0.02, 100).unwrap().sf(14);
        assert!(beta_binomial_sf(15, 100, 0.02, 0.05) > far * 1e4);
        assert_eq!(beta_binomial_sf(1, 100, 0.02, 0.05), 1.0, "at the mean");
        assert_eq!(beta_binomial_sf(101, 100, 0.02, 0.05), 0.0);
    }

    proptest! {
        #[test]
        fn beta_binomial_tails_are_monotone(k in 1u64..300, m in 1u64..300, rate in 0.001f64..0.5, rho in 0.0f64..0.6, more in 0.0f64..0.3) {
            let p = beta_binomial_sf(k, m, rate, rho);
            prop_assert!((0.0..=1.0).contains(&p));
            prop_assert!(beta_binomial_sf(k + 1, m, rate, rho) <= p * (1.0 + 1e-9));
            // More clustering never makes a count far in the tail more surprising.
            let clustered = beta_binomial_sf(k, m, rate, (rho + more).min(0.9));
            prop_assert!(clustered >= p * (1.0 - 1e-9) || p > 1e-3, "{clustered} < {p}");
        }

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
