//! Test support for revode, used only as a dev-dependency (and by the
//! `revode-test-cli` binary): nothing here is ever part of the `revode`
//! library's problem format or of the `revode` binary.
//!
//! * [`HhBrokenVjp`]: Hodgkin–Huxley with a deliberately wrong parameter
//!   VJP, so that tests can see the gradient checks fail;
//! * [`alloc`]: a counting global allocator for the no-allocation tests;
//! * [`VjpOnly`]: a model with its own Jacobian hidden;
//! * [`Robertson`]: Robertson's stiff kinetics, Jacobian sparse, dense or
//!   assembled.

pub mod alloc;
mod broken;
mod robertson;
mod vjp_only;

pub use broken::HhBrokenVjp;
pub use robertson::{JacobianKind, Robertson};
pub use vjp_only::VjpOnly;
