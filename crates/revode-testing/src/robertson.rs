//! Robertson's kinetics, the classic stiff test: y1' = −k1 y1 + k3 y2 y3,
//! y2' = k1 y1 − k2 y2² − k3 y2 y3, y3' = k2 y2², with its state Jacobian
//! given sparse, dense, or not at all (then assembled from VJPs), as a test
//! needs it.

use revode_model::{Dims, Model, SparsityPattern};

/// How [`Robertson`] offers its Jacobian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JacobianKind {
    /// The 7 structural nonzeros.
    Sparse,
    /// All 9 entries, zeros included.
    Dense,
    /// None: implicit steppers assemble it from 3 VJPs.
    Assembled,
}

/// Robertson's kinetics, parameters (k1, k2, k3) = (0.04, 3e7, 1e4).
#[derive(Debug, Clone, Copy)]
pub struct Robertson {
    pub jacobian: JacobianKind,
}

impl Robertson {
    pub const SPARSE: Robertson = Robertson {
        jacobian: JacobianKind::Sparse,
    };
    pub const DENSE: Robertson = Robertson {
        jacobian: JacobianKind::Dense,
    };
    pub const ASSEMBLED: Robertson = Robertson {
        jacobian: JacobianKind::Assembled,
    };
}

impl Model for Robertson {
    type Work = ();
    fn name(&self) -> &str {
        "robertson"
    }
    fn dims(&self) -> Dims {
        Dims {
            n_states: 3,
            n_params: 3,
        }
    }
    fn state_names(&self) -> Vec<String> {
        vec!["y1".into(), "y2".into(), "y3".into()]
    }
    fn param_names(&self) -> Vec<String> {
        vec!["k1".into(), "k2".into(), "k3".into()]
    }
    fn default_u0(&self) -> Vec<f64> {
        vec![1.0, 0.0, 0.0]
    }
    fn default_params(&self) -> Vec<f64> {
        vec![0.04, 3e7, 1e4]
    }
    fn new_work(&self) {}
    fn rhs(&self, _t: f64, u: &[f64], p: &[f64], du: &mut [f64], _w: &mut ()) {
        let a = p[0] * u[0];
        let b = p[1] * u[1] * u[1];
        let c = p[2] * u[1] * u[2];
        du[0] = -a + c;
        du[1] = a - b - c;
        du[2] = b;
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
        // J = [[-k1, k3 y3, k3 y2], [k1, -2 k2 y2 - k3 y3, -k3 y2], [0, 2 k2 y2, 0]]
        out[0] = p[0] * (l[1] - l[0]);
        out[1] = p[2] * u[2] * (l[0] - l[1]) + 2.0 * p[1] * u[1] * (l[2] - l[1]);
        out[2] = p[2] * u[1] * (l[0] - l[1]);
        acc[0] += alpha * u[0] * (l[1] - l[0]);
        acc[1] += alpha * u[1] * u[1] * (l[2] - l[1]);
        acc[2] += alpha * u[1] * u[2] * (l[0] - l[1]);
    }
    fn jacobian_pattern(&self) -> Option<SparsityPattern> {
        match self.jacobian {
            // ∂f3/∂y1 and ∂f3/∂y3 are structurally zero.
            JacobianKind::Sparse => Some(SparsityPattern::from_entries(
                3,
                [(0, 0), (1, 0), (0, 1), (1, 1), (2, 1), (0, 2), (1, 2)],
            )),
            JacobianKind::Dense => Some(SparsityPattern::dense(3)),
            JacobianKind::Assembled => None,
        }
    }
    fn jacobian(&self, _t: f64, u: &[f64], p: &[f64], v: &mut [f64], _w: &mut ()) {
        // Column-major: column 0 (0,0) (1,0) [(2,0)], column 1 (0,1) (1,1)
        // (2,1), column 2 (0,2) (1,2) [(2,2)]; brackets: dense only.
        let columns = [
            [-p[0], p[0], 0.0],
            [
                p[2] * u[2],
                -2.0 * p[1] * u[1] - p[2] * u[2],
                2.0 * p[1] * u[1],
            ],
            [p[2] * u[1], -p[2] * u[1], 0.0],
        ];
        match self.jacobian {
            JacobianKind::Sparse => {
                v[..2].copy_from_slice(&columns[0][..2]);
                v[2..5].copy_from_slice(&columns[1]);
                v[5..7].copy_from_slice(&columns[2][..2]);
            }
            JacobianKind::Dense => {
                for (chunk, column) in v.chunks_exact_mut(3).zip(&columns) {
                    chunk.copy_from_slice(column);
                }
            }
            JacobianKind::Assembled => v.fill(f64::NAN),
        }
    }
}
