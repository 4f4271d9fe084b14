//! A hand-written SVG of a tune sweep, log axes throughout: median time and
//! peak store against the checkpoint interval K, then time against peak
//! store for every setting (byte budgets have no K, so appear only there).

use std::fmt::Write;

use revode::tune::TuneReport;

const WIDTH: f64 = 720.0;
const PANEL: f64 = 260.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 40.0;
const GAP: f64 = 60.0;

/// A decade-aligned log₁₀ axis.
struct LogAxis {
    lo: f64,
    hi: f64,
}

impl LogAxis {
    fn covering(values: impl Iterator<Item = f64>) -> LogAxis {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| *v > 0.0 && v.is_finite()) {
            lo = lo.min(v.log10());
            hi = hi.max(v.log10());
        }
        if lo > hi {
            (lo, hi) = (0.0, 1.0);
        }
        let (lo, mut hi) = (lo.floor(), hi.ceil());
        if hi <= lo {
            hi = lo + 1.0;
        }
        LogAxis { lo, hi }
    }

    /// Position of `v` in [0, 1].
    fn frac(&self, v: f64) -> f64 {
        (v.log10() - self.lo) / (self.hi - self.lo)
    }

    /// Tick values: each decade, plus 2× and 5× when the axis spans at most
    /// two decades (a one-decade time axis would otherwise have two ticks).
    fn ticks(&self) -> Vec<f64> {
        let multiples: &[f64] = if self.hi - self.lo <= 2.0 {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        (self.lo as i32..=self.hi as i32)
            .flat_map(|e| multiples.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|v| v.log10() <= self.hi + 1e-9)
            .collect()
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One panel: axes, decade grid, the series and optional horizontal lines.
struct Panel<'a> {
    top: f64,
    x: &'a LogAxis,
    y: LogAxis,
    y_label: &'a str,
    fmt_x: fn(f64) -> String,
    fmt_y: fn(f64) -> String,
}

impl Panel<'_> {
    fn px(&self, k: f64) -> f64 {
        LEFT + self.x.frac(k) * (WIDTH - LEFT - RIGHT)
    }
    fn py(&self, v: f64) -> f64 {
        self.top + (1.0 - self.y.frac(v)) * PANEL
    }

    fn frame(&self, svg: &mut String, x_label: &str) {
        let (x0, x1) = (LEFT, WIDTH - RIGHT);
        let (y0, y1) = (self.top, self.top + PANEL);
        for k in self.x.ticks() {
            let x = self.px(k);
            let _ = write!(
                svg,
                r##"<line x1="{x:.1}" y1="{y0:.1}" x2="{x:.1}" y2="{y1:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                y1 + 16.0,
                escape(&(self.fmt_x)(k))
            );
        }
        for v in self.y.ticks() {
            let y = self.py(v);
            let _ = write!(
                svg,
                r##"<line x1="{x0:.1}" y1="{y:.1}" x2="{x1:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                x0 - 6.0,
                y + 4.0,
                escape(&(self.fmt_y)(v))
            );
        }
        let _ = write!(
            svg,
            r##"<rect x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{PANEL:.1}" fill="none" stroke="#000"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"##,
            x1 - x0,
            0.5 * (x0 + x1),
            y1 + 34.0,
            escape(x_label),
            y0 + 0.5 * PANEL,
            escape(self.y_label)
        );
    }

    fn hline(&self, svg: &mut String, v: f64, color: &str, label: &str) {
        let y = self.py(v);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="{color}">{}</text>"##,
            WIDTH - RIGHT,
            WIDTH - RIGHT - 4.0,
            y - 4.0,
            escape(label)
        );
    }

    fn series(
        &self,
        svg: &mut String,
        points: &[(f64, f64)],
        color: &str,
        best: Option<(f64, f64)>,
    ) {
        let path: Vec<String> = points
            .iter()
            .map(|&(k, v)| format!("{:.1},{:.1}", self.px(k), self.py(v)))
            .collect();
        let _ = write!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.5"/>"##,
            path.join(" ")
        );
        for &(k, v) in points {
            let _ = write!(
                svg,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"##,
                self.px(k),
                self.py(v)
            );
        }
        if let Some((k, v)) = best {
            let _ = write!(
                svg,
                r##"<circle cx="{:.1}" cy="{:.1}" r="7" fill="none" stroke="#d62728" stroke-width="2"/>"##,
                self.px(k),
                self.py(v)
            );
        }
    }
}

/// A tick (1, 2 or 5 times a power of ten) of seconds in milliseconds:
/// `20 ms`, `0.5 ms`, `1e-4 ms` (3 significant digits are enough).
fn fmt_ms(v: f64) -> String {
    let ms = v * 1e3;
    if (1e-3..1e7).contains(&ms) {
        format!("{} ms", format_sig(ms))
    } else {
        format!("{ms:.0e} ms")
    }
}

/// A tick of K.
fn fmt_k(v: f64) -> String {
    format!("{v}")
}

/// A tick of bytes: `2e4 B`.
fn fmt_bytes_tick(v: f64) -> String {
    format!("{v:.0e} B")
}

/// `v` rounded to 3 significant digits, without trailing zeros.
fn format_sig(v: f64) -> String {
    let decimals = (2 - v.log10().floor() as i32).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

const EVERY_COLOR: &str = "#1f77b4";
const BUDGET_COLOR: &str = "#9467bd";

/// The SVG document for a sweep.
pub fn tune_svg(r: &TuneReport) -> String {
    let timed = &r.rows[1..];
    let with_k: Vec<_> = r
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, row)| row.interval.map(|k| (i, k as f64, row)))
        .collect();
    let best_row = &r.rows[r.recommended];
    let best_k = best_row.interval.map(|k| k as f64);
    let forward = r.rows[0].median_seconds;
    let k_axis = LogAxis::covering(with_k.iter().map(|(_, k, _)| *k));
    let time_axis =
        || LogAxis::covering(timed.iter().map(|row| row.median_seconds).chain([forward]));
    let bytes_axis = || {
        LogAxis::covering(
            timed
                .iter()
                .map(|row| row.peak_store_bytes as f64)
                .chain(r.memory_budget.map(|b| b as f64)),
        )
    };

    let time = Panel {
        top: TOP,
        x: &k_axis,
        y: time_axis(),
        y_label: "gradient time (median)",
        fmt_x: fmt_k,
        fmt_y: fmt_ms,
    };
    let memory = Panel {
        top: TOP + PANEL + GAP,
        x: &k_axis,
        y: bytes_axis(),
        y_label: "peak checkpoint store",
        fmt_x: fmt_k,
        fmt_y: fmt_bytes_tick,
    };
    let store_axis = bytes_axis();
    let tradeoff = Panel {
        top: TOP + 2.0 * (PANEL + GAP),
        x: &store_axis,
        y: time_axis(),
        y_label: "gradient time (median)",
        fmt_x: fmt_bytes_tick,
        fmt_y: fmt_ms,
    };

    let height = TOP + 3.0 * PANEL + 2.0 * GAP + 50.0;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="#fff"/><text x="{:.1}" y="22" text-anchor="middle" font-size="14">{}</text>"##,
        0.5 * WIDTH,
        escape(&format!(
            "revode tune: {} {}, {} steps (K = 1 is \"all\"; red ring: recommended)",
            r.model, r.solver, r.steps
        ))
    );
    let k_points = |value: fn(&revode::tune::TuneRow) -> f64| -> Vec<(f64, f64)> {
        with_k.iter().map(|(_, k, row)| (*k, value(row))).collect()
    };
    let seconds = |row: &revode::tune::TuneRow| row.median_seconds;
    let bytes = |row: &revode::tune::TuneRow| row.peak_store_bytes as f64;

    time.frame(&mut svg, "checkpoint interval K");
    time.hline(&mut svg, forward, "#2ca02c", "forward solve alone");
    time.series(
        &mut svg,
        &k_points(seconds),
        EVERY_COLOR,
        best_k.map(|k| (k, seconds(best_row))),
    );

    memory.frame(&mut svg, "checkpoint interval K");
    if let Some(b) = r.memory_budget {
        memory.hline(&mut svg, b as f64, "#ff7f0e", "memory budget");
    }
    memory.series(
        &mut svg,
        &k_points(bytes),
        EVERY_COLOR,
        best_k.map(|k| (k, bytes(best_row))),
    );

    tradeoff.frame(
        &mut svg,
        "peak checkpoint store (blue: all / every K, purple: byte budgets)",
    );
    tradeoff.hline(&mut svg, forward, "#2ca02c", "forward solve alone");
    let by_store = |budgets: bool| -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = timed
            .iter()
            .filter(|row| row.interval.is_none() == budgets)
            .map(|row| (bytes(row), seconds(row)))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    tradeoff.series(&mut svg, &by_store(false), EVERY_COLOR, None);
    tradeoff.series(
        &mut svg,
        &by_store(true),
        BUDGET_COLOR,
        Some((bytes(best_row), seconds(best_row))),
    );
    svg.push_str("</svg>\n");
    svg
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels() {
        assert_eq!(fmt_ms(0.02), "20 ms");
        assert_eq!(fmt_ms(0.0005), "0.5 ms");
        assert_eq!(fmt_ms(2.0), "2000 ms");
        assert_eq!(fmt_bytes_tick(20000.0), "2e4 B");
        let narrow = LogAxis { lo: 1.0, hi: 2.0 };
        assert_eq!(narrow.ticks(), [10.0, 20.0, 50.0, 100.0]);
        let wide = LogAxis { lo: 0.0, hi: 5.0 };
        assert_eq!(wide.ticks().len(), 6);
    }
}
