//! Numbers in messages: short whatever their size.

use std::fmt;

/// Displays an `f64` as Rust's shortest round-trip decimal when that is
/// short (`0.01`, `600`, `-59.5`), and in scientific notation when it would
/// run to many digits (`1e-300` rather than three hundred of them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num(pub f64);

/// Plain decimals for magnitudes in `[SMALL, LARGE)`.
const SMALL: f64 = 1e-4;
const LARGE: f64 = 1e10;

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        let magnitude = x.abs();
        if x == 0.0 || !x.is_finite() || (SMALL..LARGE).contains(&magnitude) {
            write!(f, "{x}")
        } else {
            write!(f, "{x:e}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Num;

    #[test]
    fn short_in_every_range() {
        let shown = |x: f64| Num(x).to_string();
        assert_eq!(shown(1e-300), "1e-300");
        assert_eq!(shown(-2.5e-7), "-2.5e-7");
        assert_eq!(shown(1e300), "1e300");
        assert_eq!(shown(0.01), "0.01");
        assert_eq!(shown(600.0), "600");
        assert_eq!(shown(-59.5), "-59.5");
        assert_eq!(shown(0.0), "0");
        assert_eq!(shown(f64::NAN), "NaN");
        assert_eq!(shown(f64::NEG_INFINITY), "-inf");
        assert_eq!(shown(1e10), "1e10");
        assert_eq!(shown(9_999_999_999.0), "9999999999");
        for x in [1e-300, 3.7e-12, 1e300, 0.1, 123.456] {
            assert_eq!(shown(x).parse::<f64>().unwrap(), x, "round trip");
        }
    }
}
