//! Head membership from the SDK: add a head (started with `xnai-head --join`) to the Raft
//! group, or remove one. Both go to the leader (the link follows it) and answer once the
//! change is committed.

use xnai_proto::pb;

use super::Client;
use super::error::Result;
use super::link::head_call;

impl Client {
    /// Add the head serving at `address` to the group; returns its id.
    pub async fn add_head(&self, address: &str) -> Result<u64> {
        let req = pb::AddHeadRequest {
            address: address.to_string(),
        };
        Ok(head_call!(self.inner.head, add_head, req).await?.id)
    }

    /// Remove head `id` from the group.
    pub async fn remove_head(&self, id: u64) -> Result<()> {
        head_call!(self.inner.head, remove_head, pb::RemoveHeadRequest { id }).await?;
        Ok(())
    }
}
