//! xnai's wire contract: the generated gRPC types and stubs, plus the few helpers every node
//! shares at the wire boundary (ids, the cluster token, message limits, the lease timings, the
//! server builder and health service, task supervision, and the wire toolkit [`net`]:
//! endpoints, leader hint, retry and delivery rules, backoff, breakers). No domain logic here.

pub mod alloc;
pub mod auth;
pub mod handover;
pub mod ids;
pub mod limits;
pub mod net;
pub mod serve;
pub mod supervise;
pub mod timings;
pub mod units;

/// Generated protobuf messages and gRPC clients/servers for package `xnai.v1`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("xnai.v1");
}

/// Encoded `FileDescriptorSet` of every xnai proto, for the gRPC reflection service.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("xnai_descriptor");
