//! SVG plots through plotters' SVG backend: the tune sweep (time and peak
//! store against the checkpoint interval K, then time against store) and
//! the fit (each sweep's data against the fitted trace, and the loss
//! against the iteration).

use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;
use revode::fit::{FitReport, SweepTrace};
use revode::tune::{TuneReport, TuneRow};

type DrawResult<T = ()> = Result<T, Box<dyn std::error::Error>>;
type LogLog = Cartesian2d<
    plotters::coord::combinators::LogCoord<f64>,
    plotters::coord::combinators::LogCoord<f64>,
>;

const WIDTH: u32 = 760;
const PANEL_HEIGHT: u32 = 320;
const FONT: &str = "sans-serif";

const BLUE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const ORANGE: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const GREEN: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
const RED_RING: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const PURPLE: RGBColor = RGBColor(0x94, 0x67, 0xbd);
const GREY: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// A log axis range covering the positive values, widened to whole
/// decades' quarter-steps so points do not sit on the frame.
fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| *v > 0.0 && v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return 1.0..10.0;
    }
    if hi <= lo * 1.5 {
        (lo, hi) = (lo / 1.5, hi * 1.5);
    }
    lo / 1.25..hi * 1.25
}

/// A linear range covering the values with 5 % margins.
fn linear_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return 0.0..1.0;
    }
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 1.0 };
    lo - pad..hi + pad
}

/// Seconds in milliseconds, 3 significant digits: `20 ms`, `0.5 ms`.
fn fmt_ms(v: f64) -> String {
    let ms = v * 1e3;
    if (1e-3..1e7).contains(&ms) {
        format!("{} ms", format_sig(ms))
    } else {
        format!("{ms:.0e} ms")
    }
}

/// Bytes in engineering notation: `2e4 B`.
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

/// A linear-axis tick: `100`, `-60`, `0.25`.
fn format_tick(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let text = format!("{v:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A log–log chart on `area`.
fn log_log_chart<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, plotters::coord::Shift>,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> DrawResult<ChartContext<'a, DB, LogLog>>
where
    DB::ErrorType: 'static,
{
    Ok(ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(80)
        .build_cartesian_2d(x.log_scale(), y.log_scale())?)
}

/// Few labels and light lines on log axes: plotters' log key points
/// crowd near decades otherwise.
fn log_mesh<'m, 'a, 'b, DB: DrawingBackend, X: Ranged, Y: Ranged>(
    mesh: &'m mut plotters::chart::MeshStyle<'a, 'b, X, Y, DB>,
) -> &'m mut plotters::chart::MeshStyle<'a, 'b, X, Y, DB> {
    mesh.x_labels(6).y_labels(6).max_light_lines(1)
}

/// A dashed-looking horizontal reference line with a label at its right.
fn hline<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    x: &std::ops::Range<f64>,
    y: f64,
    color: RGBColor,
    label: &str,
) -> DrawResult
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    // Short segments on a log axis: equal ratios look equal.
    let n = 40;
    let ratio = (x.end / x.start).powf(1.0 / n as f64);
    chart.draw_series((0..n).step_by(2).map(|i| {
        let a = x.start * ratio.powi(i);
        PathElement::new(vec![(a, y), (a * ratio, y)], color.stroke_width(1))
    }))?;
    chart.draw_series(std::iter::once(Text::new(
        label.to_string(),
        (x.start * ratio, y),
        (FONT, 12).into_font().color(&color),
    )))?;
    Ok(())
}

/// Line and dots of one series, plus an optional red ring on one point.
fn series<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    points: &[(f64, f64)],
    color: RGBColor,
    ring: Option<(f64, f64)>,
) -> DrawResult
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart.draw_series(LineSeries::new(
        points.iter().copied(),
        color.stroke_width(2),
    ))?;
    chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    if let Some(p) = ring {
        chart.draw_series(std::iter::once(Circle::new(p, 8, RED_RING.stroke_width(2))))?;
    }
    Ok(())
}

/// The SVG document for a tune sweep.
pub fn tune_svg(r: &TuneReport) -> Result<String, String> {
    let mut svg = String::new();
    draw_tune(&mut svg, r).map_err(|e| format!("cannot draw the plot: {e}"))?;
    Ok(svg)
}

fn draw_tune(svg: &mut String, r: &TuneReport) -> DrawResult {
    let timed = &r.rows[1..];
    let forward = r.rows[0].median_seconds;
    let with_k: Vec<(f64, &TuneRow)> = r
        .rows
        .iter()
        .filter_map(|row| row.interval.map(|k| (k as f64, row)))
        .collect();
    let best = &r.rows[r.recommended];
    let seconds = |row: &TuneRow| row.median_seconds;
    let bytes = |row: &TuneRow| row.peak_store_bytes as f64;
    let k_range = log_range(with_k.iter().map(|(k, _)| *k));
    let time_range = log_range(timed.iter().map(seconds).chain([forward]));
    let bytes_range = log_range(
        timed
            .iter()
            .map(bytes)
            .chain(r.memory_budget.map(|b| b as f64)),
    );

    let root = SVGBackend::with_string(svg, (WIDTH, 3 * PANEL_HEIGHT + 40)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!(
            "revode tune: {} {}, {} steps (K = 1 is \"all\"; red ring: recommended)",
            r.model, r.solver, r.steps
        ),
        (FONT, 15),
    )?;
    let panels = root.split_evenly((3, 1));

    let mut time = log_log_chart(&panels[0], k_range.clone(), time_range.clone())?;
    log_mesh(&mut time.configure_mesh())
        .x_desc("checkpoint interval K")
        .x_label_formatter(&|v| format_tick(*v))
        .y_desc("gradient time (median)")
        .y_label_formatter(&|v| fmt_ms(*v))
        .draw()?;
    hline(&mut time, &k_range, forward, GREEN, "forward solve alone")?;
    let k_points = |value: &dyn Fn(&TuneRow) -> f64| -> Vec<(f64, f64)> {
        with_k.iter().map(|(k, row)| (*k, value(row))).collect()
    };
    let best_k = best.interval.map(|k| k as f64);
    series(
        &mut time,
        &k_points(&seconds),
        BLUE,
        best_k.map(|k| (k, seconds(best))),
    )?;

    let mut memory = log_log_chart(&panels[1], k_range.clone(), bytes_range.clone())?;
    log_mesh(&mut memory.configure_mesh())
        .x_desc("checkpoint interval K")
        .x_label_formatter(&|v| format_tick(*v))
        .y_desc("peak checkpoint store")
        .y_label_formatter(&|v| fmt_bytes_tick(*v))
        .draw()?;
    if let Some(b) = r.memory_budget {
        hline(&mut memory, &k_range, b as f64, ORANGE, "memory budget")?;
    }
    series(
        &mut memory,
        &k_points(&bytes),
        BLUE,
        best_k.map(|k| (k, bytes(best))),
    )?;

    let mut tradeoff = log_log_chart(&panels[2], bytes_range.clone(), time_range)?;
    log_mesh(&mut tradeoff.configure_mesh())
        .x_desc("peak checkpoint store (blue: all / every K, purple: byte budgets)")
        .y_desc("gradient time (median)")
        .x_label_formatter(&|v| fmt_bytes_tick(*v))
        .y_label_formatter(&|v| fmt_ms(*v))
        .draw()?;
    hline(
        &mut tradeoff,
        &bytes_range,
        forward,
        GREEN,
        "forward solve alone",
    )?;
    let by_store = |budgets: bool| -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = timed
            .iter()
            .filter(|row| row.interval.is_none() == budgets)
            .map(|row| (bytes(row), seconds(row)))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    series(&mut tradeoff, &by_store(false), BLUE, None)?;
    series(
        &mut tradeoff,
        &by_store(true),
        PURPLE,
        Some((bytes(best), seconds(best))),
    )?;
    root.present()?;
    Ok(())
}

/// At most `n` evenly spaced items of `v` (plots need no more points).
fn thin<T: Copy>(v: &[T], n: usize) -> Vec<T> {
    let step = v.len().div_ceil(n.max(1)).max(1);
    v.iter().step_by(step).copied().collect()
}

/// The SVG document for a fit: one panel per sweep, then the loss.
pub fn fit_svg(traces: &[SweepTrace], report: &FitReport) -> Result<String, String> {
    let mut svg = String::new();
    draw_fit(&mut svg, traces, report).map_err(|e| format!("cannot draw the plot: {e}"))?;
    Ok(svg)
}

fn draw_fit(svg: &mut String, traces: &[SweepTrace], report: &FitReport) -> DrawResult {
    let panels_n = traces.len() as u32 + 1;
    let root =
        SVGBackend::with_string(svg, (WIDTH, panels_n * PANEL_HEIGHT + 40)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!(
            "revode fit: model {}, loss {:.4e} after {} iterations",
            report.model, report.loss, report.iterations
        ),
        (FONT, 15),
    )?;
    let panels = root.split_evenly((panels_n as usize, 1));
    for (i, (trace, area)) in traces.iter().zip(&panels).enumerate() {
        let data: Vec<(f64, f64)> = thin(
            &trace
                .data_times
                .iter()
                .copied()
                .zip(trace.data_values.iter().copied())
                .collect::<Vec<_>>(),
            3000,
        );
        let model: Vec<(f64, f64)> = thin(
            &trace
                .times
                .iter()
                .copied()
                .zip(trace.model.iter().copied())
                .collect::<Vec<_>>(),
            4000,
        );
        let x = linear_range(data.iter().chain(&model).map(|p| p.0));
        let y = linear_range(data.iter().chain(&model).map(|p| p.1));
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .caption(
                format!(
                    "sweep {}: {} (grey dots: data, blue: fitted model)",
                    i + 1,
                    if trace.source.is_empty() {
                        "data"
                    } else {
                        &trace.source
                    }
                ),
                (FONT, 13),
            )
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x, y)?;
        chart
            .configure_mesh()
            .x_desc("t")
            .y_desc(trace.component.as_str())
            .x_label_formatter(&|v| format_tick(*v))
            .y_label_formatter(&|v| format_tick(*v))
            .draw()?;
        chart.draw_series(data.iter().map(|&p| Circle::new(p, 2, GREY.filled())))?;
        chart.draw_series(LineSeries::new(model, BLUE.stroke_width(2)))?;
    }
    let losses: Vec<(f64, f64)> = report
        .history
        .iter()
        .enumerate()
        .filter(|(_, l)| **l > 0.0 && l.is_finite())
        .map(|(i, l)| (i as f64, *l))
        .collect();
    let area = panels.last().expect("a loss panel");
    let x_end = (report.history.len().max(2) - 1) as f64;
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .caption("loss against iteration (best start)", (FONT, 13))
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            0.0..x_end,
            log_range(losses.iter().map(|p| p.1)).log_scale(),
        )?;
    chart
        .configure_mesh()
        .y_labels(8)
        .max_light_lines(1)
        .x_desc("iteration")
        .y_desc("loss")
        .x_label_formatter(&|v| format_tick(*v))
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()?;
    series(&mut chart, &losses, ORANGE, None)?;
    root.present()?;
    Ok(())
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
        assert_eq!(format_tick(100.0), "100");
        assert_eq!(format_tick(-60.0), "-60");
        assert_eq!(format_tick(0.25), "0.25");
    }

    #[test]
    fn ranges_cover_their_values() {
        let r = log_range([3.0, 300.0, -1.0, 0.0].into_iter());
        assert!(r.start < 3.0 && r.end > 300.0);
        assert_eq!(log_range(std::iter::empty()), 1.0..10.0);
        let l = linear_range([-70.0, 40.0].into_iter());
        assert!(l.start < -70.0 && l.end > 40.0);
        assert_eq!(thin(&[1, 2, 3, 4, 5], 2), [1, 4]);
    }
}
