//! The loss an adaptive forward sweep collects as it passes each accepted
//! state (dopri5 and BDF alike): the observations of a trace, the final
//! state's term, and for an `event_times` loss the first K firings of its
//! event and their count.

use crate::loss::{dot, EventTimeLoss};
use crate::Loss;

pub(crate) struct ForwardTerms<'a> {
    loss: &'a Loss,
    times: &'a [f64],
    final_weights: Option<&'a [f64]>,
    t1: f64,
    next_obs: usize,
    /// The event an `event_times` loss watches, and its target times.
    watched: Option<usize>,
    targets: &'a [f64],
    fired_times: Vec<f64>,
    fired: usize,
    value: f64,
}

impl<'a> ForwardTerms<'a> {
    /// For a sweep ending at `t1`; holds room for the target firings.
    pub(crate) fn new(loss: &'a Loss, t1: f64) -> Self {
        let (watched, targets) = match loss {
            Loss::EventTimes { event, times } => (Some(*event), times.as_slice()),
            _ => (None, &[][..]),
        };
        ForwardTerms {
            loss,
            times: loss.observation_times(),
            final_weights: loss.final_weights(),
            t1,
            next_obs: 0,
            watched,
            targets,
            fired_times: Vec::with_capacity(targets.len()),
            fired: 0,
            value: 0.0,
        }
    }

    /// The accepted state `u` at `t`; `firing`: the event that fires there
    /// (the state just before its reset), if any.
    #[inline]
    pub(crate) fn observe(&mut self, t: f64, u: &[f64], firing: Option<usize>) {
        if firing.is_some() && firing == self.watched {
            if self.fired_times.len() < self.targets.len() {
                self.fired_times.push(t);
            }
            self.fired += 1;
        }
        if self.next_obs < self.times.len() && t == self.times[self.next_obs] {
            self.value += self.loss.observation_term(self.next_obs, u);
            self.next_obs += 1;
        }
        if let (Some(w), true) = (self.final_weights, t == self.t1) {
            self.value += dot(w, u);
        }
    }

    /// The loss value and, for an `event_times` loss, its seeds.
    pub(crate) fn finish(self) -> (f64, Option<EventTimeLoss>) {
        match self.watched {
            Some(e) => {
                let recorded = (self.fired_times, self.fired);
                let (seeds, value) = EventTimeLoss::new(e, self.targets, recorded, self.t1);
                (self.value + value, Some(seeds))
            }
            None => (self.value, None),
        }
    }
}
