//! The bytes of raft entries and snapshots: every entry and snapshot this head writes starts
//! with a format tag ([`TAG`], then a version byte) before its bincode body, so a head that meets
//! a format it cannot read stops loudly ([`LogError::UnknownFormat`]) instead of skipping entries
//! and diverging. bincode 2's standard config never starts a varint with 0xFF, so untagged data
//! (written before the tag existed) is recognised and read as the legacy format: heads upgraded
//! in place keep their logs and snapshots.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::log::LogError;
use crate::state::{Command, ControlState};

/// First byte of tagged data: a byte no bincode-standard varint (a length or an index) starts with.
pub(crate) const TAG: u8 = 0xFF;
/// The entry format this head writes (1: bincode of `Vec<Vec<Command>>`).
pub(crate) const ENTRY_VERSION: u8 = 1;
/// The snapshot format this head writes (1: bincode of index, state, address book).
pub(crate) const SNAPSHOT_VERSION: u8 = 1;

/// A snapshot's data as written.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    index: u64,
    state: &'a ControlState,
    peers: &'a BTreeMap<u64, String>,
}

/// A snapshot's data as read (same layout as [`SnapshotRef`]).
#[derive(Deserialize, Default)]
pub(crate) struct SnapshotData {
    pub(crate) index: u64,
    pub(crate) state: ControlState,
    pub(crate) peers: BTreeMap<u64, String>,
}

fn encode_err(what: &'static str, e: impl ToString) -> LogError {
    LogError::Encode {
        what,
        reason: e.to_string(),
    }
}

/// `data` without its tag, once its version is one this head reads; untagged data is legacy
/// (version 0) and returned whole.
fn body<'a>(
    what: &'static str,
    index: u64,
    data: &'a [u8],
    known: u8,
) -> Result<&'a [u8], LogError> {
    match data {
        [TAG, version, rest @ ..] if *version >= 1 && *version <= known => Ok(rest),
        [TAG, version, ..] => Err(LogError::UnknownFormat {
            what,
            index,
            version: *version,
            known,
        }),
        [TAG] => Err(LogError::Corrupt {
            index,
            reason: format!("{what}: a format tag without a version"),
        }),
        _ => Ok(data),
    }
}

fn tagged(version: u8, body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2);
    out.push(TAG);
    out.push(version);
    out.extend_from_slice(&body);
    out
}

/// Encode a group commit (the commands of each proposal), tagged.
pub(crate) fn encode_entry(batches: &[Vec<Command>]) -> Result<Vec<u8>, LogError> {
    let body = bincode::serde::encode_to_vec(batches, bincode::config::standard())
        .map_err(|e| encode_err("raft entry", e))?;
    Ok(tagged(ENTRY_VERSION, body))
}

/// Decode a normal entry's data (tagged or legacy). An unknown version or bytes that do not
/// decode are an error the caller must not skip.
pub(crate) fn decode_entry(index: u64, data: &[u8]) -> Result<Vec<Vec<Command>>, LogError> {
    let body = body("raft entry", index, data, ENTRY_VERSION)?;
    bincode::serde::decode_from_slice(body, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| LogError::Corrupt {
            index,
            reason: e.to_string(),
        })
}

/// Encode snapshot data for `index`, tagged.
pub(crate) fn encode_snapshot(
    index: u64,
    state: &ControlState,
    peers: &BTreeMap<u64, String>,
) -> Result<Vec<u8>, LogError> {
    let r = SnapshotRef {
        index,
        state,
        peers,
    };
    let body = bincode::serde::encode_to_vec(&r, bincode::config::standard())
        .map_err(|e| encode_err("snapshot", e))?;
    Ok(tagged(SNAPSHOT_VERSION, body))
}

/// Decode snapshot data (tagged or legacy); empty data is the empty state (the bootstrap
/// snapshot of a head that joins).
pub(crate) fn decode_snapshot(index: u64, data: &[u8]) -> Result<SnapshotData, LogError> {
    if data.is_empty() {
        return Ok(SnapshotData {
            index,
            ..Default::default()
        });
    }
    let body = body("snapshot", index, data, SNAPSHOT_VERSION)?;
    bincode::serde::decode_from_slice(body, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| LogError::Corrupt {
            index,
            reason: format!("snapshot: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Command;

    fn batches() -> Vec<Vec<Command>> {
        vec![vec![Command::OpenSession {
            request_id: "r-1".into(),
            session_id: xnai_proto::ids::SessionId(1 << 8),
            lease_ms: 1_000,
        }]]
    }

    #[test]
    fn entries_and_snapshots_carry_their_version() {
        let e = encode_entry(&batches()).expect("encode");
        assert_eq!(&e[..2], &[TAG, ENTRY_VERSION]);
        assert_eq!(decode_entry(5, &e).expect("decode").len(), 1);
        let s = encode_snapshot(7, &ControlState::default(), &BTreeMap::new()).expect("encode");
        assert_eq!(&s[..2], &[TAG, SNAPSHOT_VERSION]);
        assert_eq!(decode_snapshot(7, &s).expect("decode").index, 7);
    }

    #[test]
    fn untagged_data_reads_as_the_legacy_format() {
        let legacy =
            bincode::serde::encode_to_vec(batches(), bincode::config::standard()).expect("encode");
        assert_ne!(legacy[0], TAG);
        assert_eq!(decode_entry(3, &legacy).expect("legacy entry").len(), 1);
        let peers = BTreeMap::from([(1, "h:1".to_string())]);
        let snap = SnapshotRef {
            index: 9,
            state: &ControlState::default(),
            peers: &peers,
        };
        let legacy =
            bincode::serde::encode_to_vec(&snap, bincode::config::standard()).expect("encode");
        let back = decode_snapshot(9, &legacy).expect("legacy snapshot");
        assert_eq!((back.index, back.peers), (9, peers));
    }

    #[test]
    fn an_unknown_version_is_refused_not_skipped() {
        let mut e = encode_entry(&batches()).expect("encode");
        e[1] = ENTRY_VERSION + 1;
        let err = decode_entry(12, &e).expect_err("unknown version");
        assert!(
            matches!(err, LogError::UnknownFormat { index: 12, version, .. } if version == ENTRY_VERSION + 1),
            "{err}"
        );
        let mut s = encode_snapshot(1, &ControlState::default(), &BTreeMap::new()).expect("enc");
        s[1] = 0;
        assert!(matches!(
            decode_snapshot(1, &s),
            Err(LogError::UnknownFormat { version: 0, .. })
        ));
    }
}
