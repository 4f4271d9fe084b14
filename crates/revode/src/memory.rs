//! Memory checks of the allocations that grow with the input besides the
//! checkpoint store (which checks itself, see [`revode_checkpoint::memory`]):
//! a sampled trajectory, and a model's parameter-sized buffers.

use revode_checkpoint::memory::{MemoryLimit, TooLarge};
use revode_forward::Trajectory;
use revode_model::Dims;

use crate::Error;

/// Bytes a gradient run holds per model parameter, about: the parameter
/// vector and its default, the gradient, the model's deferred gradient sums
/// in the forward and backward scratch (`hh_network`: one per `W` entry in
/// each), and the parameter's name.
pub const BYTES_PER_PARAM: usize = 5 * std::mem::size_of::<f64>() + 40;

/// `Ok` if a run of a model with these dimensions fits.
pub fn check_model(limit: MemoryLimit, model: &str, dims: Dims) -> Result<(), Error> {
    let needed = dims.n_params.saturating_mul(BYTES_PER_PARAM);
    limit.check(needed).map_err(|too_large| Error::OutOfMemory {
        what: format!("model {model} with {} parameters", dims.n_params),
        too_large,
        advice: "use a smaller model".to_string(),
    })
}

/// `Ok` if `rows` samples of `n_states` fit; `n_steps` steps (at most, for
/// an adaptive solve) are sampled every `sample_every`-th.
pub fn check_trajectory(
    limit: MemoryLimit,
    n_steps: usize,
    sample_every: usize,
    n_states: usize,
    adaptive: bool,
) -> Result<(), Error> {
    let rows = Trajectory::rows_for(n_steps, sample_every);
    let needed = Trajectory::bytes(rows, n_states);
    limit.check(needed).map_err(|too_large| Error::OutOfMemory {
        what: format!(
            "sampling every {sample_every} of {}{n_steps} steps keeps {rows} states",
            if adaptive { "at most " } else { "" }
        ),
        advice: fitting_interval(&too_large, n_steps, n_states)
            .map_or("no sampling fits".to_string(), |s| {
                format!("sampling every {s} steps fits")
            }),
        too_large,
    })
}

/// The smallest sampling interval whose trajectory fits.
fn fitting_interval(too_large: &TooLarge, n_steps: usize, n_states: usize) -> Option<usize> {
    let rows = too_large.available / Trajectory::bytes(1, n_states);
    // The first and last samples, and n_steps / s between them.
    let between = rows.checked_sub(2).filter(|&r| r > 0)?;
    let fits = |s: usize| {
        Trajectory::bytes(Trajectory::rows_for(n_steps, s), n_states) <= too_large.available
    };
    // Fits by construction; a smaller one may too (the last sample is
    // extra only when s does not divide the step count).
    let mut s = n_steps.div_ceil(between).max(1);
    while s > 1 && fits(s - 1) {
        s -= 1;
    }
    fits(s).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trajectory_too_large_suggests_an_interval_that_fits() {
        let limit = MemoryLimit::Bytes(1 << 20);
        assert!(check_trajectory(limit, 1000, 1, 4, false).is_ok());
        let e = check_trajectory(limit, 1_000_000_000, 1, 4, false).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(
                "sampling every 1 of 1000000000 steps keeps 1000000001 states: 40000000040 bytes"
            ),
            "{text}"
        );
        let Error::OutOfMemory { advice, .. } = &e else {
            panic!("{e:?}")
        };
        let s: usize = advice
            .strip_prefix("sampling every ")
            .and_then(|r| r.strip_suffix(" steps fits"))
            .unwrap()
            .parse()
            .unwrap();
        assert!(check_trajectory(limit, 1_000_000_000, s, 4, false).is_ok());
        assert!(check_trajectory(limit, 1_000_000_000, s - 1, 4, false).is_err());
        assert_eq!(e.exit_code(), 2);
        let tiny = MemoryLimit::Bytes(50);
        let e = check_trajectory(tiny, 1000, 1, 4, true).unwrap_err();
        assert!(e.to_string().ends_with("no sampling fits"), "{e}");
    }

    #[test]
    fn a_model_too_large_is_refused() {
        let dims = Dims {
            n_states: 4 * 4096,
            n_params: 3 * 4096 + 4096 * 4096,
        };
        let e = check_model(MemoryLimit::Bytes(1 << 30), "hh_network", dims).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("model hh_network with 16789504 parameters: "),
            "{e}"
        );
        assert!(check_model(MemoryLimit::Bytes(1 << 31), "hh_network", dims).is_ok());
    }
}
