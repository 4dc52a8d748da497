//! An in-process network for the Raft simulation (the shape of raft-rs's `harness` network, on
//! tokio time): every head's [`SimTransport`] hands messages to the recipient's mailbox after a
//! random delay, unless the link is cut, the recipient is down, or the drop dice say so. All
//! randomness comes from one seeded RNG, so a run replays from its seed on paused time. Snapshot
//! messages are split into tiny chunks and reassembled ([`crate::raft::chunks`]) on the way, as
//! `Peer.DeliverSnapshot` does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raft::eraftpb::{Message, MessageType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;

use super::Transport;
use crate::raft::chunks;
use crate::raft::mailbox::Msg;

/// Counters of what the network did (for the test's summary line).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NetStats {
    /// Batches handed to a live mailbox.
    pub(crate) delivered: u64,
    /// Batches lost to a cut link, a down head or the drop rate.
    pub(crate) dropped: u64,
}

struct Net {
    rng: StdRng,
    /// The mailbox of every running head (a crashed head has none).
    mailboxes: BTreeMap<u64, mpsc::Sender<Msg>>,
    /// Directed links (from, to) that lose everything.
    cut: BTreeSet<(u64, u64)>,
    /// Chance that a batch is lost on a healthy link.
    drop_rate: f64,
    /// Delivery delay range (inclusive).
    delay: (Duration, Duration),
    stats: NetStats,
}

/// The shared network. Cloning shares it; thread-safe.
#[derive(Clone)]
pub(crate) struct SimNetwork(Arc<Mutex<Net>>);

impl SimNetwork {
    /// A healthy network (1 ms delay, no loss) whose dice are seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self(Arc::new(Mutex::new(Net {
            rng: StdRng::seed_from_u64(seed),
            mailboxes: BTreeMap::new(),
            cut: BTreeSet::new(),
            drop_rate: 0.0,
            delay: (Duration::from_millis(1), Duration::from_millis(1)),
            stats: NetStats::default(),
        })))
    }

    fn with<R>(&self, f: impl FnOnce(&mut Net) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Head `id` (re)started and reads `mailbox`; returns its transport.
    pub(crate) fn attach(&self, id: u64, mailbox: mpsc::Sender<Msg>) -> SimTransport {
        self.with(|n| n.mailboxes.insert(id, mailbox));
        SimTransport {
            me: id,
            net: self.clone(),
        }
    }

    /// Head `id` crashed: what is in flight to it is lost.
    pub(crate) fn detach(&self, id: u64) {
        self.with(|n| n.mailboxes.remove(&id));
    }

    /// Cut the link between `a` and `b`, both ways.
    pub(crate) fn cut(&self, a: u64, b: u64) {
        self.with(|n| {
            n.cut.insert((a, b));
            n.cut.insert((b, a));
        });
    }

    /// Cut `id` off from every head in `all`.
    pub(crate) fn isolate(&self, id: u64, all: &[u64]) {
        for &other in all.iter().filter(|&&o| o != id) {
            self.cut(id, other);
        }
    }

    /// Restore every link, stop dropping, and use `delay` again.
    pub(crate) fn heal(&self, delay: (Duration, Duration)) {
        self.with(|n| {
            n.cut.clear();
            n.drop_rate = 0.0;
            n.delay = delay;
        });
    }

    /// Lose each batch with chance `rate` (0.0 to 1.0).
    pub(crate) fn set_drop_rate(&self, rate: f64) {
        self.with(|n| n.drop_rate = rate.clamp(0.0, 1.0));
    }

    /// Delay each batch by a uniform draw from `min..=max`.
    pub(crate) fn set_delay(&self, min: Duration, max: Duration) {
        self.with(|n| n.delay = (min, max.max(min)));
    }

    /// What the network did so far.
    pub(crate) fn stats(&self) -> NetStats {
        self.with(|n| n.stats)
    }

    /// Decide a batch's fate now: `Some(delay)` to deliver it, `None` to lose it.
    fn route(&self, from: u64, to: u64) -> Option<Duration> {
        self.with(|n| {
            let lost = !n.mailboxes.contains_key(&to)
                || n.cut.contains(&(from, to))
                || (n.drop_rate > 0.0 && n.rng.random_bool(n.drop_rate));
            if lost {
                n.stats.dropped += 1;
                return None;
            }
            let (lo, hi) = n.delay;
            let nanos = n
                .rng
                .random_range(lo.as_nanos() as u64..=hi.as_nanos() as u64);
            Some(Duration::from_nanos(nanos))
        })
    }

    /// The mailbox of `id` at delivery time (it may have crashed or restarted meanwhile).
    fn mailbox(&self, id: u64, delivered: bool) -> Option<mpsc::Sender<Msg>> {
        self.with(|n| {
            let m = n.mailboxes.get(&id).cloned();
            if delivered {
                match m {
                    Some(_) => n.stats.delivered += 1,
                    None => n.stats.dropped += 1,
                }
            }
            m
        })
    }
}

/// How long a sender waits to learn that its snapshot was lost.
const LOST_REPORT: Duration = Duration::from_millis(5);

/// One head's end of the [`SimNetwork`].
pub(crate) struct SimTransport {
    me: u64,
    net: SimNetwork,
}

impl SimTransport {
    /// Deliver `messages` (all to `to`) after `delay`, and tell the sender how a snapshot fared.
    /// An empty `messages` only reports a lost snapshot.
    fn deliver(&self, to: u64, messages: Vec<Message>, delay: Duration) {
        let (me, net) = (self.me, self.net.clone());
        let snapshot = messages.is_empty() || has_snapshot(&messages);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut ok = false;
            if !messages.is_empty()
                && let Some(mailbox) = net.mailbox(to, true)
            {
                let msg = Msg::FromPeer {
                    from: me,
                    address: String::new(),
                    messages,
                };
                ok = mailbox.try_send(msg).is_ok();
            }
            if snapshot && let Some(back) = net.mailbox(me, false) {
                let _ = back.try_send(Msg::SnapshotSent(to, ok));
            }
        });
    }
}

impl Transport for SimTransport {
    fn send(&self, messages: Vec<Message>) {
        let mut by_peer: BTreeMap<u64, Vec<Message>> = BTreeMap::new();
        for m in messages {
            if m.to == self.me || m.to == 0 {
                continue;
            }
            if m.get_msg_type() != MessageType::MsgSnapshot {
                by_peer.entry(m.to).or_default().push(m);
                continue;
            }
            // Snapshots cross the network in tiny chunks, through the code gRPC uses.
            match through_chunks(&m) {
                Ok(m) => by_peer.entry(m.to).or_default().push(m),
                Err(status) => {
                    tracing::warn!(to = m.to, %status, "simulated snapshot refused by its receiver");
                    self.deliver(m.to, Vec::new(), LOST_REPORT);
                }
            }
        }
        for (to, batch) in by_peer {
            match self.net.route(self.me, to) {
                Some(delay) => self.deliver(to, batch, delay),
                // Lost: only a snapshot's fate goes back to the sender (as with gRPC).
                None if has_snapshot(&batch) => self.deliver(to, Vec::new(), LOST_REPORT),
                None => {}
            }
        }
    }

    fn add_peer(&self, _id: u64, _address: &str) {}

    fn remove_peer(&self, _id: u64) {}
}

/// Bytes per chunk of a simulated snapshot transfer (small, so every snapshot takes many).
const SIM_CHUNK_BYTES: usize = 256;

/// Split a snapshot message into chunks and reassemble it as a receiving head would.
fn through_chunks(m: &Message) -> Result<Message, tonic::Status> {
    let sender = chunks::Sender {
        cluster_id: "sim",
        from: m.from,
        from_address: "",
    };
    let pieces = chunks::split(&sender, m, SIM_CHUNK_BYTES).map_err(tonic::Status::internal)?;
    let mut it = pieces.into_iter();
    let first = it
        .next()
        .ok_or_else(|| tonic::Status::internal("no header chunk"))?;
    let mut r = chunks::Reassembly::start(first, m.to, chunks::DEFAULT_MAX_SNAPSHOT_BYTES)?;
    for c in it {
        r.push(&c.data)?;
    }
    r.finish()
}

fn has_snapshot(batch: &[Message]) -> bool {
    batch
        .iter()
        .any(|m| m.get_msg_type() == MessageType::MsgSnapshot)
}
