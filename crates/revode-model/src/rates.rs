//! The removable singularity `z / (e^z − 1)` shared by the HH rates.

// Below this |z| the Taylor series is used; above it the direct form with
// `exp_m1`. Chosen by comparing both forms (see tests and docs/models/hh.md).
const SERIES_BELOW: f64 = 1e-4;

/// `z / (e^z − 1)`, with its limit 1 at z = 0.
pub fn exprel_inv(z: f64) -> f64 {
    if z.abs() < SERIES_BELOW {
        // 1 − z/2 + z²/12 − z⁴/720
        let z2 = z * z;
        1.0 - 0.5 * z + z2 / 12.0 - z2 * z2 / 720.0
    } else {
        z / z.exp_m1()
    }
}

/// `d/dz [z / (e^z − 1)]`, with its limit −1/2 at z = 0.
pub fn exprel_inv_deriv(z: f64) -> f64 {
    if z.abs() < SERIES_BELOW {
        // −1/2 + z/6 − z³/180
        -0.5 + z / 6.0 - z * z * z / 180.0
    } else {
        let em1 = z.exp_m1();
        // (e^z − 1 − z e^z) / (e^z − 1)²
        (em1 - z * (em1 + 1.0)) / (em1 * em1)
    }
}
