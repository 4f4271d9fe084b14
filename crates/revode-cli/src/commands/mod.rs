pub mod check;
pub mod grad;
pub mod solve;
pub mod tune;
