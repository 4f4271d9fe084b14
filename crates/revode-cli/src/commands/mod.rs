pub mod grad;
pub mod solve;
