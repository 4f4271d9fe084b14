//! The Dormand–Prince 5(4) tableau (Dormand & Prince 1980) and the
//! coefficients of its 4th-order continuous extension (Hairer, Nørsett &
//! Wanner, *Solving ODEs I*, II.6).

/// Stage nodes c_2 … c_7 (c_1 = 0).
pub const C: [f64; 7] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];

pub const A21: f64 = 1.0 / 5.0;
pub const A3: [f64; 2] = [3.0 / 40.0, 9.0 / 40.0];
pub const A4: [f64; 3] = [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0];
pub const A5: [f64; 4] = [
    19372.0 / 6561.0,
    -25360.0 / 2187.0,
    64448.0 / 6561.0,
    -212.0 / 729.0,
];
pub const A6: [f64; 5] = [
    9017.0 / 3168.0,
    -355.0 / 33.0,
    46732.0 / 5247.0,
    49.0 / 176.0,
    -5103.0 / 18656.0,
];
/// 5th-order weights b_i (= row 7 of A: the method is FSAL; b_2 = b_7 = 0).
pub const B: [f64; 6] = [
    35.0 / 384.0,
    0.0,
    500.0 / 1113.0,
    125.0 / 192.0,
    -2187.0 / 6784.0,
    11.0 / 84.0,
];
/// Error weights e_i = b_i − b̂_i (e_2 = 0).
pub const E: [f64; 7] = [
    71.0 / 57600.0,
    0.0,
    -71.0 / 16695.0,
    71.0 / 1920.0,
    -17253.0 / 339200.0,
    22.0 / 525.0,
    -1.0 / 40.0,
];
/// Dense-output weights d_i (d_2 = 0) of the 4th-order continuous extension.
pub const D: [f64; 7] = [
    -12715105075.0 / 11282082432.0,
    0.0,
    87487479700.0 / 32700410799.0,
    -10690763975.0 / 1880347072.0,
    701980252875.0 / 199316789632.0,
    -1453857185.0 / 822651844.0,
    69997945.0 / 29380423.0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_to_nodes_and_weights_are_consistent() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-14;
        assert!(close(A21, C[1]));
        assert!(close(A3.iter().sum(), C[2]));
        assert!(close(A4.iter().sum(), C[3]));
        assert!(close(A5.iter().sum(), C[4]));
        assert!(close(A6.iter().sum(), C[5]));
        assert!(close(B.iter().sum(), 1.0));
        assert!(close(E.iter().sum(), 0.0));
    }
}
