//! The budgeted (binomial) store: visiting order, bitwise states, bytes, and
//! recomputation equal to the optimum found by exhaustive search.

mod common;

use std::collections::VecDeque;

use common::Affine;
use revode_checkpoint::binomial::{min_recomputed, min_slots, slot_bytes};
use revode_checkpoint::{CheckpointError, CheckpointStore, Schedule, StoreStats};

/// Runs forward and reverse with a budget of `slots` slots; checks observed
/// and visited states against the reference, returns the stats.
fn sweep_budget(n: usize, slots: usize, len: usize) -> StoreStats {
    let budget = slots * slot_bytes(len);
    let mut chain = Affine::new(len, n);
    let reference = chain.reference(n);
    let mut store = CheckpointStore::new(Schedule::BudgetBytes(budget), n, len).unwrap();
    let mut seen = Vec::new();
    let mut last = vec![0.0; len];
    store
        .forward(&mut chain, &reference[0], &mut last, |k, x| {
            assert_eq!(k, seen.len());
            seen.push(x.to_vec());
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, reference, "forward n={n} slots={slots}");
    assert_eq!(last, reference[n]);
    assert_eq!(chain.advances, n);
    let mut expect = n;
    store
        .reverse(&mut chain, |k, x| {
            assert_eq!(k + 1, expect, "visit order n={n} slots={slots}");
            expect = k;
            assert!(x == &reference[k][..], "x_{k} differs n={n} slots={slots}");
            Ok(())
        })
        .unwrap();
    assert_eq!(expect, 0, "every state visited");
    let stats = store.stats();
    assert_eq!(stats.recomputed_steps, chain.advances - n);
    assert_eq!(stats.backward_steps, n);
    assert_eq!(stats.forward_steps, n);
    assert!(stats.peak_bytes <= budget, "{stats:?} over {budget}");
    assert_eq!(
        stats.peak_bytes,
        Schedule::BudgetBytes(budget).bytes_needed(n, len)
    );
    stats
}

/// Fewest advances that visit x_{n−1} … x_0 with `slots` slots, by 0-1 BFS
/// over (held states, next to visit). Any strategy: drop a held state
/// (free), step a held x_k into an empty slot to get x_{k+1} (cost 1),
/// visit the next state if held (free). None if impossible.
fn brute_force_advances(n: usize, slots: usize) -> Option<usize> {
    assert!((1..=16).contains(&n));
    let idx = |mask: u32, v: usize| mask as usize * n + v;
    let mut dist = vec![usize::MAX; (1 << n) * n];
    let mut queue = VecDeque::new();
    dist[idx(1, n - 1)] = 0;
    queue.push_back((1u32, n - 1));
    while let Some((mask, v)) = queue.pop_front() {
        let d = dist[idx(mask, v)];
        if mask & (1 << v) != 0 {
            if v == 0 {
                return Some(d);
            }
            // Visit x_v; states above v are of no further use.
            let next = mask & ((1 << v) - 1);
            if d < dist[idx(next, v - 1)] {
                dist[idx(next, v - 1)] = d;
                queue.push_front((next, v - 1));
            }
        }
        for k in 0..=v {
            if mask & (1 << k) == 0 {
                continue;
            }
            let dropped = mask & !(1 << k);
            if dropped != 0 && d < dist[idx(dropped, v)] {
                dist[idx(dropped, v)] = d;
                queue.push_front((dropped, v));
            }
            let room = (mask.count_ones() as usize) < slots;
            if k < v && room && mask & (1 << (k + 1)) == 0 {
                let stepped = mask | (1 << (k + 1));
                if d + 1 < dist[idx(stepped, v)] {
                    dist[idx(stepped, v)] = d + 1;
                    queue.push_back((stepped, v));
                }
            }
        }
    }
    None
}

#[test]
fn recomputation_is_optimal_by_exhaustive_search() {
    for n in 1..=12 {
        for slots in 1..=6 {
            let brute = brute_force_advances(n, slots).map(|a| a - (n - 1));
            let formula = min_recomputed(n, slots).map(|r| r as usize);
            assert_eq!(formula, brute, "closed form vs search, n={n} slots={slots}");
            if slots >= min_slots(n) {
                let stats = sweep_budget(n, slots, 3);
                assert_eq!(Some(stats.recomputed_steps), brute, "n={n} slots={slots}");
            }
        }
    }
}

#[test]
fn large_chains_meet_the_closed_form() {
    for n in [2, 3, 50, 1000, 4321] {
        for slots in [3, 4, 5, 8, 17, 64, 300, 5000] {
            if slots < min_slots(n) {
                continue;
            }
            let stats = sweep_budget(n, slots.min(n.max(1)), 2);
            let optimum = min_recomputed(n, slots.min(n)).unwrap();
            assert_eq!(
                stats.recomputed_steps as u128, optimum,
                "n={n} slots={slots}"
            );
        }
    }
    // Zero steps: nothing to visit.
    let stats = sweep_budget(0, 1, 2);
    assert_eq!(stats.backward_steps, 0);
}

#[test]
fn a_budget_for_every_state_recomputes_nothing() {
    let stats = sweep_budget(200, 200, 4);
    assert_eq!(stats.recomputed_steps, 0);
    assert_eq!(stats.checkpoints_kept, 200);
}

#[test]
fn budget_below_the_minimum_is_an_error() {
    let slot = slot_bytes(4);
    for (n, slots) in [(1000, 3), (2, 2), (1, 1)] {
        let minimum = slots * slot;
        assert!(CheckpointStore::new(Schedule::BudgetBytes(minimum), n, 4).is_ok());
        assert_eq!(
            CheckpointStore::new(Schedule::BudgetBytes(minimum - 1), n, 4).unwrap_err(),
            CheckpointError::BudgetTooSmall {
                budget: minimum - 1,
                minimum,
                slots,
                slot_bytes: slot,
                beside_bytes: 0
            }
        );
    }
    let msg = CheckpointStore::new(Schedule::BudgetBytes(100), 1000, 4)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("at least 120 bytes"), "{msg}");
}
