//! A linearizability checker for a compare-and-set register driven by increments
//! (`UPDATE ... SET v = e + 1 ... IF v = e`), for the cluster LWT tests.
//!
//! The in-process Paxos simulation (`node/src/paxos/sim.rs`) uses it too, through a
//! dev-dependency (this crate links no node code, so the arrow points the right way).

/// What one compare-and-set returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CasOutcome {
    Applied,
    /// The conditions did not hold; the value the operation saw.
    NotApplied(i64),
    /// Timed out: it may or may not have taken effect, possibly after it returned.
    Unknown,
}

/// One `CAS(expected → expected + 1)` with its invocation and completion times.
#[derive(Clone, Copy, Debug)]
pub struct CasOp {
    pub invoke: u64,
    pub complete: u64,
    pub expected: i64,
    pub outcome: CasOutcome,
}

/// Checks that a history of increments `CAS(v → v + 1)` on a register that starts at
/// `initial` and ends at `final_value` is linearizable.
///
/// Every value is written once, so the writes form one chain `initial → … → final`: each
/// link `v → v+1` must be made by exactly one applied operation, or else by one of the
/// operations that timed out with that expectation (their effect may land any time after
/// their invocation, even after they returned). Each write then has a window for its
/// linearization point: [invoke, complete] (complete = ∞ for a timed-out one). A
/// not-applied operation that saw `x` needs `x` current at some instant of its own
/// window, i.e. the write of `x` no later than its completion and the write of `x + 1`
/// after its invocation: these only narrow the write windows. The history is
/// linearizable iff points increasing along the chain fit every window, which a greedy
/// earliest-point pass decides exactly.
pub fn check_cas_register(ops: &[CasOp], initial: i64, final_value: i64) -> Result<(), String> {
    if final_value < initial {
        return Err(format!("final value {final_value} below initial {initial}"));
    }
    let len = (final_value - initial) as usize;
    // Window of the write producing value initial + 1 + i.
    let mut lo = vec![None::<u64>; len];
    let mut hi = vec![u64::MAX; len];
    let mut applied_by = vec![false; len];
    for op in ops.iter().filter(|o| o.outcome == CasOutcome::Applied) {
        let i = op.expected - initial;
        if i < 0 || i as usize >= len {
            return Err(format!(
                "applied {op:?} outside the chain {initial}..{final_value}"
            ));
        }
        let i = i as usize;
        if applied_by[i] {
            return Err(format!(
                "two operations applied {} → {}",
                op.expected,
                op.expected + 1
            ));
        }
        applied_by[i] = true;
        lo[i] = Some(op.invoke);
        hi[i] = op.complete;
    }
    for op in ops.iter().filter(|o| o.outcome == CasOutcome::Unknown) {
        let i = op.expected - initial;
        if i >= 0 && (i as usize) < len && !applied_by[i as usize] {
            let i = i as usize;
            lo[i] = Some(lo[i].map_or(op.invoke, |l| l.min(op.invoke)));
        }
    }
    if let Some(i) = lo.iter().position(Option::is_none) {
        return Err(format!(
            "nothing wrote {} → {}",
            initial + i as i64,
            initial + i as i64 + 1
        ));
    }
    let mut lo: Vec<u64> = lo.into_iter().map(|l| l.unwrap_or(0)).collect();
    for op in ops {
        if let CasOutcome::NotApplied(x) = op.outcome {
            if x == op.expected {
                return Err(format!("{op:?} saw its expected value yet did not apply"));
            }
            if x < initial || x > final_value {
                return Err(format!("{op:?} saw a value never written"));
            }
            let i = (x - initial) as usize;
            if i > 0 {
                hi[i - 1] = hi[i - 1].min(op.complete);
            }
            if i < len {
                lo[i] = lo[i].max(op.invoke);
            }
        }
    }
    let mut t: Option<u64> = None;
    for i in 0..len {
        let at = t.map_or(lo[i], |t| (t + 1).max(lo[i]));
        if at > hi[i] {
            return Err(format!(
                "the write of {} cannot be placed: window {}..{}, chain at {at}",
                initial + i as i64 + 1,
                lo[i],
                hi[i]
            ));
        }
        t = Some(at);
    }
    Ok(())
}
