//! Limits every node enforces at the wire, in one place so client and servers agree.

/// Largest gRPC message any xnai server decodes or encodes (8 MiB).
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;
/// Largest total of inline arguments of one task or actor call (1 MiB); bigger data goes in an
/// object passed by reference.
pub const MAX_INLINE_ARGS_BYTES: usize = 1024 * 1024;
/// Size of the chunks objects are streamed in (1 MiB).
pub const CHUNK_BYTES: usize = 1024 * 1024;
/// Longest function, class, method or actor name accepted.
pub const MAX_NAME_BYTES: usize = 256;
