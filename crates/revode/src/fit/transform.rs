//! Unconstrained, scaled coordinates for bounded parameters.
//!
//! The optimiser works on `x ∈ ℝⁿ`; each free parameter is a smooth function
//! of its own coordinate that cannot leave its bounds:
//!
//! | bounds            | parameter `p(x)`                         | start `x₀` |
//! |-------------------|------------------------------------------|------------|
//! | none              | `p₀ + s·x`, `s = |p₀|` (1 if `p₀ = 0`)   | 0          |
//! | lower `a`         | `a + (p₀ − a)·eˣ`                        | 0          |
//! | upper `b`         | `b − (b − p₀)·eˣ`                        | 0          |
//! | `0 < a < b`       | `exp(ln a + (ln b − ln a)·σ(x))`         | `σ⁻¹(…)`   |
//! | `a ≤ 0 < b`, etc. | `a + (b − a)·σ(x)`                       | `σ⁻¹(…)`   |
//!
//! A unit step in `x` is a relative change of the parameter (a factor e, or
//! a fraction of a decade-spanning interval), whatever its magnitude, so
//! conductances of 600 and time constants of 1e-4 are equally well scaled.
//! Positive bounds use the logistic in log space for the same reason.
//! The gradient follows by the chain rule: `dL/dx = dL/dp · dp/dx`.

/// One free parameter's map from coordinate to value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Coordinate {
    Scaled { center: f64, scale: f64 },
    Lower { lower: f64, scale: f64 },
    Upper { upper: f64, scale: f64 },
    Logistic { lower: f64, upper: f64 },
    LogLogistic { lower: f64, upper: f64 },
}

/// The logistic function, without overflow for large |x|.
fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn logit(u: f64) -> f64 {
    (u / (1.0 - u)).ln()
}

impl Coordinate {
    /// The coordinate for a parameter starting at `start` (strictly inside
    /// its bounds; the caller has checked).
    pub(crate) fn new(start: f64, lower: Option<f64>, upper: Option<f64>) -> Coordinate {
        match (lower, upper) {
            (None, None) => Coordinate::Scaled {
                center: start,
                scale: if start == 0.0 { 1.0 } else { start.abs() },
            },
            (Some(lower), None) => Coordinate::Lower {
                lower,
                scale: start - lower,
            },
            (None, Some(upper)) => Coordinate::Upper {
                upper,
                scale: upper - start,
            },
            (Some(lower), Some(upper)) if lower > 0.0 => Coordinate::LogLogistic { lower, upper },
            (Some(lower), Some(upper)) => Coordinate::Logistic { lower, upper },
        }
    }

    /// `x` of a parameter value strictly inside the bounds.
    pub(crate) fn to_coordinate(self, p: f64) -> f64 {
        match self {
            Coordinate::Scaled { center, scale } => (p - center) / scale,
            Coordinate::Lower { lower, scale } => ((p - lower) / scale).ln(),
            Coordinate::Upper { upper, scale } => ((upper - p) / scale).ln(),
            Coordinate::Logistic { lower, upper } => logit((p - lower) / (upper - lower)),
            Coordinate::LogLogistic { lower, upper } => {
                logit((p.ln() - lower.ln()) / (upper.ln() - lower.ln()))
            }
        }
    }

    /// The parameter value at `x`; always within the bounds (clamped
    /// against rounding at the ends).
    pub(crate) fn to_param(self, x: f64) -> f64 {
        match self {
            Coordinate::Scaled { center, scale } => center + scale * x,
            Coordinate::Lower { lower, scale } => lower + scale * x.exp(),
            Coordinate::Upper { upper, scale } => upper - scale * x.exp(),
            Coordinate::Logistic { lower, upper } => {
                (lower + (upper - lower) * sigmoid(x)).clamp(lower, upper)
            }
            Coordinate::LogLogistic { lower, upper } => {
                let (la, lb) = (lower.ln(), upper.ln());
                (la + (lb - la) * sigmoid(x)).exp().clamp(lower, upper)
            }
        }
    }

    /// `dp/dx` at `x`.
    pub(crate) fn derivative(self, x: f64) -> f64 {
        match self {
            Coordinate::Scaled { scale, .. } => scale,
            Coordinate::Lower { scale, .. } => scale * x.exp(),
            Coordinate::Upper { scale, .. } => -scale * x.exp(),
            Coordinate::Logistic { lower, upper } => {
                let s = sigmoid(x);
                (upper - lower) * s * (1.0 - s)
            }
            Coordinate::LogLogistic { lower, upper } => {
                let s = sigmoid(x);
                self.to_param(x) * (upper.ln() - lower.ln()) * s * (1.0 - s)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_kinds() -> Vec<(Coordinate, f64)> {
        vec![
            (Coordinate::new(-3.0, None, None), -3.0),
            (Coordinate::new(0.0, None, None), 0.0),
            (Coordinate::new(2e-4, Some(0.0), None), 2e-4),
            (Coordinate::new(-70.0, None, Some(-50.0)), -70.0),
            (Coordinate::new(55.0, Some(1.0), Some(200.0)), 55.0),
            (Coordinate::new(-10.0, Some(-100.0), Some(0.0)), -10.0),
        ]
    }

    #[test]
    fn start_maps_back_to_itself() {
        for (c, p0) in all_kinds() {
            let x0 = c.to_coordinate(p0);
            let back = c.to_param(x0);
            assert!((back - p0).abs() <= 1e-12 * p0.abs().max(1.0), "{c:?}");
        }
    }

    #[test]
    fn derivative_matches_central_differences() {
        for (c, p0) in all_kinds() {
            for dx in [-2.0, -0.3, 0.0, 0.7, 3.0] {
                let x = c.to_coordinate(p0) + dx;
                let h = 1e-6;
                let fd = (c.to_param(x + h) - c.to_param(x - h)) / (2.0 * h);
                let d = c.derivative(x);
                assert!(
                    (fd - d).abs() <= 1e-6 * d.abs().max(1e-12),
                    "{c:?} at {x}: {d} vs {fd}"
                );
            }
        }
    }

    #[test]
    fn bounds_hold_for_any_coordinate() {
        let c = Coordinate::new(55.0, Some(1.0), Some(200.0));
        let d = Coordinate::new(2e-4, Some(0.0), None);
        let u = Coordinate::new(-70.0, None, Some(-50.0));
        for x in [-1e6, -800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0, 1e6] {
            assert!((1.0..=200.0).contains(&c.to_param(x)));
            assert!(d.to_param(x) >= 0.0);
            assert!(u.to_param(x) <= -50.0);
        }
    }
}
