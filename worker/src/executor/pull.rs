//! Pulling an object from a peer worker (`Worker.FetchObject`) straight into an arena writer.
//! Behind the [`ObjectPuller`] trait so executor tests can fake peers.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use tonic::transport::Channel;
use xnai_proto::auth::TokenInject;
use xnai_proto::ids::ObjectId;
use xnai_proto::limits::MAX_MESSAGE_BYTES;
use xnai_proto::net::{self, Traffic};
use xnai_proto::pb::FetchObjectRequest;
use xnai_proto::pb::worker_client::WorkerClient;

use super::breaker::PullFailed;
use crate::arena::ObjectWriter;
use crate::error::{Result, WorkerError};

/// Fetches an object's bytes from a peer into `writer` (which knows the expected size).
/// The caller commits the writer, checking the CRC-32.
pub trait ObjectPuller: Send + Sync + 'static {
    /// Stream object `id` from the worker at `address` into `writer`.
    fn pull<'a>(
        &'a self,
        address: &'a str,
        id: ObjectId,
        writer: &'a mut ObjectWriter,
    ) -> BoxFuture<'a, Result<()>>;
}

/// A lazily connecting channel to a peer worker for object streams (the toolkit's
/// `Traffic::Objects` settings).
pub fn peer_channel(address: &str) -> Result<Channel> {
    net::lazy_channel(address, Traffic::Objects)
        .map_err(|e| WorkerError::BadRequest(format!("peer: {e}")))
}

/// The real puller: one cached channel and one circuit breaker per peer address, cluster token
/// on every call.
pub struct GrpcPuller {
    token: TokenInject,
    channels: Mutex<HashMap<String, Channel>>,
    breakers: super::breaker::PeerBreakers,
}

impl GrpcPuller {
    /// A puller that authenticates with `token`.
    pub fn new(token: TokenInject) -> Self {
        Self {
            token,
            channels: Mutex::new(HashMap::new()),
            breakers: Default::default(),
        }
    }

    fn channel(&self, address: &str) -> Result<Channel> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = channels.get(address) {
            return Ok(c.clone());
        }
        let c = peer_channel(address)?;
        channels.insert(address.to_string(), c.clone());
        Ok(c)
    }

    async fn fetch(
        &self,
        address: &str,
        id: ObjectId,
        writer: &mut ObjectWriter,
    ) -> std::result::Result<(), PullFailed> {
        let mut client = WorkerClient::with_interceptor(self.channel(address)?, self.token.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let unavailable = |s: tonic::Status| PullFailed {
            code: Some(s.code()),
            error: WorkerError::ObjectUnavailable {
                object: id,
                reason: format!("{:?}: {}", s.code(), s.message()),
            },
        };
        let mut stream = client
            .fetch_object(FetchObjectRequest {
                object_id: id.hex(),
            })
            .await
            .map_err(unavailable)?
            .into_inner();
        let mut first = true;
        while let Some(chunk) = stream.message().await.map_err(unavailable)? {
            if first {
                if chunk.total_size != writer.size() {
                    return Err(WorkerError::SizeMismatch {
                        expected: writer.size(),
                        got: chunk.total_size,
                    }
                    .into());
                }
                first = false;
            }
            if chunk.offset != writer.written() {
                return Err(WorkerError::ObjectUnavailable {
                    object: id,
                    reason: format!(
                        "chunk at offset {} where {} was expected",
                        chunk.offset,
                        writer.written()
                    ),
                }
                .into());
            }
            writer.write(&chunk.data)?;
        }
        if first {
            return Err(WorkerError::ObjectUnavailable {
                object: id,
                reason: "the peer sent no chunk".into(),
            }
            .into());
        }
        Ok(())
    }
}

impl ObjectPuller for GrpcPuller {
    fn pull<'a>(
        &'a self,
        address: &'a str,
        id: ObjectId,
        writer: &'a mut ObjectWriter,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(
            self.breakers
                .call(address, id, self.fetch(address, id, writer)),
        )
    }
}
