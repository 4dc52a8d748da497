//! One circuit breaker per key (a worker id, a peer address) over `failsafe`: after
//! `failures` failed calls in a row the key's calls are refused at once for an open period
//! (doubling from `open_start` to `open_max`), then one half-open call probes it. Transitions
//! are observed through failsafe's `Instrument`, logged, kept for [`KeyedBreaker::state`] and
//! handed to an optional observer (the head records them in its replicated state).

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use failsafe::backoff::{self, Exponential};
use failsafe::failure_policy::{self, ConsecutiveFailures};
use failsafe::futures::CircuitBreaker;
use failsafe::{Config, Instrument, StateMachine};

/// When a key's breaker opens and how long it stays open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker.
    pub failures: u32,
    /// First open period; doubles after every failed half-open probe. Whole seconds: failsafe
    /// refuses periods under one second, so shorter ones are raised to one.
    pub open_start: Duration,
    /// Longest open period.
    pub open_max: Duration,
}

impl Default for BreakerPolicy {
    /// 5 failures in a row; open 1 s doubling to 60 s.
    fn default() -> Self {
        Self {
            failures: 5,
            open_start: Duration::from_secs(1),
            open_max: Duration::from_secs(60),
        }
    }
}

/// A breaker's state as last observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls pass.
    Closed,
    /// Calls are refused until the open period ends.
    Open,
    /// One probe call decides between closing and opening again.
    HalfOpen,
}

impl BreakerState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }
}

/// A call through a breaker that did not succeed.
#[derive(Debug, PartialEq, Eq)]
pub enum BreakerError<E> {
    /// The breaker is open: the call was not made.
    Rejected,
    /// The call was made and failed with this error.
    Failed(E),
}

/// Called on every transition of a key's breaker (not on its creation).
pub type Observer<K> = Arc<dyn Fn(&K, BreakerState) + Send + Sync>;

/// Watches one key's breaker: records its state, logs and forwards changes.
struct Watch<K> {
    what: &'static str,
    key: K,
    state: AtomicU8,
    observer: Option<Observer<K>>,
}

impl<K: Display> Watch<K> {
    fn moved(&self, to: BreakerState) {
        if self.state.swap(to as u8, Ordering::AcqRel) == to as u8 {
            return; // failsafe reports "closed" when a breaker is built: not a transition
        }
        match to {
            BreakerState::Open => {
                tracing::warn!(key = %self.key, "{} circuit breaker open", self.what)
            }
            BreakerState::HalfOpen => {
                tracing::info!(key = %self.key, "{} circuit breaker half-open: probing", self.what)
            }
            BreakerState::Closed => {
                tracing::info!(key = %self.key, "{} circuit breaker closed", self.what)
            }
        }
        if let Some(o) = &self.observer {
            o(&self.key, to);
        }
    }
}

/// The `Instrument` failsafe calls; shares the watch with the map entry.
struct Observed<K>(Arc<Watch<K>>);

impl<K: Display> Instrument for Observed<K> {
    fn on_call_rejected(&self) {
        tracing::debug!(key = %self.0.key, "{} call rejected: circuit breaker open", self.0.what);
    }
    fn on_open(&self) {
        self.0.moved(BreakerState::Open);
    }
    fn on_half_open(&self) {
        self.0.moved(BreakerState::HalfOpen);
    }
    fn on_closed(&self) {
        self.0.moved(BreakerState::Closed);
    }
}

type Machine<K> = StateMachine<ConsecutiveFailures<Exponential>, Observed<K>>;

struct Entry<K> {
    machine: Machine<K>,
    watch: Arc<Watch<K>>,
}

/// One breaker per key, created on first use. Thread-safe; share it behind an `Arc`.
pub struct KeyedBreaker<K> {
    what: &'static str,
    policy: BreakerPolicy,
    observer: Option<Observer<K>>,
    map: Mutex<HashMap<K, Entry<K>>>,
}

impl<K> KeyedBreaker<K>
where
    K: Clone + Eq + Hash + Display + Send + Sync + 'static,
{
    /// Breakers named `what` in logs ("worker", "peer") with `policy`.
    pub fn new(what: &'static str, policy: BreakerPolicy) -> Self {
        Self {
            what,
            policy,
            observer: None,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The same, calling `observer` on every transition of any key.
    pub fn observed(what: &'static str, policy: BreakerPolicy, observer: Observer<K>) -> Self {
        Self {
            observer: Some(observer),
            ..Self::new(what, policy)
        }
    }

    /// The policy every key's breaker follows.
    pub fn policy(&self) -> BreakerPolicy {
        self.policy
    }

    fn machine(&self, key: &K) -> Machine<K> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = map.get(key) {
            return e.machine.clone();
        }
        let watch = Arc::new(Watch {
            what: self.what,
            key: key.clone(),
            state: AtomicU8::new(BreakerState::Closed as u8),
            observer: self.observer.clone(),
        });
        let start = self.policy.open_start.max(Duration::from_secs(1));
        let policy = failure_policy::consecutive_failures(
            self.policy.failures,
            backoff::exponential(start, self.policy.open_max.max(start)),
        );
        let machine = Config::new()
            .failure_policy(policy)
            .instrument(Observed(watch.clone()))
            .build();
        map.insert(
            key.clone(),
            Entry {
                machine: machine.clone(),
                watch,
            },
        );
        machine
    }

    /// Run `call` through `key`'s breaker: refused at once while open; an error for which
    /// `is_failure` holds counts towards opening it, any other outcome as a success.
    pub async fn call<T, E, F>(
        &self,
        key: &K,
        is_failure: impl Fn(&E) -> bool + Send + Sync,
        call: F,
    ) -> Result<T, BreakerError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.machine(key)
            .call_with(is_failure, call)
            .await
            .map_err(|e| match e {
                failsafe::Error::Rejected => BreakerError::Rejected,
                failsafe::Error::Inner(e) => BreakerError::Failed(e),
            })
    }

    /// The state `key`'s breaker was last seen in (closed for a key never called). An open
    /// breaker whose period has passed reads open until the next call probes it.
    pub fn state(&self, key: &K) -> BreakerState {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).map_or(BreakerState::Closed, |e| {
            BreakerState::from_u8(e.watch.state.load(Ordering::Acquire))
        })
    }

    /// Open `key`'s breaker now, as if its calls had failed `failures` times in a row (a new
    /// head leader taking over a breaker the replicated state says is open).
    pub fn trip(&self, key: &K) {
        let machine = self.machine(key);
        for _ in 0..self.policy.failures {
            machine.on_error();
        }
    }

    /// Forget `key`'s breaker (the node is gone for good).
    pub fn forget(&self, key: &K) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> BreakerPolicy {
        BreakerPolicy {
            failures: 3,
            open_start: Duration::from_secs(1),
            open_max: Duration::from_secs(2),
        }
    }

    #[tokio::test]
    async fn opens_per_key_and_reports_transitions() {
        let seen: Arc<Mutex<Vec<(String, BreakerState)>>> = Arc::default();
        let log = seen.clone();
        let observer: Observer<String> = Arc::new(move |k: &String, s| {
            log.lock().unwrap().push((k.clone(), s));
        });
        let b = KeyedBreaker::observed("worker", fast(), observer);
        let (a, other) = ("a".to_string(), "b".to_string());
        let fails = |e: &u32| *e > 0;
        for _ in 0..3 {
            let r = b.call(&a, fails, async { Err::<(), u32>(1) }).await;
            assert_eq!(r, Err(BreakerError::Failed(1)));
        }
        assert_eq!(b.state(&a), BreakerState::Open);
        assert_eq!(b.state(&other), BreakerState::Closed);
        let r = b.call(&a, fails, async { Ok::<_, u32>(()) }).await;
        assert_eq!(r, Err(BreakerError::Rejected));
        // A failure the predicate ignores is a healthy answer.
        for _ in 0..5 {
            let _ = b.call(&other, fails, async { Err::<(), u32>(0) }).await;
        }
        assert_eq!(b.state(&other), BreakerState::Closed);
        // failsafe's clock is the real one: wait out the shortest open period it allows.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(b.call(&a, fails, async { Ok::<_, u32>(7) }).await, Ok(7));
        assert_eq!(b.state(&a), BreakerState::Closed);
        let got = seen.lock().unwrap().clone();
        let a_moves: Vec<_> = got
            .iter()
            .filter(|(k, _)| k == "a")
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(
            a_moves,
            vec![
                BreakerState::Open,
                BreakerState::HalfOpen,
                BreakerState::Closed
            ]
        );
        assert!(
            got.iter().all(|(k, _)| k == "a"),
            "creating b is no transition"
        );
    }

    #[tokio::test]
    async fn trip_opens_and_forget_resets() {
        let b = KeyedBreaker::new("peer", fast());
        let k = "p".to_string();
        b.trip(&k);
        assert_eq!(b.state(&k), BreakerState::Open);
        let r = b.call(&k, |_: &()| true, async { Ok::<_, ()>(()) }).await;
        assert_eq!(r, Err(BreakerError::Rejected));
        b.forget(&k);
        assert_eq!(b.state(&k), BreakerState::Closed);
        let r = b.call(&k, |_: &()| true, async { Ok::<_, ()>(1) }).await;
        assert_eq!(r, Ok(1));
    }
}
