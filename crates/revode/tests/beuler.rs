//! Backward Euler through problem files: gradients against converged central
//! finite differences of the same beuler solution (`check`) on HH, a model
//! file, a stimulus and a small HH cable; `tune`'s bitwise comparison of
//! schedules; batches; a fit; the bundled cable fixture; and the problem
//! keys' errors.

use std::path::PathBuf;

use revode::check::{check, CheckOptions, ParamSelection};
use revode::fit::{fit, FitOptions, FitProblem, FreeParameter, Sweep};
use revode::problem::{ModelSpec, SolverSpec};
use revode::tune::{tune, TuneOptions};
use revode::Problem;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn problem(json: &str) -> Problem {
    Problem::from_json(json, "test").unwrap()
}

/// FD of the computed solution sees Newton's stopping error (about N ·
/// newton_tol relative, docs/stiff.md), so the checks solve tightly.
const TIGHT: &str = r#""newton_tol": 1e-13"#;

fn assert_check_passes(p: &Problem, options: &CheckOptions, what: &str) {
    let r = check(p, options).unwrap();
    for e in &r.entries {
        println!(
            "{what} {:8} adjoint {:+.12e} fd {:+.12e} rel {:.1e}",
            e.name, e.adjoint, e.fd, e.rel_error
        );
    }
    assert!(r.passed, "{what}: {:#?}", r.entries);
}

#[test]
fn hh_gradients_match_finite_differences_for_every_loss() {
    let options = CheckOptions {
        include_u0: true,
        // Neighbouring FD steps straddle changes of Newton's iteration
        // counts less often at this scale.
        rel_step: 1e-3,
        ..CheckOptions::default()
    };
    for loss in [
        r#"{"kind": "final", "weights": [1, 2, 3, 4]}"#,
        r#"{"kind": "all_steps"}"#,
        r#"{"kind": "trace_mse", "component": 0, "times": [5, 12.5, 20], "values": [-60, 0, -65]}"#,
    ] {
        let p = problem(&format!(
            r#"{{"model": {{"name": "hh"}}, "tspan": [0, 20],
                "solver": {{"method": "beuler", "dt": 0.01, {TIGHT}}}, "loss": {loss}}}"#
        ));
        assert_check_passes(&p, &options, loss);
    }
}

#[test]
fn model_file_gradient_matches_finite_differences() {
    let p = problem(&format!(
        r#"{{"model": {{"file": "{}"}}, "tspan": [0, 20],
            "solver": {{"method": "beuler", "dt": 0.02, {TIGHT}}}, "loss": {{"kind": "all_steps"}}}}"#,
        repo("models/seed_hh.ode").display()
    ));
    let options = CheckOptions {
        include_u0: true,
        rel_step: 1e-3,
        ..CheckOptions::default()
    };
    assert_check_passes(&p, &options, "seed_hh.ode");
}

#[test]
fn stimulated_gradient_matches_finite_differences() {
    // g_leak switches on and off the 0.01 lattice; the stimulated g_leak's
    // entry is the derivative with respect to its params value, 0 here
    // (the protocol starts at t0), which FD confirms.
    let p = problem(&format!(
        r#"{{"model": {{"name": "hh"}}, "tspan": [0, 15],
            "solver": {{"method": "beuler", "dt": 0.01, {TIGHT}}},
            "loss": {{"kind": "all_steps"}},
            "stimulus": {{"g_leak": [[0, 0.05], [4.005, 0.4], [9, 0.1]]}}}}"#
    ));
    let options = CheckOptions {
        include_u0: true,
        rel_step: 1e-3,
        ..CheckOptions::default()
    };
    assert_check_passes(&p, &options, "stimulus");
    let g = revode::gradient(&p).unwrap();
    assert_eq!(g.gradient[2], 0.0);
    assert_eq!(g.stimulated, ["g_leak"]);
}

/// The cable of models/make_hh_cable.py with two compartments (the same
/// equations and constants, written out here so the test needs no Python).
fn two_compartment_cable() -> String {
    let mut text = String::from(
        "number Cm=1.0, ENa=50.0, EK=-77.0, EL=-54.3\n\
         number gax=500.0\nnumber inj=1591.5494309189535\n\
         par gNa1=120.0, gNa2=120.0\npar gK1=36.0, gK2=36.0\npar gL1=0.3, gL2=0.3\npar I_inj=0\n",
    );
    for i in 1..=2 {
        let (other, drive) = if i == 1 {
            (2, "I_inj*inj - ")
        } else {
            (1, "-")
        };
        text += &format!(
            "am{i} = 0.1*(V{i}+40)/(1-exp(-(V{i}+40)/10))\n\
             bm{i} = 4*exp(-(V{i}+65)/18)\n\
             ah{i} = 0.07*exp(-(V{i}+65)/20)\n\
             bh{i} = 1/(1+exp(-(V{i}+35)/10))\n\
             an{i} = 0.01*(V{i}+55)/(1-exp(-(V{i}+55)/10))\n\
             bn{i} = 0.125*exp(-(V{i}+65)/80)\n\
             V{i}' = ({drive}(gNa{i}*m{i}^3*h{i}*(V{i}-ENa) + gK{i}*n{i}^4*(V{i}-EK) + gL{i}*(V{i}-EL)) + gax*(V{other}-V{i}))/Cm\n\
             m{i}' = am{i}*(1-m{i}) - bm{i}*m{i}\n\
             h{i}' = ah{i}*(1-h{i}) - bh{i}*h{i}\n\
             n{i}' = an{i}*(1-n{i}) - bn{i}*n{i}\n\
             init V{i}=-65.0, m{i}=0.05293248525724958, h{i}=0.5961207535084603, n{i}=0.3176769140606974\n"
        );
    }
    text + "done\n"
}

#[test]
fn cable_gradient_matches_finite_differences() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cable2.ode"), two_compartment_cable()).unwrap();
    // The far end's V over every step; 0.05 nA into compartment 1 from 2 ms
    // makes it spike (g_ax/area = 500 mS/cm²: explicit Euler would need
    // dt < 0.001 here).
    let p = Problem::from_json_in(
        &format!(
            r#"{{"model": {{"file": "cable2.ode"}}, "tspan": [0, 15],
                "solver": {{"method": "beuler", "dt": 0.025, {TIGHT}}},
                "loss": {{"kind": "all_steps", "weights": [0, 0, 0, 0, 1, 0, 0, 0]}},
                "stimulus": {{"I_inj": [[0, 0], [2, 0.05], [12, 0]]}}}}"#
        ),
        "cable2",
        Some(dir.path()),
    )
    .unwrap();
    let g = revode::gradient(&p).unwrap();
    let solved = revode::solve(&p, Some(1)).unwrap();
    let peak = solved.samples.iter().map(|r| r[5]).fold(f64::MIN, f64::max);
    assert!(peak > 0.0, "the far end spikes: peak {peak}");
    let options = CheckOptions {
        include_u0: true,
        rel_step: 1e-3,
        ..CheckOptions::default()
    };
    assert_check_passes(&p, &options, "cable");
    assert_eq!(g.stimulated, ["I_inj"]);
}

#[test]
fn default_tolerance_is_checked_to_its_own_accuracy() {
    // With the default newton_tol the agreement is limited by Newton's
    // stopping error, not by the adjoint: a short span passes at 1e-5.
    let p = problem(
        r#"{"model": {"name": "hh"}, "tspan": [0, 20],
            "solver": {"method": "beuler", "dt": 0.01}, "loss": {"kind": "final"}}"#,
    );
    let options = CheckOptions {
        include_u0: true,
        rtol: Some(1e-5),
        rel_step: 1e-3,
        ..CheckOptions::default()
    };
    assert_check_passes(&p, &options, "default newton_tol");
}

#[test]
fn tune_finds_every_schedule_bitwise_identical() {
    let p = problem(
        r#"{"model": {"name": "hh"}, "tspan": [0, 5],
            "solver": {"method": "beuler", "dt": 0.01}, "loss": {"kind": "all_steps"},
            "stimulus": {"g_leak": [[1.005, 0.3]]}}"#,
    );
    let options = TuneOptions {
        repeat: 1,
        memory_budget: Some(8 << 10),
    };
    let r = tune(&p, &options, &mut |_: usize, _: usize| {}).unwrap();
    assert!(r.gradients_agree, "{:#?}", r.rows);
    assert_eq!(r.gradient_agreement, "bitwise");
    // A budget slot holds beuler's chain state: [u, s, c, memory] + step.
    let slot = (4 * 4 + 4 + 1) * 8;
    for row in &r.rows {
        if let Some(revode::checkpoint::Schedule::BudgetBytes(b)) = row.schedule {
            assert!(b >= 3 * slot, "{row:?}");
            assert!(row.peak_store_bytes <= b, "{row:?}");
        }
    }
    assert!(r.rows[r.recommended].peak_store_bytes <= 8 << 10);
}

#[test]
fn batch_members_equal_single_runs_bitwise() {
    let members: Vec<Problem> = [0.01, 0.02, 0.005]
        .iter()
        .map(|dt| {
            problem(&format!(
                r#"{{"model": {{"name": "hh"}}, "tspan": [0, 5],
                    "solver": {{"method": "beuler", "dt": {dt}}}, "loss": {{"kind": "all_steps"}}}}"#
            ))
        })
        .collect();
    let results =
        revode::batch::gradients(&members, revode::batch::Parallelism::Threads(2)).unwrap();
    for (member, result) in members.iter().zip(results) {
        let batch = result.unwrap();
        let single = revode::gradient(member).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(batch.loss.to_bits(), single.loss.to_bits());
        assert_eq!(bits(&batch.gradient), bits(&single.gradient));
        assert_eq!(bits(&batch.gradient_u0), bits(&single.gradient_u0));
    }
}

#[test]
fn fit_recovers_conductances_with_beuler() {
    let truth = [70.0, 10.0, 0.05];
    let solver = SolverSpec::Beuler {
        dt: 0.01,
        newton_tol: None,
        linear_solver: None,
    };
    let reference = Problem {
        model: ModelSpec::Hh,
        params: Some(truth.to_vec()),
        u0: None,
        tspan: [0.0, 30.0],
        solver: solver.clone(),
        loss: None,
        adjoint: Default::default(),
        stimulus: None,
    };
    let sweep = Sweep::synthetic(&reference, "E", 50).unwrap();
    let fit_problem = FitProblem {
        model: ModelSpec::Hh,
        params: Some(truth.map(|p| p * 1.1).to_vec()),
        u0: None,
        free: ["g_Na", "g_Kd", "g_leak"]
            .map(|n| FreeParameter {
                name: n.to_string(),
                lower: Some(0.0),
                upper: None,
            })
            .to_vec(),
        solver,
        adjoint: Default::default(),
        sweeps: vec![sweep],
    };
    let options = FitOptions {
        starts: 1,
        ..FitOptions::default()
    };
    let r = fit(&fit_problem, &options).unwrap();
    for (v, t) in r.params.iter().zip(truth) {
        assert!(((v - t) / t).abs() < 1e-5, "{v} vs {t}: {}", r.stop_message);
    }
}

#[test]
fn bundled_cable_fixture_runs() {
    let mut p = Problem::from_path(&repo("fixtures/hh_cable_100.json")).unwrap();
    // A short span of the 400-state fixture; its stimulus starts at 5 ms.
    p.tspan = [0.0, 6.0];
    p.stimulus = Some(revode::StimulusSpec::new().with("I_inj", &[[0.0, 0.0], [5.0, 0.05]]));
    let g = revode::gradient(&p).unwrap();
    assert_eq!(g.gradient.len(), 301);
    assert_eq!(g.gradient_u0.len(), 400);
    assert_eq!(g.param_names[0], "gNa1");
    assert_eq!(g.param_names[300], "I_inj");
    assert_eq!(g.state_names[399], "n100");
    assert!(g.gradient.iter().all(|x| x.is_finite()));
    // The far end's V leaks towards the rest: its gL has a nonzero entry.
    assert!(g.gradient[299] != 0.0);
    let stats = g.stats.implicit.unwrap();
    assert_eq!(g.stats.steps, 240);
    assert!(stats.newton.iterations < 3 * 240, "{stats:?}");
}

/// The bundled cable (models/hh_cable.ode, written with arrays) and the
/// flat file models/make_hh_cable.py writes (an independent transcription,
/// one line per state) give the same gradient; the generator's problem is
/// the bundled fixture's (when Python is there to run it).
#[test]
fn array_cable_matches_the_generated_flat_cable() {
    let Ok(status) = std::process::Command::new("python3")
        .arg("--version")
        .output()
    else {
        eprintln!("python3 not found: generator comparison skipped");
        return;
    };
    assert!(status.status.success());
    let dir = tempfile::tempdir().unwrap();
    let (ode, json) = (dir.path().join("c.ode"), dir.path().join("c.json"));
    let out = std::process::Command::new("python3")
        .arg(repo("models/make_hh_cable.py"))
        .args(["100", "--ode"])
        .arg(&ode)
        .arg("--problem")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let bundled: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo("fixtures/hh_cable_100.json")).unwrap())
            .unwrap();
    for key in ["tspan", "solver", "loss", "stimulus"] {
        assert_eq!(generated[key], bundled[key], "{key}");
    }
    let short = |mut p: Problem| {
        // a spike starts in compartment 1 and travels
        p.tspan = [0.0, 8.0];
        p.stimulus = Some(revode::StimulusSpec::new().with("I_inj", &[[0.0, 0.0], [1.0, 0.2]]));
        revode::gradient(&p).unwrap()
    };
    let flat = short(Problem::from_path(&json).unwrap());
    let arrays = short(Problem::from_path(&repo("fixtures/hh_cable_100.json")).unwrap());
    assert_eq!(flat.param_names, arrays.param_names);
    assert_eq!(flat.state_names, arrays.state_names);
    assert!((flat.loss - arrays.loss).abs() <= 1e-12 * flat.loss.abs());
    let scale = flat.gradient.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    for (i, (a, b)) in flat.gradient.iter().zip(&arrays.gradient).enumerate() {
        assert!(
            (a - b).abs() <= 1e-10 * scale,
            "{}: {a} vs {b}",
            flat.param_names[i]
        );
    }
}

#[test]
fn bad_beuler_keys_are_input_errors() {
    for (solver, needle) in [
        (r#""newton_tol": 0"#, "newton_tol = 0 is invalid"),
        (r#""newton_tol": -1e-3"#, "newton_tol = -0.001 is invalid"),
        (r#""newton_tol": 2"#, "newton_tol = 2 is invalid"),
        (r#""linear_solver": "lu""#, "unknown variant `lu`"),
        (r#""newton": 1"#, "unknown field `newton`"),
    ] {
        let text = format!(
            r#"{{"model": {{"name": "hh"}}, "tspan": [0, 1],
                "solver": {{"method": "beuler", "dt": 0.01, {solver}}}}}"#
        );
        let e = match Problem::from_json(&text, "p") {
            Err(e) => e,
            Ok(p) => revode::gradient(&p).unwrap_err(),
        };
        assert_eq!(e.exit_code(), 2, "{e}");
        assert!(e.to_string().contains(needle), "{e}");
    }
    let p = problem(
        r#"{"model": {"name": "hh"}, "tspan": [0, 1],
            "solver": {"method": "beuler", "dt": 0.01}, "adjoint": {"method": "continuous"}}"#,
    );
    let e = revode::gradient(&p).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("not available for beuler"), "{e}");
    let selection = CheckOptions {
        params: ParamSelection::Indices(vec![0]),
        ..CheckOptions::default()
    };
    assert!(check(&p, &selection).is_err());
}
