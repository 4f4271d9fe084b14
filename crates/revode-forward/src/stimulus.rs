//! Stimulus protocols: parameters that are piecewise constant in time.
//!
//! A [`Stimulus`] gives some parameters a protocol of `[t, value]` pairs:
//! from each pair's time on the parameter takes its value, until the next
//! pair. Before its first time a parameter keeps its value in `params`.
//! [`ParamSegments`] turns that into one parameter vector per stretch
//! between consecutive switch times (made once per solve), which is what the
//! steppers are handed: a fixed-step grid is split at every switch time and
//! the adaptive solver stops there, so no step ever straddles a jump.
//! docs/stimulus.md has the maths of the adjoints across the jumps.

use thiserror::Error;

use crate::ForwardError;

/// One parameter's protocol: `switches[i] = [t_i, v_i]` means the parameter
/// equals `v_i` on `[t_i, t_{i+1})` (the last value holds to the end of the
/// span). Times strictly increasing, within `[t0, t1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StimulusTrack {
    /// Index of the parameter in the model's parameter vector.
    pub param: usize,
    pub switches: Vec<[f64; 2]>,
}

/// Protocols for some of a model's parameters (at most one per parameter).
/// The empty stimulus leaves every parameter constant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stimulus {
    pub tracks: Vec<StimulusTrack>,
}

/// What is wrong with one parameter's protocol.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum StimulusFault {
    #[error("no such parameter: the model has {n_params}")]
    UnknownParam { n_params: usize },
    #[error("the parameter has more than one protocol")]
    Duplicate,
    #[error("the protocol needs at least one [t, value] pair")]
    Empty,
    #[error("pair {index} has a non-finite {what} ({value})")]
    NonFinite {
        index: usize,
        what: &'static str,
        value: f64,
    },
    #[error("switch time {index} = {t} is outside the time span [{t0}, {t1}]")]
    TimeOutside {
        index: usize,
        t: f64,
        t0: f64,
        t1: f64,
    },
    #[error("switch times must be strictly increasing: time {index} = {t} follows {prev}")]
    Unsorted { index: usize, t: f64, prev: f64 },
}

impl Stimulus {
    /// No protocol: every parameter constant.
    pub fn none() -> Self {
        Stimulus::default()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Indices of the stimulated parameters, in track order.
    pub fn stimulated(&self) -> impl Iterator<Item = usize> + '_ {
        self.tracks.iter().map(|t| t.param)
    }

    /// Checks every track against the parameter count and the span `[t0, t1]`.
    pub fn validate(&self, n_params: usize, t0: f64, t1: f64) -> Result<(), ForwardError> {
        for (i, track) in self.tracks.iter().enumerate() {
            let fail = |fault| ForwardError::Stimulus {
                param: track.param,
                fault,
            };
            if track.param >= n_params {
                return Err(fail(StimulusFault::UnknownParam { n_params }));
            }
            if self.tracks[..i].iter().any(|t| t.param == track.param) {
                return Err(fail(StimulusFault::Duplicate));
            }
            if track.switches.is_empty() {
                return Err(fail(StimulusFault::Empty));
            }
            for (index, &[t, value]) in track.switches.iter().enumerate() {
                for (what, x) in [("time", t), ("value", value)] {
                    if !x.is_finite() {
                        return Err(fail(StimulusFault::NonFinite {
                            index,
                            what,
                            value: x,
                        }));
                    }
                }
                if !(t0..=t1).contains(&t) {
                    return Err(fail(StimulusFault::TimeOutside { index, t, t0, t1 }));
                }
                if index > 0 {
                    let prev = track.switches[index - 1][0];
                    if t <= prev {
                        return Err(fail(StimulusFault::Unsorted { index, t, prev }));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The parameter vector of every segment `[τ_s, τ_{s+1})` between the
/// switch times of a stimulus (τ_0 = t0), made once per solve.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSegments {
    /// Segment starts: t0, then the distinct switch times inside (t0, t1).
    starts: Vec<f64>,
    /// `n_params` values per segment, segment after segment.
    values: Vec<f64>,
    n_params: usize,
    /// Per segment, the parameters whose protocol begins there: from that
    /// segment on, their value in `params` no longer acts.
    begins: Vec<Vec<usize>>,
}

impl ParamSegments {
    /// One segment with `params` throughout.
    pub fn constant(params: &[f64], t0: f64) -> Self {
        ParamSegments {
            starts: vec![t0],
            values: params.to_vec(),
            n_params: params.len(),
            begins: vec![Vec::new()],
        }
    }

    /// Validates `stimulus` ([`Stimulus::validate`]) and lays it over `params`
    /// on `[t0, t1]`. A switch at t1 changes nothing (no step follows it).
    pub fn new(
        params: &[f64],
        stimulus: &Stimulus,
        t0: f64,
        t1: f64,
    ) -> Result<Self, ForwardError> {
        stimulus.validate(params.len(), t0, t1)?;
        let mut starts = vec![t0];
        for track in &stimulus.tracks {
            starts.extend(
                track
                    .switches
                    .iter()
                    .map(|s| s[0])
                    .filter(|&t| t > t0 && t < t1),
            );
        }
        starts.sort_by(f64::total_cmp);
        starts.dedup();
        let mut values = Vec::with_capacity(starts.len() * params.len());
        let mut begins = vec![Vec::new(); starts.len()];
        for &start in &starts {
            let base = values.len();
            values.extend_from_slice(params);
            for track in &stimulus.tracks {
                if let Some(&[_, v]) = track.switches.iter().rev().find(|p| p[0] <= start) {
                    values[base + track.param] = v;
                }
            }
        }
        for track in &stimulus.tracks {
            let first = track.switches[0][0];
            if first < t1 {
                let s = starts.partition_point(|&t| t <= first) - 1;
                begins[s].push(track.param);
            }
        }
        Ok(ParamSegments {
            starts,
            values,
            n_params: params.len(),
            begins,
        })
    }

    /// Number of segments (1 without switches).
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// `true` when there is no switch inside the span.
    pub fn is_constant(&self) -> bool {
        self.starts.len() == 1
    }

    /// Start time of segment `s`.
    pub fn start(&self, s: usize) -> f64 {
        self.starts[s]
    }

    /// The switch times inside (t0, t1), increasing.
    pub fn switch_times(&self) -> &[f64] {
        &self.starts[1..]
    }

    /// The parameters of segment `s`.
    #[inline]
    pub fn params(&self, s: usize) -> &[f64] {
        &self.values[s * self.n_params..(s + 1) * self.n_params]
    }

    /// Parameters whose protocol begins with segment `s` (their entry in
    /// `params` acts only before it).
    pub fn begins(&self, s: usize) -> &[usize] {
        &self.begins[s]
    }

    /// The segment containing `t` (segments are closed at their start).
    pub fn segment_at(&self, t: f64) -> usize {
        self.starts.partition_point(|&s| s <= t).max(1) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(param: usize, switches: &[[f64; 2]]) -> StimulusTrack {
        StimulusTrack {
            param,
            switches: switches.to_vec(),
        }
    }

    #[test]
    fn segments_take_each_protocols_latest_value() {
        let stim = Stimulus {
            tracks: vec![
                track(0, &[[0.0, 5.0], [2.0, 6.0], [4.0, 7.0]]),
                track(2, &[[3.0, -1.0], [10.0, 0.0]]),
            ],
        };
        let seg = ParamSegments::new(&[1.0, 2.0, 3.0], &stim, 0.0, 10.0).unwrap();
        assert_eq!(seg.switch_times(), &[2.0, 3.0, 4.0]);
        assert_eq!(seg.params(0), &[5.0, 2.0, 3.0]);
        assert_eq!(seg.params(1), &[6.0, 2.0, 3.0]);
        assert_eq!(seg.params(2), &[6.0, 2.0, -1.0]);
        assert_eq!(seg.params(3), &[7.0, 2.0, -1.0]);
        assert_eq!(seg.begins(0), &[0]);
        assert_eq!(seg.begins(2), &[2]);
        assert!(seg.begins(1).is_empty() && seg.begins(3).is_empty());
        assert_eq!(seg.segment_at(0.0), 0);
        assert_eq!(seg.segment_at(2.0), 1);
        assert_eq!(seg.segment_at(3.5), 2);
        assert_eq!(seg.segment_at(10.0), 3);
    }

    #[test]
    fn a_protocol_starting_at_t1_never_acts() {
        let stim = Stimulus {
            tracks: vec![track(1, &[[10.0, 9.0]])],
        };
        let seg = ParamSegments::new(&[1.0, 2.0], &stim, 0.0, 10.0).unwrap();
        assert!(seg.is_constant());
        assert_eq!(seg.params(0), &[1.0, 2.0]);
        assert!(seg.begins(0).is_empty());
    }

    #[test]
    fn every_fault_is_reported() {
        let check = |tracks: Vec<StimulusTrack>| match (Stimulus { tracks }).validate(3, 0.0, 10.0)
        {
            Err(ForwardError::Stimulus { fault, .. }) => fault,
            other => panic!("expected a stimulus error, got {other:?}"),
        };
        assert!(matches!(
            check(vec![track(3, &[[0.0, 1.0]])]),
            StimulusFault::UnknownParam { n_params: 3 }
        ));
        assert_eq!(
            check(vec![track(1, &[[0.0, 1.0]]), track(1, &[[1.0, 1.0]])]),
            StimulusFault::Duplicate
        );
        assert_eq!(check(vec![track(0, &[])]), StimulusFault::Empty);
        assert!(matches!(
            check(vec![track(0, &[[f64::NAN, 1.0]])]),
            StimulusFault::NonFinite { what: "time", .. }
        ));
        assert!(matches!(
            check(vec![track(0, &[[1.0, f64::INFINITY]])]),
            StimulusFault::NonFinite { what: "value", .. }
        ));
        assert!(matches!(
            check(vec![track(0, &[[-1.0, 1.0]])]),
            StimulusFault::TimeOutside { index: 0, .. }
        ));
        assert!(matches!(
            check(vec![track(0, &[[1.0, 1.0], [10.5, 1.0]])]),
            StimulusFault::TimeOutside { index: 1, .. }
        ));
        assert!(matches!(
            check(vec![track(0, &[[2.0, 1.0], [2.0, 3.0]])]),
            StimulusFault::Unsorted { index: 1, .. }
        ));
    }
}
