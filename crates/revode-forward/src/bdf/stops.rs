//! The times a solve must land on (observation times, switch times, t1)
//! and the parameters of the steps heading for each.

use crate::{ForwardError, ParamSegments};

/// Sorted, distinct stop times ending with t1, with the parameter segment
/// of the steps heading for each and whether each is a switch time.
#[derive(Debug, Clone)]
pub(super) struct Stops {
    times: Vec<f64>,
    t0: f64,
    switches: Option<Switches>,
}

#[derive(Debug, Clone)]
struct Switches {
    segments: ParamSegments,
    segment_of_stop: Vec<usize>,
    switch_stop: Vec<bool>,
}

impl Stops {
    /// Checks the observation times (inside (t0, t1], increasing) and the span.
    pub fn new(t0: f64, t1: f64, observation_times: &[f64]) -> Result<Self, ForwardError> {
        if !(t0.is_finite() && t1.is_finite() && t0 < t1) {
            return Err(ForwardError::InvalidSpan { t0, t1 });
        }
        let mut times = Vec::with_capacity(observation_times.len() + 1);
        for (index, &t) in observation_times.iter().enumerate() {
            if !(t.is_finite() && t > t0 && t <= t1) {
                return Err(ForwardError::StopTimeOutside { index, t, t0, t1 });
            }
            if let Some(&prev) = times.last() {
                if t <= prev {
                    return Err(ForwardError::StopTimesUnsorted { index, t, prev });
                }
            }
            times.push(t);
        }
        if times.last() != Some(&t1) {
            times.push(t1);
        }
        Ok(Stops {
            times,
            t0,
            switches: None,
        })
    }

    /// Adds the switch times of `segments` to the stops.
    pub fn with_switches(mut self, segments: ParamSegments) -> Self {
        self.times.extend_from_slice(segments.switch_times());
        self.times.sort_by(f64::total_cmp);
        self.times.dedup();
        let switch_times = segments.switch_times();
        let segment_of_stop = (0..self.times.len())
            .map(|i| segments.segment_at(if i == 0 { self.t0 } else { self.times[i - 1] }))
            .collect();
        let switch_stop = self
            .times
            .iter()
            .map(|t| switch_times.binary_search_by(|x| x.total_cmp(t)).is_ok())
            .collect();
        self.switches = Some(Switches {
            segments,
            segment_of_stop,
            switch_stop,
        });
        self
    }

    pub fn segments(&self) -> Option<&ParamSegments> {
        self.switches.as_ref().map(|s| &s.segments)
    }

    /// Stop number `i`.
    #[inline]
    pub fn time(&self, i: usize) -> f64 {
        self.times[i]
    }

    /// The parameters of the steps heading for stop `i` (`params` without
    /// switches).
    #[inline]
    pub fn params<'a>(&'a self, i: usize, params: &'a [f64]) -> &'a [f64] {
        match &self.switches {
            Some(sw) => sw.segments.params(sw.segment_of_stop[i]),
            None => params,
        }
    }

    /// Whether stop `i` is a switch time.
    #[inline]
    pub fn is_switch(&self, i: usize) -> bool {
        self.switches.as_ref().is_some_and(|sw| sw.switch_stop[i])
    }
}
