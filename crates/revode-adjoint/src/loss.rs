//! Scalar losses of a trajectory and their adjoint seeds.

/// A loss on the discrete trajectory u_0 … u_N.
#[derive(Debug, Clone, PartialEq)]
pub enum Loss {
    /// `L = w · u_N`.
    Final { weights: Vec<f64> },
    /// `L = Σ_{k=0..N} w · u_k` (the `sum(sol)` of a saved-every-step solve).
    AllSteps { weights: Vec<f64> },
}

impl Loss {
    pub fn name(&self) -> &'static str {
        match self {
            Loss::Final { .. } => "final",
            Loss::AllSteps { .. } => "all_steps",
        }
    }

    pub fn weights(&self) -> &[f64] {
        match self {
            Loss::Final { weights } | Loss::AllSteps { weights } => weights,
        }
    }

    /// Contribution of state `k` of `n` to the loss.
    #[inline]
    pub(crate) fn term(&self, k: usize, n: usize, u: &[f64]) -> f64 {
        match self {
            Loss::Final { weights } if k == n => dot(weights, u),
            Loss::Final { .. } => 0.0,
            Loss::AllSteps { weights } => dot(weights, u),
        }
    }

    /// `λ += ∂(term k)/∂u_k`.
    #[inline]
    pub(crate) fn add_seed(&self, k: usize, n: usize, lambda: &mut [f64]) {
        let weights = match self {
            Loss::Final { weights } if k == n => weights,
            Loss::Final { .. } => return,
            Loss::AllSteps { weights } => weights,
        };
        for (l, w) in lambda.iter_mut().zip(weights) {
            *l += w;
        }
    }
}

#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
