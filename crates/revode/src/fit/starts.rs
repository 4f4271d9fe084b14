//! Seeded start points for a multi-start fit.

use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Spread around the given start for a parameter without both bounds when
/// no `spread` is asked for: ±50 %.
pub const DEFAULT_SPREAD: f64 = 0.5;

/// Start 0 is `given` itself; starts 1..k are drawn from `seed`, each
/// parameter log-uniformly (uniformly when the interval reaches zero or
/// below) within `given · [1 − spread, 1 + spread]`, or, without `spread`,
/// within its bounds when it has both, and always strictly inside them.
pub(crate) fn sample_starts(
    given: &[f64],
    bounds: &[(Option<f64>, Option<f64>)],
    k: usize,
    spread: Option<f64>,
    seed: u64,
) -> Vec<Vec<f64>> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let intervals: Vec<(f64, f64)> = given
        .iter()
        .zip(bounds)
        .map(|(&p0, &(lower, upper))| interval(p0, lower, upper, spread))
        .collect();
    let mut starts = vec![given.to_vec()];
    for _ in 1..k {
        starts.push(
            intervals
                .iter()
                .map(|&(lo, hi)| {
                    let u = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
                    if lo > 0.0 {
                        (lo.ln() + u * (hi.ln() - lo.ln())).exp().clamp(lo, hi)
                    } else {
                        (lo + u * (hi - lo)).clamp(lo, hi)
                    }
                })
                .collect(),
        );
    }
    starts
}

/// The sampling interval of one parameter, kept a hair inside its bounds.
fn interval(p0: f64, lower: Option<f64>, upper: Option<f64>, spread: Option<f64>) -> (f64, f64) {
    let around = |s: f64| {
        let (a, b) = (p0 * (1.0 - s), p0 * (1.0 + s));
        if p0 == 0.0 {
            (-s, s)
        } else {
            (a.min(b), a.max(b))
        }
    };
    let (mut lo, mut hi) = match (spread, lower, upper) {
        (Some(s), _, _) => around(s),
        (None, Some(a), Some(b)) => (a, b),
        (None, _, _) => around(DEFAULT_SPREAD),
    };
    // Strictly inside the bounds: the coordinate maps need it.
    if let Some(a) = lower {
        lo = lo.max(a);
    }
    if let Some(b) = upper {
        hi = hi.min(b);
    }
    let margin = 1e-9 * (hi - lo).abs().max(f64::MIN_POSITIVE);
    if lower.is_some_and(|a| lo <= a) {
        lo += margin;
    }
    if upper.is_some_and(|b| hi >= b) {
        hi -= margin;
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_are_seeded_and_inside_their_intervals() {
        let given = [55.0, 13.0, 0.065];
        let bounds = [(Some(1.0), Some(200.0)), (Some(0.0), None), (None, None)];
        let a = sample_starts(&given, &bounds, 16, Some(0.3), 7);
        assert_eq!(a, sample_starts(&given, &bounds, 16, Some(0.3), 7));
        assert_ne!(a, sample_starts(&given, &bounds, 16, Some(0.3), 8));
        assert_eq!(a[0], given);
        for s in &a[1..] {
            for (v, p0) in s.iter().zip(given) {
                assert!(*v >= 0.7 * p0 && *v <= 1.3 * p0, "{v} vs {p0}");
            }
        }
        let within = sample_starts(&given, &bounds, 50, None, 1);
        for s in &within[1..] {
            assert!(s[0] > 1.0 && s[0] < 200.0);
            assert!(s[1] > 0.0 && s[1] <= 1.5 * 13.0);
        }
    }
}
