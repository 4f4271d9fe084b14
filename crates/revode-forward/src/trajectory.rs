//! Sampled states of a forward solve: one time per row and one matrix,
//! time × state.

use ndarray::{Array2, ArrayView1};

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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
