//! Head calls with request ids the harness chooses. The SDK picks its own random request ids,
//! so the history could not tell a retried submission from a new one; here every write carries
//! a request id derived from the seed, is retried with that same id after any ambiguous failure
//! (UNAVAILABLE, a dropped connection, a timeout), and every acknowledged attempt is kept, so the
//! duplicate-task checker can compare them.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;
use xnai_proto::auth::TokenInject;
use xnai_proto::limits::MAX_MESSAGE_BYTES;
use xnai_proto::net::{self, Backoff, Traffic};
use xnai_proto::pb::head_client::HeadClient;

use crate::error::{ChaosError, Result};

/// A Head stub with the token.
pub type HeadStub = HeadClient<InterceptedService<Channel, TokenInject>>;

/// Longest single attempt: a blackholed head must not hold a client forever.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);
/// Pause after each full round over the heads: 100 ms doubling to 400 ms.
const ROUND_BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));

/// How a call ended.
#[derive(Debug)]
pub enum Reply<T> {
    /// Answered; with every answer when the call was retried (all should agree).
    Ok(T),
    /// A definite error answer (the write did not happen).
    Fail(tonic::Status),
    /// Gave up after ambiguous failures: it may or may not have happened.
    Unknown(String),
}

/// Connections to every head, following the leader.
pub struct RawHead {
    stubs: Vec<HeadStub>,
    current: AtomicUsize,
}

impl RawHead {
    /// Lazy channels to `heads` carrying `token`.
    pub fn new(heads: &[String], token: &str) -> Result<Self> {
        let token =
            TokenInject::new(token).map_err(|s| ChaosError::Config(s.message().to_string()))?;
        let mut stubs = Vec::new();
        for h in heads {
            let channel = net::lazy_channel(h, Traffic::Control)
                .map_err(|e| ChaosError::Config(format!("head: {e}")))?;
            stubs.push(
                HeadClient::with_interceptor(channel, token.clone())
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            );
        }
        if stubs.is_empty() {
            return Err(ChaosError::Config("no head address".into()));
        }
        Ok(Self {
            stubs,
            current: AtomicUsize::new(0),
        })
    }

    /// Run `f` (which must send the same request, request id included, every time) until a
    /// head answers or `budget` passes. Ambiguous failures move on to the next head.
    pub async fn call<T, F, Fut>(&self, budget: Duration, mut f: F) -> Reply<T>
    where
        F: FnMut(HeadStub) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let n = self.stubs.len();
        let deadline = Instant::now() + budget;
        let mut i = self.current.load(Ordering::Relaxed) % n;
        let mut last = String::from("no attempt");
        let mut backoff = ROUND_BACKOFF;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Reply::Unknown(last);
            }
            match tokio::time::timeout(left.min(ATTEMPT_TIMEOUT), f(self.stubs[i].clone())).await {
                Ok(Ok(r)) => {
                    self.current.store(i, Ordering::Relaxed);
                    return Reply::Ok(r.into_inner());
                }
                // A deadline the head did not meet is as ambiguous as a lost connection.
                Ok(Err(s)) if !net::node_failed(s.code()) => {
                    self.current.store(i, Ordering::Relaxed);
                    return Reply::Fail(s);
                }
                Ok(Err(s)) => last = format!("{:?}: {}", s.code(), s.message()),
                Err(_) => last = "attempt timed out".into(),
            }
            i = (i + 1) % n;
            if i == 0 {
                backoff.wait().await;
            }
        }
    }
}
