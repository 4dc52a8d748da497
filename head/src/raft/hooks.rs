//! Test-only observation and fault points of the node: the simulation watches every applied
//! entry through [`Hooks::on_apply`] and can switch on a deliberate bug ([`Bug`]) to prove its
//! checks have teeth. In non-test builds [`Hooks`] is empty and nothing here runs.

#[cfg(test)]
use std::sync::Arc;

#[cfg(test)]
use crate::state::Command;

/// What the node reports to an observer (test builds only).
#[cfg(test)]
#[derive(Debug)]
pub(crate) enum ApplyEvent<'a> {
    /// An entry is about to be applied: its proposals' commands, in order (none for an empty
    /// or membership entry).
    Entry {
        /// Log index.
        index: u64,
        /// The entry's term.
        term: u64,
        /// One command list per proposal of the group commit.
        batches: &'a [Vec<Command>],
    },
    /// A snapshot from the leader replaced the state up to `index`.
    Snapshot {
        /// The snapshot's last index.
        index: u64,
    },
}

/// Observer of applied entries (test builds only).
#[cfg(test)]
pub(crate) type ApplyObserver = Arc<dyn Fn(ApplyEvent<'_>) + Send + Sync>;

/// A deliberate bug the simulation's self-test switches on (test builds only).
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bug {
    /// The leader acknowledges a proposal as soon as it is appended to its own log, before a
    /// majority has it: a leader crash or partition then loses acknowledged writes.
    AckBeforeCommit,
}

/// The node's test hooks; empty (and free) outside tests.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    /// Called for every applied entry and installed snapshot.
    #[cfg(test)]
    pub(crate) on_apply: Option<ApplyObserver>,
    /// The deliberate bug, if any.
    #[cfg(test)]
    pub(crate) bug: Option<Bug>,
}

impl Hooks {
    /// Whether the deliberate ack-before-commit bug is on (never outside tests).
    pub(crate) fn ack_before_commit(&self) -> bool {
        #[cfg(test)]
        {
            self.bug == Some(Bug::AckBeforeCommit)
        }
        #[cfg(not(test))]
        {
            false
        }
    }
}
