//! The task function registry: name -> async function from argument bytes to result bytes.
//! Registration is public so a user's own worker binary can add functions next to the
//! built-ins (`echo`, `sleep`, `fill`, `digest`, see [`builtins`]).

mod builtins;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;

/// One argument as a function sees it: inline bytes or a referenced object's bytes (a zero-copy
/// view of the arena's mmap).
pub type ArgBytes = Bytes;

/// What a task function returns: its output bytes, or an application error text (the task
/// fails with that text).
pub type TaskResult = Result<Bytes, String>;

/// A task function. Implemented for every `Fn(Vec<ArgBytes>) -> impl Future<Output = TaskResult>`.
pub trait TaskFunction: Send + Sync + 'static {
    /// Run the function on its arguments.
    fn call(&self, args: Vec<ArgBytes>) -> BoxFuture<'static, TaskResult>;
}

impl<F, Fut> TaskFunction for F
where
    F: Fn(Vec<ArgBytes>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = TaskResult> + Send + 'static,
{
    fn call(&self, args: Vec<ArgBytes>) -> BoxFuture<'static, TaskResult> {
        Box::pin(self(args))
    }
}

/// Task functions by name. Cheap to share behind an `Arc`; immutable once the worker runs.
#[derive(Clone, Default)]
pub struct FunctionRegistry {
    functions: BTreeMap<String, Arc<dyn TaskFunction>>,
}

impl FunctionRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry with the built-ins. `memory_bytes` is the memory every `fill` running at
    /// once shares (at most the arena capacity): a larger one is refused with a clear error
    /// instead of exhausting memory, and concurrent ones wait for their share.
    pub fn with_builtins(memory_bytes: u64) -> Self {
        let mut r = Self::new();
        builtins::register(&mut r, memory_bytes);
        r
    }

    /// Add (or replace) a function.
    pub fn register(&mut self, name: impl Into<String>, f: impl TaskFunction) -> &mut Self {
        self.functions.insert(name.into(), Arc::new(f));
        self
    }

    /// Look a function up.
    pub fn get(&self, name: &str) -> Option<Arc<dyn TaskFunction>> {
        self.functions.get(name).cloned()
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.functions.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn user_functions_can_be_registered() {
        let mut r = FunctionRegistry::with_builtins(1 << 20);
        r.register("len", |args: Vec<ArgBytes>| async move {
            Ok(Bytes::from(
                args.iter().map(|a| a.len()).sum::<usize>().to_string(),
            ))
        });
        assert_eq!(r.names(), vec!["digest", "echo", "fill", "len", "sleep"]);
        let f = r.get("len").unwrap();
        assert_eq!(f.call(vec![Bytes::from_static(b"abc")]).await.unwrap(), "3");
        assert!(r.get("nope").is_none());
    }
}
