//! Models registered at run time (`revode::register_model`): problem files
//! name them, results equal the model's own bit for bit, the registry
//! refuses clashes, and the type-erased model allocates nothing per step.

use std::sync::Once;

use revode::adjoint::{gradient_fixed, FixedProblem, Loss};
use revode::checkpoint::Schedule;
use revode::custom::{registered, CustomModel};
use revode::forward::{FixedMethod, TimeGrid};
use revode::model::{HhNetwork, HodgkinHuxley, Model};
use revode::{gradient, register_model, ModelSpec, Problem};
use revode_testing::alloc::{allocations_during, counting_is_active, CountingAllocator};
use revode_testing::HhBrokenVjp;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// `hh` under another name (a model must have its own name to be registered).
struct Renamed<M>(M, &'static str);

impl<M: Model> Model for Renamed<M> {
    type Work = M::Work;
    fn name(&self) -> &str {
        self.1
    }
    fn dims(&self) -> revode::model::Dims {
        self.0.dims()
    }
    fn state_names(&self) -> Vec<String> {
        self.0.state_names()
    }
    fn param_names(&self) -> Vec<String> {
        self.0.param_names()
    }
    fn default_u0(&self) -> Vec<f64> {
        self.0.default_u0()
    }
    fn default_params(&self) -> Vec<f64> {
        self.0.default_params()
    }
    fn new_work(&self) -> M::Work {
        self.0.new_work()
    }
    fn rhs(&self, t: f64, u: &[f64], p: &[f64], du: &mut [f64], w: &mut M::Work) {
        self.0.rhs(t, u, p, du, w)
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
        self.0.vjp(t, u, p, l, out, alpha, acc, w)
    }
    fn flush_vjp(&self, acc: &mut [f64], w: &mut M::Work) {
        self.0.flush_vjp(acc, w)
    }
}

static REGISTER: Once = Once::new();

fn register() {
    REGISTER.call_once(|| {
        register_model(Renamed(HodgkinHuxley, "my_hh")).unwrap();
        register_model(Renamed(HhNetwork::with_neurons(3).unwrap(), "my_net3")).unwrap();
    });
}

fn problem(model: &str) -> Problem {
    Problem::from_json(
        &format!(
            r#"{{"model": {model}, "tspan": [0, 5], "solver": {{"method": "rk4", "dt": 0.01}},
                "loss": {{"kind": "all_steps"}}}}"#
        ),
        "test",
    )
    .unwrap()
}

#[test]
fn a_registered_model_gives_the_builtin_results_bit_for_bit() {
    register();
    for (own, builtin) in [
        (r#"{"name": "my_hh"}"#, r#"{"name": "hh"}"#),
        (
            r#"{"name": "my_net3"}"#,
            r#"{"name": "hh_network", "n": 3}"#,
        ),
    ] {
        let (a, b) = (problem(own), problem(builtin));
        assert!(matches!(a.model, ModelSpec::Custom(_)), "{:?}", a.model);
        let (ga, gb) = (gradient(&a).unwrap(), gradient(&b).unwrap());
        assert_ne!(ga.model, gb.model);
        assert_eq!(ga.loss.to_bits(), gb.loss.to_bits());
        assert_eq!(ga.gradient, gb.gradient);
        assert_eq!(ga.gradient_u0, gb.gradient_u0);
        assert_eq!(ga.param_names, gb.param_names);
        // and it is written back under its name
        let text = serde_json::to_value(&a).unwrap();
        assert_eq!(
            text["model"],
            serde_json::from_str::<serde_json::Value>(own).unwrap()
        );
    }
}

#[test]
fn the_registry_refuses_clashes_and_options() {
    register();
    for name in ["hh", "hh_network"] {
        let e = register_model(Renamed(HodgkinHuxley, name)).unwrap_err();
        assert!(e.to_string().contains("built-in"), "{e}");
    }
    let e = register_model(Renamed(HodgkinHuxley, "my_hh")).unwrap_err();
    assert!(e.to_string().contains("already registered"), "{e}");
    let e = register_model(Renamed(HodgkinHuxley, "cell.ode")).unwrap_err();
    assert!(e.to_string().contains("not a model name"), "{e}");
    assert!(registered("nope").is_none());
    let e = Problem::from_json(
        r#"{"model": {"name": "my_hh", "n": 3}, "tspan": [0, 1],
            "solver": {"method": "euler", "dt": 0.1}}"#,
        "p",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains(r#"model "my_hh" takes no options, got "n""#),
        "{e}"
    );
}

#[test]
fn an_unregistered_test_model_is_unknown() {
    // HhBrokenVjp is only a Rust type until someone registers it.
    register();
    let e = Problem::from_json(
        r#"{"model": {"name": "hh_broken_vjp"}, "tspan": [0, 1],
            "solver": {"method": "euler", "dt": 0.1}}"#,
        "p",
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("unknown variant `hh_broken_vjp`"),
        "{e}"
    );
}

#[test]
fn the_erased_model_allocates_nothing_per_step() {
    assert!(counting_is_active());
    let model = CustomModel::new(HhBrokenVjp::default());
    let (u0, p) = (model.default_u0(), model.default_params());
    let count = |steps: usize| {
        let grid = TimeGrid::new(0.0, steps as f64 * 1e-3, 1e-3).unwrap();
        let problem = FixedProblem {
            u0: &u0,
            params: &p,
            grid,
            method: FixedMethod::Rk4,
        };
        let loss = Loss::AllSteps {
            weights: vec![1.0; 4],
        };
        allocations_during(|| {
            gradient_fixed(&model, &problem, &loss, Schedule::Every(10)).unwrap();
        })
    };
    assert_eq!(count(1000), count(4000));
}
