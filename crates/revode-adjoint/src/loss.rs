//! Scalar losses of a trajectory and their adjoint seeds.

use revode_forward::StepTimes;

use crate::GradientError;

/// A loss on the trajectory.
#[derive(Debug, Clone, PartialEq)]
pub enum Loss {
    /// `L = w · u(t1)`.
    Final { weights: Vec<f64> },
    /// `L = Σ_{k=0..N} w · u_k` (the `sum(sol)` of a saved-every-step solve;
    /// fixed-step solvers only).
    AllSteps { weights: Vec<f64> },
    /// `L = (1/m) Σ_j (u_c(t_j) − y_j)²` over m observations `(t_j, y_j)`
    /// of state component c, times strictly increasing in (t0, t1].
    TraceMse {
        component: usize,
        times: Vec<f64>,
        values: Vec<f64>,
    },
    /// `L = Σ_k (t_k − τ_k)²` over the first K firings t_k of event `event`
    /// (a `global` line, from 0 in file order), K = `times.len()`. A firing
    /// missing by t1 counts as firing at t1 (a constant term): the loss stays
    /// continuous when a spike leaves the span, and a fit can bring it back.
    /// euler, rk4 (discrete adjoint) and dopri5 (continuous adjoint).
    EventTimes { event: usize, times: Vec<f64> },
}

impl Loss {
    pub fn name(&self) -> &'static str {
        match self {
            Loss::Final { .. } => "final",
            Loss::AllSteps { .. } => "all_steps",
            Loss::TraceMse { .. } => "trace_mse",
            Loss::EventTimes { .. } => "event_times",
        }
    }

    /// Weights of `final` and `all_steps` (empty for `trace_mse`).
    pub fn weights(&self) -> &[f64] {
        match self {
            Loss::Final { weights } | Loss::AllSteps { weights } => weights,
            Loss::TraceMse { .. } | Loss::EventTimes { .. } => &[],
        }
    }

    /// Observation times of a `trace_mse` loss (empty otherwise).
    pub fn observation_times(&self) -> &[f64] {
        match self {
            Loss::TraceMse { times, .. } => times,
            _ => &[],
        }
    }

    /// Checks the loss against the state size and the time span.
    pub fn validate(&self, n_states: usize, t0: f64, t1: f64) -> Result<(), GradientError> {
        match self {
            Loss::EventTimes { times, .. } => {
                if times.is_empty() {
                    return Err(GradientError::ObservationLengths {
                        times: 0,
                        values: 0,
                    });
                }
                crate::check_vector("event times", times, times.len())
            }
            Loss::Final { weights } | Loss::AllSteps { weights } => {
                crate::check_vector("loss weights", weights, n_states)
            }
            Loss::TraceMse {
                component,
                times,
                values,
            } => {
                if *component >= n_states {
                    return Err(GradientError::ObservedComponent {
                        component: *component,
                        n_states,
                    });
                }
                if times.is_empty() || times.len() != values.len() {
                    return Err(GradientError::ObservationLengths {
                        times: times.len(),
                        values: values.len(),
                    });
                }
                crate::check_vector("observed values", values, values.len())?;
                for (index, &t) in times.iter().enumerate() {
                    if !(t.is_finite() && t > t0 && t <= t1) {
                        return Err(GradientError::ObservationOutside { index, t, t0, t1 });
                    }
                    if index > 0 && t <= times[index - 1] {
                        return Err(GradientError::ObservationsUnsorted {
                            index,
                            t,
                            prev: times[index - 1],
                        });
                    }
                }
                Ok(())
            }
        }
    }

    /// Loss weights of `final` at t1 (None for other losses).
    pub(crate) fn final_weights(&self) -> Option<&[f64]> {
        match self {
            Loss::Final { weights } => Some(weights),
            _ => None,
        }
    }

    /// Contribution of observation `j` at state `u`.
    #[inline]
    pub(crate) fn observation_term(&self, j: usize, u: &[f64]) -> f64 {
        match self {
            Loss::TraceMse {
                component, values, ..
            } => {
                let r = u[*component] - values[j];
                r * r / values.len() as f64
            }
            _ => 0.0,
        }
    }

    /// `λ += ∂(observation term j)/∂u`.
    #[inline]
    pub(crate) fn add_observation_seed(&self, j: usize, u: &[f64], lambda: &mut [f64]) {
        if let Loss::TraceMse {
            component, values, ..
        } = self
        {
            lambda[*component] += 2.0 * (u[*component] - values[j]) / values.len() as f64;
        }
    }
}

/// A loss laid on a fixed grid: which step each observation falls on.
#[derive(Debug, Clone)]
pub struct StepLoss<'a> {
    loss: &'a Loss,
    n_steps: usize,
    /// Step index of each observation (strictly increasing).
    observation_steps: Vec<usize>,
    /// The weights of a loss with a term at every state (`all_steps`).
    every_state: Option<EveryState<'a>>,
    /// The first state with a term when `every_state` is `None`: N for
    /// `final`, the first observation for `trace_mse`. The step loops ask
    /// about every state; below this one the answer is "none" at the cost
    /// of one comparison.
    first_term: usize,
}

impl<'a> StepLoss<'a> {
    /// Maps observation times to grid steps; a time off the grid is an error
    /// (fixed-step solvers observe only where they step).
    pub fn new<T: StepTimes + ?Sized>(loss: &'a Loss, grid: &T) -> Result<Self, GradientError> {
        let n = grid.n_steps();
        let mut observation_steps = Vec::with_capacity(loss.observation_times().len());
        for (index, &t) in loss.observation_times().iter().enumerate() {
            let k = grid.index_of(t).ok_or(GradientError::ObservationOffGrid {
                index,
                t,
                dt: grid.dt(),
            })?;
            observation_steps.push(k);
        }
        let every_state = match loss {
            Loss::AllSteps { weights } => Some(EveryState::of(weights)),
            _ => None,
        };
        let first_term = observation_steps.first().copied().unwrap_or(n).min(n);
        Ok(StepLoss {
            loss,
            n_steps: n,
            observation_steps,
            every_state,
            first_term,
        })
    }

    #[inline]
    fn observation_at(&self, k: usize) -> Option<usize> {
        if self.observation_steps.is_empty() {
            return None;
        }
        self.observation_steps.binary_search(&k).ok()
    }

    /// Contribution of state `k` to the loss (0 for a state without a term).
    #[inline(always)]
    /// Only the last state has a term (`final`).
    pub fn final_only(&self) -> bool {
        self.every_state.is_none() && self.first_term == self.n_steps
    }

    pub fn term(&self, k: usize, u: &[f64]) -> f64 {
        if let Some(weights) = &self.every_state {
            return weights.dot(u);
        }
        if k < self.first_term {
            return 0.0;
        }
        self.term_from(k, u)
    }

    /// [`StepLoss::term`] at and past the first state with a term.
    #[inline(never)]
    fn term_from(&self, k: usize, u: &[f64]) -> f64 {
        match self.loss {
            Loss::Final { weights } if k == self.n_steps => dot(weights, u),
            Loss::Final { .. } => 0.0,
            Loss::AllSteps { weights } => dot(weights, u),
            Loss::TraceMse { .. } => self
                .observation_at(k)
                .map_or(0.0, |j| self.loss.observation_term(j, u)),
            Loss::EventTimes { .. } => 0.0,
        }
    }

    /// `λ += ∂(term k)/∂u_k`.
    #[inline(always)]
    pub fn add_seed(&self, k: usize, u: &[f64], lambda: &mut [f64]) {
        if let Some(weights) = &self.every_state {
            return weights.add_to(lambda);
        }
        if k >= self.first_term {
            self.add_seed_from(k, u, lambda);
        }
    }

    /// [`StepLoss::add_seed`] at and past the first state with a term.
    #[inline(never)]
    fn add_seed_from(&self, k: usize, u: &[f64], lambda: &mut [f64]) {
        match self.loss {
            Loss::Final { weights } if k == self.n_steps => add(lambda, weights),
            Loss::Final { .. } => {}
            Loss::AllSteps { weights } => add(lambda, weights),
            Loss::TraceMse { .. } => {
                if let Some(j) = self.observation_at(k) {
                    self.loss.add_observation_seed(j, u, lambda);
                }
            }
            Loss::EventTimes { .. } => {}
        }
    }
}

/// The weights of an `all_steps` loss. Often they pick a few states of a
/// large model (the far end's voltage of a 400-state cable): then only the
/// nonzero ones are visited, in the same order, so the sums are the same
/// (adding `0·u` changes nothing for finite `u`, and states are finite).
#[derive(Debug, Clone)]
enum EveryState<'a> {
    Dense(&'a [f64]),
    Sparse(Vec<(usize, f64)>),
}

impl<'a> EveryState<'a> {
    fn of(weights: &'a [f64]) -> Self {
        let nonzero: Vec<(usize, f64)> = weights
            .iter()
            .enumerate()
            .filter(|(_, w)| **w != 0.0)
            .map(|(i, w)| (i, *w))
            .collect();
        // Dense when most weights count: one vectorised pass is cheaper.
        if 4 * nonzero.len() <= weights.len() {
            EveryState::Sparse(nonzero)
        } else {
            EveryState::Dense(weights)
        }
    }

    #[inline]
    fn dot(&self, u: &[f64]) -> f64 {
        match self {
            EveryState::Dense(weights) => dot(weights, u),
            EveryState::Sparse(nonzero) => nonzero.iter().map(|&(i, w)| w * u[i]).sum(),
        }
    }

    #[inline]
    fn add_to(&self, lambda: &mut [f64]) {
        match self {
            EveryState::Dense(weights) => add(lambda, weights),
            EveryState::Sparse(nonzero) => {
                for &(i, w) in nonzero {
                    lambda[i] += w;
                }
            }
        }
    }
}

#[inline]
fn add(lambda: &mut [f64], weights: &[f64]) {
    for (l, w) in lambda.iter_mut().zip(weights) {
        *l += w;
    }
}

#[inline]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The event_times loss of a solve: its value from the recorded times, and
/// the seeds ∂L/∂t* handed to the backward sweep, last event first.
#[derive(Debug, Clone)]
pub(crate) struct EventTimeLoss {
    event: usize,
    /// `2 (t_k − τ_k)` for the first K firings.
    seeds: Vec<f64>,
    /// Firings of the event not yet passed by the backward sweep.
    remaining: usize,
}

impl EventTimeLoss {
    /// `(times, count)` recorded by the forward sweep against the targets;
    /// firings missing by `t1` count as firing at `t1`, with no seed.
    pub fn new(event: usize, targets: &[f64], recorded: (Vec<f64>, usize), t1: f64) -> (Self, f64) {
        let (times, count) = recorded;
        let mut value = 0.0;
        let seeds = times
            .iter()
            .zip(targets)
            .map(|(t, tau)| {
                value += (t - tau) * (t - tau);
                2.0 * (t - tau)
            })
            .collect();
        for tau in &targets[times.len()..] {
            value += (t1 - tau) * (t1 - tau);
        }
        (
            EventTimeLoss {
                event,
                seeds,
                remaining: count,
            },
            value,
        )
    }

    /// ∂L/∂t* of the next firing of event `e` going backward.
    #[inline]
    pub fn seed(&mut self, e: usize) -> f64 {
        if e != self.event {
            return 0.0;
        }
        self.remaining -= 1;
        self.seeds.get(self.remaining).copied().unwrap_or(0.0)
    }
}

#[cfg(test)]
mod step_loss_tests {
    use super::*;
    use revode_forward::TimeGrid;

    /// A probe of one state among eight visits only that state and gives
    /// the dense sums bitwise; weights that mostly count stay dense.
    #[test]
    fn sparse_all_steps_weights_give_the_dense_sums() {
        let grid = TimeGrid::new(0.0, 1.0, 0.25).unwrap();
        let u = [0.3, -1.7, 2.5, 0.0, -0.0, 8.25, -3.5, 1e-300];
        for weights in [
            vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0],
            vec![0.0, -0.5, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0],
            vec![1.0, 2.0, 0.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        ] {
            let sparse = weights.iter().filter(|w| **w != 0.0).count() * 4 <= weights.len();
            let loss = Loss::AllSteps {
                weights: weights.clone(),
            };
            let step_loss = StepLoss::new(&loss, &grid).unwrap();
            assert_eq!(
                matches!(step_loss.every_state, Some(EveryState::Sparse(_))),
                sparse,
                "{weights:?}"
            );
            assert_eq!(step_loss.term(2, &u).to_bits(), dot(&weights, &u).to_bits());
            let mut lambda = [1.0, -2.0, 0.5, 0.25, 3.0, -1.0, 2.0, 0.125];
            let mut expected = lambda;
            step_loss.add_seed(2, &u, &mut lambda);
            add(&mut expected, &weights);
            assert_eq!(lambda, expected, "{weights:?}");
        }
    }
}
