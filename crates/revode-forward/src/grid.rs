//! The fixed-step time grid: N whole steps of `dt`, plus a shorter final
//! step when `dt` does not divide the span.

use crate::ForwardError;

/// Relative tolerance within which `(t1 − t0)/dt` counts as a whole number.
const WHOLE_STEP_RTOL: f64 = 1e-9;
/// Refuse grids longer than this (a typo like dt = 1e-12 should not hang).
pub const MAX_FIXED_STEPS: usize = 1 << 34;

/// Step `k` starts at `t0 + k·dt` (a product, not a running sum, so a
/// recomputation reproduces every time bit for bit) and has length `dt`,
/// except a final partial step that ends exactly on `t1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeGrid {
    pub t0: f64,
    pub t1: f64,
    pub dt: f64,
    n_steps: usize,
    /// Length of the last step (equal to `dt` when `dt` divides the span).
    last_h: f64,
}

impl TimeGrid {
    pub fn new(t0: f64, t1: f64, dt: f64) -> Result<Self, ForwardError> {
        if !(t0.is_finite() && t1.is_finite() && t0 < t1) {
            return Err(ForwardError::InvalidSpan { t0, t1 });
        }
        if !(dt.is_finite() && dt > 0.0) {
            return Err(ForwardError::InvalidStep { dt });
        }
        let ratio = (t1 - t0) / dt;
        if ratio >= MAX_FIXED_STEPS as f64 {
            return Err(ForwardError::TooManySteps {
                t0,
                t1,
                dt,
                steps: ratio,
                limit: MAX_FIXED_STEPS,
            });
        }
        let nearest = ratio.round();
        let (n_steps, last_h) =
            if nearest >= 1.0 && (ratio - nearest).abs() <= WHOLE_STEP_RTOL * ratio {
                (nearest as usize, dt)
            } else {
                let whole = ratio.floor() as usize;
                let rest = t1 - (t0 + whole as f64 * dt);
                if rest > 0.0 {
                    (whole + 1, rest)
                } else {
                    (whole.max(1), dt)
                }
            };
        Ok(TimeGrid {
            t0,
            t1,
            dt,
            n_steps,
            last_h,
        })
    }

    /// Number of steps N; states are u_0 … u_N.
    pub fn n_steps(&self) -> usize {
        self.n_steps
    }

    /// Start time of step `k` (time of state u_k); `time(N) = t1`.
    #[inline]
    pub fn time(&self, k: usize) -> f64 {
        if k >= self.n_steps {
            self.t1
        } else {
            self.t0 + k as f64 * self.dt
        }
    }

    /// Length of step `k` (from u_k to u_{k+1}).
    #[inline]
    pub fn step_len(&self, k: usize) -> f64 {
        if k + 1 == self.n_steps {
            self.last_h
        } else {
            self.dt
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_grid_is_exactly_60000_steps() {
        let g = TimeGrid::new(0.0, 600.0, 0.01).unwrap();
        assert_eq!(g.n_steps(), 60_000);
        assert_eq!(g.step_len(59_999), 0.01);
        assert_eq!(g.time(60_000), 600.0);
    }

    #[test]
    fn partial_final_step_lands_on_t1() {
        let g = TimeGrid::new(0.0, 1.05, 0.1).unwrap();
        assert_eq!(g.n_steps(), 11);
        assert!((g.step_len(10) - 0.05).abs() < 1e-12);
        assert!((g.time(10) + g.step_len(10) - 1.05).abs() < 1e-12);
        assert_eq!(g.time(11), 1.05);
    }

    #[test]
    fn span_shorter_than_dt_is_one_short_step() {
        let g = TimeGrid::new(0.0, 0.003, 0.01).unwrap();
        assert_eq!(g.n_steps(), 1);
        assert_eq!(g.step_len(0), 0.003);
    }

    #[test]
    fn rejects_bad_dt_and_span() {
        assert!(matches!(
            TimeGrid::new(0.0, 1.0, 0.0),
            Err(ForwardError::InvalidStep { .. })
        ));
        assert!(matches!(
            TimeGrid::new(0.0, 1.0, -1.0),
            Err(ForwardError::InvalidStep { .. })
        ));
        assert!(matches!(
            TimeGrid::new(0.0, 1.0, f64::NAN),
            Err(ForwardError::InvalidStep { .. })
        ));
        assert!(matches!(
            TimeGrid::new(1.0, 1.0, 0.1),
            Err(ForwardError::InvalidSpan { .. })
        ));
        assert!(matches!(
            TimeGrid::new(2.0, 1.0, 0.1),
            Err(ForwardError::InvalidSpan { .. })
        ));
        assert!(matches!(
            TimeGrid::new(0.0, 1e9, 1e-9),
            Err(ForwardError::TooManySteps { .. })
        ));
    }
}
