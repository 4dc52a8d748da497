//! The wire toolkit every node and client shares, so each edge decision is made in one place:
//! how to build a channel for each kind of traffic ([`endpoint`]), how a head names the Raft
//! leader ([`leader`]), which failures may be retried and which certainly never reached their
//! server ([`codes`], [`delivery`]), how to back off ([`backoff`]) and one circuit breaker per
//! peer ([`breaker`]). Depends on tonic, hyper, tokio and failsafe only.

pub mod backoff;
pub mod breaker;
pub mod codes;
pub mod delivery;
pub mod endpoint;
pub mod leader;

pub use backoff::Backoff;
pub use breaker::{BreakerError, BreakerPolicy, BreakerState, KeyedBreaker};
pub use codes::{node_failed, retriable, retriable_status};
pub use delivery::never_reached;
pub use endpoint::{BadAddress, Traffic, endpoint, lazy_channel};
pub use leader::{LEADER_METADATA, leader_hint, not_leader};
