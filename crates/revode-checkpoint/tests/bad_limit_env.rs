//! A malformed `REVODE_MEMORY_LIMIT` is an error of every store that reads
//! it, naming the variable and the accepted forms; it is never ignored.
//! (One test in this binary: it sets the variable for the process.)

use revode_checkpoint::memory::{BadLimit, MemoryLimit, LIMIT_ENV};
use revode_checkpoint::{CheckpointError, CheckpointStore, OnlineStore, Schedule};

#[test]
fn a_malformed_limit_in_the_environment_is_an_error() {
    std::env::set_var(LIMIT_ENV, "plenty");
    let bad = CheckpointError::BadMemoryLimit(BadLimit {
        value: "plenty".into(),
    });
    assert_eq!(
        CheckpointStore::new(Schedule::All, 100, 4).err(),
        Some(bad.clone())
    );
    assert_eq!(
        OnlineStore::new(Schedule::All, 4, 100).err(),
        Some(bad.clone())
    );
    let text = bad.to_string();
    assert!(
        text.starts_with("REVODE_MEMORY_LIMIT = \"plenty\" is not a memory limit"),
        "{text}"
    );
    // A limit given in code does not read the variable.
    assert!(
        CheckpointStore::with_memory_limit(Schedule::All, 100, 4, MemoryLimit::Bytes(1 << 20))
            .is_ok()
    );
    // Empty reads as not set; a valid value is used.
    std::env::set_var(LIMIT_ENV, "  ");
    assert!(CheckpointStore::new(Schedule::All, 100, 4).is_ok());
    std::env::set_var(LIMIT_ENV, "100B");
    assert!(matches!(
        CheckpointStore::new(Schedule::All, 100, 4),
        Err(CheckpointError::OutOfMemory { .. })
    ));
    std::env::remove_var(LIMIT_ENV);
}
