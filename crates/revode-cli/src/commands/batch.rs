//! `revode grad --batch FILE`: one JSON line per member, in input order.

use std::path::Path;
use std::process::ExitCode;

use revode::batch::{fitting_concurrency, gradients_of_members, read_batch, Parallelism};
use revode::Error;
use serde_json::json;

use crate::output::fmt_bytes;

/// Exit code when the batch ran but some members failed.
pub const SOME_MEMBERS_FAILED: u8 = 4;

pub fn run(path: &Path, threads: Option<u64>) -> Result<ExitCode, Error> {
    let members = read_batch(path)?;
    let parallelism = threads.map_or(Parallelism::AllCores, |t| Parallelism::Threads(t as usize));
    // Members run side by side: no more at once than fit in memory together.
    let c = fitting_concurrency(&members, parallelism)?;
    if let (true, Some(a)) = (c.threads < c.requested, c.available) {
        eprintln!(
            "note: running {} member{} at a time instead of {}: the {} largest need up to {} \
             together, but {} are available ({})",
            c.threads,
            if c.threads == 1 { "" } else { "s" },
            c.requested,
            c.requested,
            fmt_bytes(c.requested_bytes),
            fmt_bytes(a.bytes),
            a.source
        );
    }
    let results = gradients_of_members(members, c.parallelism())?;
    let mut failed = 0;
    for (index, result) in results.iter().enumerate() {
        let line = match result {
            Ok(report) => json!({ "index": index, "ok": true, "result": report }),
            Err(e) => {
                failed += 1;
                json!({ "index": index, "ok": false, "error": e.to_string(), "exit_code": e.exit_code() })
            }
        };
        outln!("{line}");
    }
    if failed > 0 {
        eprintln!("error: {failed} of {} batch members failed", results.len());
        return Ok(ExitCode::from(SOME_MEMBERS_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}
