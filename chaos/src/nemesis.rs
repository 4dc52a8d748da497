//! The nemesis: runs the schedule against the target, one fault at a time (inject, hold for
//! the window, heal), and records each fault window in the history. `arena-fill` fills a
//! worker's arena through the product itself (pinned `fill` outputs placed on that worker by
//! label) and frees them when the window ends.

use std::collections::BTreeMap;
use std::time::Duration;

use xnai_sdk::{Arg, Client, ObjectRef, Resources, TaskOptions};

use crate::config::NemesisKind;
use crate::error::Result;
use crate::history::{Fault, Recorder};
use crate::proxy::LinkMode;
use crate::schedule::{Aim, Step};
use crate::target::{SLOW_DELAY, SLOW_RESET, Target};

/// Size of each ballast object arena-fill writes.
const BALLAST: u64 = 4 << 20;

/// Runs faults against a target.
pub struct Nemesis {
    /// The cluster.
    pub target: Target,
    /// An SDK client (leader lookups, arena fill).
    pub client: Client,
    /// The history.
    pub rec: Recorder,
}

impl Nemesis {
    /// The node a step aims at, resolved now.
    async fn resolve(&self, aim: Aim) -> String {
        match aim {
            Aim::Worker(i) => self.target.worker_names()[i].clone(),
            Aim::Head(i) => self.target.head_names()[i].clone(),
            Aim::Leader => match self.client.status().await {
                Ok(s) => s
                    .heads
                    .iter()
                    .find(|h| h.role == "leader")
                    .map(|h| format!("head-{}", h.id))
                    .unwrap_or_else(|| "head-1".into()),
                Err(_) => "head-1".into(),
            },
        }
    }

    /// Run every step at its time (offsets from the recorder's start). A step that cannot be
    /// injected (or healed) is skipped after trying to heal everything; the errors are returned.
    pub async fn run(&mut self, steps: &[Step]) -> Vec<String> {
        let mut errors = Vec::new();
        for step in steps {
            let now = Duration::from_millis(self.rec.now_ms());
            if step.at > now {
                tokio::time::sleep(step.at - now).await;
            }
            if let Err(e) = self.one(step).await {
                tracing::warn!(nemesis = step.kind.name(), error = %e, "fault not injected");
                errors.push(format!("{} ({:?}): {e}", step.kind.name(), step.aim));
                let _ = self.target.heal_all();
            }
        }
        errors
    }

    async fn one(&mut self, step: &Step) -> Result<()> {
        let node = self.resolve(step.aim).await;
        let start_ms = self.rec.now_ms();
        tracing::info!(nemesis = step.kind.name(), %node, window = ?step.window, "--- fault");
        let mut ballast = Vec::new();
        let mut note: String = match step.kind {
            NemesisKind::WorkerKill | NemesisKind::LeaderKill | NemesisKind::HeadKill => {
                self.target.kill(&node).await?;
                "SIGKILL, restarted after the window".into()
            }
            NemesisKind::WorkerPause => {
                self.target.pause(&node, true)?;
                "SIGSTOP, SIGCONT after the window".into()
            }
            NemesisKind::Partition => {
                self.target.links(&node, LinkMode::Cut)?;
                "every link into and out of the node blackholed".into()
            }
            NemesisKind::SlowLink => {
                let mode = LinkMode::Slow {
                    delay: SLOW_DELAY,
                    reset: SLOW_RESET,
                };
                if self.target.links(&node, mode)? {
                    format!(
                        "+{} ms per chunk, {}% resets",
                        SLOW_DELAY.as_millis(),
                        SLOW_RESET * 100.0
                    )
                } else {
                    "skipped: this target cannot slow links".into()
                }
            }
            NemesisKind::ArenaFill => {
                let (objects, text) = self.fill_arena(&node, step.window).await;
                ballast = objects;
                text
            }
        };
        let elapsed = Duration::from_millis(self.rec.now_ms() - start_ms);
        if step.window > elapsed {
            tokio::time::sleep(step.window - elapsed).await;
        }
        match step.kind {
            NemesisKind::WorkerKill | NemesisKind::LeaderKill | NemesisKind::HeadKill => {
                self.target.restart(&node)?
            }
            NemesisKind::WorkerPause => self.target.pause(&node, false)?,
            NemesisKind::Partition | NemesisKind::SlowLink => {
                self.target.links(&node, LinkMode::Up)?;
            }
            NemesisKind::ArenaFill => {
                if let Err(e) = self.client.free(&ballast).await {
                    note.push_str(&format!("; freeing failed: {e}"));
                }
            }
        }
        self.rec.fault(Fault {
            nemesis: step.kind.name().into(),
            target: node,
            start_ms,
            end_ms: self.rec.now_ms(),
            note,
        });
        Ok(())
    }

    /// Fill the worker's arena to about 90% with pinned `fill` outputs placed there by label
    /// (on targets without labels, anywhere): as many as fit, submitted at once, in rounds
    /// until the arena is 90% full, something refuses, or half the window has passed.
    async fn fill_arena(&self, node: &str, window: Duration) -> (Vec<ObjectRef>, String) {
        let labels = if self.target.labelled_workers() {
            BTreeMap::from([("chaos-node".to_string(), node.to_string())])
        } else {
            BTreeMap::new()
        };
        let options = TaskOptions {
            max_retries: Some(0),
            retry_exceptions: false,
            resources: Some(Resources {
                cpus: 0.25,
                memory_bytes: 0,
                labels,
            }),
        };
        let address = self
            .target
            .labelled_workers()
            .then(|| self.target.worker_address(node))
            .flatten();
        let deadline = tokio::time::Instant::now() + window / 2;
        let mut objects: Vec<ObjectRef> = Vec::new();
        let mut why = String::from("time ran out");
        let mut fill_pct = 0u64;
        while tokio::time::Instant::now() < deadline {
            // The aimed worker's arena; without labels (fills land anywhere) all arenas.
            let Some((used, cap)) = self.client.status().await.ok().and_then(|s| {
                let alive = s.workers.iter().filter(|w| w.state == "alive");
                match address.as_deref() {
                    Some(a) => alive
                        .clone()
                        .find(|w| w.address == a)
                        .map(|w| (w.arena_used, w.arena_capacity)),
                    None => Some(
                        alive.fold((0, 0), |(u, c), w| (u + w.arena_used, c + w.arena_capacity)),
                    ),
                }
                .filter(|(_, c)| *c > 0)
            }) else {
                why = "worker not found alive".into();
                break;
            };
            fill_pct = used * 100 / cap.max(1);
            let room = (cap - cap / 10).saturating_sub(used);
            if room < BALLAST {
                why = format!("arena at {fill_pct}%");
                break;
            }
            let batch = (room / BALLAST).min(16) as usize;
            let subs = futures::future::join_all((0..batch).map(|k| {
                let seed = (objects.len() + k).to_string();
                let args = vec![
                    Arg::from(BALLAST.to_string().as_str()),
                    Arg::from(seed.as_str()),
                ];
                self.client.submit("fill", args, options.clone())
            }))
            .await;
            let mut round = Vec::new();
            for s in subs {
                match s {
                    Ok(r) => round.push(r),
                    Err(e) => why = format!("submit refused: {e}"),
                }
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let _ = self.client.wait(&round, 0, left).await;
            objects.extend(round.iter().copied());
            let mut refused = None;
            for r in &round {
                if let Ok(info) = self.client.object_info(r).await
                    && !info.error.is_empty()
                {
                    refused = Some(info.error);
                }
            }
            if let Some(e) = refused {
                why = format!("arena refused: {e}");
                break;
            }
        }
        let text = format!(
            "{} x {} MiB ballast, arena at {fill_pct}% before the last round ({why})",
            objects.len(),
            BALLAST >> 20
        );
        (objects, text)
    }
}
