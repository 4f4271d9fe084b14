//! Checkpoint stores for reverse sweeps over a chain of states.
//!
//! A *chain* is a sequence of fixed-length states `x_0 → x_1 → … → x_N`,
//! where `x_{k+1} = step_k(x_k)` is deterministic (see [`Chain`]). A reverse
//! sweep visits `x_{N−1}, …, x_0` in that order; the [`Schedule`] decides
//! which states are kept during the forward sweep and which are recomputed
//! from the nearest earlier checkpoint. Every byte the store holds is counted
//! ([`StoreStats::peak_bytes`]) and known before the run
//! ([`Schedule::bytes_needed`]).
//!
//! [`CheckpointStore`] serves chains of known length (fixed steps);
//! [`OnlineStore`] serves chains whose length is found while running
//! (adaptive steps, see [`OpenChain`]).
//!
//! The store is agnostic of what a state is: a fixed-step solver's `u`, or an
//! adaptive solver's `(t, h, u, controller state)`.

pub mod binomial;
mod error;
pub mod memory;
mod online;
mod pool;
mod prefetch;
mod schedule;
pub mod spare;
mod store;

pub use error::CheckpointError;
pub use memory::MemoryLimit;
pub use online::{OnlineStore, OpenChain};
pub use schedule::{Schedule, StateShape};
pub use store::{Chain, CheckpointStore, StoreStats};
