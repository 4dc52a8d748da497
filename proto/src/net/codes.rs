//! Which gRPC codes say "try again" and which say "that node is in trouble", decided once.
//! xnai nodes never answer UNKNOWN or CANCELLED themselves: those come from a connection that
//! failed or dropped mid-call, so they mean the same as UNAVAILABLE to a caller.

use tonic::Code;

/// Whether a failed call may be retried, on the same node or another one (a head that does not
/// lead, a node that cannot be reached, a connection dropped mid-call). Safe only for calls
/// that are idempotent or carry a request id.
pub fn retriable(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::Unknown | Code::Cancelled)
}

/// Whether a failed call says the node itself is unreachable or stuck (counts towards opening
/// its circuit breaker): a retriable code, or a deadline the node did not meet. Application
/// answers ("not found", "invalid argument") are healthy nodes.
pub fn node_failed(code: Code) -> bool {
    retriable(code) || code == Code::DeadlineExceeded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_split_into_retriable_and_final() {
        for c in [Code::Unavailable, Code::Unknown, Code::Cancelled] {
            assert!(retriable(c) && node_failed(c), "{c:?}");
        }
        assert!(!retriable(Code::DeadlineExceeded) && node_failed(Code::DeadlineExceeded));
        for c in [
            Code::NotFound,
            Code::InvalidArgument,
            Code::ResourceExhausted,
        ] {
            assert!(!retriable(c) && !node_failed(c), "{c:?}");
        }
    }
}
