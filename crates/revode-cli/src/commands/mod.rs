pub mod batch;
pub mod check;
pub mod check_model;
pub mod fit;
pub mod grad;
pub mod solve;
pub mod tune;
