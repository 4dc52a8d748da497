//! A linearizability checker: the Wing & Gong search with Lowe's memoization (the "WGL"
//! algorithm Knossos and Porcupine use). Operations are intervals (call, return); the search
//! tries to place each at one point inside its interval, in an order where every operation is
//! a legal step of a sequential model. Ops whose outcome is unknown return at infinity and
//! accept any result. Visited (linearized set, state) pairs are cached, so each configuration
//! is explored once. When no order exists, [`shrink`] removes ops while the rest stays
//! non-linearizable, which leaves a minimal witness.

use std::collections::HashSet;
use std::hash::Hash;

/// A sequential specification.
pub trait Model {
    /// The model's state.
    type State: Clone + Eq + Hash + std::fmt::Debug;
    /// An operation together with its observed result.
    type Op: std::fmt::Debug;
    /// The initial state.
    fn init(&self) -> Self::State;
    /// The state after `op`, or `None` if `op` (with its result) cannot happen in `state`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
}

/// One operation of a history: its interval and what it was.
#[derive(Clone, Debug)]
pub struct Entry<O> {
    /// Invocation time.
    pub call: u64,
    /// Completion time; `u64::MAX` when unknown.
    pub ret: u64,
    /// The operation and its result.
    pub op: O,
}

const NIL: usize = usize::MAX;

#[derive(Clone, Copy)]
struct Event {
    entry: usize,
    is_call: bool,
}

/// Whether some linearization of `entries` is legal for `model`.
pub fn is_linearizable<M: Model>(model: &M, entries: &[Entry<M::Op>]) -> bool {
    search(model, entries, None).is_ok()
}

/// The search's answer within a step budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A legal order exists.
    Linearizable,
    /// No legal order exists.
    NotLinearizable,
    /// The budget ran out first; nothing is claimed.
    Inconclusive,
}

/// [`is_linearizable`] with at most `budget` search steps.
pub fn analyze<M: Model>(model: &M, entries: &[Entry<M::Op>], budget: u64) -> Verdict {
    match search(model, entries, Some(budget)) {
        Ok(()) => Verdict::Linearizable,
        Err(false) => Verdict::NotLinearizable,
        Err(true) => Verdict::Inconclusive,
    }
}

/// The WGL search. `Err(budget_exhausted)` when there is no linearization (false) or the step
/// budget ran out (true; then nothing is claimed).
fn search<M: Model>(model: &M, entries: &[Entry<M::Op>], budget: Option<u64>) -> Result<(), bool> {
    let n = entries.len();
    if n == 0 {
        return Ok(());
    }
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, e) in entries.iter().enumerate() {
        events.push((e.call, false, i));
        events.push((e.ret.max(e.call), true, i));
    }
    // By time; at equal times calls first (ops touching at a point count as concurrent).
    events.sort();
    let events: Vec<Event> = events
        .into_iter()
        .map(|(_, is_ret, entry)| Event {
            entry,
            is_call: !is_ret,
        })
        .collect();
    // A doubly linked list over the events; index `m` is the head sentinel.
    let m = events.len();
    let mut next: Vec<usize> = (1..=m).map(|i| if i < m { i } else { NIL }).collect();
    next.push(0);
    let mut prev: Vec<usize> = (0..m).map(|i| if i == 0 { m } else { i - 1 }).collect();
    prev.push(NIL);
    let mut call_ev = vec![0; n];
    let mut ret_ev = vec![0; n];
    for (i, e) in events.iter().enumerate() {
        if e.is_call {
            call_ev[e.entry] = i;
        } else {
            ret_ev[e.entry] = i;
        }
    }
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, i: usize| {
        let (p, q) = (prev[i], next[i]);
        next[p] = q;
        if q != NIL {
            prev[q] = p;
        }
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, i: usize| {
        let (p, q) = (prev[i], next[i]);
        next[p] = i;
        if q != NIL {
            prev[q] = i;
        }
    };
    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut state = model.init();
    let mut cur = next[m];
    let mut steps = 0u64;
    while next[m] != NIL {
        steps += 1;
        if budget.is_some_and(|b| steps > b) {
            return Err(true);
        }
        if cur == NIL {
            // Only possible if every remaining event is a call: cannot happen (each call has a
            // later return), but fail safe by backtracking.
            return Err(false);
        }
        let ev = events[cur];
        if ev.is_call {
            if let Some(s2) = model.step(&state, &entries[ev.entry].op) {
                let mut lin2 = linearized.clone();
                lin2[ev.entry / 64] |= 1 << (ev.entry % 64);
                if cache.insert((lin2.clone(), s2.clone())) {
                    stack.push((ev.entry, std::mem::replace(&mut state, s2)));
                    linearized = lin2;
                    unlink(&mut next, &mut prev, call_ev[ev.entry]);
                    unlink(&mut next, &mut prev, ret_ev[ev.entry]);
                    cur = next[m];
                    continue;
                }
            }
            cur = next[cur];
        } else {
            // A pending op's return: something before it must be linearized differently.
            let Some((e, s)) = stack.pop() else {
                return Err(false);
            };
            state = s;
            linearized[e / 64] &= !(1 << (e % 64));
            relink(&mut next, &mut prev, ret_ev[e]);
            relink(&mut next, &mut prev, call_ev[e]);
            cur = next[call_ev[e]];
        }
    }
    Ok(())
}

/// A 1-minimal non-linearizable subset of `entries` (indices into it): removing any one of
/// them makes the rest linearizable. At most `max_checks` searches; past that the current
/// (still non-linearizable, maybe not minimal) subset is returned.
pub fn shrink<M: Model>(model: &M, entries: &[Entry<M::Op>], max_checks: usize) -> Vec<usize>
where
    M::Op: Clone,
{
    let mut keep: Vec<usize> = (0..entries.len()).collect();
    let mut checks = 0;
    let mut i = keep.len();
    while i > 0 && checks < max_checks {
        i -= 1;
        let trial: Vec<usize> = keep.iter().copied().filter(|&k| k != keep[i]).collect();
        let sub: Vec<Entry<M::Op>> = trial.iter().map(|&k| entries[k].clone()).collect();
        checks += 1;
        if search(model, &sub, Some(2_000_000)) == Err(false) {
            keep = trial;
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read/write register of integers.
    struct Reg;
    #[derive(Clone, Debug)]
    enum RegOp {
        Write(i32),
        Read(Option<i32>),
    }
    impl Model for Reg {
        type State = i32;
        type Op = RegOp;
        fn init(&self) -> i32 {
            0
        }
        fn step(&self, s: &i32, op: &RegOp) -> Option<i32> {
            match op {
                RegOp::Write(v) => Some(*v),
                RegOp::Read(None) => Some(*s),
                RegOp::Read(Some(v)) => (v == s).then_some(*s),
            }
        }
    }

    fn e(call: u64, ret: u64, op: RegOp) -> Entry<RegOp> {
        Entry { call, ret, op }
    }

    #[test]
    fn concurrent_write_and_read_may_go_either_way() {
        let h = vec![
            e(0, 10, RegOp::Write(1)),
            e(2, 5, RegOp::Read(Some(0))),
            e(3, 6, RegOp::Read(Some(1))),
        ];
        assert!(is_linearizable(&Reg, &h));
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_rejected() {
        // write(1) completes at 10; a read invoked at 20 still sees 0: not linearizable.
        let h = vec![
            e(0, 10, RegOp::Write(1)),
            e(12, 15, RegOp::Read(Some(1))),
            e(20, 25, RegOp::Read(Some(0))),
            e(30, 35, RegOp::Write(2)),
        ];
        assert!(!is_linearizable(&Reg, &h));
        let w = shrink(&Reg, &h, 100);
        assert_eq!(w, vec![0, 2], "the write and the stale read");
    }

    #[test]
    fn reads_cannot_flip_back() {
        // Two writes racing; readers saw 1 then 2 then 1 again in real-time order.
        let h = vec![
            e(0, 100, RegOp::Write(1)),
            e(0, 100, RegOp::Write(2)),
            e(10, 20, RegOp::Read(Some(1))),
            e(30, 40, RegOp::Read(Some(2))),
            e(50, 60, RegOp::Read(Some(1))),
        ];
        assert!(!is_linearizable(&Reg, &h));
    }

    #[test]
    fn an_unknown_write_may_or_may_not_happen() {
        let h = vec![
            e(0, u64::MAX, RegOp::Write(7)),
            e(10, 20, RegOp::Read(Some(0))),
            e(30, 40, RegOp::Read(Some(7))),
        ];
        assert!(is_linearizable(&Reg, &h));
        let h = vec![
            e(0, u64::MAX, RegOp::Write(7)),
            e(10, 20, RegOp::Read(Some(7))),
            e(30, 40, RegOp::Read(Some(0))),
        ];
        assert!(!is_linearizable(&Reg, &h));
    }
}
