//! Honest health, per service: a head cut off from the others (the other two SIGSTOPped, as in
//! t20) turns NOT_SERVING within a few seconds, leader or follower, and SERVING again once
//! healed; a fresh worker is NOT_SERVING until it registers with the leader, then SERVING, and
//! NOT_SERVING again while its head link is lost.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use nix::sys::signal::Signal;
use xnai_proto::serve::health::{HEAD_SERVICE, PEER_SERVICE, REGISTRY_SERVICE, WORKER_SERVICE};
use xnai_tests::{Cluster, ClusterOptions, HeadProc, init_tracing, start_cluster, wait_until};

use crate::common::{runtime, serving};

/// "Within a few seconds": how long a cut-off node may keep saying SERVING.
const TURNS_WITHIN: Duration = Duration::from_secs(5);

fn all_heads_serving(c: &Cluster, rt: &tokio::runtime::Runtime) -> Result<()> {
    let heads = c.head_procs()?;
    wait_until(Duration::from_secs(20), "every head SERVING", || {
        Ok(heads
            .iter()
            .all(|h| rt.block_on(serving(&h.address, "")).unwrap_or(false)))
    })
}

/// Pause every head but `kept`, check `kept` turns NOT_SERVING in time, resume them.
fn isolate(c: &Cluster, rt: &tokio::runtime::Runtime, kept: &HeadProc) -> Result<()> {
    let others: Vec<_> = c
        .head_procs()?
        .into_iter()
        .filter(|h| h.id != kept.id)
        .collect();
    for h in &others {
        c.signal_head(h, Signal::SIGSTOP)?;
    }
    let cut = Instant::now();
    let judged = (|| -> Result<()> {
        wait_until(TURNS_WITHIN, "the isolated head NOT_SERVING", || {
            Ok(!rt.block_on(serving(&kept.address, HEAD_SERVICE))?)
        })?;
        tracing::info!(head = kept.id, took = ?cut.elapsed(), "isolated head turned NOT_SERVING");
        ensure!(!rt.block_on(serving(&kept.address, ""))?);
        ensure!(!rt.block_on(serving(&kept.address, REGISTRY_SERVICE))?);
        // Its Raft node still runs: the peer service stays up for the election that heals it.
        ensure!(rt.block_on(serving(&kept.address, PEER_SERVICE))?);
        Ok(())
    })();
    // Resume whatever the verdict, so a failure leaves no paused head behind.
    for h in &others {
        c.signal_head(h, Signal::SIGCONT)?;
    }
    judged
}

#[test]
fn t70_an_isolated_head_turns_not_serving() -> Result<()> {
    init_tracing();
    let c = start_cluster(ClusterOptions {
        heads: 3,
        workers: 1,
        arena_bytes: "64MiB".into(),
    })?;
    let rt = runtime()?;
    all_heads_serving(&c, &rt)?;

    tracing::info!("--- phase: isolate the leader");
    let leader = c.leader()?;
    isolate(&c, &rt, &leader)?;
    all_heads_serving(&c, &rt)?;

    tracing::info!("--- phase: isolate a follower");
    let leader = c.leader()?;
    let follower = c
        .head_procs()?
        .into_iter()
        .find(|h| h.id != leader.id)
        .context("no follower")?;
    isolate(&c, &rt, &follower)?;
    all_heads_serving(&c, &rt)?;
    c.xnai_ok(&["run", "echo", "healed"])?;
    Ok(())
}

/// A worker started by the test (killed, its arena removed, when dropped).
struct ExtraWorker {
    child: Child,
    arena: String,
    log: std::path::PathBuf,
}

impl Drop for ExtraWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.arena);
    }
}

impl ExtraWorker {
    fn start(c: &Cluster) -> Result<Self> {
        let log = c.data_dir.path().join("t71-worker.log");
        let out = std::fs::File::create(&log)?;
        let arena = format!("/dev/shm/xnai-arena-t71-{}", std::process::id());
        let child = Command::new(c.bin_dir().join("xnai-worker"))
            .args(["--head", &c.head_env(), "--listen", "127.0.0.1:0"])
            .args(["--arena-bytes", "64MiB", "--arena-dir", &arena])
            .env("XNAI_TOKEN", &c.token)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        Ok(Self { child, arena, log })
    }

    /// The address it listens on, from its "worker listening" log line (it binds before it
    /// registers, and writes no address file until then).
    fn address(&self) -> Result<String> {
        let mut address = String::new();
        wait_until(Duration::from_secs(20), "the worker listening", || {
            let text = std::fs::read_to_string(&self.log)?;
            let found = text
                .lines()
                .filter(|l| l.contains("worker listening"))
                .flat_map(|l| l.split_whitespace())
                .find_map(|w| w.strip_prefix("listen="));
            if let Some(a) = found {
                address = a.to_string();
            }
            Ok(!address.is_empty())
        })?;
        Ok(address)
    }
}

#[test]
fn t71_worker_health_follows_its_registration() -> Result<()> {
    init_tracing();
    let c = start_cluster(ClusterOptions {
        heads: 1,
        workers: 1,
        arena_bytes: "64MiB".into(),
    })?;
    let rt = runtime()?;
    let head = c.leader()?;

    tracing::info!("--- phase: a worker started while the head is paused is NOT_SERVING");
    c.signal_head(&head, Signal::SIGSTOP)?;
    let worker = ExtraWorker::start(&c);
    let worker = match worker {
        Ok(w) => w,
        Err(e) => {
            c.signal_head(&head, Signal::SIGCONT)?;
            return Err(e);
        }
    };
    let before = (|| -> Result<()> {
        let address = worker.address()?;
        wait_until(Duration::from_secs(10), "a NOT_SERVING answer", || {
            Ok(rt.block_on(serving(&address, "")).is_ok())
        })?;
        for service in ["", WORKER_SERVICE] {
            ensure!(
                !rt.block_on(serving(&address, service))?,
                "{service:?} SERVING before registering"
            );
        }
        Ok(())
    })();
    c.signal_head(&head, Signal::SIGCONT)?;
    before?;
    let address = worker.address()?;

    tracing::info!("--- phase: it registers and turns SERVING");
    wait_until(Duration::from_secs(20), "the worker SERVING", || {
        rt.block_on(serving(&address, WORKER_SERVICE))
    })?;
    ensure!(rt.block_on(serving(&address, ""))?);

    tracing::info!("--- phase: head link lost: NOT_SERVING within a few seconds");
    c.signal_head(&head, Signal::SIGSTOP)?;
    let lost = wait_until(TURNS_WITHIN, "the worker NOT_SERVING", || {
        Ok(!rt.block_on(serving(&address, WORKER_SERVICE))?)
    });
    c.signal_head(&head, Signal::SIGCONT)?;
    lost?;

    tracing::info!("--- phase: link back: SERVING again");
    wait_until(Duration::from_secs(20), "the worker SERVING again", || {
        rt.block_on(serving(&address, WORKER_SERVICE))
    })?;
    Ok(())
}
