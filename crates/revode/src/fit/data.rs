//! Recorded traces: reading a CSV file and checking its sample times
//! against a sweep's span and solver.
//!
//! The file has a header row; a column `t` holds the sample times and one
//! column per observed state holds its values, named as the model names the
//! state (`t,E`). Other columns are ignored; blank lines and lines starting
//! with `#` are skipped. Times need not be regular but must increase
//! strictly and lie in the sweep's span.

use std::path::Path;

use crate::problem::SolverSpec;
use crate::Error;

/// The samples of one observed state.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub times: Vec<f64>,
    pub values: Vec<f64>,
}

fn invalid(origin: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        origin: origin.to_string(),
        message: message.into(),
    }
}

/// Reads column `t` and column `component` of a CSV file.
pub fn read_trace_csv(path: &Path, component: &str) -> Result<Trace, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_trace_csv(&text, component, &path.display().to_string())
}

/// Parses CSV text (see [`read_trace_csv`]); `origin` names it in errors.
pub fn parse_trace_csv(text: &str, component: &str, origin: &str) -> Result<Trace, Error> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| invalid(origin, format!("malformed CSV: {e}")))?
        .clone();
    if header.iter().all(str::is_empty) {
        return Err(invalid(
            origin,
            "empty CSV: expected a header row like `t,E`",
        ));
    }
    let column = |name: &str| -> Result<usize, Error> {
        header.iter().position(|h| h == name).ok_or_else(|| {
            let columns: Vec<&str> = header.iter().collect();
            invalid(
                origin,
                format!(
                    "no column `{name}` in the header (columns: {})",
                    columns.join(", ")
                ),
            )
        })
    };
    let t_col = column("t")?;
    let v_col = column(component)?;
    let mut trace = Trace {
        times: Vec::new(),
        values: Vec::new(),
    };
    for record in reader.records() {
        let record = record.map_err(|e| invalid(origin, format!("malformed CSV: {e}")))?;
        let line = record.position().map_or(0, |p| p.line());
        let number = |col: usize, name: &str| -> Result<f64, Error> {
            let field = record.get(col).unwrap_or("");
            match field.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(invalid(
                    origin,
                    format!("line {line}: column `{name}` holds `{field}`, not a finite number"),
                )),
            }
        };
        let t = number(t_col, "t")?;
        let v = number(v_col, component)?;
        if let Some(&prev) = trace.times.last() {
            if t == prev {
                return Err(invalid(
                    origin,
                    format!("line {line}: time {t} appears twice"),
                ));
            }
            if t < prev {
                return Err(invalid(
                    origin,
                    format!("line {line}: times must increase, but {t} follows {prev}"),
                ));
            }
        }
        trace.times.push(t);
        trace.values.push(v);
    }
    if trace.times.is_empty() {
        return Err(invalid(origin, "no data rows after the header"));
    }
    Ok(trace)
}

/// Reads recorded spike times: column `t` of a CSV file with a header row
/// (other columns ignored, `#` comments and blank lines skipped), times
/// increasing strictly.
pub fn read_spike_csv(path: &Path) -> Result<Vec<f64>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_spike_csv(&text, &path.display().to_string())
}

/// Parses spike-time CSV text (see [`read_spike_csv`]).
pub fn parse_spike_csv(text: &str, origin: &str) -> Result<Vec<f64>, Error> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| invalid(origin, format!("malformed CSV: {e}")))?
        .clone();
    let t_col = header.iter().position(|h| h == "t").ok_or_else(|| {
        invalid(
            origin,
            "no column `t` in the header: a spike-time file has a header row `t` and one spike time per row",
        )
    })?;
    let mut times: Vec<f64> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| invalid(origin, format!("malformed CSV: {e}")))?;
        let line = record.position().map_or(0, |p| p.line());
        let field = record.get(t_col).unwrap_or("");
        let t = match field.parse::<f64>() {
            Ok(v) if v.is_finite() => v,
            _ => {
                return Err(invalid(
                    origin,
                    format!("line {line}: column `t` holds `{field}`, not a finite number"),
                ))
            }
        };
        if let Some(&prev) = times.last() {
            if t <= prev {
                return Err(invalid(
                    origin,
                    format!(
                        "line {line}: spike times must increase strictly, but {t} follows {prev}"
                    ),
                ));
            }
        }
        times.push(t);
    }
    if times.is_empty() {
        return Err(invalid(origin, "no spike times after the header"));
    }
    Ok(times)
}

/// How far a sample time may sit from a fixed-step grid time, relative to
/// the span's length.
pub const ON_GRID_TOLERANCE: f64 = 1e-9;

/// Checks `times` against the span and, for a fixed-step solver, the grid;
/// returns the times to observe at (fixed steps: snapped exactly onto the
/// grid, so that the loss lands on the steps that carry them).
pub fn check_times(
    times: &[f64],
    tspan: [f64; 2],
    solver: &SolverSpec,
    origin: &str,
) -> Result<Vec<f64>, Error> {
    let [t0, t1] = tspan;
    for &t in times {
        if t < t0 || t > t1 {
            return Err(invalid(
                origin,
                format!("sample time {t} is outside the sweep's tspan [{t0}, {t1}]"),
            ));
        }
    }
    let Some(dt) = solver.fixed_dt() else {
        return Ok(times.to_vec());
    };
    let grid = revode_forward::TimeGrid::new(t0, t1, dt)?;
    let tolerance = ON_GRID_TOLERANCE * (t1 - t0);
    times
        .iter()
        .map(|&t| {
            let k = (((t - t0) / grid.dt).round() as usize).min(grid.n_steps());
            let on_grid = grid.time(k);
            if (on_grid - t).abs() > tolerance {
                Err(invalid(
                    origin,
                    format!(
                        "sample time {t} is not a step of the {} grid (dt = {dt} from t0 = {t0}); \
                         resample the data onto the grid, or use the dopri5 solver, which lands \
                         on every sample time",
                        solver.name()
                    ),
                ))
            } else {
                Ok(on_grid)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Trace, String> {
        parse_trace_csv(text, "E", "data.csv").map_err(|e| e.to_string())
    }

    #[test]
    fn reads_named_columns_in_any_order() {
        let t = parse("# comment\nE, t ,m\n-65,0,0.1\n-60, 0.5,0.2\n\n-20,1.25,0.3\n").unwrap();
        assert_eq!(t.times, [0.0, 0.5, 1.25]);
        assert_eq!(t.values, [-65.0, -60.0, -20.0]);
    }

    #[test]
    fn bad_files_each_say_what_is_wrong() {
        let cases = [
            ("", "empty CSV"),
            ("t,V\n0,1\n", "no column `E`"),
            ("time,E\n0,1\n", "no column `t`"),
            ("t,E\n0,1\n1,x\n", "line 3: column `E` holds `x`"),
            ("t,E\n0,1\n1,NaN\n", "not a finite number"),
            ("t,E\n0,1\n1,2,3\n", "malformed CSV"),
            ("t,E\n0,1\n0,2\n", "time 0 appears twice"),
            (
                "t,E\n1,1\n0.5,2\n",
                "times must increase, but 0.5 follows 1",
            ),
            ("t,E\n", "no data rows"),
        ];
        for (text, expected) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.contains(expected), "{text:?}: {e}");
        }
    }

    #[test]
    fn times_are_checked_against_span_and_grid() {
        let euler = SolverSpec::Euler { dt: 0.01 };
        let snapped = check_times(&[0.0, 0.5, 600.0], [0.0, 600.0], &euler, "d").unwrap();
        assert_eq!(snapped, [0.0, 0.5, 600.0]);
        let e = check_times(&[0.505], [0.0, 600.0], &SolverSpec::Euler { dt: 0.5 }, "d")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a step") && e.contains("dopri5"), "{e}");
        let e = check_times(&[700.0], [0.0, 600.0], &euler, "d")
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside"), "{e}");
    }
}
