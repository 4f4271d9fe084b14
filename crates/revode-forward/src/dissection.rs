//! A nested-dissection column ordering for the sparse LU, revode's own,
//! built on level structures (George's method).
//!
//! Why a second ordering beside AMD: a sparse substitution's time is its
//! entry count plus the longest chain of dependent columns, each link a
//! load of the value the previous link just stored. AMD eliminates an HH
//! cable's voltages from one end to the other, so every solve walks a
//! chain as long as the cable. Dissecting the graph at a middle vertex,
//! recursively, leaves chains of the depth of the dissection (log₂ of the
//! length) and independent pieces an out-of-order core runs side by side,
//! for a little more fill. Which ordering a matrix gets is decided on its
//! factors ([`crate::sparse_lu`]).

use revode_model::SparsityPattern;

/// Parts of at most this many vertices are not dissected further.
const LEAF_SIZE: usize = 16;

/// The symmetric adjacency of a pattern `A + Aᵀ` (no self-loops): vertex
/// `v`'s neighbours are column `v` of that pattern.
pub(crate) struct Graph {
    adjacency: SparsityPattern,
}

impl Graph {
    /// The graph of `A + Aᵀ`.
    pub(crate) fn symmetric(a: &SparsityPattern) -> Graph {
        let both_ways = a
            .entries()
            .filter(|(r, c)| r != c)
            .flat_map(|(r, c)| [(r, c), (c, r)]);
        Graph {
            adjacency: SparsityPattern::from_entries(a.n(), both_ways),
        }
    }

    fn n(&self) -> usize {
        self.adjacency.n()
    }

    fn neighbours(&self, v: usize) -> &[usize] {
        self.adjacency.column(v)
    }
}

/// Which side of the current dissection a vertex is on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// Not in the part being dissected.
    Outside,
    Unvisited,
    Near,
    Separator,
    Far,
}

/// A nested-dissection ordering of `graph`: `perm[k]` is the k-th vertex
/// eliminated. Vertices inside a leaf part, and inside each separator, keep
/// the relative order of `tie_break` (a fill-reducing ordering such as
/// AMD's: `tie_break[k]` is its k-th vertex).
pub(crate) fn nested_dissection(graph: &Graph, tie_break: &[usize]) -> Vec<usize> {
    let n = graph.n();
    let mut rank = vec![0; n];
    for (k, &v) in tie_break.iter().enumerate() {
        rank[v] = k;
    }
    let mut work = Work {
        graph,
        rank,
        mark: vec![Mark::Outside; n],
        order: Vec::with_capacity(n),
    };
    // Parts still to dissect, each with where its separator goes: a part is
    // ordered before the separator that split it off, so the separators are
    // emitted when the stack unwinds past them.
    enum Task {
        Dissect(Vec<usize>),
        Emit(Vec<usize>),
    }
    let mut stack = vec![Task::Dissect((0..n).collect())];
    while let Some(task) = stack.pop() {
        match task {
            Task::Emit(vertices) => work.order.extend(vertices),
            Task::Dissect(part) => match work.split(part) {
                Split::Leaf(mut part) => {
                    part.sort_unstable_by_key(|&v| work.rank[v]);
                    work.order.extend(part);
                }
                Split::Components(parts) => {
                    stack.extend(parts.into_iter().rev().map(Task::Dissect));
                }
                Split::Separated {
                    near,
                    far,
                    mut separator,
                } => {
                    separator.sort_unstable_by_key(|&v| work.rank[v]);
                    stack.push(Task::Emit(separator));
                    stack.push(Task::Dissect(far));
                    stack.push(Task::Dissect(near));
                }
            },
        }
    }
    work.order
}

enum Split {
    /// Too small or too dense to dissect.
    Leaf(Vec<usize>),
    /// The part falls apart into these connected pieces.
    Components(Vec<Vec<usize>>),
    /// `separator` disconnects `near` from `far`.
    Separated {
        near: Vec<usize>,
        far: Vec<usize>,
        separator: Vec<usize>,
    },
}

struct Work<'g> {
    graph: &'g Graph,
    rank: Vec<usize>,
    mark: Vec<Mark>,
    order: Vec<usize>,
}

impl Work<'_> {
    fn split(&mut self, part: Vec<usize>) -> Split {
        if part.len() <= LEAF_SIZE {
            return Split::Leaf(part);
        }
        for &v in &part {
            self.mark[v] = Mark::Unvisited;
        }
        let split = self.split_marked(&part);
        for &v in &part {
            self.mark[v] = Mark::Outside;
        }
        match split {
            Some(split) => split,
            None => Split::Leaf(part),
        }
    }

    /// Splits `part`, whose vertices are marked `Unvisited`.
    fn split_marked(&mut self, part: &[usize]) -> Option<Split> {
        let first = self.bfs(part[0]);
        if first.iter().map(Vec::len).sum::<usize>() < part.len() {
            return Some(Split::Components(self.components(part)));
        }
        // A pseudo-peripheral start: the far end of a BFS, repeated while
        // that lengthens the level structure.
        let mut levels = first;
        for _ in 0..4 {
            let last = levels.last().expect("a BFS has a level");
            let far = *last
                .iter()
                .min_by_key(|&&v| self.graph.neighbours(v).len())
                .expect("a level is not empty");
            let next = self.bfs(far);
            if next.len() <= levels.len() {
                break;
            }
            levels = next;
        }
        if levels.len() < 3 {
            return None;
        }
        // The level where half the part lies behind: its vertices separate
        // the levels before it from those after.
        let half = part.len() / 2;
        let mut behind = 0;
        let mut middle = 1;
        for (k, level) in levels.iter().enumerate().take(levels.len() - 1).skip(1) {
            middle = k;
            behind += levels[k - 1].len();
            if behind + level.len() / 2 >= half {
                break;
            }
        }
        for (k, level) in levels.iter().enumerate() {
            let mark = match k.cmp(&middle) {
                std::cmp::Ordering::Less => Mark::Near,
                std::cmp::Ordering::Equal => Mark::Separator,
                std::cmp::Ordering::Greater => Mark::Far,
            };
            for &v in level {
                self.mark[v] = mark;
            }
        }
        // A separator vertex with no neighbour on one side joins the other
        // (an HH gate hangs off one voltage: it belongs with it).
        for &v in &levels[middle] {
            let touches = |side| {
                self.graph
                    .neighbours(v)
                    .iter()
                    .any(|&w| self.mark[w] == side)
            };
            if !touches(Mark::Far) {
                self.mark[v] = Mark::Near;
            } else if !touches(Mark::Near) {
                self.mark[v] = Mark::Far;
            }
        }
        let (mut near, mut far, mut separator) = (Vec::new(), Vec::new(), Vec::new());
        for &v in part {
            match self.mark[v] {
                Mark::Near => near.push(v),
                Mark::Far => far.push(v),
                _ => separator.push(v),
            }
        }
        if near.is_empty() || far.is_empty() {
            return None;
        }
        Some(Split::Separated {
            near,
            far,
            separator,
        })
    }

    /// The level structure from `root` over vertices marked `Unvisited`
    /// (each visit marks and then restores them).
    fn bfs(&mut self, root: usize) -> Vec<Vec<usize>> {
        let mut levels = vec![vec![root]];
        self.mark[root] = Mark::Near;
        loop {
            let mut next = Vec::new();
            for &v in levels.last().expect("a level") {
                for &w in self.graph.neighbours(v) {
                    if self.mark[w] == Mark::Unvisited {
                        self.mark[w] = Mark::Near;
                        next.push(w);
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            levels.push(next);
        }
        for level in &levels {
            for &v in level {
                self.mark[v] = Mark::Unvisited;
            }
        }
        levels
    }

    /// The connected pieces of `part` (all marked `Unvisited`).
    fn components(&mut self, part: &[usize]) -> Vec<Vec<usize>> {
        let mut pieces = Vec::new();
        for &root in part {
            if self.mark[root] != Mark::Unvisited {
                continue;
            }
            self.mark[root] = Mark::Near;
            let mut piece = vec![root];
            let mut k = 0;
            while k < piece.len() {
                let v = piece[k];
                k += 1;
                for &w in self.graph.neighbours(v) {
                    if self.mark[w] == Mark::Unvisited {
                        self.mark[w] = Mark::Near;
                        piece.push(w);
                    }
                }
            }
            pieces.push(piece);
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path of `n` voltages, each with three gate leaves.
    fn cable(n: usize) -> Graph {
        let mut entries = Vec::new();
        for c in 0..4 * n {
            let comp = c / 4;
            let mut col = vec![c];
            if c % 4 == 0 {
                col.extend([c + 1, c + 2, c + 3]);
                if comp > 0 {
                    col.push(c - 4);
                }
                if comp + 1 < n {
                    col.push(c + 4);
                }
            } else {
                col.push(4 * comp);
            }
            entries.extend(col.into_iter().map(|r| (r, c)));
        }
        Graph::symmetric(&SparsityPattern::from_entries(4 * n, entries))
    }

    /// Longest chain of the elimination tree of `graph` under `perm`
    /// (the substitutions' critical path with diagonal pivots).
    fn etree_height(graph: &Graph, perm: &[usize]) -> usize {
        let n = graph.n();
        let mut pos = vec![0; n];
        for (k, &v) in perm.iter().enumerate() {
            pos[v] = k;
        }
        // Liu's algorithm with path compression on the permuted graph.
        let (mut parent, mut ancestor) = (vec![usize::MAX; n], vec![usize::MAX; n]);
        for k in 0..n {
            for &w in graph.neighbours(perm[k]) {
                let mut i = pos[w];
                while i < k && i != usize::MAX {
                    let next = ancestor[i];
                    ancestor[i] = k;
                    if next == usize::MAX {
                        parent[i] = k;
                    }
                    i = next;
                }
            }
        }
        let mut depth = vec![1; n];
        for k in (0..n).rev() {
            if parent[k] != usize::MAX {
                depth[k] = depth[parent[k]] + 1;
            }
        }
        depth.into_iter().max().unwrap_or(0)
    }

    #[test]
    fn orders_every_vertex_once() {
        let g = cable(100);
        let perm = nested_dissection(&g, &(0..400).collect::<Vec<_>>());
        let mut seen = perm.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..400).collect::<Vec<_>>());
    }

    #[test]
    fn a_cable_gets_a_shallow_elimination_tree() {
        let g = cable(100);
        let natural: Vec<usize> = (0..400).collect();
        // Natural order eliminates along the chain: the tree is as deep as
        // the cable is long.
        assert!(etree_height(&g, &natural) >= 100);
        let perm = nested_dissection(&g, &natural);
        let h = etree_height(&g, &perm);
        assert!(h <= 24, "height {h}");
        // The top separator is a voltage: gates stay with their voltage.
        assert_eq!(perm.last().unwrap() % 4, 0);
    }

    #[test]
    fn disconnected_and_dense_parts_are_ordered() {
        // Two cliques of 20 joined by nothing.
        let n = 40;
        let clique = |base: usize| {
            (base..base + 20).flat_map(move |r| (base..base + 20).map(move |c| (r, c)))
        };
        let g = Graph::symmetric(&SparsityPattern::from_entries(
            n,
            clique(0).chain(clique(20)),
        ));
        let tie: Vec<usize> = (0..n).rev().collect();
        let perm = nested_dissection(&g, &tie);
        let mut seen = perm.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..n).collect::<Vec<_>>());
        // A clique has no separating level: each is one leaf in tie order.
        assert_eq!(perm[..20], (0..20).rev().collect::<Vec<_>>()[..]);
    }
}
