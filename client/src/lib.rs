//! xnai client: the async Rust SDK ([`sdk`]), the `xnai` command line ([`cli`]) and the
//! local-cluster launcher behind `xnai up` / `xnai down` ([`launcher`]).
//! The SDK is the library surface; the CLI and launcher are built on it.

pub mod cli;
pub mod launcher;
pub mod sdk;

pub use sdk::{
    ActorHandle, ActorInfo, ActorOptions, ActorState, Arg, Client, ClientConfig, ClusterStatus,
    Error, HeadStatus, ObjectInfo, ObjectLocation, ObjectRef, ObjectState, Resources, Result,
    SpillStatus, TaskOptions, WaitResult, WorkerStatus,
};
pub use sdk::{Answer, ChunkHit, NewDocument, SearchMode};
