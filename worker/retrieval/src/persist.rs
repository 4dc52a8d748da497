//! How an index lives in the cluster: a numbered chain of immutable segments per actor. Segment
//! `seq` is a full snapshot when `seq` is a power of two, else the log of the one mutation
//! numbered `seq`; so snapshots are taken after 1, 2, 4, 8, ... mutations (each costs the
//! index's size, a total of about twice the final size), and everything before the newest
//! snapshot is freed once it is stored. A reloading actor finds the newest snapshot by probing
//! powers of two, then the logs after it one by one ([`LoadPlan`]), and never re-embeds.
//!
//! Bytes: the magic `XNAIRAG1`, one kind byte (1 snapshot, 2 log), then bincode (serde).

use sha2::{Digest, Sha256};

use crate::error::{Result, RetrievalError};
use crate::index::{Mutation, RetrievalIndex, Stored};

const MAGIC: &[u8; 8] = b"XNAIRAG1";
const SNAPSHOT: u8 = 1;
const LOG: u8 = 2;
/// Snapshots are probed up to segment 2^40 (a trillion mutations).
const MAX_SNAPSHOT_BITS: u32 = 41;

/// A decoded segment.
pub enum Segment {
    /// The whole index after the mutation of this segment's number.
    Snapshot(Box<RetrievalIndex>),
    /// One mutation to apply after the previous segment.
    Log(Mutation),
}

/// Whether segment `seq` must be a snapshot (powers of two: 1, 2, 4, ...).
pub fn is_snapshot_seq(seq: u64) -> bool {
    seq.is_power_of_two()
}

/// The 128-bit object id of segment `seq` of the index keyed by `owner` (the actor's id):
/// SHA-256 of both, with the low byte zero (the cluster's mark of a put object). Deterministic,
/// so a restarted actor finds its segments without any pointer stored elsewhere.
pub fn segment_object_id(owner: &[u8], seq: u64) -> u128 {
    let mut h = Sha256::new();
    h.update(b"xnai-retrieval-segment");
    h.update(owner);
    h.update(seq.to_le_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(bytes) & !0xff
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

fn framed(kind: u8, body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + body.len());
    out.extend_from_slice(MAGIC);
    out.push(kind);
    out.extend_from_slice(&body);
    out
}

/// Encodes a snapshot of `index` (compact it first so the graph covers every chunk).
pub fn encode_snapshot(index: &RetrievalIndex) -> Result<Vec<u8>> {
    let body = bincode::serde::encode_to_vec(index.stored(), config())
        .map_err(|e| RetrievalError::Encode(e.to_string()))?;
    Ok(framed(SNAPSHOT, body))
}

/// Encodes one logged mutation.
pub fn encode_log(mutation: &Mutation) -> Result<Vec<u8>> {
    let body = bincode::serde::encode_to_vec(mutation, config())
        .map_err(|e| RetrievalError::Encode(e.to_string()))?;
    Ok(framed(LOG, body))
}

/// Decodes a segment.
pub fn decode(bytes: &[u8]) -> Result<Segment> {
    if bytes.len() < 9 || &bytes[..8] != MAGIC {
        return Err(RetrievalError::Decode("not an xnai index segment".into()));
    }
    let body = &bytes[9..];
    let err = |e: bincode::error::DecodeError| RetrievalError::Decode(e.to_string());
    match bytes[8] {
        SNAPSHOT => {
            let (stored, _): (Stored, usize) =
                bincode::serde::decode_from_slice(body, config()).map_err(err)?;
            Ok(Segment::Snapshot(Box::new(RetrievalIndex::from_stored(
                stored,
            ))))
        }
        LOG => {
            let (m, _): (Mutation, usize) =
                bincode::serde::decode_from_slice(body, config()).map_err(err)?;
            Ok(Segment::Log(m))
        }
        other => Err(RetrievalError::Decode(format!(
            "unknown segment kind {other}"
        ))),
    }
}

/// Which segments a reload reads, found by asking whether segments exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    /// The newest snapshot's number, if any.
    pub snapshot: Option<u64>,
    /// Logs to apply after it, in order.
    pub logs: Vec<u64>,
    /// The number the next mutation gets.
    pub next: u64,
}

impl LoadPlan {
    /// Plans a reload given which segments exist. Segment 0 is the first mutation's log; the
    /// newest snapshot is the largest existing power of two (probing 1, 2, 4, ...: older ones
    /// may be freed, so missing ones are skipped until one exists, then the run of existing
    /// ones ends at the first missing); logs follow it until the first missing number.
    pub async fn probe<F, Fut, E>(mut exists: F) -> std::result::Result<Self, E>
    where
        F: FnMut(u64) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<bool, E>>,
    {
        let mut snapshot = None;
        for bit in 0..MAX_SNAPSHOT_BITS {
            let p = 1u64 << bit;
            if exists(p).await? {
                snapshot = Some(p);
            } else if snapshot.is_some() {
                break;
            }
        }
        let mut logs = Vec::new();
        let mut seq = snapshot.map_or(0, |s| s + 1);
        loop {
            if is_snapshot_seq(seq) || !exists(seq).await? {
                break;
            }
            logs.push(seq);
            seq += 1;
        }
        Ok(Self {
            snapshot,
            logs,
            next: seq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{EmbeddedChunk, EmbeddedDoc, IndexParams, SearchMode};

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        // The probe only awaits ready futures in these tests.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("pending"),
        }
    }

    fn plan(existing: &[u64]) -> LoadPlan {
        let set: std::collections::BTreeSet<u64> = existing.iter().copied().collect();
        block_on(LoadPlan::probe(|s| {
            let found = set.contains(&s);
            async move { Ok::<_, ()>(found) }
        }))
        .unwrap()
    }

    #[test]
    fn load_plans() {
        assert_eq!(
            plan(&[]),
            LoadPlan {
                snapshot: None,
                logs: vec![],
                next: 0
            }
        );
        assert_eq!(
            plan(&[0]),
            LoadPlan {
                snapshot: None,
                logs: vec![0],
                next: 1
            }
        );
        // Older segments freed after snapshot 4; logs 5 and 6 follow it.
        assert_eq!(
            plan(&[4, 5, 6]),
            LoadPlan {
                snapshot: Some(4),
                logs: vec![5, 6],
                next: 7
            }
        );
        let all: Vec<u64> = (0..=6).collect();
        assert_eq!(
            plan(&all),
            LoadPlan {
                snapshot: Some(4),
                logs: vec![5, 6],
                next: 7
            }
        );
        // Snapshot 8 was being written when the actor died: reload from 4 + logs 5..7.
        let upto7: Vec<u64> = (0..8).collect();
        assert_eq!(
            plan(&upto7),
            LoadPlan {
                snapshot: Some(4),
                logs: vec![5, 6, 7],
                next: 8
            }
        );
    }

    #[test]
    fn object_ids_are_stable_and_put_shaped() {
        let a = segment_object_id(b"actor", 3);
        assert_eq!(a, segment_object_id(b"actor", 3));
        assert_ne!(a, segment_object_id(b"actor", 4));
        assert_ne!(a, segment_object_id(b"other", 3));
        assert_eq!(a & 0xff, 0);
    }

    #[test]
    fn snapshot_and_log_round_trip() {
        let mut index = RetrievalIndex::new(IndexParams::default()).unwrap();
        let doc = EmbeddedDoc {
            id: "d".into(),
            metadata: [("source".to_string(), "x.md".to_string())].into(),
            chunks: vec![EmbeddedChunk {
                text: "hello world".into(),
                vector: vec![1.0, 0.0],
            }],
        };
        let m = Mutation::Add(vec![doc]);
        index.apply(&m).unwrap();
        index.compact(0);
        let Segment::Snapshot(back) = decode(&encode_snapshot(&index).unwrap()).unwrap() else {
            panic!("not a snapshot");
        };
        let q = [1.0, 0.1];
        let a = index
            .search("hello", Some(&q), 3, SearchMode::Hybrid)
            .unwrap();
        assert_eq!(
            a,
            back.search("hello", Some(&q), 3, SearchMode::Hybrid)
                .unwrap()
        );
        let Segment::Log(m2) = decode(&encode_log(&m).unwrap()).unwrap() else {
            panic!("not a log");
        };
        assert_eq!(m, m2);
        assert!(decode(b"garbage").is_err());
    }
}
