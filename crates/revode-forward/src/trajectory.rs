//! Sampled states of a forward solve: one time per row and one matrix,
//! time × state; and [`SampleRoom`], the memory check made before samples
//! are reserved or grown.

use ndarray::{Array2, ArrayView1};
use revode_checkpoint::memory::{check_within, Available, BadLimit, MemoryLimit, TooLarge};

use crate::ForwardError;

/// `times[r]` is the time of row `r` of `states` (rows: samples, columns:
/// state components).
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    pub times: Vec<f64>,
    pub states: Array2<f64>,
}

impl Trajectory {
    /// An empty trajectory of `n_states` columns with room for `rows` samples.
    pub fn with_capacity(rows: usize, n_states: usize) -> Self {
        let mut states = Array2::zeros((0, n_states));
        states
            .reserve_rows(rows)
            .expect("row capacity fits in memory");
        Trajectory {
            times: Vec::with_capacity(rows),
            states,
        }
    }

    /// Samples `0, s, 2s, …` and the last of `n_steps` steps (`sample_every = s`).
    pub fn rows_for(n_steps: usize, sample_every: usize) -> usize {
        let s = sample_every.max(1);
        1 + n_steps.div_ceil(s)
    }

    /// Bytes of `rows` samples of `n_states` components (times included).
    pub fn bytes(rows: usize, n_states: usize) -> usize {
        rows.saturating_mul(n_states.saturating_add(1))
            .saturating_mul(std::mem::size_of::<f64>())
    }

    pub fn push(&mut self, t: f64, u: &[f64]) {
        self.times.push(t);
        self.states
            .push_row(ArrayView1::from(u))
            .expect("a sample has one value per state");
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// `(t, u)` of each sample in order.
    pub fn iter(&self) -> impl Iterator<Item = (f64, ArrayView1<'_, f64>)> + '_ {
        self.times.iter().copied().zip(self.states.rows())
    }

    /// Samples there is room for without growing.
    pub fn capacity(&self) -> usize {
        self.times.capacity()
    }

    /// Makes room for `rows` samples in all (no-op if there is).
    pub fn reserve_rows(&mut self, rows: usize) {
        let more = rows.saturating_sub(self.len());
        self.times.reserve_exact(more);
        self.states
            .reserve_rows(more)
            .expect("row capacity fits in memory");
    }
}

/// The memory a solve's samples may take, read once per solve: held
/// samples are reserved or grown only after [`SampleRoom::check`] or
/// [`SampleRoom::grow`] says they fit, so a sampling request too large is an
/// error before the memory is touched, not an out-of-memory abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRoom {
    available: Option<Available>,
    row_bytes: usize,
    /// Bytes the run holds besides the samples, counted with them.
    held_beside: usize,
}

/// Rows a growing sample buffer starts with.
const FIRST_ROWS: usize = 64;

impl SampleRoom {
    /// Room under `limit` for rows of `row_bytes` bytes each.
    pub fn new(limit: MemoryLimit, row_bytes: usize) -> Result<Self, BadLimit> {
        Ok(SampleRoom {
            available: limit.available()?,
            row_bytes: row_bytes.max(1),
            held_beside: 0,
        })
    }

    /// The same room for a run that holds `held` bytes besides the samples
    /// (its parameters, an implicit solver's matrices): against a limit
    /// set in code or in `REVODE_MEMORY_LIMIT` they are counted with the
    /// rows; against `MemAvailable` they are not (memory already allocated
    /// is no longer available, so it is counted there already).
    pub fn beside(self, held: usize) -> Self {
        let held_beside = match self.available {
            Some(a) if a.bounds_what_is_held() => held,
            _ => 0,
        };
        SampleRoom {
            held_beside,
            ..self
        }
    }

    /// Bytes counted with the rows ([`SampleRoom::beside`]).
    pub fn held_beside(&self) -> usize {
        self.held_beside
    }

    /// Rows that fit beside what the run holds (`None`: no limit).
    fn rows_available(&self) -> Option<usize> {
        self.available
            .map(|a| a.bytes.saturating_sub(self.held_beside) / self.row_bytes)
    }

    /// Room for [`Trajectory`] rows of `n_states` states.
    pub fn for_trajectory(limit: MemoryLimit, n_states: usize) -> Result<Self, BadLimit> {
        Self::new(limit, Trajectory::bytes(1, n_states))
    }

    /// `Ok` if `rows` rows fit.
    pub fn check(&self, rows: usize) -> Result<(), TooLarge> {
        let needed = rows
            .saturating_mul(self.row_bytes)
            .saturating_add(self.held_beside);
        check_within(self.available, needed)
    }

    /// The row count to grow to when `len` rows are full: twice as many (at
    /// least [`FIRST_ROWS`]), but no more than `max_rows` nor than what fits;
    /// `Err` when not even one more row fits.
    pub fn grow(&self, len: usize, max_rows: usize) -> Result<usize, TooLarge> {
        let wanted = len
            .saturating_mul(2)
            .max(FIRST_ROWS)
            .min(max_rows.max(len + 1));
        let fitting = match self.rows_available() {
            Some(rows) => wanted.min(rows),
            None => wanted,
        };
        if fitting > len {
            Ok(fitting)
        } else {
            Err(self.check(len + 1).expect_err("one more row does not fit"))
        }
    }

    /// The smallest sampling interval whose samples of an `n_steps`-step
    /// solve fit (the first and last sample, and one every `s` steps).
    pub fn fitting_interval(&self, n_steps: usize) -> Option<usize> {
        let Some(rows) = self.rows_available() else {
            return Some(1);
        };
        let between = rows.checked_sub(2).filter(|&r| r > 0)?;
        let fits = |s: usize| self.check(Trajectory::rows_for(n_steps, s)).is_ok();
        // Fits by construction; a smaller one may too (the last sample is
        // extra only when s does not divide the step count).
        let mut s = n_steps.div_ceil(between).max(1);
        while s > 1 && fits(s - 1) {
            s -= 1;
        }
        fits(s).then_some(s)
    }
}

/// The observer of an adaptive solve that keeps every sample it is handed
/// in `samples`, growing them geometrically (at most to the rows of
/// `max_steps` accepted steps sampled every `every`) only after `room` says
/// the growth fits; with no room (no sampling asked) it just pushes.
pub fn growing_sampler(
    samples: &mut Trajectory,
    room: Option<SampleRoom>,
    max_steps: usize,
    every: usize,
) -> impl FnMut(f64, &[f64]) -> Result<(), ForwardError> + '_ {
    // u_0, every s-th of at most max_steps accepted steps, and the last.
    let max_rows = Trajectory::rows_for(max_steps, every);
    move |t, u| {
        if let (Some(room), true) = (room, samples.len() == samples.capacity()) {
            let rows = room.grow(samples.len(), max_rows).map_err(|too_large| {
                ForwardError::SamplesOutgrewMemory {
                    every,
                    rows: samples.len(),
                    t,
                    held_beside: room.held_beside(),
                    too_large,
                }
            })?;
            samples.reserve_rows(rows);
        }
        samples.push(t, u);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use revode_checkpoint::memory::LimitSource;

    #[test]
    fn rows_count_the_start_every_s_th_step_and_the_end() {
        assert_eq!(Trajectory::rows_for(10, 1), 11);
        assert_eq!(Trajectory::rows_for(10, 5), 3);
        assert_eq!(Trajectory::rows_for(10, 3), 5); // 0 3 6 9 10
        assert_eq!(Trajectory::rows_for(10, 100), 2);
        assert_eq!(Trajectory::rows_for(0, 1), 1);
    }

    #[test]
    fn pushed_rows_come_back_in_order() {
        let mut tr = Trajectory::with_capacity(2, 3);
        tr.push(0.0, &[1.0, 2.0, 3.0]);
        tr.push(0.5, &[4.0, 5.0, 6.0]);
        assert_eq!(tr.states.shape(), &[2, 3]);
        let rows: Vec<(f64, Vec<f64>)> = tr.iter().map(|(t, u)| (t, u.to_vec())).collect();
        assert_eq!(
            rows,
            vec![(0.0, vec![1.0, 2.0, 3.0]), (0.5, vec![4.0, 5.0, 6.0])]
        );
        assert_eq!(Trajectory::bytes(2, 3), 64);
    }

    #[test]
    fn room_grows_geometrically_up_to_what_fits() {
        let row = Trajectory::bytes(1, 4); // 40 bytes
        let room = SampleRoom::for_trajectory(MemoryLimit::Bytes(1000 * row), 4).unwrap();
        assert_eq!(room.grow(0, usize::MAX), Ok(64));
        assert_eq!(room.grow(64, usize::MAX), Ok(128));
        assert_eq!(room.grow(512, usize::MAX), Ok(1000), "capped at what fits");
        assert_eq!(room.grow(100, 150), Ok(150), "capped at the most needed");
        let e = room.grow(1000, usize::MAX).unwrap_err();
        assert_eq!((e.needed, e.available), (1001 * row, 1000 * row));
        let free = SampleRoom::for_trajectory(MemoryLimit::Unlimited, 4).unwrap();
        assert_eq!(free.grow(1 << 40, usize::MAX), Ok(1 << 41));
    }

    #[test]
    fn rows_share_a_set_limit_with_what_the_run_holds_beside_them() {
        let row = Trajectory::bytes(1, 4);
        let room = SampleRoom::for_trajectory(MemoryLimit::Bytes(1000 * row), 4)
            .unwrap()
            .beside(400 * row);
        assert_eq!(room.held_beside(), 400 * row);
        assert!(room.check(600).is_ok());
        let e = room.check(601).unwrap_err();
        assert_eq!((e.needed, e.available), (1001 * row, 1000 * row));
        assert_eq!(
            room.grow(512, usize::MAX),
            Ok(600),
            "capped at what fits beside"
        );
        assert!(room.grow(600, usize::MAX).is_err());
        let s = room.fitting_interval(10_000).unwrap();
        assert!(room.check(Trajectory::rows_for(10_000, s)).is_ok());
        assert!(room.check(Trajectory::rows_for(10_000, s - 1)).is_err());
        // Against MemAvailable what the run holds is already taken.
        let system = SampleRoom {
            available: Some(Available {
                bytes: 1000 * row,
                source: LimitSource::System,
            }),
            row_bytes: row,
            held_beside: 0,
        };
        assert_eq!(system.beside(400 * row).held_beside(), 0);
        assert!(system.beside(400 * row).check(1000).is_ok());
    }

    #[test]
    fn the_fitting_interval_is_the_smallest_that_fits() {
        let row = Trajectory::bytes(1, 4);
        let room = SampleRoom::for_trajectory(MemoryLimit::Bytes(1 << 20), 4).unwrap();
        let n = 1_000_000_000;
        let s = room.fitting_interval(n).unwrap();
        assert!(room.check(Trajectory::rows_for(n, s)).is_ok());
        assert!(room.check(Trajectory::rows_for(n, s - 1)).is_err());
        let tiny = SampleRoom::for_trajectory(MemoryLimit::Bytes(2 * row), 4).unwrap();
        assert_eq!(tiny.fitting_interval(n), None);
    }
}
