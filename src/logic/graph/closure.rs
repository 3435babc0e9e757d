//! Reachability for the transitive lists: per strongly connected component of all
//! links (required and optional, relaxed or not), everything below and above it.

use fixedbitset::FixedBitSet;
use petgraph::algo::tarjan_scc;

use super::{Link, graph_of};

/// Reachability over every link, per strongly connected component, both directions.
pub(super) fn closure(n: usize, links: &[Link]) -> (Vec<FixedBitSet>, Vec<FixedBitSet>, Vec<usize>) {
    let g = graph_of(n, links.iter());
    let sccs = tarjan_scc(&g);
    let mut component = vec![0; n];
    for (c, members) in sccs.iter().enumerate() {
        for m in members {
            component[m.index()] = c;
        }
    }
    let mut out: Vec<Vec<(usize, usize)>> = vec![Vec::new(); sccs.len()];
    let mut inc: Vec<Vec<(usize, usize)>> = vec![Vec::new(); sccs.len()];
    for l in links {
        let (cf, ct) = (component[l.from], component[l.to]);
        if cf != ct {
            out[cf].push((ct, l.to));
            inc[ct].push((cf, l.from));
        }
    }
    // Dependencies-first for `down`, dependents-first (reverse) for `up`.
    let mut down: Vec<FixedBitSet> = Vec::with_capacity(sccs.len());
    for (c, members) in sccs.iter().enumerate() {
        let mut set = FixedBitSet::with_capacity(n);
        if members.len() > 1 {
            set.extend(members.iter().map(|m| m.index()));
        }
        for &(ct, t) in &out[c] {
            set.union_with(&down[ct]);
            set.insert(t);
        }
        down.push(set);
    }
    let mut up: Vec<FixedBitSet> = vec![FixedBitSet::new(); sccs.len()];
    for c in (0..sccs.len()).rev() {
        let mut set = FixedBitSet::with_capacity(n);
        if sccs[c].len() > 1 {
            set.extend(sccs[c].iter().map(|m| m.index()));
        }
        for &(cf, f) in &inc[c] {
            set.union_with(&up[cf]);
            set.insert(f);
        }
        up[c] = set;
    }
    (down, up, component)
}
