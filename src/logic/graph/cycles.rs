//! Every elementary cycle of the required links: Johnson's algorithm, stopped at a
//! cap so a dense component cannot make the analysis exponential.

use std::collections::HashMap;

use petgraph::algo::tarjan_scc;
use petgraph::graph::DiGraph;

use super::{Link, graph_of};

/// Every elementary cycle of the required links (Johnson, 1975), self-loops first,
/// at most `cap`; the flag says whether more exist.
///
/// Johnson's bound is O((V + E)(C + 1)) for C cycles, and each component searched
/// yields at least one cycle, so stopping at `cap` bounds the work even when the
/// graph holds exponentially many cycles.
pub(super) fn elementary_cycles(n: usize, links: &[Link], cap: usize) -> (Vec<Vec<usize>>, bool) {
    let mut cycles: Vec<Vec<usize>> =
        links.iter().filter(|l| l.required && l.from == l.to).map(|l| vec![l.from, l.from]).collect();
    let mut truncated = cycles.len() > cap;
    let mut adjacency: Vec<Vec<usize>> = vec![Vec::new(); n];
    for l in links.iter().filter(|l| l.required && l.from != l.to) {
        adjacency[l.from].push(l.to);
    }
    for a in &mut adjacency {
        a.sort_unstable();
    }

    let nontrivial = |members: Vec<usize>| -> Option<Vec<usize>> {
        if members.len() > 1 {
            let mut m = members;
            m.sort_unstable();
            Some(m)
        } else {
            None
        }
    };
    let initial = graph_of(n, links.iter().filter(|l| l.required && l.from != l.to));
    let mut pending: Vec<Vec<usize>> = tarjan_scc(&initial)
        .into_iter()
        .filter_map(|c| nontrivial(c.into_iter().map(|v| v.index()).collect()))
        .collect();
    // Search the smallest-named components first so a truncated list is stable.
    pending.reverse();

    let mut member_of = vec![usize::MAX; n];
    let mut blocked = vec![false; n];
    let mut closed = vec![false; n];
    let mut b: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut stamp = 0usize;
    'components: while let Some(component) = pending.pop() {
        if truncated {
            break;
        }
        stamp += 1;
        for &v in &component {
            member_of[v] = stamp;
        }
        let start = component[0];
        let mut path = vec![start];
        blocked[start] = true;
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some(top) = stack.last_mut() {
            let (this, pos) = (top.0, &mut top.1);
            let neighbours = &adjacency[this];
            if *pos < neighbours.len() {
                let next = neighbours[*pos];
                *pos += 1;
                if member_of[next] == stamp {
                    if next == start {
                        if cycles.len() >= cap {
                            truncated = true;
                            break 'components;
                        }
                        let mut cycle = path.clone();
                        cycle.push(start);
                        cycles.push(cycle);
                        for &p in &path {
                            closed[p] = true;
                        }
                    } else if !blocked[next] {
                        path.push(next);
                        stack.push((next, 0));
                        closed[next] = false;
                        blocked[next] = true;
                        continue;
                    }
                }
            }
            let exhausted = stack.last().is_some_and(|&(_, p)| p >= adjacency[this].len());
            if exhausted {
                if closed[this] {
                    unblock(this, &mut blocked, &mut b);
                } else {
                    for &w in adjacency[this].iter().filter(|&&w| member_of[w] == stamp) {
                        if !b[w].contains(&this) {
                            b[w].push(this);
                        }
                    }
                }
                stack.pop();
                path.pop();
            }
        }
        for &v in &component {
            blocked[v] = false;
            closed[v] = false;
            b[v].clear();
        }
        // Johnson's next step: the same component without its start node.
        let rest = &component[1..];
        let mut local = HashMap::with_capacity(rest.len());
        let mut sub = DiGraph::<(), ()>::with_capacity(rest.len(), 0);
        for &v in rest {
            local.insert(v, sub.add_node(()));
        }
        for &v in rest {
            for w in &adjacency[v] {
                if let Some(&lw) = local.get(w) {
                    sub.add_edge(local[&v], lw, ());
                }
            }
        }
        let mut found: Vec<Vec<usize>> = tarjan_scc(&sub)
            .into_iter()
            .filter_map(|c| nontrivial(c.into_iter().map(|i| rest[i.index()]).collect()))
            .collect();
        found.sort_unstable_by(|a, b| b.cmp(a));
        pending.extend(found);
    }
    cycles.sort_unstable();
    cycles.truncate(cap);
    (cycles, truncated)
}

fn unblock(node: usize, blocked: &mut [bool], b: &mut [Vec<usize>]) {
    let mut stack = vec![node];
    while let Some(v) = stack.pop() {
        if blocked[v] {
            blocked[v] = false;
            stack.append(&mut b[v]);
        }
    }
}
