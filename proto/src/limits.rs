//! Limits every node enforces at the wire, in one place so client and servers agree.

/// Largest gRPC message any xnai server decodes or encodes (8 MiB).
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;
/// Largest total of inline arguments of one task or actor call (1 MiB); bigger data goes in an
/// object passed by reference.
pub const MAX_INLINE_ARGS_BYTES: usize = 1024 * 1024;
/// Size of the chunks objects are streamed in (1 MiB).
pub const CHUNK_BYTES: usize = 1024 * 1024;
/// HTTP/2 stream window of object streams: big enough to stream 1 MiB chunks at full speed.
pub const STREAM_WINDOW: u32 = 8 << 20;
/// HTTP/2 connection window of object streams.
pub const CONNECTION_WINDOW: u32 = 32 << 20;
/// Largest HTTP/2 frame a client, worker or puller accepts (advertised in its SETTINGS): a
/// 1 MiB chunk arrives in one or two frames instead of 64 of the default 16 KiB.
pub const MAX_FRAME: u32 = 1 << 20;
/// Most same-host puts a worker keeps open (created, not yet sealed) at once.
pub const MAX_OPEN_LOCAL_PUTS: usize = 64;
/// How long a same-host put stays open without a seal before the worker drops it (60 s).
pub const LOCAL_PUT_LEASE_MS: u64 = 60_000;
/// Longest function, class, method or actor name accepted.
pub const MAX_NAME_BYTES: usize = 256;
