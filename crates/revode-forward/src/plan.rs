//! Step plans of fixed-step solves: where each step starts, how long it is
//! and which parameters it uses.
//!
//! [`UniformPlan`] is the plain grid with one parameter vector: the hot
//! loops monomorphised on it are the loops of a solve without stimulus.
//! [`SwitchedPlan`] splits the grid at the switch times of a stimulus: the
//! lattice t0 + j·dt stays (so observation times stay on it), and a switch
//! time strictly inside a step cuts that step in two. Every step lies in one
//! segment and uses that segment's parameters, so RK4's last stage at a
//! segment's end sees the segment's value (the left limit).

use std::cell::Cell;

use crate::{ParamSegments, TimeGrid};

/// How far (relative to dt) a time may sit from a grid time and count as on it.
pub const ON_GRID_RTOL: f64 = 1e-9;

/// The times of a fixed-step solve: states u_0 … u_N at `time(0) = t0` …
/// `time(N) = t1`.
pub trait StepTimes {
    /// Number of steps N.
    fn n_steps(&self) -> usize;
    fn t0(&self) -> f64;
    fn t1(&self) -> f64;
    /// The nominal step.
    fn dt(&self) -> f64;
    /// Time of state u_k (`time(N) = t1`).
    fn time(&self, k: usize) -> f64;
    /// The state index whose time is `t` (within [`ON_GRID_RTOL`]·dt), if any.
    fn index_of(&self, t: f64) -> Option<usize>;
}

/// The steps of a fixed-step solve with their parameters.
pub trait StepPlan: StepTimes {
    /// `(t_k, h_k, parameters)` of step k (from u_k to u_{k+1}).
    fn step(&self, k: usize) -> (f64, f64, &[f64]);
    /// `true` when step k (k ≥ 1) starts a new parameter segment.
    fn switches_at(&self, k: usize) -> bool;
    /// j when state k sits on the lattice time t0 + j·dt (or is the last);
    /// `None` for a switch time that cut a step.
    fn lattice_index(&self, k: usize) -> Option<usize>;
    /// Parameters whose protocol begins with step k: their value in `params`
    /// acts only on the steps before k.
    fn protocol_begins(&self, k: usize) -> &[usize];
}

impl<T: StepTimes + ?Sized> StepTimes for &T {
    #[inline(always)]
    fn n_steps(&self) -> usize {
        (**self).n_steps()
    }
    #[inline(always)]
    fn t0(&self) -> f64 {
        (**self).t0()
    }
    #[inline(always)]
    fn t1(&self) -> f64 {
        (**self).t1()
    }
    #[inline(always)]
    fn dt(&self) -> f64 {
        (**self).dt()
    }
    #[inline(always)]
    fn time(&self, k: usize) -> f64 {
        (**self).time(k)
    }
    fn index_of(&self, t: f64) -> Option<usize> {
        (**self).index_of(t)
    }
}

impl<T: StepPlan + ?Sized> StepPlan for &T {
    #[inline(always)]
    fn step(&self, k: usize) -> (f64, f64, &[f64]) {
        (**self).step(k)
    }
    #[inline(always)]
    fn switches_at(&self, k: usize) -> bool {
        (**self).switches_at(k)
    }
    #[inline(always)]
    fn lattice_index(&self, k: usize) -> Option<usize> {
        (**self).lattice_index(k)
    }
    #[inline(always)]
    fn protocol_begins(&self, k: usize) -> &[usize] {
        (**self).protocol_begins(k)
    }
}

impl StepTimes for TimeGrid {
    #[inline(always)]
    fn n_steps(&self) -> usize {
        TimeGrid::n_steps(self)
    }
    #[inline(always)]
    fn t0(&self) -> f64 {
        self.t0
    }
    #[inline(always)]
    fn t1(&self) -> f64 {
        self.t1
    }
    #[inline(always)]
    fn dt(&self) -> f64 {
        self.dt
    }
    #[inline(always)]
    fn time(&self, k: usize) -> f64 {
        TimeGrid::time(self, k)
    }
    fn index_of(&self, t: f64) -> Option<usize> {
        let n = TimeGrid::n_steps(self);
        let k = if t == self.t1 {
            n
        } else {
            (((t - self.t0) / self.dt).round().max(0.0) as usize).min(n)
        };
        ((TimeGrid::time(self, k) - t).abs() <= ON_GRID_RTOL * self.dt).then_some(k)
    }
}

/// The plain grid, one parameter vector throughout.
#[derive(Debug, Clone, Copy)]
pub struct UniformPlan<'a> {
    pub grid: TimeGrid,
    pub params: &'a [f64],
}

impl StepTimes for UniformPlan<'_> {
    #[inline(always)]
    fn n_steps(&self) -> usize {
        self.grid.n_steps()
    }
    #[inline(always)]
    fn t0(&self) -> f64 {
        self.grid.t0
    }
    #[inline(always)]
    fn t1(&self) -> f64 {
        self.grid.t1
    }
    #[inline(always)]
    fn dt(&self) -> f64 {
        self.grid.dt
    }
    #[inline(always)]
    fn time(&self, k: usize) -> f64 {
        self.grid.time(k)
    }
    fn index_of(&self, t: f64) -> Option<usize> {
        StepTimes::index_of(&self.grid, t)
    }
}

impl StepPlan for UniformPlan<'_> {
    #[inline(always)]
    fn step(&self, k: usize) -> (f64, f64, &[f64]) {
        (self.grid.time(k), self.grid.step_len(k), self.params)
    }
    #[inline(always)]
    fn switches_at(&self, _k: usize) -> bool {
        false
    }
    #[inline(always)]
    fn lattice_index(&self, k: usize) -> Option<usize> {
        Some(k)
    }
    #[inline(always)]
    fn protocol_begins(&self, _k: usize) -> &[usize] {
        &[]
    }
}

/// One parameter segment laid on the grid.
#[derive(Debug, Clone)]
struct GridSegment {
    /// Index of its first step.
    first: usize,
    /// Steps inserted before it and at its start: step k of the segment
    /// (past an off-lattice start) is lattice step k − shift.
    shift: usize,
    /// Its start time when it is off the lattice (a step was cut there).
    start: Option<f64>,
    /// Index into the [`ParamSegments`].
    params: usize,
    /// Parameters whose protocol begins with this segment.
    begins: Vec<usize>,
}

/// The grid split at the switch times of [`ParamSegments`].
#[derive(Debug, Clone)]
pub struct SwitchedPlan<'a> {
    base: TimeGrid,
    segments: &'a ParamSegments,
    /// The segments with at least one step, then a sentinel at N.
    segs: Vec<GridSegment>,
    n_steps: usize,
    /// The segment of the last lookup: steps come in runs.
    cursor: Cell<usize>,
}

/// Where a time falls on the lattice.
enum Spot {
    /// On lattice point j (within [`ON_GRID_RTOL`]·dt).
    Point(usize),
    /// Strictly inside lattice step b.
    Inside(usize),
}

fn locate(grid: &TimeGrid, t: f64) -> Spot {
    let n = grid.n_steps();
    let tol = ON_GRID_RTOL * grid.dt;
    let mut b = (((t - grid.t0) / grid.dt).floor().max(0.0) as usize).min(n - 1);
    while b > 0 && grid.time(b) > t {
        b -= 1;
    }
    while b + 1 < n && grid.time(b + 1) <= t {
        b += 1;
    }
    if t - grid.time(b) <= tol {
        Spot::Point(b)
    } else if grid.time(b + 1) - t <= tol {
        Spot::Point(b + 1)
    } else {
        Spot::Inside(b)
    }
}

impl<'a> SwitchedPlan<'a> {
    /// Lays `segments` (whose first segment starts at `grid.t0`) on `grid`.
    /// A switch within [`ON_GRID_RTOL`]·dt of a lattice time happens there.
    pub fn new(grid: TimeGrid, segments: &'a ParamSegments) -> Self {
        let n_base = grid.n_steps();
        let mut segs: Vec<GridSegment> = Vec::with_capacity(segments.len() + 1);
        let mut inserted = 0;
        for s in 0..segments.len() {
            let spot = if s == 0 {
                Spot::Point(0)
            } else {
                locate(&grid, segments.start(s))
            };
            let (first, shift, start) = match spot {
                // A switch on t1 acts on no step.
                Spot::Point(j) if j == n_base => break,
                Spot::Point(j) => (j + inserted, inserted, None),
                Spot::Inside(b) => {
                    inserted += 1;
                    (b + inserted, inserted, Some(segments.start(s)))
                }
            };
            match segs.last_mut() {
                // Two switches on one lattice point: the later one holds.
                Some(last) if last.first == first => {
                    last.params = s;
                    last.begins.extend_from_slice(segments.begins(s));
                }
                _ => segs.push(GridSegment {
                    first,
                    shift,
                    start,
                    params: s,
                    begins: segments.begins(s).to_vec(),
                }),
            }
        }
        let n_steps = n_base + inserted;
        let last_params = segs.last().map_or(0, |g| g.params);
        segs.push(GridSegment {
            first: n_steps,
            shift: inserted,
            start: None,
            params: last_params,
            begins: Vec::new(),
        });
        SwitchedPlan {
            base: grid,
            segments,
            segs,
            n_steps,
            cursor: Cell::new(0),
        }
    }

    /// Number of parameter segments that have steps.
    pub fn n_segments(&self) -> usize {
        self.segs.len() - 1
    }

    /// The segment holding step `k < N`.
    #[inline]
    fn segment_of(&self, k: usize) -> usize {
        let c = self.cursor.get();
        if self.segs[c].first <= k && k < self.segs[c + 1].first {
            return c;
        }
        let s = self.segs[..self.segs.len() - 1].partition_point(|g| g.first <= k) - 1;
        self.cursor.set(s);
        s
    }

    /// Start time of segment `s`.
    fn segment_time(&self, s: usize) -> f64 {
        let g = &self.segs[s];
        g.start.unwrap_or_else(|| self.base.time(g.first - g.shift))
    }
}

impl StepTimes for SwitchedPlan<'_> {
    fn n_steps(&self) -> usize {
        self.n_steps
    }
    fn t0(&self) -> f64 {
        self.base.t0
    }
    fn t1(&self) -> f64 {
        self.base.t1
    }
    fn dt(&self) -> f64 {
        self.base.dt
    }
    #[inline]
    fn time(&self, k: usize) -> f64 {
        if k >= self.n_steps {
            return self.base.t1;
        }
        let g = &self.segs[self.segment_of(k)];
        match g.start {
            Some(t) if k == g.first => t,
            _ => self.base.time(k - g.shift),
        }
    }
    fn index_of(&self, t: f64) -> Option<usize> {
        if t == self.base.t1 {
            return Some(self.n_steps);
        }
        let tol = ON_GRID_RTOL * self.base.dt;
        let len = self.segs.len() - 1;
        let s = (0..len)
            .take_while(|&s| self.segment_time(s) <= t + tol)
            .last()?;
        let g = &self.segs[s];
        let on_lattice = ((t - self.base.t0) / self.base.dt).round().max(0.0) as usize + g.shift;
        [g.first, on_lattice]
            .into_iter()
            .find(|&k| k <= self.n_steps && (self.time(k) - t).abs() <= tol)
    }
}

impl StepPlan for SwitchedPlan<'_> {
    #[inline]
    fn step(&self, k: usize) -> (f64, f64, &[f64]) {
        let s = self.segment_of(k);
        let (g, next) = (&self.segs[s], &self.segs[s + 1]);
        let j = k - g.shift;
        let start = if k == g.first { g.start } else { None };
        let t = start.unwrap_or_else(|| self.base.time(j));
        let end = if k + 1 == next.first {
            next.start
        } else {
            None
        };
        let h = match (start, end) {
            (_, Some(end)) => end - t,
            (Some(_), None) => self.base.time(j + 1) - t,
            (None, None) => self.base.step_len(j),
        };
        (t, h, self.segments.params(g.params))
    }

    #[inline]
    fn switches_at(&self, k: usize) -> bool {
        k > 0 && k < self.n_steps && self.segs[self.segment_of(k)].first == k
    }

    fn lattice_index(&self, k: usize) -> Option<usize> {
        if k >= self.n_steps {
            return Some(self.base.n_steps());
        }
        let g = &self.segs[self.segment_of(k)];
        match g.start {
            Some(_) if k == g.first => None,
            _ => Some(k - g.shift),
        }
    }

    fn protocol_begins(&self, k: usize) -> &[usize] {
        if k >= self.n_steps {
            return &[];
        }
        let g = &self.segs[self.segment_of(k)];
        if g.first == k {
            &g.begins
        } else {
            &[]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Stimulus, StimulusTrack};

    fn segments(switches: &[[f64; 2]], t1: f64) -> ParamSegments {
        let stim = Stimulus {
            tracks: vec![StimulusTrack {
                param: 0,
                switches: switches.to_vec(),
            }],
        };
        ParamSegments::new(&[1.0], &stim, 0.0, t1).unwrap()
    }

    fn all_steps(plan: &SwitchedPlan<'_>) -> Vec<(f64, f64, f64)> {
        (0..plan.n_steps())
            .map(|k| {
                let (t, h, p) = plan.step(k);
                (t, h, p[0])
            })
            .collect()
    }

    #[test]
    fn on_lattice_switches_keep_the_grid_bitwise() {
        let grid = TimeGrid::new(0.0, 1.0, 0.1).unwrap();
        let seg = segments(&[[0.0, 5.0], [0.3, 6.0], [0.7, 7.0]], 1.0);
        let plan = SwitchedPlan::new(grid, &seg);
        assert_eq!(plan.n_steps(), 10);
        for k in 0..10 {
            let (t, h, p) = plan.step(k);
            assert_eq!((t, h), (grid.time(k), grid.step_len(k)));
            let expected = if k < 3 {
                5.0
            } else if k < 7 {
                6.0
            } else {
                7.0
            };
            assert_eq!(p[0], expected, "step {k}");
        }
        assert!(plan.switches_at(3) && plan.switches_at(7));
        assert!(!plan.switches_at(0) && !plan.switches_at(4));
        assert_eq!(plan.protocol_begins(0), &[0]);
        assert!(plan.protocol_begins(3).is_empty());
    }

    #[test]
    fn off_lattice_switches_cut_their_step() {
        let grid = TimeGrid::new(0.0, 1.0, 0.25).unwrap();
        // Two cuts inside step 1 ([0.25, 0.5]), one inside step 3.
        let seg = segments(&[[0.3, 2.0], [0.4, 3.0], [0.8, 4.0]], 1.0);
        let plan = SwitchedPlan::new(grid, &seg);
        assert_eq!(plan.n_steps(), 7);
        let steps = all_steps(&plan);
        let expected = [
            (0.0, 0.25, 1.0),
            (0.25, 0.3 - 0.25, 1.0),
            (0.3, 0.4 - 0.3, 2.0),
            (0.4, 0.5 - 0.4, 3.0),
            (0.5, 0.25, 3.0),
            (0.75, 0.8 - 0.75, 3.0),
            (0.8, 1.0 - 0.8, 4.0),
        ];
        assert_eq!(steps, expected);
        for k in 0..7 {
            assert_eq!(plan.time(k), expected[k].0);
        }
        assert_eq!(plan.time(7), 1.0);
        // Lattice times and switch times are states; others are not.
        assert_eq!(plan.index_of(0.5), Some(4));
        assert_eq!(plan.index_of(0.3), Some(2));
        assert_eq!(plan.index_of(0.75), Some(5));
        assert_eq!(plan.index_of(1.0), Some(7));
        assert_eq!(plan.index_of(0.6), None);
        assert!(plan.switches_at(2) && plan.switches_at(3) && plan.switches_at(6));
        let lattice: Vec<_> = (0..=7).map(|k| plan.lattice_index(k)).collect();
        let expected_lattice = [
            Some(0),
            Some(1),
            None,
            None,
            Some(2),
            Some(3),
            None,
            Some(4),
        ];
        assert_eq!(lattice, expected_lattice);
        assert_eq!(plan.protocol_begins(2), &[0]);
        // Lookups in any order agree (the cursor is only a hint).
        for k in [6, 0, 3, 5, 1, 4, 2] {
            assert_eq!(plan.step(k), plan.step(k));
            assert_eq!(
                (plan.step(k).0, plan.step(k).1),
                (expected[k].0, expected[k].1)
            );
        }
    }

    #[test]
    fn a_switch_at_t1_or_inside_the_last_partial_step() {
        let grid = TimeGrid::new(0.0, 1.05, 0.25).unwrap();
        let seg = segments(&[[1.0, 2.0], [1.05, 3.0]], 1.05);
        let plan = SwitchedPlan::new(grid, &seg);
        assert_eq!(plan.n_steps(), 5);
        let (t, h, p) = plan.step(4);
        assert_eq!((t, p[0]), (1.0, 2.0));
        assert!((t + h - 1.05).abs() < 1e-15);
        let seg = segments(&[[1.02, 2.0]], 1.05);
        let plan = SwitchedPlan::new(grid, &seg);
        assert_eq!(plan.n_steps(), 6);
        assert_eq!(plan.step(5).0, 1.02);
        assert_eq!(plan.step(4).1, 1.02 - 1.0);
        assert_eq!(plan.step(5).1, 1.05 - 1.02);
    }
}
