//! Memory checked before it is allocated.
//!
//! An allocation that grows with the input (a checkpoint store, a sampled
//! trajectory, a large model) is compared with the memory available before
//! it is made, so that too large a request is a one-line error naming the
//! bytes needed instead of an out-of-memory abort midway through a run.
//!
//! The memory available is, in this order:
//! 1. the limit given in code ([`MemoryLimit::Bytes`], [`MemoryLimit::Unlimited`]);
//! 2. the environment variable [`LIMIT_ENV`] (`REVODE_MEMORY_LIMIT`): a byte
//!    count, optionally with a unit (`512MiB`, `2GB`), or `unlimited`; any
//!    other value is an error ([`BadLimit`]), never silently ignored (set
//!    but empty counts as not set);
//! 3. Linux's `MemAvailable` (`/proc/meminfo`) less [`SYSTEM_MARGIN_PERCENT`]
//!    percent, kept for everything else the process and the system need;
//! 4. no limit, where none of these is known.
//!
//! `MemAvailable` is not read for requests under [`SYSTEM_CHECK_FLOOR`]
//! (reading it costs more than such a request could matter), nor for memory
//! the process already holds ([`MemoryLimit::check_held`]); a limit given in
//! code or in the environment applies to every request.

use std::fmt;

/// The environment variable that caps (or lifts) the memory a run may ask for.
pub const LIMIT_ENV: &str = "REVODE_MEMORY_LIMIT";

/// Share of `MemAvailable` left for everything but the checked allocations.
pub const SYSTEM_MARGIN_PERCENT: usize = 10;

/// Requests smaller than this are not compared with `MemAvailable`.
pub const SYSTEM_CHECK_FLOOR: usize = 1 << 20;

/// How much memory the checked allocations may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemoryLimit {
    /// From the environment or the system (see the module documentation).
    #[default]
    FromSystem,
    /// At most this many bytes.
    Bytes(usize),
    /// No check.
    Unlimited,
}

/// The memory available and where the figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Available {
    pub bytes: usize,
    pub source: LimitSource,
}

impl Available {
    /// Whether memory the run already holds counts against this figure: a
    /// limit set in code or in [`LIMIT_ENV`] bounds all the run holds, so
    /// what it holds besides a request is added to it; `MemAvailable` has
    /// already taken it off.
    pub fn bounds_what_is_held(&self) -> bool {
        self.source != LimitSource::System
    }
}

/// Where an [`Available`] figure comes from (named in error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitSource {
    /// Set in code.
    Given,
    /// [`LIMIT_ENV`].
    Environment,
    /// `MemAvailable` less the margin.
    System,
}

impl fmt::Display for LimitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitSource::Given => write!(f, "the given memory limit"),
            LimitSource::Environment => write!(f, "{LIMIT_ENV}"),
            LimitSource::System => write!(
                f,
                "MemAvailable less {SYSTEM_MARGIN_PERCENT} %; set {LIMIT_ENV} to change"
            ),
        }
    }
}

/// [`LIMIT_ENV`] holds something that is not a memory limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLimit {
    /// The value as set (lossily decoded if it was not UTF-8).
    pub value: String,
}

/// The forms [`parse_limit`] accepts, for messages.
pub const LIMIT_FORMS: &str = "a byte count with an optional unit (B, kB, MB, GB, TB, KiB, \
     MiB, GiB, TiB), e.g. 512MiB or 2GB, or \"unlimited\"";

impl fmt::Display for BadLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{LIMIT_ENV} = {:?} is not a memory limit: use {LIMIT_FORMS}",
            self.value
        )
    }
}

impl std::error::Error for BadLimit {}

impl MemoryLimit {
    /// The bytes available under this limit, or `None` for no limit; a
    /// malformed [`LIMIT_ENV`] is an error (it must neither lift the check
    /// nor be replaced by a guess).
    pub fn available(&self) -> Result<Option<Available>, BadLimit> {
        match *self {
            MemoryLimit::Bytes(bytes) => Ok(Some(Available {
                bytes,
                source: LimitSource::Given,
            })),
            MemoryLimit::Unlimited => Ok(None),
            MemoryLimit::FromSystem => Ok(environment_limit()?.unwrap_or_else(system_available)),
        }
    }
}

/// The limit [`LIMIT_ENV`] sets: `None` when it is unset or empty,
/// `Some(None)` for `unlimited`; a malformed value is an error.
fn environment_limit() -> Result<Option<Option<Available>>, BadLimit> {
    let Some(os) = std::env::var_os(LIMIT_ENV) else {
        return Ok(None);
    };
    let text = os.to_string_lossy();
    // Set but empty (`REVODE_MEMORY_LIMIT= cmd`) reads as not set.
    if text.trim().is_empty() {
        return Ok(None);
    }
    match parse_limit(&text) {
        Some(limit) => Ok(Some(limit.map(|bytes| Available {
            bytes,
            source: LimitSource::Environment,
        }))),
        None => Err(BadLimit {
            value: text.into_owned(),
        }),
    }
}

/// `MemAvailable` less the margin, if the system says.
fn system_available() -> Option<Available> {
    // Into a buffer on the stack: a check allocates nothing (and so does not
    // change the allocation counts of the runs it guards).
    use std::io::Read;
    let mut file = std::fs::File::open("/proc/meminfo").ok()?;
    let mut buf = [0u8; 8192];
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    // `MemAvailable` is near the top; a cut last line cannot be it.
    let meminfo = std::str::from_utf8(&buf[..len]).ok()?;
    let kib = mem_available_kib(meminfo)?;
    let bytes = kib.saturating_mul(1024);
    Some(Available {
        bytes: bytes / 100 * (100 - SYSTEM_MARGIN_PERCENT),
        source: LimitSource::System,
    })
}

/// The `MemAvailable:` line of `/proc/meminfo`, in KiB.
fn mem_available_kib(meminfo: &str) -> Option<usize> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `Some(Some(bytes))`, `Some(None)` for `unlimited`, `None` if malformed.
pub fn parse_limit(text: &str) -> Option<Option<usize>> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("unlimited") {
        return Some(None);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let value: f64 = number.parse().ok()?;
    let bytes = (value * factor).floor();
    (bytes.is_finite() && bytes >= 0.0 && bytes <= usize::MAX as f64)
        .then_some(Some(bytes as usize))
}

/// A request for more memory than is available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    /// Bytes the allocation needs.
    pub needed: usize,
    /// Bytes available.
    pub available: usize,
    pub source: LimitSource,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes ({}) are needed, but only {} bytes ({}) are available ({})",
            self.needed,
            human_bytes(self.needed),
            self.available,
            human_bytes(self.available),
            self.source
        )
    }
}

/// Why a memory check refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryError {
    TooLarge(TooLarge),
    BadLimit(BadLimit),
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryError::TooLarge(e) => e.fmt(f),
            MemoryError::BadLimit(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for MemoryError {}

impl MemoryLimit {
    /// `Ok` if `needed` bytes fit in what is available.
    pub fn check(&self, needed: usize) -> Result<(), MemoryError> {
        if needed < SYSTEM_CHECK_FLOOR {
            return self.check_held(needed);
        }
        let available = self.available().map_err(MemoryError::BadLimit)?;
        check_within(available, needed).map_err(MemoryError::TooLarge)
    }

    /// [`MemoryLimit::check`] for a request served from memory this process
    /// already holds (a reused block): a limit given in code or in the
    /// environment still applies, `MemAvailable` is not read (no new memory
    /// is asked for).
    pub fn check_held(&self, needed: usize) -> Result<(), MemoryError> {
        let available = match self {
            MemoryLimit::FromSystem => environment_limit()
                .map_err(MemoryError::BadLimit)?
                .flatten(),
            _ => self.available().map_err(MemoryError::BadLimit)?,
        };
        check_within(available, needed).map_err(MemoryError::TooLarge)
    }
}

/// `Ok` if `needed` bytes fit in `available` (`None`: no limit).
pub fn check_within(available: Option<Available>, needed: usize) -> Result<(), TooLarge> {
    match available {
        Some(a) if needed > a.bytes => Err(TooLarge {
            needed,
            available: a.bytes,
            source: a.source,
        }),
        _ => Ok(()),
    }
}

/// Bytes with a binary unit and one decimal (`1.5 GiB`).
pub fn human_bytes(bytes: usize) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_with_units_or_unlimited() {
        assert_eq!(parse_limit("4096"), Some(Some(4096)));
        assert_eq!(parse_limit("64KiB"), Some(Some(65_536)));
        assert_eq!(parse_limit(" 2 GB "), Some(Some(2_000_000_000)));
        assert_eq!(parse_limit("Unlimited"), Some(None));
        for bad in ["", "lots", "-1", "5 XB", "1e9"] {
            assert_eq!(parse_limit(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn mem_available_is_read_from_meminfo() {
        let text = "MemTotal:       32000000 kB\nMemFree: 1 kB\nMemAvailable:   23771024 kB\n";
        assert_eq!(mem_available_kib(text), Some(23_771_024));
        assert_eq!(mem_available_kib("MemTotal: 5 kB\n"), None);
    }

    #[test]
    fn a_given_limit_is_checked_to_the_byte() {
        let limit = MemoryLimit::Bytes(1000);
        assert!(limit.check(1000).is_ok());
        let MemoryError::TooLarge(e) = limit.check(1001).unwrap_err() else {
            panic!("too large expected")
        };
        assert_eq!((e.needed, e.available), (1001, 1000));
        assert!(e
            .to_string()
            .starts_with("1001 bytes (1001 B) are needed, but only 1000 bytes"));
        assert!(MemoryLimit::Unlimited.check(usize::MAX).is_ok());
    }

    #[test]
    fn a_bad_limit_names_the_variable_and_the_forms() {
        let e = BadLimit {
            value: "plenty".into(),
        }
        .to_string();
        assert!(
            e.starts_with(
                "REVODE_MEMORY_LIMIT = \"plenty\" is not a memory limit: use a byte count"
            ),
            "{e}"
        );
        for form in ["KiB", "GB", "512MiB", "unlimited"] {
            assert!(e.contains(form), "{form} missing: {e}");
        }
    }

    #[test]
    fn human_bytes_picks_a_binary_unit() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(32_000_000_000), "29.8 GiB");
    }
}
