//! XPPAUT-style `.ode` model files for revode.
//!
//! [`OdeModel::from_file`] reads a documented subset of XPPAUT's syntax
//! (docs/model-files.md), builds one hash-consed expression DAG for the
//! right-hand side, differentiates it symbolically in reverse mode, and
//! compiles two straight-line register programs: `rhs` and `vjp`, run as
//! native code through Cranelift ([`Backend::Jit`], the default) or by the
//! register interpreter they are tested against ([`Backend::Interpreter`]).
//! Per call: no allocation, no tape, and a cost independent of the number
//! of parameters. Removable singularities like `a·x/(exp(x/k) − 1)` are
//! recognised and evaluated through a series near 0 ([`singular`]).
//!
//! ```
//! use revode_model::Model;
//! use revode_ode::OdeModel;
//!
//! let m = OdeModel::from_str("par k=2\ninit x=1\nx' = -k*x\n").unwrap();
//! let mut du = [0.0];
//! let mut work = m.new_work();
//! m.rhs(0.0, &[3.0], &[2.0], &mut du, &mut work);
//! assert_eq!(du, [-6.0]);
//! ```

mod ast;
mod build;
mod compiled_jacobian;
pub mod dag;
mod diff;
mod error;
mod events;
mod exp_share;
mod expr_parser;
pub mod jacobian;
mod jit;
mod lexer;
mod lowering;
mod model;
mod native;
mod parser;
mod profile;
pub mod program;
pub mod singular;
pub mod synthetic;

pub use compiled_jacobian::JacobianProfile;
pub use error::OdeError;
pub use model::{Backend, JacobianStats, OdeModel, OdeWork, ProgramStats};
pub use profile::LoadProfile;
