//! Backward Euler's discrete adjoint: against complex-step derivatives of
//! the closed-form discrete solution of a stiff linear system (both ways of
//! getting the residual), refinement against refactoring at every step,
//! bitwise identity across checkpoint schedules (with a stimulus, every
//! loss, dense and sparse factors), and the loss alone against the
//! gradient's.

mod common;

use common::Predator;
use revode_adjoint::{
    gradient_beuler_with, gradient_beuler_with_stimulus, loss_beuler_with_stimulus,
    BackwardSolveStats, BackwardThreads, BeulerProblem, Gradient, GradientError, Loss,
    TransposedSolve,
};
use revode_checkpoint::Schedule;
use revode_forward::{
    BeulerOptions, ForwardError, LinearSolver, Stimulus, StimulusTrack, TimeGrid,
};
use revode_model::{Dims, HhNetwork, HodgkinHuxley, Model, SparsityPattern};

/// `blocks` copies of the stiff linear 2-state system
/// `x' = −a x + c y + s`, `y' = −b y` (parameters `[a, b, c, s]` shared),
/// block i started from `(1 + i, 2 − 0.3 i)`. With `jacobian`, it
/// computes its own (sparse) Jacobian; otherwise implicit steppers assemble
/// one from VJPs.
struct StiffBlocks {
    blocks: usize,
    jacobian: bool,
}

impl Model for StiffBlocks {
    type Work = ();
    fn name(&self) -> &str {
        "stiff_blocks"
    }
    fn dims(&self) -> Dims {
        Dims {
            n_states: 2 * self.blocks,
            n_params: 4,
        }
    }
    fn state_names(&self) -> Vec<String> {
        (0..2 * self.blocks).map(|i| format!("u{i}")).collect()
    }
    fn param_names(&self) -> Vec<String> {
        ["a", "b", "c", "s"].map(String::from).to_vec()
    }
    fn default_u0(&self) -> Vec<f64> {
        (0..self.blocks)
            .flat_map(|i| [1.0 + i as f64, 2.0 - 0.3 * i as f64])
            .collect()
    }
    fn default_params(&self) -> Vec<f64> {
        vec![1000.0, 3.0, 40.0, 5.0]
    }
    fn new_work(&self) {}
    fn rhs(&self, _t: f64, u: &[f64], p: &[f64], du: &mut [f64], _w: &mut ()) {
        for i in 0..self.blocks {
            let (x, y) = (u[2 * i], u[2 * i + 1]);
            du[2 * i] = -p[0] * x + p[2] * y + p[3];
            du[2 * i + 1] = -p[1] * y;
        }
    }
    fn vjp(
        &self,
        _t: f64,
        u: &[f64],
        p: &[f64],
        l: &[f64],
        out: &mut [f64],
        alpha: f64,
        acc: &mut [f64],
        _w: &mut (),
    ) {
        for i in 0..self.blocks {
            let (x, y) = (u[2 * i], u[2 * i + 1]);
            let (lx, ly) = (l[2 * i], l[2 * i + 1]);
            out[2 * i] = -p[0] * lx;
            out[2 * i + 1] = p[2] * lx - p[1] * ly;
            acc[0] += alpha * (-x * lx);
            acc[1] += alpha * (-y * ly);
            acc[2] += alpha * (y * lx);
            acc[3] += alpha * lx;
        }
    }
    fn jacobian_pattern(&self) -> Option<SparsityPattern> {
        self.jacobian.then(|| {
            SparsityPattern::from_entries(
                2 * self.blocks,
                (0..self.blocks)
                    .flat_map(|i| [(2 * i, 2 * i), (2 * i, 2 * i + 1), (2 * i + 1, 2 * i + 1)]),
            )
        })
    }
    fn jacobian(&self, _t: f64, _u: &[f64], p: &[f64], values: &mut [f64], _w: &mut ()) {
        // Column-major: (x_i, x_i), then (x_i, y_i), (y_i, y_i).
        for i in 0..self.blocks {
            values[3 * i] = -p[0];
            values[3 * i + 1] = p[2];
            values[3 * i + 2] = -p[1];
        }
    }
}

/// A minimal complex number, for complex-step derivatives.
#[derive(Debug, Clone, Copy)]
struct C(f64, f64);

impl std::ops::Add for C {
    type Output = C;
    fn add(self, o: C) -> C {
        C(self.0 + o.0, self.1 + o.1)
    }
}
impl std::ops::Mul for C {
    type Output = C;
    fn mul(self, o: C) -> C {
        C(self.0 * o.0 - self.1 * o.1, self.0 * o.1 + self.1 * o.0)
    }
}
impl std::ops::Div for C {
    type Output = C;
    fn div(self, o: C) -> C {
        let d = o.0 * o.0 + o.1 * o.1;
        C(
            (self.0 * o.0 + self.1 * o.1) / d,
            (self.1 * o.0 - self.0 * o.1) / d,
        )
    }
}

fn re(x: f64) -> C {
    C(x, 0.0)
}

/// The backward Euler solution of one block in closed form, step by step:
/// `u_{k+1} = (I − hA)⁻¹ (u_k + h [s, 0])` with the 2 × 2 upper-triangular
/// inverse written out; the loss `Σ_k w·u_k` (all steps) or `w·u_N`.
fn closed_form_loss(p: [C; 4], u0: &[C], w: &[f64], h: f64, n: usize, all_steps: bool) -> C {
    let [a, b, c, s] = p;
    let one = re(1.0);
    let hh = re(h);
    let blocks = u0.len() / 2;
    let mut total = re(0.0);
    for i in 0..blocks {
        let (mut x, mut y) = (u0[2 * i], u0[2 * i + 1]);
        let (wx, wy) = (re(w[2 * i]), re(w[2 * i + 1]));
        if all_steps {
            total = total + wx * x + wy * y;
        }
        for _ in 0..n {
            let (yx, yy) = (x + hh * s, y);
            let da = one + hh * a;
            let db = one + hh * b;
            let y_next = yy / db;
            let x_next = (yx + hh * c * y_next) / da;
            x = x_next;
            y = y_next;
            if all_steps {
                total = total + wx * x + wy * y;
            }
        }
        if !all_steps {
            total = total + wx * x + wy * y;
        }
    }
    total
}

/// dL/dp and dL/du0 of the closed form by complex step (exact to rounding).
fn complex_step_gradient(
    m: &StiffBlocks,
    w: &[f64],
    h: f64,
    n: usize,
    all_steps: bool,
) -> (Vec<f64>, Vec<f64>) {
    let (p, u0) = (m.default_params(), m.default_u0());
    let eps = 1e-200;
    let value = |dp: Option<usize>, du: Option<usize>| {
        let pc: Vec<C> = p
            .iter()
            .enumerate()
            .map(|(j, &x)| C(x, if dp == Some(j) { eps } else { 0.0 }))
            .collect();
        let uc: Vec<C> = u0
            .iter()
            .enumerate()
            .map(|(j, &x)| C(x, if du == Some(j) { eps } else { 0.0 }))
            .collect();
        closed_form_loss([pc[0], pc[1], pc[2], pc[3]], &uc, w, h, n, all_steps).1 / eps
    };
    (
        (0..p.len()).map(|j| value(Some(j), None)).collect(),
        (0..u0.len()).map(|j| value(None, Some(j))).collect(),
    )
}

fn options(linear_solver: LinearSolver) -> BeulerOptions {
    BeulerOptions {
        linear_solver,
        ..BeulerOptions::default()
    }
}

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / x.abs().max(y.abs()).max(1e-300))
        .fold(0.0, f64::max)
}

#[test]
fn stiff_linear_gradient_matches_the_closed_form_by_complex_step() {
    // h·a = 10: far outside explicit Euler's stability region.
    let (h, n) = (0.01, 300);
    let grid = TimeGrid::new(0.0, h * n as f64, h).unwrap();
    assert_eq!(grid.n_steps(), n);
    // 2 blocks: a small model (Jacobian products); 6 blocks assembled from
    // VJPs: 12 states, so each correction's residual is one VJP.
    for (blocks, jacobian, linear) in [
        (2, true, LinearSolver::Dense),
        (2, false, LinearSolver::Dense),
        (6, false, LinearSolver::Dense),
        (6, true, LinearSolver::Sparse),
        (6, false, LinearSolver::Sparse),
    ] {
        let m = StiffBlocks { blocks, jacobian };
        let (p, u0) = (m.default_params(), m.default_u0());
        let w: Vec<f64> = (0..2 * blocks).map(|i| 1.0 + 0.5 * i as f64).collect();
        for all_steps in [false, true] {
            let loss = if all_steps {
                Loss::AllSteps { weights: w.clone() }
            } else {
                Loss::Final { weights: w.clone() }
            };
            let problem = BeulerProblem {
                u0: &u0,
                params: &p,
                grid,
                options: options(linear),
            };
            let g = gradient_beuler_with_stimulus(
                &m,
                &problem,
                &Stimulus::none(),
                &loss,
                Schedule::All,
            )
            .unwrap();
            let (dp, du) = complex_step_gradient(&m, &w, h, n, all_steps);
            let loss_exact = closed_form_loss(
                [re(p[0]), re(p[1]), re(p[2]), re(p[3])],
                &u0.iter().map(|&x| re(x)).collect::<Vec<_>>(),
                &w,
                h,
                n,
                all_steps,
            )
            .0;
            let what =
                format!("blocks {blocks} jacobian {jacobian} {linear:?} all_steps {all_steps}");
            assert!(
                rel_err(&[g.loss], &[loss_exact]) < 1e-13,
                "{what}: loss {} vs {loss_exact}",
                g.loss
            );
            assert!(
                rel_err(&g.gradient, &dp) < 1e-11,
                "{what}: dL/dp {:?} vs {dp:?}",
                g.gradient
            );
            assert!(
                rel_err(&g.gradient_u0, &du) < 1e-11,
                "{what}: dL/du0 {:?} vs {du:?}",
                g.gradient_u0
            );
            let stats = g.stats.implicit.unwrap();
            assert_eq!(stats.linear_solver, linear.name(), "{what}");
        }
    }
}

fn hh_stimulus() -> Stimulus {
    // g_leak switches on and off the lattice (0.01): 3.005 cuts a step.
    Stimulus {
        tracks: vec![StimulusTrack {
            param: 2,
            switches: vec![[2.0, 0.3], [3.005, 0.05], [7.0, 0.1]],
        }],
    }
}

fn losses(n: usize) -> Vec<Loss> {
    vec![
        Loss::Final {
            weights: (0..n).map(|i| 1.0 + i as f64).collect(),
        },
        Loss::AllSteps {
            weights: vec![1.0; n],
        },
        Loss::TraceMse {
            component: 0,
            times: vec![1.0, 3.0, 6.5, 10.0],
            values: vec![-60.0, -50.0, 0.0, -65.0],
        },
    ]
}

fn bits(g: &Gradient) -> Vec<u64> {
    std::iter::once(g.loss)
        .chain(g.gradient.iter().copied())
        .chain(g.gradient_u0.iter().copied())
        .map(f64::to_bits)
        .collect()
}

fn schedules(n_steps: usize, state_len: usize) -> Vec<Schedule> {
    vec![
        Schedule::All,
        Schedule::Every(1),
        Schedule::Every(7),
        Schedule::Every(64),
        Schedule::Every(n_steps),
        Schedule::BudgetBytes(Schedule::min_budget_bytes(n_steps, state_len)),
        Schedule::BudgetBytes(40 * (state_len + 1) * 8),
    ]
}

#[test]
fn gradients_are_bitwise_identical_across_schedules() {
    let grid = TimeGrid::new(0.0, 10.0, 0.01).unwrap();
    let hh = HodgkinHuxley;
    let net = HhNetwork::with_neurons(2).unwrap();
    for stim in [Stimulus::none(), hh_stimulus()] {
        for loss in losses(4) {
            check_schedules(&hh, grid, &stim, &loss, LinearSolver::Auto);
        }
    }
    // 8 states, forced sparse factors; the network's W-gradient is deferred.
    let loss = Loss::AllSteps {
        weights: vec![1.0; 8],
    };
    check_schedules(&net, grid, &Stimulus::none(), &loss, LinearSolver::Sparse);
}

fn check_schedules<M: Model>(
    m: &M,
    grid: TimeGrid,
    stim: &Stimulus,
    loss: &Loss,
    linear: LinearSolver,
) {
    let (p, u0) = (m.default_params(), m.default_u0());
    let problem = BeulerProblem {
        u0: &u0,
        params: &p,
        grid,
        options: options(linear),
    };
    let state_len = revode_adjoint::beuler_state_len(m.dims().n_states);
    let reference = gradient_beuler_with_stimulus(m, &problem, stim, loss, Schedule::All).unwrap();
    let alone = loss_beuler_with_stimulus(m, &problem, stim, loss).unwrap();
    assert_eq!(alone.to_bits(), reference.loss.to_bits(), "loss alone");
    let n_steps = reference.stats.steps;
    // Every state but x_0 keeps u alone (whole states with events), and the
    // store holds exactly the bytes predicted.
    let shape = revode_adjoint::beuler_state_shape(m.dims().n_states, m.n_events());
    assert_eq!(
        reference.stats.peak_store_bytes,
        Schedule::All.bytes_needed_shaped(n_steps, shape)
    );
    let slim = if m.n_events() == 0 { n_steps - 1 } else { 0 };
    assert_eq!(reference.stats.slim_states_kept, slim, "{}", m.name());
    for schedule in schedules(n_steps, state_len) {
        let g = gradient_beuler_with_stimulus(m, &problem, stim, loss, schedule).unwrap();
        assert_eq!(
            bits(&g),
            bits(&reference),
            "{} {schedule:?} {loss:?}: {:?} vs {:?}",
            m.name(),
            g.gradient,
            reference.gradient
        );
        // (Every(N) keeps its only segment from the forward sweep.)
        if matches!(schedule, Schedule::Every(7 | 64) | Schedule::BudgetBytes(_)) {
            assert!(g.stats.recomputed_steps > 0, "{schedule:?} replays");
        }
    }
}

/// The gradient with refined transposed solves and with a factorisation
/// at every step (all states kept), and their largest relative difference.
fn refined_and_refactored<M: Model>(
    m: &M,
    problem: &BeulerProblem<'_>,
    loss: &Loss,
) -> (Gradient, Gradient, f64) {
    let run = |mode| {
        gradient_beuler_with(
            m,
            problem,
            &Stimulus::none(),
            loss,
            Schedule::All,
            mode,
            BackwardThreads::Auto,
        )
        .unwrap()
    };
    let (refined, refactored) = (run(TransposedSolve::Refine), run(TransposedSolve::Refactor));
    let err = rel_err(&refined.gradient, &refactored.gradient)
        .max(rel_err(&refined.gradient_u0, &refactored.gradient_u0));
    (refined, refactored, err)
}

#[test]
fn refinement_agrees_with_refactoring_at_every_step() {
    let grid = TimeGrid::new(0.0, 20.0, 0.01).unwrap();
    let loss = Loss::Final {
        weights: vec![1.0; 4],
    };
    let hh = HodgkinHuxley;
    let (p, u0) = (hh.default_params(), hh.default_u0());
    let problem = BeulerProblem {
        u0: &u0,
        params: &p,
        grid,
        options: BeulerOptions::default(),
    };
    let (refined, refactored, err) = refined_and_refactored(&hh, &problem, &loss);
    let (a, b) = (
        refined.stats.implicit.unwrap().backward,
        refactored.stats.implicit.unwrap().backward,
    );
    // Refinement refactors on a few steps only; refactoring, on every one.
    assert!(a.factorizations < grid.n_steps() / 5, "{a:?}");
    assert_eq!(b.factorizations, grid.n_steps());
    assert!(err < 1e-12, "refined vs refactored: {err:e}");

    // 12 states, Jacobian assembled from VJPs (the network's own Jacobian
    // hidden): one VJP per correction.
    let net = revode_testing::VjpOnly(HhNetwork::with_neurons(3).unwrap());
    let (p, u0) = (net.default_params(), net.default_u0());
    let loss = Loss::AllSteps {
        weights: vec![1.0; 12],
    };
    let problem = BeulerProblem {
        u0: &u0,
        params: &p,
        grid: TimeGrid::new(0.0, 5.0, 0.01).unwrap(),
        options: BeulerOptions::default(),
    };
    let (refined, _, err) = refined_and_refactored(&net, &problem, &loss);
    assert!(err < 1e-12, "network: refined vs refactored: {err:e}");
    let b = refined.stats.implicit.unwrap().backward;
    assert!(b.vjps > b.transposed_solves / 2, "VJP residuals: {b:?}");
}

#[test]
fn bad_options_and_failures_are_errors() {
    let m = Predator;
    let (p, u0) = (m.default_params(), m.default_u0());
    let grid = TimeGrid::new(0.0, 1.0, 0.1).unwrap();
    let loss = Loss::Final {
        weights: vec![1.0; 2],
    };
    for tol in [0.0, -1.0, 1.0, f64::NAN, f64::INFINITY] {
        let problem = BeulerProblem {
            u0: &u0,
            params: &p,
            grid,
            options: BeulerOptions {
                newton_tol: tol,
                ..BeulerOptions::default()
            },
        };
        let e =
            gradient_beuler_with_stimulus(&m, &problem, &Stimulus::none(), &loss, Schedule::All)
                .unwrap_err();
        assert!(
            matches!(
                e,
                GradientError::Forward(ForwardError::InvalidOption {
                    what: "newton_tol",
                    ..
                })
            ),
            "{tol}: {e}"
        );
    }
    // x' = a x with h a = 1: I − hJ = 0 at the first step.
    let stiff = StiffBlocks {
        blocks: 1,
        jacobian: true,
    };
    let p = [-1.0 / 0.1, 0.0, 0.0, 0.0];
    let u0 = stiff.default_u0();
    let problem = BeulerProblem {
        u0: &u0,
        params: &p,
        grid,
        options: BeulerOptions::default(),
    };
    let e = loss_beuler_with_stimulus(&stiff, &problem, &Stimulus::none(), &loss).unwrap_err();
    match e {
        GradientError::Forward(ForwardError::SingularIterationMatrix { t, step, .. }) => {
            assert_eq!((t, step), (0.1, 1));
        }
        other => panic!("{other}"),
    }
}

/// A model of `SCHEDULED_MIN_STATES` states or more with its own Jacobian
/// takes scheduled factorisations, made ahead on a helper thread or
/// inline: the gradient is bitwise the same either way and for every
/// schedule, and agrees with refactoring at every step.
#[test]
fn larger_models_gradients_do_not_depend_on_threads_or_schedules() {
    let grid = TimeGrid::new(0.0, 10.0, 0.01).unwrap();
    let net = HhNetwork::with_neurons(8).unwrap();
    assert!(net.dims().n_states >= revode_adjoint::SCHEDULED_MIN_STATES);
    let blocks = StiffBlocks {
        blocks: 16,
        jacobian: true,
    };
    // Switches on and off the lattice (3.005 cuts a step).
    let stim = |param| Stimulus {
        tracks: vec![StimulusTrack {
            param,
            switches: vec![[2.0, 1.3], [3.005, 0.9]],
        }],
    };
    // A switch every 3 steps for a while: blocks are cut where a step
    // brings more parameter vectors than a block keeps.
    let busy = |param| Stimulus {
        tracks: vec![StimulusTrack {
            param,
            switches: (0..40)
                .map(|i| [1.0 + 0.03 * i as f64, if i % 2 == 0 { 1.3 } else { 0.9 }])
                .collect(),
        }],
    };
    check_threads(&net, grid, &Stimulus::none(), LinearSolver::Sparse);
    check_threads(&net, grid, &stim(0), LinearSolver::Dense);
    check_threads(&net, grid, &busy(0), LinearSolver::Sparse);
    // The blocks' source term: their Jacobian stays constant.
    check_threads(&blocks, grid, &stim(3), LinearSolver::Auto);
}

fn check_threads<M: Model>(m: &M, grid: TimeGrid, stim: &Stimulus, linear: LinearSolver) {
    let (p, u0) = (m.default_params(), m.default_u0());
    let n = m.dims().n_states;
    let problem = BeulerProblem {
        u0: &u0,
        params: &p,
        grid,
        options: options(linear),
    };
    let loss = Loss::TraceMse {
        component: 0,
        times: vec![1.0, 3.0, 6.5, 10.0],
        values: vec![-60.0, -50.0, 0.0, 1.0],
    };
    let run = |schedule, mode, threads| {
        gradient_beuler_with(m, &problem, stim, &loss, schedule, mode, threads).unwrap()
    };
    let one = run(Schedule::All, TransposedSolve::Auto, BackwardThreads::One);
    let two = run(Schedule::All, TransposedSolve::Auto, BackwardThreads::Two);
    assert_eq!(bits(&one), bits(&two), "{}: one vs two threads", m.name());
    let (b1, b2) = (
        one.stats.implicit.unwrap().backward,
        two.stats.implicit.unwrap().backward,
    );
    assert_eq!((b1.threads, b2.threads), (1, 2));
    let steps = one.stats.steps;
    assert_eq!(b2.jacobian_evaluations, steps);
    // Every FACTOR_EVERY-th step is factored ahead, others on the main
    // thread when refinement would be slow.
    let scheduled = steps.div_ceil(revode_adjoint::FACTOR_EVERY);
    assert!((scheduled..=steps).contains(&b2.factorizations), "{b2:?}");
    assert_eq!(b1.jacobians_moved_to_main, 0);
    assert_eq!(
        b1,
        BackwardSolveStats {
            threads: 1,
            jacobians_moved_to_main: 0,
            ..b2
        }
    );
    let state_len = revode_adjoint::beuler_state_len(n);
    for schedule in schedules(steps, state_len) {
        let g = run(schedule, TransposedSolve::Auto, BackwardThreads::Two);
        assert_eq!(bits(&g), bits(&one), "{} {schedule:?}", m.name());
    }
    // Refinement stops at a backward error of rounding level, as does the
    // adaptive refactoring of smaller models: both agree with refactoring
    // at every step to what a thousand steps' rounding allows.
    let exact = run(
        Schedule::All,
        TransposedSolve::Refactor,
        BackwardThreads::Auto,
    );
    let adaptive = run(
        Schedule::All,
        TransposedSolve::Refine,
        BackwardThreads::Auto,
    );
    for (what, g) in [("scheduled", &one), ("adaptive", &adaptive)] {
        let err =
            rel_err(&g.gradient, &exact.gradient).max(rel_err(&g.gradient_u0, &exact.gradient_u0));
        assert!(err < 1e-11, "{}: {what} vs refactored: {err:e}", m.name());
    }
}

/// A model whose Jacobian takes `spin` to evaluate: the helper thread of
/// the backward sweep is then the slower, and the main thread takes over
/// Jacobians from it.
struct SlowJacobians<M> {
    inner: M,
    spin: std::time::Duration,
}

impl<M: Model> Model for SlowJacobians<M> {
    type Work = M::Work;
    fn name(&self) -> &str {
        "slow_jacobians"
    }
    fn dims(&self) -> Dims {
        self.inner.dims()
    }
    fn state_names(&self) -> Vec<String> {
        self.inner.state_names()
    }
    fn param_names(&self) -> Vec<String> {
        self.inner.param_names()
    }
    fn default_u0(&self) -> Vec<f64> {
        self.inner.default_u0()
    }
    fn default_params(&self) -> Vec<f64> {
        self.inner.default_params()
    }
    fn new_work(&self) -> M::Work {
        self.inner.new_work()
    }
    fn rhs(&self, t: f64, u: &[f64], p: &[f64], du: &mut [f64], w: &mut M::Work) {
        self.inner.rhs(t, u, p, du, w);
    }
    fn vjp(
        &self,
        t: f64,
        u: &[f64],
        p: &[f64],
        l: &[f64],
        out: &mut [f64],
        alpha: f64,
        acc: &mut [f64],
        w: &mut M::Work,
    ) {
        self.inner.vjp(t, u, p, l, out, alpha, acc, w);
    }
    fn jacobian_pattern(&self) -> Option<SparsityPattern> {
        self.inner.jacobian_pattern()
    }
    fn jacobian(&self, t: f64, u: &[f64], p: &[f64], values: &mut [f64], w: &mut M::Work) {
        let started = std::time::Instant::now();
        while started.elapsed() < self.spin {
            std::hint::spin_loop();
        }
        self.inner.jacobian(t, u, p, values, w);
    }
}

/// When the helper thread is the slower, the main thread evaluates some
/// of its Jacobians; the gradient keeps its bits.
#[test]
fn jacobians_taken_over_by_the_main_thread_keep_the_gradient() {
    let m = SlowJacobians {
        inner: HhNetwork::with_neurons(8).unwrap(),
        spin: std::time::Duration::from_micros(100),
    };
    let (p, u0) = (m.default_params(), m.default_u0());
    let problem = BeulerProblem {
        u0: &u0,
        params: &p,
        grid: TimeGrid::new(0.0, 5.0, 0.01).unwrap(),
        options: options(LinearSolver::Sparse),
    };
    let loss = Loss::AllSteps {
        weights: vec![1.0; 32],
    };
    let run = |threads| {
        gradient_beuler_with(
            &m,
            &problem,
            &Stimulus::none(),
            &loss,
            Schedule::All,
            TransposedSolve::Auto,
            threads,
        )
        .unwrap()
    };
    let one = run(BackwardThreads::One);
    let two = run(BackwardThreads::Two);
    let moved = two.stats.implicit.unwrap().backward.jacobians_moved_to_main;
    assert!(moved > 0, "the helper was never late");
    assert_eq!(bits(&one), bits(&two));
}

/// An adjoint that overflows is reported at the step where it does, the
/// same with the helper thread as without, and the helper stops with the
/// sweep.
#[test]
fn an_overflowing_adjoint_stops_the_pipelined_sweep_where_it_overflows() {
    // x' = 50 x from x = 0: the state stays 0, the adjoint doubles each
    // step backwards (I − hJ = 1/2) from a weight of 1e250.
    let m = StiffBlocks {
        blocks: 16,
        jacobian: true,
    };
    let (p, u0) = ([-50.0, 3.0, 0.0, 0.0], vec![0.0; 32]);
    let problem = BeulerProblem {
        u0: &u0,
        params: &p,
        grid: TimeGrid::new(0.0, 4.0, 0.01).unwrap(),
        options: options(LinearSolver::Auto),
    };
    let loss = Loss::Final {
        weights: vec![1e250; 32],
    };
    let failure = |mode, threads| match gradient_beuler_with(
        &m,
        &problem,
        &Stimulus::none(),
        &loss,
        Schedule::All,
        mode,
        threads,
    ) {
        Err(GradientError::NonFiniteAdjoint { t, step }) => (t.to_bits(), step),
        other => panic!("{other:?}"),
    };
    let two = failure(TransposedSolve::Auto, BackwardThreads::Two);
    assert_eq!(failure(TransposedSolve::Auto, BackwardThreads::One), two);
    assert_eq!(failure(TransposedSolve::Refine, BackwardThreads::One), two);
    // 2^k · 1e250 overflows after ~190 of the 400 steps.
    assert!((150..250).contains(&(400 - two.1)), "{two:?}");
}
