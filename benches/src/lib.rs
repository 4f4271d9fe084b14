//! Shared helpers for the revode benchmarks.
