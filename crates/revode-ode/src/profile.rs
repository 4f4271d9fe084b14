//! Where the time of loading a model file goes, stage by stage.

use std::time::Duration;

use crate::dag::SingularStats;
use crate::JacobianProfile;

/// Stage times of one load ([`crate::OdeModel::from_str_profiled`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadProfile {
    /// Text to statements.
    pub parse: Duration,
    /// Statements to the DAG (names resolved, functions inlined,
    /// constants folded, singular quotients rewritten).
    pub lower: Duration,
    /// The removable-singularity rewrite, part of `lower`.
    pub singular: SingularStats,
    /// Symbolic reverse mode (the vjp's adjoints).
    pub differentiate: Duration,
    /// The rhs, vjp and aux register programs.
    pub programs: Duration,
    /// Cranelift: rhs and vjp to native code (or starting that in the
    /// background, see `jit_in_background`).
    pub jit: Duration,
    /// The native code is being compiled on a background thread
    /// (crate::native) while the interpreter runs.
    pub jit_in_background: bool,
    /// From the end of the load until that native code was ready (0 when
    /// compiled at load).
    pub native_wait: Duration,
    /// DAG nodes after lowering and after differentiation.
    pub lowered_nodes: usize,
    pub dag_nodes: usize,
    /// Instructions of the rhs and vjp programs.
    pub instructions: usize,
    /// Deriving and compiling the Jacobian (on first use, not at load),
    /// after the rhs and vjp's native code was ready.
    pub jacobian: JacobianProfile,
    pub jacobian_nnz: usize,
    pub jacobian_instructions: usize,
}

impl LoadProfile {
    /// Everything done at load (the singular rewrite is inside `lower`;
    /// the Jacobian is not, it is derived on first use).
    pub fn total(&self) -> Duration {
        self.parse + self.lower + self.differentiate + self.programs + self.jit
    }

    /// Deriving and compiling the Jacobian.
    pub fn jacobian_total(&self) -> Duration {
        self.jacobian.differentiate + self.jacobian.program + self.jacobian.jit
    }

    /// The header of [`LoadProfile::table_row`]'s Markdown table.
    pub const TABLE_HEADER: &'static str = "| model | size | DAG nodes | parse | lower (singular) | differentiate | programs | JIT | **load** | native after | J nnz | J derive | J program | J JIT | **J total** | J native after |\n\
        |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

    /// One Markdown table row, times in milliseconds. "native after": how
    /// long after the load (or the Jacobian's derivation) the native code
    /// compiled in the background was ready; "—" when it was compiled
    /// during the load.
    pub fn table_row(&self, model: &str, size: &str) -> String {
        let after = |background: bool, wait: Duration| {
            if background {
                format!("{:.1}", ms(wait))
            } else {
                "—".to_string()
            }
        };
        format!(
            "| {model} | {size} | {} → {} | {:.1} | {:.1} ({:.1}) | {:.1} | {:.1} | {:.1} | **{:.1}** | {} | {} | {:.1} | {:.1} | {:.1} | **{:.1}** | {} |",
            self.lowered_nodes,
            self.dag_nodes,
            ms(self.parse),
            ms(self.lower),
            ms(self.singular.time),
            ms(self.differentiate),
            ms(self.programs),
            ms(self.jit),
            ms(self.total()),
            after(self.jit_in_background, self.native_wait),
            self.jacobian_nnz,
            ms(self.jacobian.differentiate),
            ms(self.jacobian.program),
            ms(self.jacobian.jit),
            ms(self.jacobian_total()),
            after(self.jacobian.jit_in_background, self.jacobian.native_wait),
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
