//! Byte sizes with units: `64KiB`, `16MB`, `2GiB`, `1.5 GB`, `4096`.

/// Decimal (KB = 1000) and binary (KiB = 1024) units; case-insensitive.
const UNITS: [(&str, f64); 10] = [
    ("b", 1.0),
    ("kb", 1e3),
    ("mb", 1e6),
    ("gb", 1e9),
    ("tb", 1e12),
    ("kib", 1024.0),
    ("mib", 1048576.0),
    ("gib", 1073741824.0),
    ("tib", 1099511627776.0),
    ("", 1.0),
];

/// Parses a byte size; the result is rounded down to whole bytes.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let bad = || {
        format!("`{text}` is not a size: expected a number with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let factor = UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|&(_, f)| f)
        .ok_or_else(bad)?;
    let value: f64 = number.parse().map_err(|_| bad())?;
    let bytes = (value * factor).floor();
    if !bytes.is_finite() || bytes > usize::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as usize)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn units_are_decimal_or_binary() {
        assert_eq!(parse_bytes("64KiB"), Ok(65_536));
        assert_eq!(parse_bytes("16MB"), Ok(16_000_000));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("1.5 kb"), Ok(1500));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("100B"), Ok(100));
        assert_eq!(parse_bytes("1TiB"), Ok(1 << 40));
    }

    #[test]
    fn garbage_is_refused() {
        for bad in ["", "KiB", "12XB", "-5MB", "1e3", "1.2.3MB", "5 k", "nan"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} accepted");
        }
    }
}
