//! Events (a model's `global` lines) on the fixed-step methods.
//!
//! A step from u_k that sees an event function change sign (in the event's
//! direction) between its start and its end is cut at the crossing,
//! located to rounding on the step's own interpolant: the line of Euler's
//! step; for RK4 the cubic Hermite interpolant through (u_k, f(u_k)) and
//! (u_{k+1}, f(u_{k+1})), one extra right-hand side per step with a
//! crossing. Its slope at the step's end is the next step's slope at its
//! start, so event times (and the solution) stay continuously
//! differentiable in the parameters when a crossing moves across a grid
//! time (RK4's own continuous extension is not: its end slope is f(U_4)).
//! The reset is applied
//! there and the step is finished to its grid time with the same method,
//! from the reset state, over what is left of it; that rest may hold
//! further events. Everything is a deterministic function of (t, h, u_k,
//! p), so a checkpointed replay of the step repeats its events bitwise, and
//! the adjoint replays the step to get the segments it differentiates
//! through (revode-adjoint, `events.rs`). Derivation: docs/events.md.

use revode_model::Model;

use crate::{FixedMethod, FixedStepper, ForwardError};

/// Most events one step may hold: more is taken as Zeno behaviour (events
/// accumulating in finite time) and ends the solve.
pub const MAX_EVENTS_PER_STEP: usize = 100;

/// Iterations of the root finder (it stops at rounding long before).
const MAX_LOCATE_ITERATIONS: usize = 200;

/// One piece of a step: from `tau` over `h`, cut at `tau + sigma` by
/// `event` (or, for the last piece, `event = None`: it ran to the end).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub tau: f64,
    pub h: f64,
    pub sigma: f64,
    pub event: Option<usize>,
}

/// Cubic Hermite basis at θ: `[h00, h10, h01, h11]`, so that
/// `u(τ + θh) = h00 x + h h10 f(x) + h01 y + h h11 f(y)`.
#[inline]
pub fn hermite(theta: f64) -> [f64; 4] {
    let t2 = theta * theta;
    let t3 = t2 * theta;
    [
        2.0 * t3 - 3.0 * t2 + 1.0,
        t3 - 2.0 * t2 + theta,
        -2.0 * t3 + 3.0 * t2,
        t3 - t2,
    ]
}

/// `d/dθ` of [`hermite`].
#[inline]
pub fn hermite_slopes(theta: f64) -> [f64; 4] {
    let t2 = theta * theta;
    [
        6.0 * t2 - 6.0 * theta,
        3.0 * t2 - 4.0 * theta + 1.0,
        -6.0 * t2 + 6.0 * theta,
        3.0 * t2 - 2.0 * theta,
    ]
}

/// Whether `a → b` crosses 0 in `direction` (1 up: a < 0 ≤ b; −1 down:
/// a > 0 ≥ b; 0 either).
#[inline]
pub fn crosses(direction: i8, a: f64, b: f64) -> bool {
    let up = a < 0.0 && b >= 0.0;
    let down = a > 0.0 && b <= 0.0;
    match direction {
        1 => up,
        -1 => down,
        _ => up || down,
    }
}

/// A fixed stepper that locates events and applies their resets. Buffers
/// are made once; a step allocates nothing.
#[derive(Debug, Clone)]
pub struct EventStepper {
    stepper: FixedStepper,
    pieces: StepPieces,
    /// The end y of the current segment's full step, and f(y) (RK4).
    end: Vec<f64>,
    end_slope: Vec<f64>,
    /// g at the segment's ends, and the last plain step's end.
    g: EndValues,
}

/// The pieces of one fixed-grid step cut by events, as both fixed-grid
/// event steppers (explicit and backward Euler) keep them: the segments,
/// the state each starts from, the state before each event, the firings
/// so far and the recorder of one event's times (buffers made once).
#[derive(Debug, Clone)]
pub(crate) struct StepPieces {
    pub(crate) segments: Vec<Segment>,
    /// `starts[j]`: the state piece j starts from (after the reset of
    /// piece j − 1).
    pub(crate) starts: Vec<Vec<f64>>,
    /// `before[j]`: the state just before piece j's event.
    pub(crate) before: Vec<Vec<f64>>,
    /// Scratch of the root finder.
    pub(crate) probe: Vec<f64>,
    /// Events fired since the buffers were made (replays included).
    fired: usize,
    recorder: Option<Recorder>,
}

impl StepPieces {
    pub(crate) fn new(n_states: usize) -> Self {
        let states = |k: usize| (0..k).map(|_| vec![0.0; n_states]).collect::<Vec<_>>();
        StepPieces {
            segments: Vec::with_capacity(MAX_EVENTS_PER_STEP + 1),
            starts: states(MAX_EVENTS_PER_STEP + 1),
            before: states(MAX_EVENTS_PER_STEP),
            probe: vec![0.0; n_states],
            fired: 0,
            recorder: None,
        }
    }

    pub(crate) fn fired(&self) -> usize {
        self.fired
    }

    pub(crate) fn record_times(&mut self, event: usize, keep: usize) {
        self.recorder = Some(Recorder::new(event, keep));
    }

    pub(crate) fn stop_recording(&mut self) -> Option<(Vec<f64>, usize)> {
        self.recorder.take().map(Recorder::finish)
    }

    pub(crate) fn events_in_step(&self) -> usize {
        self.segments.iter().filter(|s| s.event.is_some()).count()
    }

    /// A piece from `tau` over `len` that ends the step without an event.
    #[inline(always)]
    pub(crate) fn push_plain(&mut self, tau: f64, len: f64) {
        self.segments.push(Segment {
            tau,
            h: len,
            sigma: len,
            event: None,
        });
    }

    /// Piece j (from `tau` over `len`) fires event `e` at `tau + sigma`:
    /// with `before[j]` already set to the state there, applies the reset
    /// into `starts[j + 1]`, records the firing and returns its time.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fire<M: Model>(
        &mut self,
        model: &M,
        e: usize,
        tau: f64,
        len: f64,
        sigma: f64,
        p: &[f64],
        work: &mut M::Work,
    ) -> f64 {
        let j = self.segments.len();
        model.event_reset(e, &self.before[j], p, &mut self.starts[j + 1], work);
        self.segments.push(Segment {
            tau,
            h: len,
            sigma,
            event: Some(e),
        });
        self.fired += 1;
        let t_event = tau + sigma;
        if let Some(r) = self.recorder.as_mut() {
            r.record(e, t_event);
        }
        t_event
    }
}

/// The first event (time order, ties to the lower index) whose g crosses
/// over `piece` between the end values `g`, located on the piece: `(σ, e)`.
pub(crate) fn first_crossing<M: Model>(
    model: &M,
    g: &EndValues,
    piece: &Piece<'_>,
    probe: &mut [f64],
    p: &[f64],
    work: &mut M::Work,
) -> Option<(f64, usize)> {
    let mut first: Option<(f64, usize)> = None;
    for e in 0..g.n_events() {
        let ends = g.of(e);
        if !crosses(model.event_direction(e), ends[0], ends[1]) {
            continue;
        }
        let sigma = locate(model, e, piece, probe, ends, p, work);
        // Ties go to the lower index (docs/events.md).
        if first.is_none_or(|(s, _)| sigma < s) {
            first = Some((sigma, e));
        }
    }
    first
}

/// The times of one event, recorded while a forward sweep runs.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    event: usize,
    /// The first `times.capacity()` event times.
    times: Vec<f64>,
    count: usize,
}

impl Recorder {
    /// Records the times of `event`, keeping the first `keep` (buffer made
    /// here, once).
    pub(crate) fn new(event: usize, keep: usize) -> Self {
        Recorder {
            event,
            times: Vec::with_capacity(keep),
            count: 0,
        }
    }

    /// Event `e` fired at `t`.
    #[inline]
    pub(crate) fn record(&mut self, e: usize, t: f64) {
        if e == self.event {
            if self.times.len() < self.times.capacity() {
                self.times.push(t);
            }
            self.count += 1;
        }
    }

    /// The first recorded times and the number of occurrences.
    pub(crate) fn finish(self) -> (Vec<f64>, usize) {
        (self.times, self.count)
    }
}

impl EventStepper {
    pub fn new<M: Model>(method: FixedMethod, model: &M) -> Self {
        let n = model.dims().n_states;
        EventStepper {
            stepper: FixedStepper::new(method, n),
            pieces: StepPieces::new(n),
            end: vec![0.0; n],
            end_slope: vec![0.0; n],
            g: EndValues::new(n, model.n_events()),
        }
    }

    /// Events fired since this stepper was made (replays included).
    pub fn fired(&self) -> usize {
        self.pieces.fired()
    }

    /// From now on, records the times of `event`: the first `keep` of them,
    /// and how many there were (buffer made here, once).
    pub fn record_times(&mut self, event: usize, keep: usize) {
        self.pieces.record_times(event, keep);
    }

    /// Stops recording (a replay must not record again); returns the first
    /// recorded times and the number of occurrences.
    pub fn stop_recording(&mut self) -> Option<(Vec<f64>, usize)> {
        self.pieces.stop_recording()
    }

    pub fn method(&self) -> FixedMethod {
        self.stepper.method()
    }

    /// The pieces of the last step, in time order.
    pub fn segments(&self) -> &[Segment] {
        &self.pieces.segments
    }

    /// The stepper of the last step's last piece, holding its stages.
    pub fn stepper(&self) -> &FixedStepper {
        &self.stepper
    }

    /// The end of the full step of the last step's last piece.
    pub fn end_state(&self) -> &[f64] {
        &self.end
    }

    /// The state segment `j` of the last step started from.
    pub fn start_state(&self, j: usize) -> &[f64] {
        &self.pieces.starts[j]
    }

    /// The state just before segment `j`'s event.
    pub fn state_before(&self, j: usize) -> &[f64] {
        &self.pieces.before[j]
    }

    /// Events in the last step.
    pub fn events_in_step(&self) -> usize {
        self.pieces.events_in_step()
    }

    /// `next ← u_{k+1}`: the step from `u` at `t` over `h` with its events.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn step<M: Model>(
        &mut self,
        model: &M,
        t: f64,
        h: f64,
        u: &[f64],
        p: &[f64],
        next: &mut [f64],
        work: &mut M::Work,
    ) -> Result<(), ForwardError> {
        self.pieces.segments.clear();
        // The common case first, with no copies: the whole step straight
        // into `next`, and no event function changing sign over it.
        self.stepper.step(model, t, h, u, p, next, work);
        let any = self.g.whole_step(model, u, next, p, work);
        if !any {
            self.g.remember(next);
            self.pieces.push_plain(t, h);
            return Ok(());
        }
        self.step_with_events(model, (t, h), u, p, next, work)
    }

    /// The rest of [`EventStepper::step`] once g changed sign over the
    /// whole step (`next` holds its end, `g_start`/`g_end` the values):
    /// out of line, so that the path every step takes inlines into the
    /// solve loops.
    #[cold]
    #[inline(never)]
    fn step_with_events<M: Model>(
        &mut self,
        model: &M,
        (t, h): (f64, f64),
        u: &[f64],
        p: &[f64],
        next: &mut [f64],
        work: &mut M::Work,
    ) -> Result<(), ForwardError> {
        let mut any = true;
        let pieces = &mut self.pieces;
        pieces.starts[0].copy_from_slice(u);
        self.end.copy_from_slice(next);
        let t_end = t + h;
        let (mut tau, mut len) = (t, h);
        loop {
            let j = pieces.segments.len();
            let x = &pieces.starts[j];
            if j > 0 {
                // Segment 0's step and event values are the ones above.
                self.stepper
                    .step(model, tau, len, x, p, &mut self.end, work);
                any = self.g.piece(model, x, &self.end, p, work);
            }
            let method = self.stepper.method();
            if any && method == FixedMethod::Rk4 {
                model.rhs(tau + len, &self.end, p, &mut self.end_slope, work);
            }
            let piece = Piece {
                interpolant: method.into(),
                x,
                k1: &self.stepper.slopes()[0],
                y: &self.end,
                f_y: &self.end_slope,
                len,
            };
            let first = if any {
                first_crossing(model, &self.g, &piece, &mut pieces.probe, p, work)
            } else {
                None
            };
            let Some((sigma, e)) = first else {
                next.copy_from_slice(&self.end);
                self.g.remember(&self.end);
                pieces.push_plain(tau, len);
                return Ok(());
            };
            if j == MAX_EVENTS_PER_STEP {
                return Err(ForwardError::TooManyEvents {
                    t: tau + sigma,
                    limit: MAX_EVENTS_PER_STEP,
                });
            }
            piece.at(sigma, &mut pieces.before[j]);
            tau = pieces.fire(model, e, tau, len, sigma, p, work);
            let step_len = len;
            len = t_end - tau;
            if sigma >= step_len || len <= 0.0 {
                next.copy_from_slice(&pieces.starts[j + 1]);
                self.g.forget();
                return Ok(());
            }
        }
    }
}

/// Each event's g at the two ends of a step or piece, and the end of the
/// last step that held no event with its g values: the next step usually
/// starts from it, and g need not be evaluated again (the same bits give
/// the same g, so replays are unaffected). Shared by the explicit and the
/// backward Euler event steppers.
#[derive(Debug, Clone)]
pub(crate) struct EndValues {
    g_start: Vec<f64>,
    g_end: Vec<f64>,
    cached_end: Vec<f64>,
    cached_g: Vec<f64>,
    cache_valid: bool,
}

impl EndValues {
    pub(crate) fn new(n_states: usize, n_events: usize) -> Self {
        EndValues {
            g_start: vec![0.0; n_events],
            g_end: vec![0.0; n_events],
            cached_end: vec![0.0; n_states],
            cached_g: vec![0.0; n_events],
            cache_valid: false,
        }
    }

    /// g at `u` and `y`, the ends of a whole step (g at `u` from the cache
    /// when `u` is the remembered end); whether any event crossed.
    #[inline(always)]
    pub(crate) fn whole_step<M: Model>(
        &mut self,
        model: &M,
        u: &[f64],
        y: &[f64],
        p: &[f64],
        work: &mut M::Work,
    ) -> bool {
        let cached = self.cache_valid
            && self
                .cached_end
                .iter()
                .zip(u)
                .all(|(a, b)| a.to_bits() == b.to_bits());
        let mut any = false;
        for e in 0..self.g_end.len() {
            self.g_start[e] = if cached {
                self.cached_g[e]
            } else {
                model.event_value(e, u, p, work)
            };
            self.g_end[e] = model.event_value(e, y, p, work);
            any |= crosses(model.event_direction(e), self.g_start[e], self.g_end[e]);
        }
        any
    }

    /// g at both ends of a piece after a reset (never cached); whether any
    /// event crossed.
    pub(crate) fn piece<M: Model>(
        &mut self,
        model: &M,
        x: &[f64],
        y: &[f64],
        p: &[f64],
        work: &mut M::Work,
    ) -> bool {
        let mut any = false;
        for e in 0..self.g_end.len() {
            self.g_start[e] = model.event_value(e, x, p, work);
            self.g_end[e] = model.event_value(e, y, p, work);
            any |= crosses(model.event_direction(e), self.g_start[e], self.g_end[e]);
        }
        any
    }

    pub(crate) fn n_events(&self) -> usize {
        self.g_end.len()
    }

    /// Event `e`'s g at the start and the end.
    #[inline]
    pub(crate) fn of(&self, e: usize) -> [f64; 2] {
        [self.g_start[e], self.g_end[e]]
    }

    /// `y`, where g is `g_end`, is the end of a step that held no event.
    #[inline(always)]
    pub(crate) fn remember(&mut self, y: &[f64]) {
        self.cached_end.copy_from_slice(y);
        self.cached_g.copy_from_slice(&self.g_end);
        self.cache_valid = true;
    }

    /// The step ended on a reset: nothing to remember.
    pub(crate) fn forget(&mut self) {
        self.cache_valid = false;
    }
}

/// The crossing of event `e` on `piece` (g going from `ends[0]` to
/// `ends[1]`), located on its interpolant ([`illinois`]).
pub(crate) fn locate<M: Model>(
    model: &M,
    e: usize,
    piece: &Piece<'_>,
    probe: &mut [f64],
    ends: [f64; 2],
    p: &[f64],
    work: &mut M::Work,
) -> f64 {
    illinois(piece.len, ends, |c| {
        piece.at(c, probe);
        model.event_value(e, probe, p, work)
    })
}

/// The root of `g` on `[0, len]` from `g(0) = ends[0]` to `g(len) = ends[1]`
/// (a sign change): the end on the crossed side of a bracket shrunk to
/// rounding by the Illinois method.
pub fn illinois(len: f64, ends: [f64; 2], mut g: impl FnMut(f64) -> f64) -> f64 {
    let (mut lo, mut g_lo, mut hi, mut g_hi) = (0.0, ends[0], len, ends[1]);
    if g_hi == 0.0 {
        return hi;
    }
    let mut last_side = 0i8;
    for _ in 0..MAX_LOCATE_ITERATIONS {
        if hi - lo <= 2.0 * f64::EPSILON * hi {
            break;
        }
        let mut c = lo - g_lo * (hi - lo) / (g_hi - g_lo);
        if !(c > lo && c < hi) {
            c = 0.5 * (lo + hi);
            if !(c > lo && c < hi) {
                break;
            }
        }
        let g_c = g(c);
        if g_c * g_lo > 0.0 {
            lo = c;
            g_lo = g_c;
            if last_side == -1 {
                g_hi *= 0.5;
            }
            last_side = -1;
        } else {
            hi = c;
            g_hi = g_c;
            if g_c == 0.0 {
                break;
            }
            if last_side == 1 {
                g_lo *= 0.5;
            }
            last_side = 1;
        }
    }
    hi
}

/// The curve an event is located on within one piece of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolant {
    /// Euler's own line: `x + σ f(x)`.
    Euler,
    /// The cubic Hermite interpolant through `(x, f(x))` and `(y, f(y))` (RK4).
    Hermite,
    /// The chord from `x` to the step's end `y`: `x + (σ/len)(y − x)`
    /// (backward Euler, whose step has no cheaper curve of its own).
    Chord,
}

impl From<FixedMethod> for Interpolant {
    fn from(method: FixedMethod) -> Self {
        match method {
            FixedMethod::Euler => Interpolant::Euler,
            FixedMethod::Rk4 => Interpolant::Hermite,
        }
    }
}

/// One piece of a step: from `x` over `len` to the full step's end `y`,
/// with the slopes its interpolant uses.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    pub interpolant: Interpolant,
    pub x: &'a [f64],
    /// f(x) (Euler and Hermite).
    pub k1: &'a [f64],
    pub y: &'a [f64],
    /// f(y) (Hermite only).
    pub f_y: &'a [f64],
    pub len: f64,
}

impl<'a> Piece<'a> {
    /// The chord of a backward Euler piece from `x` to `y` over `len`.
    pub fn chord(x: &'a [f64], y: &'a [f64], len: f64) -> Self {
        Piece {
            interpolant: Interpolant::Chord,
            x,
            k1: &[],
            y,
            f_y: &[],
            len,
        }
    }

    /// `out ← u(τ + σ)` on the interpolant.
    #[inline]
    pub fn at(&self, sigma: f64, out: &mut [f64]) {
        let (x, k1) = (self.x, self.k1);
        match self.interpolant {
            Interpolant::Euler => {
                for i in 0..x.len() {
                    out[i] = x[i] + sigma * k1[i];
                }
            }
            Interpolant::Hermite => {
                let [h00, h10, h01, h11] = hermite(sigma / self.len);
                let (y, f_y, len) = (self.y, self.f_y, self.len);
                for i in 0..x.len() {
                    out[i] = h00 * x[i] + h01 * y[i] + len * (h10 * k1[i] + h11 * f_y[i]);
                }
            }
            Interpolant::Chord => {
                let theta = sigma / self.len;
                for i in 0..x.len() {
                    out[i] = x[i] + theta * (self.y[i] - x[i]);
                }
            }
        }
    }

    /// `out ← du/dσ` at σ.
    #[inline]
    pub fn slope(&self, sigma: f64, out: &mut [f64]) {
        let (x, k1) = (self.x, self.k1);
        match self.interpolant {
            Interpolant::Euler => out.copy_from_slice(k1),
            Interpolant::Hermite => {
                let [d00, d10, d01, d11] = hermite_slopes(sigma / self.len);
                let (y, f_y, len) = (self.y, self.f_y, self.len);
                for i in 0..x.len() {
                    out[i] = (d00 * x[i] + d01 * y[i]) / len + d10 * k1[i] + d11 * f_y[i];
                }
            }
            Interpolant::Chord => {
                for i in 0..x.len() {
                    out[i] = (self.y[i] - x[i]) / self.len;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hermite_basis_interpolates_values_and_slopes() {
        assert_eq!(hermite(0.0), [1.0, 0.0, 0.0, 0.0]);
        assert_eq!(hermite(1.0), [0.0, 0.0, 1.0, 0.0]);
        assert_eq!(hermite_slopes(0.0), [0.0, 1.0, 0.0, 0.0]);
        assert_eq!(hermite_slopes(1.0), [0.0, 0.0, 0.0, 1.0]);
        let h = 1e-6;
        let (bp, bm, d) = (hermite(0.3 + h), hermite(0.3 - h), hermite_slopes(0.3));
        for i in 0..4 {
            assert!((d[i] - (bp[i] - bm[i]) / (2.0 * h)).abs() < 1e-9);
        }
    }

    #[test]
    fn crossing_directions() {
        assert!(crosses(1, -1.0, 0.0) && !crosses(1, 0.0, 1.0) && !crosses(1, 1.0, -1.0));
        assert!(crosses(-1, 1.0, 0.0) && !crosses(-1, -1.0, 1.0));
        assert!(crosses(0, 1.0, -1.0) && crosses(0, -1.0, 1.0) && !crosses(0, 1.0, 2.0));
    }
}
