//! Events in BDF solves and their continuous adjoint (docs/events.md,
//! "Events in bdf"): the leaky integrate-and-fire closed forms (state and
//! spike times, with their derivatives written out), central differences
//! of the same solution, several events, Zeno, and bitwise identity across
//! checkpoint schedules with budgets held to the byte. Models written by
//! hand (`event_models`), independent of the model-file reader.

mod event_models;

use event_models::AdaptiveLif;
use revode_adjoint::{
    bdf_budget, gradient_continuous_bdf, loss_bdf_with_stimulus, BdfProblem, ContinuousOptions,
    Gradient, Loss,
};
use revode_checkpoint::Schedule;
use revode_forward::{solve_bdf, BdfOptions, ForwardError, Stimulus};

const T1: f64 = 60.0;

fn options(tol: f64) -> BdfOptions {
    BdfOptions::new(tol, tol)
}

fn problem<'a>(u0: &'a [f64], p: &'a [f64], options: &'a BdfOptions) -> BdfProblem<'a> {
    BdfProblem {
        u0,
        params: p,
        t0: 0.0,
        t1: T1,
        options,
    }
}

fn gradient(u0: &[f64], p: &[f64], tol: f64, loss: &Loss, schedule: Schedule) -> Gradient {
    let options = options(tol);
    let adjoint = ContinuousOptions::default();
    gradient_continuous_bdf(
        &AdaptiveLif,
        &problem(u0, p, &options),
        loss,
        &adjoint,
        schedule,
    )
    .unwrap()
}

fn loss_of(u0: &[f64], p: &[f64], tol: f64, loss: &Loss) -> f64 {
    let options = options(tol);
    let problem = problem(u0, p, &options);
    loss_bdf_with_stimulus(&AdaptiveLif, &problem, &Stimulus::none(), loss).unwrap()
}

fn central(f: impl Fn(&[f64]) -> f64, x: &[f64], i: usize, rel: f64) -> f64 {
    let h = rel * x[i].abs().max(1.0);
    let (mut a, mut b) = (x.to_vec(), x.to_vec());
    a[i] += h;
    b[i] -= h;
    (f(&a) - f(&b)) / (2.0 * h)
}

/// The plain LIF (w ≡ 0: b = 0, w0 = 0), v' = (I − v)/τ, reset θ → v_r, from
/// v(0) = v0: spike k (from 0) at `first + k·period` with
/// `first = τ ln((I − v0)/(I − θ))`, `period = τ ln((I − v_r)/(I − θ))`.
/// Values and derivatives with respect to `[I, τ, θ, v_r, v0]`.
struct LifClosedForm {
    first: f64,
    period: f64,
    d_first: [f64; 5],
    d_period: [f64; 5],
    p: [f64; 6],
}

impl LifClosedForm {
    fn new(p: &[f64], v0: f64) -> Self {
        let (i, tau, theta, vr) = (p[0], p[1], p[3], p[4]);
        let first = tau * ((i - v0) / (i - theta)).ln();
        let period = tau * ((i - vr) / (i - theta)).ln();
        LifClosedForm {
            first,
            period,
            d_first: [
                tau * (1.0 / (i - v0) - 1.0 / (i - theta)),
                first / tau,
                tau / (i - theta),
                0.0,
                -tau / (i - v0),
            ],
            d_period: [
                tau * (1.0 / (i - vr) - 1.0 / (i - theta)),
                period / tau,
                tau / (i - theta),
                -tau / (i - vr),
                0.0,
            ],
            p: p.try_into().unwrap(),
        }
    }

    /// Spike times before t1.
    fn spikes(&self, t1: f64) -> usize {
        if t1 < self.first {
            0
        } else {
            ((t1 - self.first) / self.period).floor() as usize + 1
        }
    }

    /// v(t1) and its derivatives (at least one spike before t1).
    fn v(&self, t1: f64) -> (f64, [f64; 5]) {
        let (i, tau, vr) = (self.p[0], self.p[1], self.p[4]);
        let n = (self.spikes(t1) - 1) as f64;
        let last = self.first + n * self.period;
        let s = t1 - last;
        let e = (-s / tau).exp();
        let v = i + (vr - i) * e;
        let mut d = [0.0; 5];
        for (k, dk) in d.iter_mut().enumerate() {
            let ds = -(self.d_first[k] + n * self.d_period[k]);
            let (di, dtau, dvr) = (
                (k == 0) as u8 as f64,
                (k == 1) as u8 as f64,
                (k == 3) as u8 as f64,
            );
            *dk = di * (1.0 - e) + dvr * e + (vr - i) * e * (-ds / tau + s * dtau / (tau * tau));
        }
        (v, d)
    }

    /// `Σ_k (t_k − τ_k)²` over the targets and its derivatives.
    fn spike_loss(&self, targets: &[f64]) -> (f64, [f64; 5]) {
        let (mut value, mut d) = (0.0, [0.0; 5]);
        for (k, target) in targets.iter().enumerate() {
            let t = self.first + k as f64 * self.period;
            value += (t - target) * (t - target);
            for (j, dj) in d.iter_mut().enumerate() {
                *dj += 2.0 * (t - target) * (self.d_first[j] + k as f64 * self.d_period[j]);
            }
        }
        (value, d)
    }
}

/// `[dL/dI, dL/dτ, dL/dθ, dL/dv_r, dL/dv0]` of a gradient.
fn lif_entries(g: &Gradient) -> [f64; 5] {
    [
        g.gradient[0],
        g.gradient[1],
        g.gradient[3],
        g.gradient[4],
        g.gradient_u0[0],
    ]
}

#[test]
fn lif_final_state_gradient_matches_the_closed_form() {
    let p = [1.5, 10.0, 30.0, 1.0, 0.1, 0.0];
    let loss = Loss::Final {
        weights: vec![1.0, 0.0],
    };
    let g = gradient(&[0.0, 0.0], &p, 1e-10, &loss, Schedule::All);
    let exact = LifClosedForm::new(&p, 0.0);
    assert_eq!(g.stats.events, Some(exact.spikes(T1)));
    let (v, dv) = exact.v(T1);
    eprintln!("loss {} vs {v}: {:.2e}", g.loss, g.loss - v);
    let got = lif_entries(&g);
    let worst = got
        .iter()
        .zip(&dv)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!("bdf rtol 1e-10, v(t1): {got:?} vs {dv:?}, worst error {worst:.2e}");
    assert!(worst < 1e-6, "{got:?} vs {dv:?}");
    // w ≡ 0 whatever τ_w: its entry vanishes.
    assert!(g.gradient[2].abs() < 1e-9, "{}", g.gradient[2]);
}

/// At rtol 1e-12 the spike-time gradient is within 1e-6 of the closed form.
/// At looser tolerances its error is that of the forward spike times (the
/// loss's seeds 2(t_k − τ_k) are taken at the computed t_k): against the
/// closed-form derivative evaluated at the computed spike times, the adjoint
/// itself agrees far closer.
#[test]
fn lif_spike_time_gradient_matches_the_closed_form() {
    let p = [1.5, 10.0, 30.0, 1.0, 0.1, 0.0];
    let targets = vec![10.0, 20.0, 31.0, 44.0];
    let loss = Loss::EventTimes {
        event: 0,
        times: targets.clone(),
    };
    let exact = LifClosedForm::new(&p, 0.0);
    let g = gradient(&[0.0, 0.0], &p, 1e-12, &loss, Schedule::Every(5));
    let (value, d) = exact.spike_loss(&targets);
    assert!((g.loss - value).abs() < 1e-8, "{} vs {value}", g.loss);
    let worst = max_abs_diff(&lif_entries(&g), &d);
    eprintln!("bdf rtol 1e-12, spike times: worst error vs the closed form {worst:.2e}");
    assert!(worst < 1e-6, "{:?} vs {d:?}", lif_entries(&g));
    assert_eq!(g.loss, loss_of(&[0.0, 0.0], &p, 1e-12, &loss));

    let g = gradient(&[0.0, 0.0], &p, 1e-10, &loss, Schedule::All);
    let times = spike_times(&p, 1e-10);
    assert_eq!(times.len(), exact.spikes(T1));
    let mut at_computed = [0.0; 5];
    for (k, (t, target)) in times.iter().zip(&targets).enumerate() {
        for (j, d) in at_computed.iter_mut().enumerate() {
            *d += 2.0 * (t - target) * (exact.d_first[j] + k as f64 * exact.d_period[j]);
        }
    }
    let worst_t = times
        .iter()
        .enumerate()
        .map(|(k, t)| (t - exact.first - k as f64 * exact.period).abs())
        .fold(0.0, f64::max);
    let worst = max_abs_diff(&lif_entries(&g), &exact.spike_loss(&targets).1);
    let worst_at_computed = max_abs_diff(&lif_entries(&g), &at_computed);
    eprintln!(
        "bdf rtol 1e-10: spike times within {worst_t:.2e}; gradient within {worst:.2e} of the \
         closed form, {worst_at_computed:.2e} of it at the computed spike times"
    );
    assert!(worst < 1e-4 && worst_at_computed < 2e-6);
    assert_eq!(g.loss, loss_of(&[0.0, 0.0], &p, 1e-10, &loss));
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// The BDF solve's firing times: an event shows as two samples at t*
/// (the states just before and just after it).
fn spike_times(p: &[f64], tol: f64) -> Vec<f64> {
    let mut last = f64::NAN;
    let mut times = Vec::new();
    let observe = |t: f64, _: &[f64]| {
        if t == last {
            times.push(t);
        }
        last = t;
    };
    let u0 = [0.0, 0.0];
    let none = Stimulus::none();
    revode_forward::solve_bdf_observed(
        &AdaptiveLif,
        &options(tol),
        0.0,
        T1,
        &u0,
        p,
        &none,
        Some(1),
        observe,
    )
    .unwrap();
    times
}

/// Replays repeat the events bitwise: every schedule gives the same bits,
/// and byte budgets are held.
#[test]
fn every_checkpoint_schedule_gives_the_same_bits_within_its_budget() {
    let p = [1.6, 9.0, 25.0, 1.0, 0.1, 0.15];
    let u0 = [0.2, 0.05];
    for loss in [
        Loss::Final {
            weights: vec![1.0, 0.7],
        },
        Loss::EventTimes {
            event: 0,
            times: vec![8.0, 17.0, 29.0],
        },
    ] {
        let reference = gradient(&u0, &p, 1e-8, &loss, Schedule::All);
        let steps = reference.stats.steps;
        assert!(
            reference.stats.events.unwrap() >= 4,
            "{:?}",
            reference.stats
        );
        let minimum = bdf_budget(2, 5).min_bytes;
        let mut schedules = vec![Schedule::Every(2), Schedule::Every(3), Schedule::Every(17)];
        schedules.extend((0..12).map(|i| Schedule::BudgetBytes(minimum + i * 1009)));
        for schedule in schedules {
            let g = gradient(&u0, &p, 1e-8, &loss, schedule);
            let what = format!("{} {schedule:?}", loss.name());
            assert_eq!(bits(&g.gradient), bits(&reference.gradient), "{what}");
            assert_eq!(bits(&g.gradient_u0), bits(&reference.gradient_u0), "{what}");
            assert_eq!(g.loss.to_bits(), reference.loss.to_bits(), "{what}");
            assert_eq!(g.stats.events, reference.stats.events, "{what}");
            assert!(g.stats.recomputed_steps > 0, "{what}: {:?}", g.stats);
            if let Schedule::BudgetBytes(budget) = schedule {
                assert!(g.stats.peak_store_bytes <= budget, "{what}: {:?}", g.stats);
            }
        }
        assert!(steps > 50, "{steps}");
    }
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Central differences (relative step 1e-4) of the same BDF solution. The
/// continuous adjoint is the gradient of the ODE's solution, not of the
/// computed one; the two differ by about the solution's error, and the
/// computed loss is only piecewise smooth in the parameters (step sizes and
/// orders change discretely), which adds noise to the differences. Measured:
/// worst relative error 3.1e-5 at rtol 1e-6, 1.9e-6 at rtol 1e-10.
#[test]
fn the_adjoint_matches_central_differences_of_the_same_solution() {
    let p = [1.6, 9.0, 25.0, 1.0, 0.1, 0.15];
    let u0 = [0.2, 0.05];
    let loss = Loss::Final {
        weights: vec![1.0, 0.7],
    };
    for (tol, bound) in [(1e-6, 1e-4), (1e-10, 1e-5)] {
        let g = gradient(&u0, &p, tol, &loss, Schedule::All);
        assert!(g.stats.events.unwrap() >= 4, "{:?}", g.stats);
        let mut worst: f64 = 0.0;
        for k in 0..p.len() {
            let want = central(|x| loss_of(&u0, x, tol, &loss), &p, k, 1e-4);
            worst = worst.max((g.gradient[k] - want).abs() / want.abs().max(1.0));
        }
        for i in 0..2 {
            let want = central(|x| loss_of(x, &p, tol, &loss), &u0, i, 1e-4);
            worst = worst.max((g.gradient_u0[i] - want).abs() / want.abs().max(1.0));
        }
        eprintln!("bdf rtol {tol:e}, adaptive LIF: worst relative error vs central differences {worst:.2e}");
        assert!(worst < bound, "rtol {tol:e}: {worst:e}");
    }
}

/// Two events: a kick at θ_k (event 1) shortly before the reset at θ
/// (event 0), often within one step; they fire in time order, and the
/// spike times and the final state follow the closed form.
#[test]
fn several_events_in_a_step_fire_in_time_order() {
    // [I, τ, θ, v_r, θ_k, k]: kick to 0.9999, then 0.002 ms to the reset,
    // far less than the steps there (about 0.8 ms).
    let p: [f64; 6] = [1.5, 10.0, 1.0, 0.0, 0.99, 0.0099];
    let (i, tau, theta, vr, theta_k, k) = (p[0], p[1], p[2], p[3], p[4], p[5]);
    let to_kick = tau * ((i - vr) / (i - theta_k)).ln();
    let to_reset = tau * ((i - theta_k - k) / (i - theta)).ln();
    let options = options(1e-6);
    let problem = BdfProblem {
        u0: &[0.0],
        params: &p,
        t0: 0.0,
        t1: T1,
        options: &options,
    };
    let order = fired_order(&problem);
    let want: Vec<(usize, f64)> = (0..)
        .map(|n| {
            let cycle = (n / 2) as f64 * (to_kick + to_reset);
            match n % 2 {
                0 => (1, cycle + to_kick),
                _ => (0, cycle + to_kick + to_reset),
            }
        })
        .take_while(|(_, t)| *t < T1)
        .collect();
    assert_eq!(order.len(), want.len(), "{order:?}");
    for ((e, t, _), (e_want, t_want)) in order.iter().zip(&want) {
        assert_eq!(e, e_want, "{order:?}");
        assert!((t - t_want).abs() < 1e-3, "{t} vs {t_want}");
    }
    // Some step that crossed the kick also crossed the reset, which fired
    // after it, from the kicked state.
    let both = order
        .iter()
        .zip(&want[1..])
        .filter(|((e, _, step_end), (_, t_reset))| *e == 1 && step_end > t_reset)
        .count();
    assert!(both > 0, "{order:?}");
    // Ties go to the lower index: with θ_k = θ both cross at the same σ,
    // the reset fires and the kick, re-examined from v_r, does not.
    let tie = [1.5, 10.0, 1.0, 0.0, 1.0, 0.005];
    let order = fired_order(&BdfProblem {
        params: &tie,
        ..problem
    });
    assert!(
        order.len() >= 5 && order.iter().all(|(e, ..)| *e == 0),
        "{order:?}"
    );
}

/// `(event, t, end of the step it cut)` of every firing of a BDF solve,
/// from its pending states (which keep the cut step's h).
fn fired_order(problem: &BdfProblem<'_>) -> Vec<(usize, f64, f64)> {
    use revode_forward::{Bdf, BdfLayout};
    let model = event_models::KickedLif;
    let mut solver = Bdf::new(&model, problem.options, problem.t0, problem.t1, &[]).unwrap();
    let layout = solver.layout();
    let mut work = ();
    let (mut x, mut next) = (vec![0.0; layout.len()], vec![0.0; layout.len()]);
    solver
        .initial_state(problem.params, &mut work, problem.u0, &mut x)
        .unwrap();
    let mut fired = Vec::new();
    let mut k = 0;
    while !solver.is_last(&x) {
        solver
            .advance(problem.params, &mut work, k, &x, &mut next)
            .unwrap();
        let step_end = x[BdfLayout::T] + next[BdfLayout::H];
        std::mem::swap(&mut x, &mut next);
        k += 1;
        if let Some(e) = BdfLayout::pending_event(&x) {
            fired.push((e, x[BdfLayout::T], step_end));
        }
    }
    assert_eq!(solver.events_fired(), fired.len());
    fired
}

/// A reset just below its own threshold with a huge drive: the events
/// accumulate; the solve ends with an error naming t.
#[test]
fn zeno_behaviour_is_an_error_naming_t() {
    let p = [1e9, 1.0, 30.0, 1.0, 1.0 - 1e-12, 0.0];
    let err = solve_bdf(
        &AdaptiveLif,
        &options(1e-6),
        0.0,
        1.0,
        &[0.0, 0.0],
        &p,
        &Stimulus::none(),
        None,
    )
    .unwrap_err();
    let ForwardError::TooManyEvents { t, limit } = err else {
        panic!("{err}");
    };
    assert_eq!(limit, 100);
    assert!(t > 0.0 && t < 1e-3, "{t}");
    assert!(err.to_string().contains("t = "), "{err}");
}

/// Events with a stimulus (switch times) and observation times: the solve
/// still lands on both exactly (the trace loss counts only landed states),
/// and the bdf gradient agrees with dopri5's continuous adjoint.
#[test]
fn events_with_switches_and_observations_agree_with_dopri5() {
    use revode_adjoint::AdaptiveProblem;
    use revode_adjoint::{
        gradient_continuous_bdf_with_stimulus, gradient_continuous_with_stimulus,
    };
    use revode_forward::{AdaptiveOptions, StimulusTrack};
    let p = [1.6, 9.0, 25.0, 1.0, 0.1, 0.15];
    let u0 = [0.2, 0.05];
    let stimulus = Stimulus {
        tracks: vec![StimulusTrack {
            param: 0,
            switches: vec![[15.0, 1.3], [35.0, 2.0]],
        }],
    };
    let loss = Loss::TraceMse {
        component: 0,
        times: vec![7.5, 15.0, 22.25, 41.0, T1],
        values: vec![0.5, 0.6, 0.7, 0.4, 0.3],
    };
    let tol = 1e-10;
    let bdf_options = options(tol);
    let adjoint = ContinuousOptions::default();
    let bdf = gradient_continuous_bdf_with_stimulus(
        &AdaptiveLif,
        &problem(&u0, &p, &bdf_options),
        &stimulus,
        &loss,
        &adjoint,
        Schedule::Every(7),
    )
    .unwrap();
    let dopri5_options = AdaptiveOptions::new(tol, tol);
    let dopri5 = gradient_continuous_with_stimulus(
        &AdaptiveLif,
        &AdaptiveProblem {
            u0: &u0,
            params: &p,
            t0: 0.0,
            t1: T1,
            options: &dopri5_options,
        },
        &stimulus,
        &loss,
        &adjoint,
        Schedule::All,
    )
    .unwrap();
    assert_eq!(bdf.stats.events, dopri5.stats.events);
    assert!(bdf.stats.events.unwrap() >= 4, "{:?}", bdf.stats);
    let loss_rel = ((bdf.loss - dopri5.loss) / dopri5.loss).abs();
    let entries = bdf.gradient.iter().chain(&bdf.gradient_u0);
    let reference = dopri5.gradient.iter().chain(&dopri5.gradient_u0);
    let worst = entries
        .zip(reference)
        .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
        .fold(0.0, f64::max);
    eprintln!("bdf vs dopri5 with switches and observations, rtol 1e-10: loss {loss_rel:.1e}, gradient {worst:.1e}");
    assert!(loss_rel < 1e-7 && worst < 1e-5, "{loss_rel:e} {worst:e}");
    let plain = loss_bdf_with_stimulus(
        &AdaptiveLif,
        &problem(&u0, &p, &bdf_options),
        &stimulus,
        &loss,
    );
    assert_eq!(plain.unwrap(), bdf.loss);
}
