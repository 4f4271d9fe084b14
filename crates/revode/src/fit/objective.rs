//! The fit's loss and gradient: every sweep's adjoint gradient (in
//! parallel), summed with the sweep weights, then carried through the
//! coordinate transform to the optimiser's coordinates.

use std::sync::{Arc, Mutex};

use argmin::core::{CostFunction, Error as ArgminError, Gradient};
use rayon::prelude::*;

use super::transform::Coordinate;
use crate::{Error, Problem};

/// One sweep, ready to run: a problem whose `trace_mse` loss holds the
/// samples after t0, and the constant a sample at t0 adds (it does not
/// depend on the parameters).
#[derive(Debug, Clone)]
pub(crate) struct PreparedSweep {
    pub problem: Problem,
    /// The sweep's weight times the share of its samples after t0.
    pub loss_weight: f64,
    /// weight · (u0_c − y(t0))² / m, or 0 without a sample at t0.
    pub constant: f64,
}

/// Loss and gradient with respect to the full parameter vector.
pub(crate) trait Evaluate: Sync {
    fn loss_and_gradient(&self, params: &[f64]) -> Result<(f64, Vec<f64>), Error>;
}

impl Evaluate for [PreparedSweep] {
    fn loss_and_gradient(&self, params: &[f64]) -> Result<(f64, Vec<f64>), Error> {
        sweeps_loss_and_gradient(self, params)
    }
}

fn sweeps_loss_and_gradient(
    sweeps: &[PreparedSweep],
    params: &[f64],
) -> Result<(f64, Vec<f64>), Error> {
    let parts: Vec<(f64, Vec<f64>)> = sweeps
        .par_iter()
        .map(|sweep| {
            let mut problem = sweep.problem.clone();
            problem.params = Some(params.to_vec());
            let r = crate::gradient(&problem)?;
            let w = sweep.loss_weight;
            Ok((
                w * r.loss + sweep.constant,
                r.gradient.iter().map(|g| w * g).collect(),
            ))
        })
        .collect::<Result<_, Error>>()?;
    let mut loss = 0.0;
    let mut gradient = vec![0.0; params.len()];
    for (l, g) in parts {
        loss += l;
        for (acc, gi) in gradient.iter_mut().zip(g) {
            *acc += gi;
        }
    }
    Ok((loss, gradient))
}

/// An evaluated point in the optimiser's coordinates.
#[derive(Debug, Clone)]
pub(crate) struct Point {
    pub x: Vec<f64>,
    pub loss: f64,
    /// dL/dx (unscaled).
    pub gradient: Vec<f64>,
}

#[derive(Debug, Default)]
struct Record {
    last: Option<Point>,
    best: Option<Point>,
    largest_loss: f64,
    evaluations: usize,
    failures: Vec<String>,
    failed_points: Vec<Vec<f64>>,
}

/// What the optimiser minimises: `scale · L(p(x))`.
pub(crate) struct Objective<'a, E: Evaluate + ?Sized = [PreparedSweep]> {
    sweeps: &'a E,
    base_params: &'a [f64],
    free_index: &'a [usize],
    coordinates: Vec<Coordinate>,
    /// Set after the first evaluation so that the first L-BFGS step (which
    /// is the steepest-descent direction with unit length factor) moves the
    /// coordinates by [`FIRST_STEP`]; later steps are scaled by L-BFGS itself.
    scale: f64,
    /// Shared with the caller: argmin does not hand the problem back after
    /// a failed line search.
    record: Arc<Mutex<Record>>,
}

/// Length of the first step in the coordinates (10 % of a log unit).
pub const FIRST_STEP: f64 = 0.1;

/// A trial point whose solve fails gets this many times the largest finite
/// loss seen so far (see [`Objective::penalised`]).
pub const BLOW_UP_FACTOR: f64 = 10.0;

impl<'a, E: Evaluate + ?Sized> Objective<'a, E> {
    pub(crate) fn new(
        sweeps: &'a E,
        base_params: &'a [f64],
        free_index: &'a [usize],
        coordinates: Vec<Coordinate>,
    ) -> Self {
        Objective {
            sweeps,
            base_params,
            free_index,
            coordinates,
            scale: 1.0,
            record: Arc::new(Mutex::new(Record::default())),
        }
    }

    /// The full parameter vector at `x`.
    pub(crate) fn params_at(&self, x: &[f64]) -> Vec<f64> {
        let mut p = self.base_params.to_vec();
        for ((&i, c), &xi) in self.free_index.iter().zip(&self.coordinates).zip(x) {
            p[i] = c.to_param(xi);
        }
        p
    }

    /// The free parameters' values at `x`.
    pub(crate) fn free_at(&self, x: &[f64]) -> Vec<f64> {
        self.coordinates
            .iter()
            .zip(x)
            .map(|(c, &xi)| c.to_param(xi))
            .collect()
    }

    /// Loss and dL/dx at `x`, or the solve's error.
    fn evaluate(&self, x: &[f64]) -> Result<Point, Error> {
        let params = self.params_at(x);
        let (loss, grad_p) = self.sweeps.loss_and_gradient(&params)?;
        let gradient = self
            .free_index
            .iter()
            .zip(&self.coordinates)
            .zip(x)
            .map(|((&i, c), &xi)| grad_p[i] * c.derivative(xi))
            .collect();
        Ok(Point {
            x: x.to_vec(),
            loss,
            gradient,
        })
    }

    /// Evaluates the start; its failure is the caller's error. Fixes the
    /// scale from the start's gradient.
    pub(crate) fn start(&mut self, x0: &[f64]) -> Result<Point, Error> {
        let point = self.evaluate(x0)?;
        let norm = l2(&point.gradient);
        if norm > 0.0 && norm.is_finite() {
            self.scale = FIRST_STEP / norm;
        }
        let mut r = self.record.lock().expect("record lock");
        r.evaluations += 1;
        r.largest_loss = point.loss;
        r.best = Some(point.clone());
        r.last = Some(point.clone());
        Ok(point)
    }

    /// The point at `x`, from the cache or by a new evaluation; a failed
    /// solve gives the penalised point.
    fn point(&self, x: &[f64]) -> Point {
        {
            let r = self.record.lock().expect("record lock");
            if let Some(last) = r.last.as_ref().filter(|p| p.x == x) {
                return last.clone();
            }
        }
        let result = self.evaluate(x);
        let mut r = self.record.lock().expect("record lock");
        r.evaluations += 1;
        let point = match result {
            Ok(point) => {
                r.largest_loss = r.largest_loss.max(point.loss);
                let better = match &r.best {
                    Some(best) => point.loss < best.loss,
                    None => true,
                };
                if better {
                    r.best = Some(point.clone());
                }
                point
            }
            Err(e) => {
                log::debug!("fit: solve failed at a trial point: {e}");
                r.failures.push(e.to_string());
                r.failed_points.push(x.to_vec());
                penalised(x, &r)
            }
        };
        r.last = Some(point.clone());
        point
    }

    pub(crate) fn scale(&self) -> f64 {
        self.scale
    }

    /// A handle on what the objective has seen, valid after the
    /// objective itself is gone.
    pub(crate) fn history(&self) -> History {
        History(Arc::clone(&self.record))
    }
}

/// See [`Objective::history`].
pub(crate) struct History(Arc<Mutex<Record>>);

impl History {
    /// Whether the solve failed at `x`.
    pub(crate) fn failed_at(&self, x: &[f64]) -> bool {
        let r = self.0.lock().expect("record lock");
        r.failed_points.iter().any(|p| p == x)
    }

    /// The lowest-loss point evaluated, evaluations made, failures seen.
    pub(crate) fn outcome(&self) -> (Point, usize, Vec<String>) {
        let r = self.0.lock().expect("record lock");
        (
            r.best.clone().expect("the start was evaluated"),
            r.evaluations,
            r.failures.clone(),
        )
    }
}

/// A failed trial point counts as a wall: loss `BLOW_UP_FACTOR` times the
/// largest finite loss seen, and the gradient of the straight line from the
/// best point to it. An infinite loss would not do: argmin's More–Thuente
/// line search stops with an error on a non-finite value, which ends the
/// L-BFGS run. With this finite wall and an uphill slope along the search
/// direction (trial points lie on the line through the best point in the
/// usual case), the line search's cubic step and bisection safeguard
/// shrink the step back into the region where the solve succeeds.
fn penalised(x: &[f64], r: &Record) -> Point {
    let best = r.best.as_ref().expect("the start was evaluated");
    let loss = BLOW_UP_FACTOR * r.largest_loss.max(f64::MIN_POSITIVE);
    let dx: Vec<f64> = x.iter().zip(&best.x).map(|(a, b)| a - b).collect();
    let d2: f64 = dx.iter().map(|d| d * d).sum();
    let slope = if d2 > 0.0 && d2.is_finite() {
        (loss - best.loss) / d2
    } else {
        0.0
    };
    Point {
        x: x.to_vec(),
        loss,
        gradient: dx
            .iter()
            .map(|d| if slope == 0.0 { 0.0 } else { slope * d })
            .collect(),
    }
}

pub(crate) fn l2(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

impl<E: Evaluate + ?Sized> CostFunction for Objective<'_, E> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, x: &Vec<f64>) -> Result<f64, ArgminError> {
        Ok(self.scale * self.point(x).loss)
    }
}

impl<E: Evaluate + ?Sized> Gradient for Objective<'_, E> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, x: &Vec<f64>) -> Result<Vec<f64>, ArgminError> {
        Ok(self
            .point(x)
            .gradient
            .iter()
            .map(|g| self.scale * g)
            .collect())
    }
}
