//! [`SledLog`]: a TEST-ONLY single-node command log (production runs [`crate::raft::RaftLog`],
//! also for one head); unit tests of the runtime use it as a light log with an effects stream. One owner task takes proposals from a channel,
//! appends every queued command to a sled tree under increasing indexes with ONE flush per
//! batch (group commit), applies them, then replies. Snapshots bound the replay on start.

use std::path::Path;
use std::sync::Mutex;

use futures::future::BoxFuture;
use sled::Tree;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::{
    AppliedBatch, CommandLog, EFFECTS_QUEUE, EffectsReceiver, EffectsSender, LogError, SharedState,
    effects_channel,
};
use crate::state::{Command, ControlState, Outcome};

/// Most proposals written in one group commit.
const MAX_BATCH: usize = 1024;
/// Proposals that may wait for the owner before `propose` applies backpressure.
const QUEUE: usize = 16_384;
const SNAPSHOT_KEY: &[u8] = b"snapshot";

type Reply = oneshot::Sender<Result<Vec<Outcome>, LogError>>;

struct Proposal {
    commands: Vec<Command>,
    reply: Reply,
}

/// The sled-backed single-node [`CommandLog`]. Thread-safe; share it behind an `Arc`.
pub struct SledLog {
    tx: mpsc::Sender<Proposal>,
    state: SharedState,
    applied: watch::Receiver<u64>,
    stop: watch::Sender<bool>,
    owner: Mutex<Option<JoinHandle<()>>>,
}

impl SledLog {
    /// Open (or create) the log under `dir`, recover the state from the latest snapshot plus
    /// the entries after it, and start the owner task (needs a tokio runtime). Returns the log
    /// and the stream of applied batches for the runtime. `snapshot_every == 0` never snapshots.
    pub fn open(dir: &Path, snapshot_every: u64) -> Result<(Self, EffectsReceiver), LogError> {
        let db = sled::Config::new().path(dir).open()?;
        let log = db.open_tree("log")?;
        let meta = db.open_tree("meta")?;
        let (state, snapshot_index, last_index) = recover(&log, &meta)?;
        tracing::info!(snapshot_index, last_index, "recovered control state");
        let state = SharedState::new(state);
        let (applied_tx, applied) = watch::channel(last_index);
        // Bounded and never blocking, like the Raft log's (see `log::effects`); proposals are
        // bounded by QUEUE below.
        let (effects_tx, effects) = effects_channel(EFFECTS_QUEUE);
        let (tx, rx) = mpsc::channel(QUEUE);
        let (stop, stop_rx) = watch::channel(false);
        let owner = Owner {
            db,
            log,
            meta,
            state: state.clone(),
            applied: applied_tx,
            effects: effects_tx,
            last_index,
            snapshot_index,
            snapshot_every,
        };
        let handle = tokio::spawn(owner.run(rx, stop_rx));
        let me = Self {
            tx,
            state,
            applied,
            stop,
            owner: Mutex::new(Some(handle)),
        };
        Ok((me, effects))
    }
}

impl CommandLog for SledLog {
    fn propose(
        &self,
        commands: Vec<Command>,
    ) -> BoxFuture<'static, Result<Vec<Outcome>, LogError>> {
        let tx = self.tx.clone();
        Box::pin(async move {
            if commands.is_empty() {
                return Ok(Vec::new());
            }
            let (reply, rx) = oneshot::channel();
            tx.send(Proposal { commands, reply })
                .await
                .map_err(|_| LogError::Closed)?;
            rx.await.map_err(|_| LogError::Closed)?
        })
    }

    fn state(&self) -> &SharedState {
        &self.state
    }

    fn applied(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        self.stop.send_replace(true);
        let handle = self.owner.lock().unwrap_or_else(|p| p.into_inner()).take();
        Box::pin(async move {
            if let Some(h) = handle {
                let _ = h.await;
            }
        })
    }
}

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn encode<T: serde::Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, LogError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| {
        LogError::Encode {
            what,
            reason: e.to_string(),
        }
    })
}

fn decode<T: serde::de::DeserializeOwned>(index: u64, bytes: &[u8]) -> Result<T, LogError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| LogError::Corrupt {
            index,
            reason: e.to_string(),
        })
}

/// Load the snapshot (if any) and replay the entries after it. Returns the state, the
/// snapshot's index and the last applied index.
fn recover(log: &Tree, meta: &Tree) -> Result<(ControlState, u64, u64), LogError> {
    let (mut state, snapshot_index) = match meta.get(SNAPSHOT_KEY)? {
        None => (ControlState::default(), 0),
        Some(bytes) => {
            let (index, state): (u64, ControlState) = decode(0, &bytes)?;
            (state, index)
        }
    };
    let mut last = snapshot_index;
    for item in log.range(key(snapshot_index + 1)..) {
        let (k, v) = item?;
        let index = <[u8; 8]>::try_from(k.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| LogError::Corrupt {
                index: last + 1,
                reason: format!("bad key of {} bytes", k.len()),
            })?;
        if index != last + 1 {
            let reason = format!("gap: expected index {} after {last}", last + 1);
            return Err(LogError::Corrupt { index, reason });
        }
        let command: Command = decode(index, &v)?;
        state.apply(command);
        last = index;
    }
    Ok((state, snapshot_index, last))
}

/// The task that owns the storage and the state machine.
struct Owner {
    db: sled::Db,
    log: Tree,
    meta: Tree,
    state: SharedState,
    applied: watch::Sender<u64>,
    effects: EffectsSender,
    last_index: u64,
    snapshot_index: u64,
    snapshot_every: u64,
}

impl Owner {
    async fn run(mut self, mut rx: mpsc::Receiver<Proposal>, mut stop: watch::Receiver<bool>) {
        loop {
            let first = tokio::select! {
                biased;
                _ = stop.changed() => break,
                p = rx.recv() => match p {
                    Some(p) => p,
                    None => break,
                },
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            if let Err(e) = self.commit(batch).await {
                tracing::error!(error = %e, "command log stopped after a storage failure; restart the head");
                break;
            }
        }
        if let Err(e) = self.db.flush_async().await {
            tracing::warn!(error = %e, "final flush of the command log failed");
        }
    }

    /// Write, flush once, apply, reply. An error here is fatal: the disk may hold entries that
    /// were not applied, so the owner stops and a restart replays them.
    async fn commit(&mut self, batch: Vec<Proposal>) -> Result<(), LogError> {
        let mut writes = sled::Batch::default();
        let mut accepted = Vec::with_capacity(batch.len());
        let mut index = self.last_index;
        for p in batch {
            let encoded: Result<Vec<Vec<u8>>, LogError> =
                p.commands.iter().map(|c| encode("command", c)).collect();
            match encoded {
                Ok(entries) => {
                    for bytes in entries {
                        index += 1;
                        writes.insert(&key(index), bytes);
                    }
                    accepted.push(p);
                }
                Err(e) => {
                    let _ = p.reply.send(Err(e));
                }
            }
        }
        if accepted.is_empty() {
            return Ok(());
        }
        self.log.apply_batch(writes)?;
        self.db.flush_async().await?;
        let mut effects = Vec::new();
        let replies: Vec<(Reply, Vec<Outcome>)> = self.state.write(|s| {
            accepted
                .into_iter()
                .map(|p| {
                    let outcomes = p
                        .commands
                        .into_iter()
                        .map(|c| {
                            let (outcome, fx) = s.apply(c);
                            effects.extend(fx);
                            outcome
                        })
                        .collect();
                    (p.reply, outcomes)
                })
                .collect()
        });
        self.last_index = index;
        self.applied.send_replace(index);
        let _ = self.effects.send(AppliedBatch { index, effects });
        for (reply, outcomes) in replies {
            let _ = reply.send(Ok(outcomes));
        }
        if self.snapshot_every > 0 && index - self.snapshot_index >= self.snapshot_every {
            // Not fatal: the entries are still in the log and the next snapshot retries.
            if let Err(e) = self.snapshot().await {
                tracing::warn!(error = %e, index, "snapshot failed");
            }
        }
        Ok(())
    }

    /// Write the state at `last_index`, make it durable, then trim the entries it covers.
    async fn snapshot(&mut self) -> Result<(), LogError> {
        let index = self.last_index;
        let bytes = self.state.read(|s| encode("snapshot", &(index, s)))?;
        self.meta.insert(SNAPSHOT_KEY, bytes)?;
        self.db.flush_async().await?;
        let mut trim = sled::Batch::default();
        for k in self.log.range(..=key(index)).keys() {
            trim.remove(k?);
        }
        self.log.apply_batch(trim)?;
        self.db.flush_async().await?;
        self.snapshot_index = index;
        tracing::debug!(index, "snapshot written, log trimmed");
        Ok(())
    }
}
