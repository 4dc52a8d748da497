//! The leader hint: a head that does not lead answers UNAVAILABLE and names the Raft leader in
//! the `xnai-leader` response metadata. Heads write it with [`not_leader`]; the SDK, workers and
//! the chaos harness read it with [`leader_hint`] and go there next.

use tonic::Status;
use tonic::metadata::MetadataValue;

/// Response metadata key naming the leader's `host:port`.
pub const LEADER_METADATA: &str = "xnai-leader";

/// UNAVAILABLE with `message`, naming `leader` in the metadata when it is known (and is a
/// valid header value).
pub fn not_leader(message: impl Into<String>, leader: Option<&str>) -> Status {
    let mut s = Status::unavailable(message);
    if let Some(l) = leader
        && let Ok(v) = MetadataValue::try_from(l)
    {
        s.metadata_mut().insert(LEADER_METADATA, v);
    }
    s
}

/// The leader a failed call's status names, if any.
pub fn leader_hint(status: &Status) -> Option<&str> {
    status.metadata().get(LEADER_METADATA)?.to_str().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_round_trips_and_is_optional() {
        let s = not_leader("not the leader", Some("127.0.0.1:7001"));
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert_eq!(leader_hint(&s), Some("127.0.0.1:7001"));
        assert_eq!(leader_hint(&not_leader("no leader yet", None)), None);
        assert_eq!(leader_hint(&not_leader("x", Some("bad\nvalue"))), None);
    }
}
