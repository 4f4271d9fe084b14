//! When a model's programs become native code: at load if they are small,
//! else on a background thread while the interpreter runs them (tiered
//! compilation).
//!
//! Cranelift costs about 10⁴ host instructions per instruction it compiles
//! (crate::jit), a few seconds for a model of 10⁴ states. Loading such a
//! model must not wait for that, and the interpreter computes bitwise the
//! same values as the native code (tests/backends.rs), so a large model
//! starts on the interpreter and switches to native code the moment it is
//! ready, in the middle of a solve if need be: results do not depend on
//! when that happens, only speed does. Programs of up to [`SYNC_LIMIT`]
//! estimated Cranelift instructions (~0.05 s of compiling; every shipped
//! model) are compiled at load, as before. Background compiles inline `exp`
//! up to [`INLINE_EXP_LIMIT`] and call it beyond ([`ExpCode::Call`]: a
//! third of the compile time). A call costs no more host instructions, but
//! it spills every live float register (all are caller-saved): inlined,
//! the 100- and 300-compartment cables' beuler forward solves take 13 % and
//! 11 % less time; at 1 000 compartments the inlined code outgrows the
//! caches and is 8 % slower (docs/stiff.md).

use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use crate::jit::{compile, native_size, ExpCode, JitCode};
use crate::program::Program;

/// Largest estimated size ([`native_size`]) compiled at load.
pub const SYNC_LIMIT: usize = 20_000;

/// Largest estimated size compiled with `exp` inlined (the 300-compartment
/// cable's right-hand side is 250 000, the 1 000-compartment one's 830 000).
pub const INLINE_EXP_LIMIT: usize = 400_000;

/// Native code for a list of programs: ready, failed (host not supported:
/// the interpreter runs), or still compiling.
#[derive(Debug, Clone)]
pub struct Native {
    /// Set once: `Some` when compiled, `None` when compiling failed.
    code: Arc<OnceLock<Option<JitCode>>>,
    worker: Arc<Mutex<Option<JoinHandle<()>>>>,
    /// The scratch any of the programs' code may need (so a work made while
    /// compiling is ready for the code).
    scratch_bound: usize,
}

impl Native {
    /// Compiles `programs` now if they are small, else starts compiling
    /// them on a background thread (if a thread cannot be started, the
    /// interpreter keeps running them).
    pub fn start(programs: Vec<Program>) -> Native {
        let size: usize = programs.iter().map(native_size).sum();
        let scratch_bound = programs.iter().map(Program::n_registers).max().unwrap_or(0);
        let code = Arc::new(OnceLock::new());
        let compile_all = |programs: &[Program], exp_code| {
            let refs: Vec<&Program> = programs.iter().collect();
            compile(&refs, exp_code).ok()
        };
        let mut worker = None;
        if size <= SYNC_LIMIT {
            let _ = code.set(compile_all(&programs, ExpCode::Inline));
        } else {
            let target = Arc::clone(&code);
            let exp_code = if size <= INLINE_EXP_LIMIT {
                ExpCode::Inline
            } else {
                ExpCode::Call
            };
            let spawned = std::thread::Builder::new()
                .name("revode-jit".into())
                .spawn(move || {
                    let _ = target.set(compile_all(&programs, exp_code));
                });
            match spawned {
                Ok(handle) => worker = Some(handle),
                Err(_) => {
                    let _ = code.set(None);
                }
            }
        }
        Native {
            code,
            worker: Arc::new(Mutex::new(worker)),
            scratch_bound,
        }
    }

    /// The native code, if it is ready.
    #[inline]
    pub fn get(&self) -> Option<&JitCode> {
        self.code.get().and_then(Option::as_ref)
    }

    /// Still compiling.
    pub fn pending(&self) -> bool {
        self.code.get().is_none()
    }

    /// Scratch the code needs: exactly once compiled, a bound before.
    pub fn scratch_len(&self, programs: std::ops::Range<usize>) -> usize {
        match self.code.get() {
            Some(Some(code)) => programs.map(|k| code.scratch_len(k)).max().unwrap_or(0),
            Some(None) => 0,
            None => self.scratch_bound,
        }
    }

    /// Blocks until compiling has finished (successfully or not).
    pub fn wait(&self) {
        // Joined under the lock: a second waiter finds the handle gone only
        // once the code is set.
        let mut worker = self.worker.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = worker.take() {
            if handle.join().is_err() {
                // a panic in Cranelift: the interpreter keeps running
                let _ = self.code.set(None);
            }
        }
    }
}
