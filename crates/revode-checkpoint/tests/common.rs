//! A reference chain for the store tests.
#![allow(dead_code)]

use revode_checkpoint::{Chain, CheckpointError, OpenChain};

/// x_{k+1} = (3 x_k + k mod p, k + 1, …): component 1 is the state number,
/// so a visited state proves which state it is; the rest make states differ
/// to the last bit.
pub struct Affine {
    pub len: usize,
    pub advances: usize,
    /// `is_last` is true at this state number.
    pub end: usize,
}

#[derive(Debug, PartialEq)]
pub enum TestError {
    Store(CheckpointError),
}

impl From<CheckpointError> for TestError {
    fn from(e: CheckpointError) -> Self {
        TestError::Store(e)
    }
}

impl Affine {
    pub fn new(len: usize, end: usize) -> Self {
        assert!(len >= 2);
        Affine {
            len,
            advances: 0,
            end,
        }
    }

    pub fn x0(&self) -> Vec<f64> {
        (0..self.len)
            .map(|i| if i == 1 { 0.0 } else { 1.0 + i as f64 / 7.0 })
            .collect()
    }

    pub fn step(k: usize, x: &[f64], next: &mut [f64]) {
        next[0] = (3.0 * x[0] + k as f64) % 1_000_003.0;
        next[1] = x[1] + 1.0;
        for i in 2..x.len() {
            next[i] = (x[i] * 1.000_1).sin() + x[i - 1] * 1e-3;
        }
    }

    /// x_0 … x_n computed directly.
    pub fn reference(&self, n: usize) -> Vec<Vec<f64>> {
        let mut xs = vec![self.x0()];
        for k in 0..n {
            let mut next = vec![0.0; self.len];
            Self::step(k, &xs[k], &mut next);
            xs.push(next);
        }
        xs
    }
}

impl Chain for Affine {
    type Error = TestError;
    fn state_len(&self) -> usize {
        self.len
    }
    fn advance(&mut self, k: usize, x: &[f64], next: &mut [f64]) -> Result<(), TestError> {
        assert_eq!(x[1], k as f64, "advance({k}) was handed state {}", x[1]);
        self.advances += 1;
        Self::step(k, x, next);
        Ok(())
    }
}

impl OpenChain for Affine {
    fn is_last(&self, k: usize, x: &[f64]) -> bool {
        assert_eq!(x[1], k as f64);
        k == self.end
    }
}
