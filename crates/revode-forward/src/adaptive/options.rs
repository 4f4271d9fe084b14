//! User options of the adaptive solver and their checks.

use super::Tolerance;
use crate::ForwardError;

/// Options of [`super::Dopri5`].
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveOptions {
    pub rtol: f64,
    /// One value for all components, or one per component.
    pub atol: Vec<f64>,
    /// Most accepted steps before giving up.
    pub max_steps: usize,
    /// First step; `None`: Hairer's initial-step algorithm.
    pub h0: Option<f64>,
    /// Smallest step allowed; `None`: 1e-12 · (t1 − t0).
    pub h_min: Option<f64>,
}

/// Default limit on accepted steps.
pub const DEFAULT_MAX_STEPS: usize = 100_000;

impl AdaptiveOptions {
    pub fn new(rtol: f64, atol: f64) -> Self {
        AdaptiveOptions {
            rtol,
            atol: vec![atol],
            max_steps: DEFAULT_MAX_STEPS,
            h0: None,
            h_min: None,
        }
    }

    /// Checks the options and expands `atol` to `n` components.
    pub fn tolerance(&self, n: usize) -> Result<Tolerance, ForwardError> {
        check_tolerances(self.rtol, &self.atol, n)?;
        if self.max_steps == 0 {
            return Err(ForwardError::InvalidOption {
                what: "max_steps",
                value: 0.0,
                expected: "at least 1",
            });
        }
        if let Some(h0) = self.h0 {
            if !(h0.is_finite() && h0 > 0.0) {
                return Err(ForwardError::InvalidOption {
                    what: "h0",
                    value: h0,
                    expected: "positive and finite",
                });
            }
        }
        if let Some(h_min) = self.h_min {
            if !(h_min.is_finite() && h_min > 0.0) {
                return Err(ForwardError::InvalidOption {
                    what: "h_min",
                    value: h_min,
                    expected: "positive and finite",
                });
            }
        }
        Ok(Tolerance {
            rtol: self.rtol,
            atol: expand_atol(&self.atol, n),
            controlled: n,
        })
    }
}

/// `rtol > 0` finite; `atol` entries `≥ 0` finite, 1 or `n` of them.
pub fn check_tolerances(rtol: f64, atol: &[f64], n: usize) -> Result<(), ForwardError> {
    if !(rtol.is_finite() && rtol > 0.0) {
        return Err(ForwardError::InvalidOption {
            what: "rtol",
            value: rtol,
            expected: "positive and finite",
        });
    }
    if atol.len() != 1 && atol.len() != n {
        return Err(ForwardError::AtolLength {
            got: atol.len(),
            expected: n,
        });
    }
    if let Some(&a) = atol.iter().find(|a| !(a.is_finite() && **a >= 0.0)) {
        return Err(ForwardError::InvalidOption {
            what: "atol",
            value: a,
            expected: "non-negative and finite",
        });
    }
    Ok(())
}

/// A scalar atol repeated `n` times, or the per-component list itself.
pub fn expand_atol(atol: &[f64], n: usize) -> Vec<f64> {
    if atol.len() == 1 {
        vec![atol[0]; n]
    } else {
        atol.to_vec()
    }
}
