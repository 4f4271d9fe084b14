//! The state Jacobian `∂f/∂u`, symbolically, with its sparsity pattern.
//!
//! **Method: reverse mode per row, each row restricted to its own cone,
//! with the gradients of shared subexpressions accumulated once.** For row
//! `i` the adjoint pass of [`crate::diff`] runs with the seed `f̄ᵢ = 1` over
//! the nodes `fᵢ` depends on (its cone), never over the rest of the DAG; the
//! adjoints that reach the state leaves are the row's entries. A node
//! shared by several expressions (two or more parents, or a parent and a
//! row), depending on at most [`BARRIER_SUPPORT`] states, is a *barrier*: its
//! gradient `∇b = (∂b/∂u_j)_j` is derived once, by the same pass seeded at
//! `b`, and a pass that reaches `b` with adjoint `b̄` adds `b̄ · ∂b/∂u_j` to
//! each of those entries instead of walking `b`'s cone again. So the work
//! is proportional to the nonzeros times the size of the expressions local
//! to them, never to `n` times the DAG: a rate function used by two rows
//! is differentiated once, and a large expression of one state feeding
//! many rows costs its size once plus one product per row.
//!
//! Forward mode per column would walk the cone *above* each state, which is
//! as local for a cable but walks a whole sum `Σₖ xₖ` once per term; plain
//! reverse mode per row re-walks shared subexpressions once per row. The
//! barriers take the better of the two where they differ.
//!
//! **Pattern.** Row `i` has column `j` iff the derivative of `fᵢ` with respect
//! to `u_j` is not the constant 0: iff `u_j` is reachable from `fᵢ` through
//! operands a derivative flows to ([`crate::diff::derivative_operands`]: not
//! through `heav`, `sign`, comparisons, `& |` or a select's condition, whose
//! partials are 0 wherever they exist) and the symbolic entry did not fold
//! to the constant 0. Everything here is iterative (explicit stacks and
//! loops over ids): no recursion, whatever the expressions' depth.

use revode_model::SparsityPattern;

use crate::dag::{Dag, Id, Node};
use crate::diff::{derivative_operands, propagate};

/// Largest number of states a shared node may depend on to have its
/// gradient accumulated once (a barrier). Wider nodes are walked by each
/// pass that reaches them (their rows have at least as many entries).
pub const BARRIER_SUPPORT: usize = 16;

/// The Jacobian's entries as DAG nodes, in the pattern's (column-major)
/// order.
#[derive(Debug, Clone)]
pub struct JacobianExprs {
    pub pattern: SparsityPattern,
    pub entries: Vec<Id>,
    /// Shared nodes whose gradient was accumulated once.
    pub barriers: usize,
}

/// A node's state support, capped: `Narrow(start, len)` into the arena, or
/// `Wide` beyond [`BARRIER_SUPPORT`] states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Support {
    Unknown,
    Narrow(u32, u32),
    Wide,
}

/// Derives `∂f/∂u` for the rows `rhs` (one per state) in `dag`.
pub fn derive(dag: &mut Dag, rhs: &[Id]) -> JacobianExprs {
    let n = rhs.len();
    let n0 = dag.len();
    // Depends on a state through operands a derivative flows to.
    let mut on_state = vec![false; n0];
    for id in 0..n0 {
        let node = dag.node(id as Id);
        on_state[id] = match node {
            Node::State(_) => true,
            _ => derivative_operands(node).any(|c| on_state[c as usize]),
        };
    }
    // The rows' cones and, within them, how many times each node is used.
    let mut uses = vec![0u32; n0];
    for &f in rhs {
        if on_state[f as usize] {
            uses[f as usize] += 1;
        }
    }
    for id in (0..n0).rev() {
        if uses[id] > 0 {
            for c in derivative_operands(dag.node(id as Id)) {
                if on_state[c as usize] {
                    uses[c as usize] += 1;
                }
            }
        }
    }
    let supports = capped_supports(dag, &uses, &on_state);
    let is_barrier = |id: usize| {
        uses[id] >= 2
            && !matches!(dag.node(id as Id), Node::State(_))
            && matches!(supports.of[id], Support::Narrow(..))
    };
    let barrier: Vec<bool> = (0..n0).map(is_barrier).collect();

    let mut pass = Pass::new(n0, n);
    // Barrier gradients, operands first (ids are topological).
    let mut grad_at = vec![(0u32, 0u32); n0];
    let mut grads: Vec<(u32, Id)> = Vec::new();
    let mut barriers = 0;
    for id in 0..n0 {
        if barrier[id] {
            let entries = pass.run(dag, id as Id, &on_state, &barrier, &grad_at, &grads);
            grad_at[id] = (grads.len() as u32, entries.len() as u32);
            grads.extend_from_slice(&entries);
            barriers += 1;
        }
    }
    // The rows.
    let mut triples: Vec<(u32, u32, Id)> = Vec::new();
    for (i, &f) in rhs.iter().enumerate() {
        if !on_state[f as usize] {
            continue;
        }
        let entries = if barrier[f as usize] {
            let (start, len) = grad_at[f as usize];
            grads[start as usize..(start + len) as usize].to_vec()
        } else {
            pass.run(dag, f, &on_state, &barrier, &grad_at, &grads)
        };
        triples.extend(entries.into_iter().map(|(j, e)| (i as u32, j, e)));
    }
    // Column-major order (a counting sort keeps rows increasing).
    let mut col_ptr = vec![0usize; n + 1];
    for &(_, j, _) in &triples {
        col_ptr[j as usize + 1] += 1;
    }
    for j in 0..n {
        col_ptr[j + 1] += col_ptr[j];
    }
    let mut next = col_ptr.clone();
    let mut row_idx = vec![0usize; triples.len()];
    let mut entries = vec![0 as Id; triples.len()];
    for &(i, j, e) in &triples {
        let at = &mut next[j as usize];
        row_idx[*at] = i as usize;
        entries[*at] = e;
        *at += 1;
    }
    let pattern = SparsityPattern::new(n, col_ptr, row_idx).expect("built column by column");
    JacobianExprs {
        pattern,
        entries,
        barriers,
    }
}

/// Supports of the nodes in the rows' cones, capped at [`BARRIER_SUPPORT`].
struct Supports {
    of: Vec<Support>,
}

fn capped_supports(dag: &Dag, uses: &[u32], on_state: &[bool]) -> Supports {
    let n0 = dag.len().min(uses.len());
    let mut of = vec![Support::Unknown; n0];
    let mut arena: Vec<u32> = Vec::new();
    let mut buf: Vec<u32> = Vec::new();
    for id in 0..n0 {
        if uses[id] == 0 {
            continue;
        }
        let node = dag.node(id as Id);
        if let Node::State(j) = node {
            of[id] = Support::Narrow(arena.len() as u32, 1);
            arena.push(j);
            continue;
        }
        buf.clear();
        let mut wide = false;
        for c in derivative_operands(node) {
            if !on_state[c as usize] {
                continue;
            }
            match of[c as usize] {
                Support::Narrow(s, l) => {
                    buf.extend_from_slice(&arena[s as usize..(s + l) as usize])
                }
                Support::Wide => wide = true,
                Support::Unknown => unreachable!("operands of a cone node are in the cone"),
            }
        }
        buf.sort_unstable();
        buf.dedup();
        of[id] = if wide || buf.len() > BARRIER_SUPPORT {
            Support::Wide
        } else {
            let s = Support::Narrow(arena.len() as u32, buf.len() as u32);
            arena.extend_from_slice(&buf);
            s
        };
    }
    Supports { of }
}

/// Scratch of the per-target reverse passes, made once: stamps instead of
/// clearing, so a pass costs the size of its region, not of the DAG.
struct Pass {
    stamp: u32,
    visited: Vec<u32>,
    adjoint: Vec<(u32, Id)>,
    region: Vec<Id>,
    stack: Vec<Id>,
    pushed: Vec<(Id, Id)>,
    /// Per state: (stamp, position in `result`).
    slot: Vec<(u32, u32)>,
    result: Vec<(u32, Id)>,
}

impl Pass {
    fn new(n0: usize, n_states: usize) -> Pass {
        Pass {
            stamp: 0,
            visited: vec![0; n0],
            adjoint: vec![(0, 0); n0],
            region: Vec::new(),
            stack: Vec::new(),
            pushed: Vec::new(),
            slot: vec![(0, 0); n_states],
            result: Vec::new(),
        }
    }

    /// `∂target/∂u_j` for every state `j` it depends on (sorted by `j`,
    /// constant-0 entries dropped): reverse mode over `target`'s cone,
    /// stopping at states and at other barriers (whose gradients are in
    /// `grads`).
    fn run(
        &mut self,
        dag: &mut Dag,
        target: Id,
        on_state: &[bool],
        barrier: &[bool],
        grad_at: &[(u32, u32)],
        grads: &[(u32, Id)],
    ) -> Vec<(u32, Id)> {
        self.stamp += 1;
        let stamp = self.stamp;
        // The region: the cone down to states and other barriers.
        self.region.clear();
        self.stack.clear();
        self.stack.push(target);
        self.visited[target as usize] = stamp;
        while let Some(v) = self.stack.pop() {
            self.region.push(v);
            let node = dag.node(v);
            if matches!(node, Node::State(_)) || (v != target && barrier[v as usize]) {
                continue;
            }
            for c in derivative_operands(node) {
                if on_state[c as usize] && self.visited[c as usize] != stamp {
                    self.visited[c as usize] = stamp;
                    self.stack.push(c);
                }
            }
        }
        // Parents before operands: descending ids.
        self.region.sort_unstable_by(|a, b| b.cmp(a));
        let one = dag.constant_node(1.0);
        self.adjoint[target as usize] = (stamp, one);
        self.result.clear();
        for k in 0..self.region.len() {
            let v = self.region[k];
            let (s, adj) = self.adjoint[v as usize];
            if s != stamp {
                // every contribution folded to 0
                continue;
            }
            match dag.node(v) {
                Node::State(j) => self.add_entry(dag, j, adj),
                _ if v != target && barrier[v as usize] => {
                    let (start, len) = grad_at[v as usize];
                    for &(j, d) in &grads[start as usize..(start + len) as usize] {
                        let c = dag.mul(adj, d);
                        self.add_entry(dag, j, c);
                    }
                }
                _ => {
                    // Collected first: the pass borrows the DAG.
                    let mut pushed = std::mem::take(&mut self.pushed);
                    pushed.clear();
                    propagate(
                        dag,
                        v,
                        adj,
                        |_, c| on_state[c as usize],
                        |c, contribution| pushed.push((c, contribution)),
                    );
                    // Summed in the order pushed, as the vjp's adjoints are.
                    for &(c, contribution) in &pushed {
                        let (s, sum) = self.adjoint[c as usize];
                        self.adjoint[c as usize] = if s == stamp {
                            (stamp, dag.add(sum, contribution))
                        } else {
                            (stamp, contribution)
                        };
                    }
                    self.pushed = pushed;
                }
            }
        }
        let mut out: Vec<(u32, Id)> = self
            .result
            .iter()
            .copied()
            .filter(|&(_, e)| dag.constant(e) != Some(0.0))
            .collect();
        out.sort_unstable_by_key(|&(j, _)| j);
        out
    }

    fn add_entry(&mut self, dag: &mut Dag, j: u32, c: Id) {
        let (s, at) = self.slot[j as usize];
        if s == self.stamp {
            let e = &mut self.result[at as usize].1;
            *e = dag.add(*e, c);
        } else {
            self.slot[j as usize] = (self.stamp, self.result.len() as u32);
            self.result.push((j, c));
        }
    }
}
