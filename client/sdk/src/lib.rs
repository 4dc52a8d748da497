//! The async Rust SDK (crate `xnai-sdk`): [`Client`] connects to the head(s) with the cluster
//! token and offers tasks ([`Client::submit`]), objects ([`Client::get`], [`Client::put`], ...)
//! and actors ([`Client::create_actor`], [`ActorHandle::call`]) with typed handles.
//!
//! Objects never pass through the head: the client asks the head where an object is (or where
//! to put one) and streams it from or to that worker, checking size and CRC-32. A worker on the
//! same host is read and written through shared memory instead ([`local`]). [`builtins`] holds
//! what the workers' built-in functions compute, so callers can check results.
//!
//! A library: errors are [`Error`] (thiserror); no command-line, process or `anyhow` code here
//! (that is the `xnai-cli` crate).

mod actors;
mod breaker;
pub mod builtins;
mod convert;
mod error;
mod heads;
mod inference;
mod link;
mod local;
mod objects;
mod replicas;
mod retrieval;
mod session;
mod types;

#[cfg(test)]
mod fake_tests;

use std::sync::Arc;
use std::time::Duration;

use xnai_proto::auth::TokenInject;
use xnai_proto::limits::{MAX_INLINE_ARGS_BYTES, MAX_NAME_BYTES};
use xnai_proto::pb;

pub use actors::ActorHandle;
pub use error::{Error, Result};
pub use inference::{
    GenerateEvents, GenerateRequest, InferenceParams, ModelSource, header_from_prefix,
};
pub use retrieval::{
    Added, Answer, ChunkHit, EmbeddedChunk, EmbeddedDoc, NewDocument, SearchMode, cited, rag_prompt,
};
pub use types::{
    ActorInfo, ActorOptions, ActorState, Arg, ClusterStatus, HeadStatus, ObjectInfo,
    ObjectLocation, ObjectRef, ObjectState, Resources, SpillStatus, StateSize, TaskOptions,
    WaitResult, WorkerStatus,
};
pub use xnai_inference::{GenerateEvent, GenerateStats, MemoryPlan};

use link::{HeadLink, WorkerPool, head_call};

/// Longest single wait the head accepts; longer waits are done as several calls.
const MAX_HEAD_WAIT: Duration = Duration::from_secs(600);
/// Default session lease of an SDK client.
pub const DEFAULT_SESSION_LEASE: Duration = Duration::from_secs(10);

/// How to reach the cluster.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Head addresses (`host:port`); any that answers is used, the others on failure.
    pub heads: Vec<String>,
    /// The cluster token (`xnai up` prints it as `XNAI_TOKEN=...`).
    pub token: String,
    /// Timeout for opening a TCP connection to a head or worker.
    pub connect_timeout: Duration,
    /// How long [`Client::create_actor`] and [`Client::get_actor`] wait for an actor to be alive.
    pub actor_start_timeout: Duration,
    /// Open a session with this lease: submitted tasks' outputs belong to it and are freed when
    /// released ([`Client::release`]) or when the lease runs out after the client is gone.
    /// `None` (the CLI): outputs live until freed explicitly ([`Client::free`]).
    pub session_lease: Option<Duration>,
    /// Read and write objects of workers on this host through shared memory (mapping their
    /// tmpfs arena files, like Ray's plasma store) instead of streaming them over gRPC. Workers
    /// that turn out not to be local (another container, another user) are streamed from. The
    /// default is on unless the environment sets `XNAI_SHARED_MEMORY=0`.
    pub shared_memory: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            heads: Vec::new(),
            token: String::new(),
            connect_timeout: Duration::from_secs(5),
            actor_start_timeout: Duration::from_secs(60),
            session_lease: Some(DEFAULT_SESSION_LEASE),
            shared_memory: std::env::var("XNAI_SHARED_MEMORY").map_or(true, |v| v.trim() != "0"),
        }
    }
}

impl ClientConfig {
    /// A config for these heads and token with default timeouts.
    pub fn new(heads: Vec<String>, token: impl Into<String>) -> Self {
        Self {
            heads,
            token: token.into(),
            ..Self::default()
        }
    }
}

/// A connection to an xnai cluster. Cheap to clone (shared state behind an `Arc`) and safe to
/// use from many tasks at once; worker channels are cached and shared by all clones.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    head: HeadLink,
    workers: WorkerPool,
    config: ClientConfig,
    session: session::SessionState,
    breakers: breaker::WorkerBreakers,
    local: local::LocalArenas,
}

/// A fresh random request id; one per logical write, reused when the write is retried.
pub(crate) fn request_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Milliseconds for a head wait, capped at what the head accepts.
pub(crate) fn wait_ms(d: Duration) -> u64 {
    d.min(MAX_HEAD_WAIT).as_millis() as u64
}

fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(Error::InvalidArgument(format!(
            "{what} must be 1 to {MAX_NAME_BYTES} bytes, got {} bytes",
            name.len()
        )));
    }
    Ok(())
}

fn check_inline(args: &[Arg]) -> Result<()> {
    let inline: usize = args
        .iter()
        .map(|a| match a {
            Arg::Value(b) => b.len(),
            Arg::Ref(_) => 0,
        })
        .sum();
    if inline > MAX_INLINE_ARGS_BYTES {
        return Err(Error::InvalidArgument(format!(
            "inline arguments total {inline} bytes, over the {MAX_INLINE_ARGS_BYTES}-byte limit: \
             put the data as an object and pass it by reference"
        )));
    }
    Ok(())
}

impl Client {
    /// Connects to the first head in `config.heads` that accepts a connection.
    pub async fn connect(config: ClientConfig) -> Result<Self> {
        let token = TokenInject::new(&config.token).map_err(Error::from)?;
        let head = HeadLink::connect(&config.heads, token.clone(), config.connect_timeout).await?;
        let workers = WorkerPool::new(token, config.connect_timeout);
        let lease = config.session_lease;
        let local = local::LocalArenas::new(config.shared_memory);
        let client = Self {
            inner: Arc::new(Inner {
                head,
                workers,
                config,
                session: Default::default(),
                breakers: Default::default(),
                local,
            }),
        };
        if let Some(lease) = lease {
            match client.open_session(lease).await {
                Ok(()) => {}
                // A head without sessions: objects then live until freed explicitly.
                Err(e) if e.code() == Some(tonic::Code::Unimplemented) => {
                    tracing::warn!(error = %e, "the head offers no sessions");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(client)
    }

    /// The head addresses this client was configured with.
    pub fn heads(&self) -> &[String] {
        self.inner.head.addresses()
    }

    /// Submits a task running `function` on `args`; returns its return object at once.
    pub async fn submit(
        &self,
        function: &str,
        args: Vec<Arg>,
        options: TaskOptions,
    ) -> Result<ObjectRef> {
        check_name("function name", function)?;
        check_inline(&args)?;
        let req = pb::SubmitTaskRequest {
            request_id: request_id(),
            function: function.to_string(),
            args: args.into_iter().map(convert::arg_to_pb).collect(),
            options: Some(convert::task_options_to_pb(options)),
            session_id: self.session_hex(),
        };
        let reply = head_call!(self.inner.head, submit_task, req).await?;
        Ok(ObjectRef::new(convert::object_id(&reply.object_id)?))
    }

    /// Waits until at least `k` of `refs` are done (ready, failed or lost; `k == 0` means all)
    /// or `timeout` passes, and says which are done.
    pub async fn wait(
        &self,
        refs: &[ObjectRef],
        k: usize,
        timeout: Duration,
    ) -> Result<WaitResult> {
        let req = pb::WaitObjectsRequest {
            object_ids: refs.iter().map(|r| r.id().hex()).collect(),
            num_ready: u32::try_from(k).unwrap_or(u32::MAX),
            timeout_ms: wait_ms(timeout),
        };
        let reply = head_call!(self.inner.head, wait_objects, req).await?;
        Ok(WaitResult {
            done: convert::object_refs(&reply.done)?,
            pending: convert::object_refs(&reply.pending)?,
        })
    }

    /// What the head knows about an object now (no waiting).
    pub async fn object_info(&self, object: &ObjectRef) -> Result<ObjectInfo> {
        self.locate(object, Duration::ZERO).await
    }

    /// Heads, workers and counts.
    pub async fn status(&self) -> Result<ClusterStatus> {
        let reply =
            head_call!(self.inner.head, cluster_status, pb::ClusterStatusRequest {}).await?;
        Ok(convert::cluster_status_from_pb(reply))
    }

    /// One LocateObject call (waits up to `timeout`, capped by the head).
    async fn locate(&self, object: &ObjectRef, timeout: Duration) -> Result<ObjectInfo> {
        let req = pb::LocateObjectRequest {
            object_id: object.id().hex(),
            timeout_ms: wait_ms(timeout),
        };
        let reply = head_call!(self.inner.head, locate_object, req).await?;
        convert::object_info_from_pb(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn inline_limit_and_names_are_checked_locally() {
        let big = Arg::Value(Bytes::from(vec![0u8; MAX_INLINE_ARGS_BYTES + 1]));
        let e = check_inline(&[big]).unwrap_err();
        assert!(e.to_string().contains("pass it by reference"), "{e}");
        let r = ObjectRef::new(xnai_proto::ids::ObjectId::random());
        assert!(check_inline(&[Arg::from("x"), Arg::Ref(r)]).is_ok());
        assert!(check_name("function name", "").is_err());
        assert!(check_name("function name", "echo").is_ok());
        assert_ne!(request_id(), request_id());
        assert_eq!(wait_ms(Duration::from_secs(3600)), 600_000);
    }
}
