//! Helpers shared by the array tests.

use revode_model::Model;
use revode_ode::OdeModel;

/// `a` and `b` are the same model: names, defaults, and bitwise equal rhs
/// and VJPs at a few points.
pub fn assert_same_model(a: &OdeModel, b: &OdeModel, what: &str) {
    assert_eq!(a.state_names(), b.state_names(), "{what}");
    assert_eq!(a.param_names(), b.param_names(), "{what}");
    assert_eq!(a.aux_names(), b.aux_names(), "{what}");
    assert_eq!(a.default_u0(), b.default_u0(), "{what}");
    assert_eq!(a.default_params(), b.default_params(), "{what}");
    let (n, p) = (a.dims().n_states, a.dims().n_params);
    let (mut wa, mut wb) = (a.new_work(), b.new_work());
    for k in 0..4 {
        let u: Vec<f64> = (0..n)
            .map(|i| a.default_u0()[i] + 0.37 * ((i + 3 * k) as f64).sin())
            .collect();
        let q: Vec<f64> = (0..p)
            .map(|i| a.default_params()[i] * (1.0 + 0.1 * ((i + k) as f64).cos()))
            .collect();
        let t = 0.3 * k as f64;
        let (mut da, mut db) = (vec![0.0; n], vec![0.0; n]);
        a.rhs(t, &u, &q, &mut da, &mut wa);
        b.rhs(t, &u, &q, &mut db, &mut wb);
        assert_eq!(
            da.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            db.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            "{what}: rhs {da:?} vs {db:?}"
        );
        let lambda: Vec<f64> = (0..n).map(|i| 1.0 + 0.5 * (i as f64).cos()).collect();
        let (mut ua, mut ub) = (vec![0.0; n], vec![0.0; n]);
        let (mut pa, mut pb) = (vec![0.0; p], vec![0.0; p]);
        a.vjp(t, &u, &q, &lambda, &mut ua, 0.5, &mut pa, &mut wa);
        b.vjp(t, &u, &q, &lambda, &mut ub, 0.5, &mut pb, &mut wb);
        assert_eq!(ua, ub, "{what}: state adjoints");
        assert_eq!(pa, pb, "{what}: parameter adjoints");
        assert_eq!(a.aux_values(t, &u, &q), b.aux_values(t, &u, &q), "{what}");
    }
}
