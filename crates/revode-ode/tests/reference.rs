//! The evaluator against independent reference values: every shipped
//! model's right-hand side computed in mpmath (fixtures/reference/*.json,
//! written from the models' documentation, not from the .ode files).

use revode_model::Model;
use revode_ode::OdeModel;
use serde_json::Value;

fn repo(path: &str) -> String {
    format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn shipped_models_match_the_mpmath_reference() {
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(repo("fixtures/reference")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let r: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(r["format"], "revode-rhs-reference/1");
        let m = OdeModel::from_file(repo(r["file"].as_str().unwrap())).unwrap();
        assert_eq!(m.state_names(), strings(&r["state_names"]));
        assert_eq!(m.param_names(), strings(&r["param_names"]));
        let p = floats(&r["params"]);
        assert_eq!(m.default_params(), p);
        let mut work = m.new_work();
        let mut worst = 0.0f64;
        for point in r["points"].as_array().unwrap() {
            let u = floats(&point["u"]);
            let want = floats(&point["rhs"]);
            let scale = floats(&point["scale"]);
            let mut du = vec![f64::NAN; u.len()];
            m.rhs(point["t"].as_f64().unwrap(), &u, &p, &mut du, &mut work);
            for i in 0..u.len() {
                let err = (du[i] - want[i]).abs() / scale[i].max(f64::MIN_POSITIVE);
                assert!(
                    err <= 1e-13,
                    "{}: {} component {i}: {} vs {} (scale {})",
                    path.display(),
                    point["label"],
                    du[i],
                    want[i],
                    scale[i]
                );
                worst = worst.max(err);
            }
        }
        checked.push(format!("{} (worst {worst:.1e})", r["model"]));
    }
    assert!(checked.len() >= 3, "only {checked:?}");
}
