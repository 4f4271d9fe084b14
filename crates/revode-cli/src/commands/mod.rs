pub mod batch;
pub mod check;
pub mod grad;
pub mod solve;
