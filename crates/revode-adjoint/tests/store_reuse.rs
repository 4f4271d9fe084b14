//! A store's slots are reused by the next gradient on the same thread
//! (revode_checkpoint::spare): gradients stay bitwise those of a fresh
//! store, whatever ran before with whatever size.

use revode_adjoint::{gradient_fixed, FixedProblem, Gradient, Loss};
use revode_checkpoint::{spare, Schedule};
use revode_forward::{FixedMethod, TimeGrid};
use revode_model::{HodgkinHuxley, Model};

fn gradient(t1: f64, method: FixedMethod, schedule: Schedule, loss: &Loss) -> Gradient {
    let m = HodgkinHuxley;
    let (u0, p) = (m.default_u0(), m.default_params());
    let problem = FixedProblem {
        u0: &u0,
        params: &p,
        grid: TimeGrid::new(0.0, t1, 0.01).unwrap(),
        method,
    };
    gradient_fixed(&m, &problem, loss, schedule).unwrap()
}

/// Bitwise: loss, dL/dp, dL/du0 and the counters (not the timings).
fn assert_same(a: &Gradient, b: &Gradient, what: &str) {
    assert_eq!(a.loss.to_bits(), b.loss.to_bits(), "{what}: loss");
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a.gradient), bits(&b.gradient), "{what}: dL/dp");
    assert_eq!(bits(&a.gradient_u0), bits(&b.gradient_u0), "{what}: dL/du0");
    let counters = |g: &Gradient| {
        let s = g.stats;
        (
            s.steps,
            s.checkpoints_kept,
            s.recomputed_steps,
            s.peak_store_bytes,
        )
    };
    assert_eq!(counters(a), counters(b), "{what}: counters");
}

#[test]
fn gradients_with_a_reused_store_are_bitwise_those_of_a_fresh_one() {
    let cases = [
        (100.0, FixedMethod::Euler, Schedule::All),
        (30.0, FixedMethod::Rk4, Schedule::All),
        (100.0, FixedMethod::Euler, Schedule::Every(37)),
        (7.0, FixedMethod::Euler, Schedule::All),
        (250.0, FixedMethod::Rk4, Schedule::Every(100)),
        (100.0, FixedMethod::Euler, Schedule::BudgetBytes(4096)),
    ];
    let losses = [
        Loss::Final {
            weights: vec![1.0, 0.5, -2.0, 3.0],
        },
        Loss::AllSteps {
            weights: vec![1.0; 4],
        },
    ];
    // Each on a fresh thread: its store is newly allocated.
    let fresh: Vec<Vec<Gradient>> = losses
        .iter()
        .map(|loss| {
            cases
                .iter()
                .map(|&(t1, method, schedule)| {
                    std::thread::scope(|s| {
                        s.spawn(|| gradient(t1, method, schedule, loss))
                            .join()
                            .unwrap()
                    })
                })
                .collect()
        })
        .collect();
    // Then all on this thread, longer and shorter chains in turn, twice,
    // so that every store but the first finds a used block.
    spare::release_spare();
    for round in 0..2 {
        for (loss, fresh) in losses.iter().zip(&fresh) {
            for (&(t1, method, schedule), expected) in cases.iter().zip(fresh) {
                let g = gradient(t1, method, schedule, loss);
                let what = format!(
                    "round {round}, {t1} ms {method:?} {schedule:?} {}",
                    loss.name()
                );
                assert_same(&g, expected, &what);
            }
        }
    }
    // The largest block (10 000 states of 4, the first case's) is kept.
    assert_eq!(spare::spare_bytes(), 10_000 * 4 * 8);
}
