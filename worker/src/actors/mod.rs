//! Actors: user-visible stateful objects hosted on this worker as actix actors.
//!
//! A class registry maps a class name to a constructor; the built-in class is `counter`
//! ([`counter`]). [`host::ActorHost`] runs the actix system on its own threads and forwards calls
//! to each actor's mailbox, in order. Registration is public so a user's worker binary can add
//! its own classes.

pub mod counter;
pub mod host;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

pub use host::{ActorHost, MAILBOX_LIMIT};

/// What a method returns: its value bytes or an application error text.
pub type MethodResult = Result<Bytes, String>;

/// A live actor instance: its state and methods. Called on one of the actor threads, one call
/// at a time, in the order the calls arrived.
pub trait ActorBehavior: Send + 'static {
    /// Run `method` with `args`.
    fn call(&mut self, method: &str, args: Vec<Bytes>) -> MethodResult;
}

/// Builds an instance from constructor arguments, or says why it cannot (an application error).
pub type ActorConstructor =
    Arc<dyn Fn(Vec<Bytes>) -> Result<Box<dyn ActorBehavior>, String> + Send + Sync>;

/// Actor classes by name.
#[derive(Clone, Default)]
pub struct ClassRegistry {
    classes: BTreeMap<String, ActorConstructor>,
}

impl ClassRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry with the built-in classes (`counter`).
    pub fn with_builtins() -> Self {
        let mut r = Self::new();
        r.register("counter", counter::construct);
        r
    }

    /// Add (or replace) a class.
    pub fn register<F>(&mut self, name: impl Into<String>, constructor: F) -> &mut Self
    where
        F: Fn(Vec<Bytes>) -> Result<Box<dyn ActorBehavior>, String> + Send + Sync + 'static,
    {
        self.classes.insert(name.into(), Arc::new(constructor));
        self
    }

    /// Look a class up.
    pub fn get(&self, name: &str) -> Option<ActorConstructor> {
        self.classes.get(name).cloned()
    }

    /// Registered class names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.classes.keys().cloned().collect()
    }
}
