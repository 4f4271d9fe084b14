//! Fitting a spiking model to spike times: the Izhikevich neuron's a, b, c,
//! d recovered from the spike times of its own simulation, starting ±10 %
//! off; and the spike-time CSV reader.

use std::collections::BTreeMap;

use revode::fit::{fit, parse_spike_csv, FitOptions, FitProblem, FreeParameter, Sweep};
use revode::problem::{AdjointMethod, AdjointSpec, ModelFile, ModelSpec, SolverSpec, StimulusSpec};
use revode::Problem;

const TRUTH: [f64; 5] = [0.02, 0.2, -65.0, 8.0, 10.0];
const NAMES: [&str; 4] = ["a", "b", "c", "d"];

fn izhikevich() -> ModelSpec {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/izhikevich.ode");
    ModelSpec::File(ModelFile::load(path).unwrap())
}

/// Three current steps, so the spike train holds transients at three rates.
fn stimulus() -> StimulusSpec {
    let mut tracks = BTreeMap::new();
    tracks.insert(
        "I".to_string(),
        vec![[0.0, 10.0], [150.0, 5.0], [300.0, 15.0]],
    );
    StimulusSpec(tracks)
}

fn truth_problem(solver: SolverSpec) -> Problem {
    Problem {
        model: izhikevich(),
        params: Some(TRUTH.to_vec()),
        u0: None,
        tspan: [0.0, 450.0],
        solver,
        loss: None,
        adjoint: Default::default(),
        stimulus: Some(stimulus()),
    }
}

fn recover(solver: SolverSpec, adjoint: AdjointSpec) {
    let spikes = Sweep::synthetic_spikes(&truth_problem(solver.clone()), 0).unwrap();
    assert!(spikes.times.len() >= 10, "{} spikes", spikes.times.len());
    let mut start = TRUTH.to_vec();
    for (k, f) in [1.1, 0.9, 1.1, 0.9].iter().enumerate() {
        start[k] *= f;
    }
    let problem = FitProblem {
        model: izhikevich(),
        params: Some(start),
        u0: None,
        free: NAMES
            .iter()
            .map(|n| FreeParameter {
                name: n.to_string(),
                lower: None,
                upper: None,
            })
            .collect(),
        solver,
        adjoint,
        sweeps: vec![spikes],
    };
    let options = FitOptions {
        starts: 1,
        max_iters: 500,
        gtol: 1e-10,
        loss_rtol: 0.0,
        ..FitOptions::default()
    };
    let report = fit(&problem, &options).unwrap();
    let mut worst: f64 = 0.0;
    for ((v, t), n) in report.params.iter().zip(TRUTH).zip(NAMES) {
        let rel = ((v - t) / t).abs();
        worst = worst.max(rel);
        assert!(
            rel <= 1e-4,
            "{n} = {v}, truth {t} (relative error {rel:e}); {report:?}"
        );
    }
    eprintln!(
        "Izhikevich spike-time fit: worst relative error {worst:.1e}, loss {:.2e}, {} iterations, {} evaluations",
        report.loss, report.iterations, report.evaluations
    );
}

#[test]
fn izhikevich_a_b_c_d_are_recovered_from_spike_times_rk4() {
    recover(SolverSpec::Rk4 { dt: 0.01 }, AdjointSpec::default());
}

#[test]
fn izhikevich_a_b_c_d_are_recovered_from_spike_times_dopri5() {
    let solver = serde_json::from_str(r#"{"method": "dopri5", "rtol": 1e-10, "atol": 1e-10}"#);
    let adjoint = AdjointSpec {
        method: AdjointMethod::Continuous,
        ..AdjointSpec::default()
    };
    recover(solver.unwrap(), adjoint);
}

#[test]
fn izhikevich_a_b_c_d_are_recovered_from_spike_times_beuler() {
    let solver = serde_json::from_str(r#"{"method": "beuler", "dt": 0.01, "newton_tol": 1e-12}"#);
    recover(solver.unwrap(), AdjointSpec::default());
}

#[test]
fn izhikevich_a_b_c_d_are_recovered_from_spike_times_bdf() {
    let solver = serde_json::from_str(r#"{"method": "bdf", "rtol": 1e-10, "atol": 1e-10}"#);
    let adjoint = AdjointSpec {
        method: AdjointMethod::Continuous,
        ..AdjointSpec::default()
    };
    recover(solver.unwrap(), adjoint);
}

/// The same spike-time gradient by bdf and by dopri5 (both continuous
/// adjoints, at rtol 1e-10): they approximate one ODE gradient.
#[test]
fn izhikevich_bdf_and_dopri5_spike_time_gradients_agree() {
    let mut start = TRUTH.to_vec();
    start[0] *= 1.1;
    start[3] *= 0.9;
    let gradient = |solver: &str| {
        let mut problem = truth_problem(serde_json::from_str(solver).unwrap());
        problem.params = Some(start.clone());
        problem.loss = Some(
            serde_json::from_str(
                r#"{"kind": "event_times", "event": 0, "times": [20, 60, 110, 170, 240, 330, 420]}"#,
            )
            .unwrap(),
        );
        problem.adjoint = AdjointSpec {
            method: AdjointMethod::Continuous,
            ..AdjointSpec::default()
        };
        revode::gradient(&problem).unwrap()
    };
    let bdf = gradient(r#"{"method": "bdf", "rtol": 1e-10, "atol": 1e-10}"#);
    let dopri5 = gradient(r#"{"method": "dopri5", "rtol": 1e-10, "atol": 1e-10}"#);
    assert_eq!(bdf.stats.events, dopri5.stats.events);
    assert!(bdf.stats.events.unwrap() >= 10, "{:?}", bdf.stats);
    let rel = ((bdf.loss - dopri5.loss) / dopri5.loss).abs();
    let mut worst: f64 = 0.0;
    let entries = bdf.gradient.iter().chain(&bdf.gradient_u0);
    let reference = dopri5.gradient.iter().chain(&dopri5.gradient_u0);
    for (a, b) in entries.zip(reference) {
        worst = worst.max((a - b).abs() / b.abs().max(1.0));
    }
    eprintln!(
        "Izhikevich spike times, bdf vs dopri5 at rtol 1e-10: loss {rel:.1e}, gradient {worst:.1e} (relative); {:?} vs {:?}",
        bdf.gradient, dopri5.gradient
    );
    assert!(rel < 1e-6 && worst < 1e-5, "{rel:e} {worst:e}");
}

#[test]
fn spike_csv_files_are_read_and_checked() {
    let times = parse_spike_csv("t,cell\n# comment\n1.5,0\n\n2.25,0\n", "s.csv").unwrap();
    assert_eq!(times, [1.5, 2.25]);
    for (text, fragment) in [
        ("time\n1\n", "no column `t`"),
        ("t\n", "no spike times"),
        ("t\n2\n1\n", "increase strictly"),
        ("t\nx\n", "not a finite number"),
    ] {
        let e = parse_spike_csv(text, "s.csv").unwrap_err().to_string();
        assert!(e.contains(fragment), "{text:?}: {e}");
    }
}

#[test]
fn a_fit_file_reads_spike_times() {
    let dir = std::env::temp_dir().join(format!("revode-spikes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spikes = Sweep::synthetic_spikes(&truth_problem(SolverSpec::Rk4 { dt: 0.01 }), 0).unwrap();
    let mut csv = String::from("t\n");
    for t in &spikes.times {
        csv.push_str(&format!("{t:?}\n"));
    }
    std::fs::write(dir.join("spikes.csv"), csv).unwrap();
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/izhikevich.ode");
    let text = format!(
        r#"{{"model": {{"file": "{model}"}}, "params": [0.022, 0.18, -65, 8, 10],
            "free": {{"a": {{}}, "b": {{}}}},
            "solver": {{"method": "rk4", "dt": 0.01}},
            "sweeps": [{{"tspan": [0, 450], "spikes": "spikes.csv", "event": 0,
                        "stimulus": {{"I": [[0, 10], [150, 5], [300, 15]]}}}}],
            "optimizer": {{"starts": 1, "gtol": 1e-10, "loss_rtol": 0}}}}"#
    );
    let (problem, options) = revode::fit::parse_fit_file(&text, &dir, "fit.json").unwrap();
    assert_eq!(problem.sweeps[0].times, spikes.times);
    assert_eq!(problem.sweeps[0].event, Some(0));
    let report = fit(&problem, &options).unwrap();
    assert!(
        (report.params[0] - 0.02).abs() < 1e-8 && (report.params[1] - 0.2).abs() < 1e-7,
        "{report:?}"
    );
    // A sweep must say which kind it is.
    let both = text.replace(
        r#""spikes": "spikes.csv""#,
        r#""spikes": "spikes.csv", "component": "v""#,
    );
    let e = revode::fit::parse_fit_file(&both, &dir, "fit.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("either `data`"), "{e}");
    let e = revode::fit::parse_fit_file(&text.replace(r#""event": 0"#, r#""event": 3"#), &dir, "f")
        .and_then(|(p, o)| fit(&p, &o))
        .unwrap_err()
        .to_string();
    assert!(e.contains("has 1 event(s)"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
