//! Which gRPC codes say "try again" and which say "that node is in trouble", decided once.
//! xnai nodes never answer UNKNOWN or CANCELLED themselves: those come from a connection that
//! failed or dropped mid-call, so they mean the same as UNAVAILABLE to a caller.

use std::error::Error as StdError;

use tonic::{Code, Status};

/// Whether a failed call may be retried, on the same node or another one (a head that does not
/// lead, a node that cannot be reached, a connection dropped mid-call). Safe only for calls
/// that are idempotent or carry a request id.
pub fn retriable(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::Unknown | Code::Cancelled)
}

/// [`retriable`], plus a call the HTTP/2 transport ended (tonic reports an h2 stream or
/// connection error, e.g. a GOAWAY or reset from a node shutting down, as INTERNAL with the h2
/// error as its source). xnai nodes never answer INTERNAL through h2 themselves, so such a
/// status means "the connection went", decided from the source chain, never from text.
pub fn retriable_status(status: &Status) -> bool {
    if retriable(status.code()) {
        return true;
    }
    let mut cur: Option<&(dyn StdError + 'static)> = StdError::source(status);
    while let Some(e) = cur {
        if e.downcast_ref::<h2::Error>().is_some() {
            return true;
        }
        cur = e.source();
    }
    false
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

    #[test]
    fn a_call_the_h2_transport_ended_is_retriable_and_a_plain_internal_is_not() {
        let dropped = Status::from_error(Box::new(h2::Error::from(h2::Reason::NO_ERROR)));
        assert_eq!(dropped.code(), Code::Internal, "{dropped:?}");
        assert!(retriable_status(&dropped), "{dropped:?}");
        assert!(!retriable_status(&Status::internal(
            "a handler's own error"
        )));
        assert!(retriable_status(&Status::unavailable("not the leader")));
    }
}
