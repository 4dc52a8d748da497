//! 128-bit identities printed as 32 lowercase hex characters.
//!
//! A task's return object id is its task id with the low byte set to the return index (1), so
//! an object id names the task that made it; `put` objects and task ids keep a low byte of 0.

use std::fmt;
use std::str::FromStr;

/// Why a string is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {kind} {value:?}: expected 32 hex characters")]
pub struct IdParseError {
    /// Which kind of id was expected.
    pub kind: &'static str,
    /// The text that was given (cut to 80 characters).
    pub value: String,
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub struct $name(pub u128);

        impl $name {
            /// A fresh random id (low byte 0).
            pub fn random() -> Self {
                Self(rand::random::<u128>() & !0xff)
            }
            /// Parse 32 hex characters.
            pub fn parse(s: &str) -> Result<Self, IdParseError> {
                let err = || IdParseError { kind: $kind, value: s.chars().take(80).collect() };
                if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(err());
                }
                u128::from_str_radix(s, 16).map(Self).map_err(|_| err())
            }
            /// The id as 32 lowercase hex characters.
            pub fn hex(&self) -> String {
                format!("{:032x}", self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:032x}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:032x})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

id_type!(
    /// A worker process; a restarted worker gets a new one.
    WorkerId, "worker id"
);
id_type!(
    /// An actor, stable across its restarts.
    ActorId, "actor id"
);
id_type!(
    /// A task; its return object is [`TaskId::return_object`].
    TaskId, "task id"
);
id_type!(
    /// An immutable object in some worker's arena.
    ObjectId, "object id"
);
id_type!(
    /// A client session.
    SessionId, "session id"
);

impl TaskId {
    /// The id of this task's (single) return object.
    pub fn return_object(&self) -> ObjectId {
        ObjectId((self.0 & !0xff) | 1)
    }
}

impl ObjectId {
    /// The task that produced this object, or `None` for a `put` object.
    pub fn producing_task(&self) -> Option<TaskId> {
        if self.0 & 0xff == 0 {
            None
        } else {
            Some(TaskId(self.0 & !0xff))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_object_names_its_task() {
        let t = TaskId::random();
        let o = t.return_object();
        assert_ne!(o.0, t.0);
        assert_eq!(o.producing_task(), Some(t));
        assert_eq!(ObjectId::random().producing_task(), None);
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let id = ActorId(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        assert_eq!(id.hex(), "0123456789abcdef0011223344556677");
        assert_eq!(ActorId::parse(&id.hex()), Ok(id));
        let e = ObjectId::parse("xyz").unwrap_err();
        assert!(e.to_string().contains("malformed object id"), "{e}");
        assert!(ObjectId::parse(&"g".repeat(32)).is_err());
        assert!(ObjectId::parse(&format!("+{}", "0".repeat(31))).is_err());
    }
}
