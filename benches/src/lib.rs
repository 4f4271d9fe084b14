//! Shared helpers for the revode benchmarks: the bundled problems and
//! measurements of time and resident memory.

use std::path::PathBuf;
use std::time::Instant;

use revode::Problem;

/// Path of a bundled fixture.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

/// Loads a bundled fixture.
pub fn fixture(name: &str) -> Problem {
    Problem::from_path(&fixture_path(name)).expect("bundled fixture parses")
}

/// A folder removed when dropped.
pub struct TempFolder(pub PathBuf);

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `n`-compartment HH cable problem (fixtures/hh_cable_100.json for
/// n = 100): beuler dt 0.025 over [0, 100] ms, loss the far end's V summed
/// over every step, 0.05 nA into compartment 1 from 5 to 95 ms. Other sizes
/// are written by `python3 models/make_hh_cable.py n` into a temporary
/// folder, which lives as long as the returned guard.
pub fn cable_problem(n: usize) -> (Problem, Option<TempFolder>) {
    if n == 100 {
        return (fixture("hh_cable_100.json"), None);
    }
    let dir = std::env::temp_dir().join(format!("revode-cable-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    let guard = TempFolder(dir.clone());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/make_hh_cable.py");
    let (ode, json) = (dir.join("cable.ode"), dir.join("cable.json"));
    let status = std::process::Command::new("python3")
        .arg(&script)
        .arg(n.to_string())
        .arg("--ode")
        .arg(&ode)
        .arg("--problem")
        .arg(&json)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3 runs models/make_hh_cable.py");
    assert!(status.success(), "make_hh_cable.py {n} failed");
    let problem = Problem::from_path(&json).expect("generated cable problem parses");
    (problem, Some(guard))
}

/// Median wall time in seconds of `repeat` runs of `f` (after one warm-up).
pub fn median_seconds(repeat: usize, mut f: impl FnMut()) -> f64 {
    f();
    median_seconds_after_warmup(repeat, f)
}

fn median_seconds_after_warmup(repeat: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..repeat.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Peak resident set size of this process in bytes (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Minor page faults of this process so far (Linux `/proc/self/stat`, field
/// 10), if known. A count per call that stays above zero after the first
/// calls means memory is being mapped and touched afresh on every call.
pub fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(7)?.parse().ok()
}

/// [`median_seconds`], and the minor page faults per timed call (the warm-up
/// call not counted), if known.
pub fn median_seconds_and_faults(repeat: usize, mut f: impl FnMut()) -> (f64, Option<f64>) {
    f();
    let before = minor_faults();
    let seconds = median_seconds_after_warmup(repeat, f);
    let faults = before
        .zip(minor_faults())
        .map(|(b, a)| (a - b) as f64 / repeat.max(1) as f64);
    (seconds, faults)
}

/// CPU time this thread has run, in seconds (Linux `schedstat`), if known.
/// Unlike wall time it does not grow when other processes share the cores.
pub fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    // 0 where the kernel keeps no scheduler statistics: unknown, not free.
    (ns > 0.0).then_some(ns * 1e-9)
}

/// Median CPU seconds (this thread) of `repeat` runs of `f` (after one warm-up).
pub fn median_cpu_seconds(repeat: usize, mut f: impl FnMut()) -> Option<f64> {
    f();
    let mut times = Vec::with_capacity(repeat.max(1));
    for _ in 0..repeat.max(1) {
        let t = thread_cpu_seconds()?;
        f();
        times.push(thread_cpu_seconds()? - t);
    }
    times.sort_by(f64::total_cmp);
    Some(times[times.len() / 2])
}
