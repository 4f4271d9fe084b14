//! Batch gradients: bitwise equal to one-by-one runs on any thread count,
//! and one failing member does not lose the others.

use revode::batch::{gradients, gradients_of_members, parse_batch, Parallelism};
use revode::{gradient, GradientReport, Problem};

fn problem(text: &str) -> Problem {
    Problem::from_json(text, "test").unwrap()
}

fn members() -> Vec<Problem> {
    let mut v = Vec::new();
    for k in 0..6 {
        v.push(problem(&format!(
            r#"{{"model": {{"name": "hh"}}, "params": [{}, 10, 0.05], "tspan": [0, 30],
                "solver": {{"method": "euler", "dt": 0.01}}}}"#,
            60.0 + 3.0 * k as f64
        )));
    }
    v.push(problem(
        r#"{"model": {"name": "hh_network", "n": 3, "i_ext": 2.0}, "tspan": [0, 10],
            "solver": {"method": "rk4", "dt": 0.02}, "adjoint": {"checkpoints": {"every": 7}}}"#,
    ));
    v
}

/// Everything but the wall-clock timings.
fn deterministic(r: &GradientReport) -> (u64, Vec<u64>, Vec<u64>, usize, usize) {
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    (
        r.loss.to_bits(),
        bits(&r.gradient),
        bits(&r.gradient_u0),
        r.stats.steps,
        r.stats.recomputed_steps,
    )
}

#[test]
fn batch_equals_one_by_one_bitwise() {
    let problems = members();
    let alone: Vec<_> = problems
        .iter()
        .map(|p| deterministic(&gradient(p).unwrap()))
        .collect();
    for par in [
        Parallelism::Sequential,
        Parallelism::Threads(1),
        Parallelism::Threads(2),
        Parallelism::Threads(3),
        Parallelism::AllCores,
    ] {
        let batch = gradients(&problems, par).unwrap();
        let got: Vec<_> = batch
            .iter()
            .map(|r| deterministic(r.as_ref().unwrap()))
            .collect();
        assert_eq!(got, alone, "{par:?}");
    }
}

#[test]
fn a_failing_member_is_reported_and_the_rest_succeed() {
    let mut problems = members();
    // wrong parameter count (bad input) and a blow-up (solve failure)
    problems[1].params = Some(vec![70.0, 10.0]);
    problems[4].params = Some(vec![1e7, 10.0, 0.05]);
    let results = gradients(&problems, Parallelism::Threads(2)).unwrap();
    assert_eq!(results.len(), problems.len());
    for (k, r) in results.iter().enumerate() {
        match k {
            1 => {
                let e = r.as_ref().unwrap_err();
                assert_eq!(e.exit_code(), 2, "{e}");
                assert!(e.to_string().contains("params"), "{e}");
            }
            4 => assert_eq!(r.as_ref().unwrap_err().exit_code(), 3),
            _ => assert_eq!(
                deterministic(r.as_ref().unwrap()),
                deterministic(&gradient(&problems[k]).unwrap())
            ),
        }
    }
}

#[test]
fn base_and_overrides_replace_top_level_keys() {
    let text = r#"{"base": {"model": {"name": "hh_network", "n": 2}, "tspan": [0, 5],
                            "solver": {"method": "euler", "dt": 0.01}},
                   "overrides": [{}, {"model": {"name": "hh_network", "n": 2, "i_ext": 3.5}},
                                 {"tspan": [0, 2]}, {"typo": 1}, 7]}"#;
    let parsed = parse_batch(text, "b.json").unwrap();
    assert_eq!(parsed.len(), 5);
    let p0 = parsed[0].as_ref().unwrap();
    let p1 = parsed[1].as_ref().unwrap();
    assert_eq!(p0.tspan, [0.0, 5.0]);
    assert_eq!(
        p1.model,
        revode::ModelSpec::HhNetwork {
            n: 2.try_into().unwrap(),
            i_ext: 3.5
        }
    );
    assert_eq!(p1.tspan, [0.0, 5.0]);
    assert_eq!(parsed[2].as_ref().unwrap().tspan, [0.0, 2.0]);
    let typo = parsed[3].as_ref().unwrap_err().to_string();
    assert!(
        typo.contains("b.json[3]") && typo.contains("typo"),
        "{typo}"
    );
    assert!(parsed[4].is_err());

    let results = gradients_of_members(parsed, Parallelism::Threads(2)).unwrap();
    let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
    assert_eq!(ok, [true, true, true, false, false]);
    // the stimulus override changed the result
    let (r0, r1) = (results[0].as_ref().unwrap(), results[1].as_ref().unwrap());
    assert_ne!(r0.loss, r1.loss);
}

#[test]
fn malformed_batch_files_are_errors() {
    for text in [
        "{}",
        r#"{"base": {}, "overrides": [], "extra": 1}"#,
        r#"{"base": 3, "overrides": []}"#,
        r#"{"base": {}, "overrides": {}}"#,
        "[]",
        "3",
        "[",
    ] {
        let e = parse_batch(text, "b.json").unwrap_err();
        assert_eq!(e.exit_code(), 2, "{text}: {e}");
    }
}

#[test]
fn gradients_of_one_model_form_a_members_by_parameters_matrix() {
    let mut same: Vec<Problem> = members()[..6].to_vec();
    // Member 2 fails (dt ≤ 0); its row is NaN.
    same[2].solver = revode::problem::SolverSpec::Euler { dt: -1.0 };
    let results = gradients(&same, Parallelism::Sequential).unwrap();
    let m = revode::batch::gradient_matrix(&results).unwrap();
    assert_eq!(m.shape(), &[6, 3]);
    for (k, r) in results.iter().enumerate() {
        match r {
            Ok(r) => assert_eq!(m.row(k).to_vec(), r.gradient),
            Err(_) => assert!(m.row(k).iter().all(|x| x.is_nan())),
        }
    }
    // Different models: no common matrix.
    let mixed = gradients(&members(), Parallelism::Sequential).unwrap();
    assert_eq!(revode::batch::gradient_matrix(&mixed), None);
}
