//! The simulation's nemesis: one seeded fault (or repair) per step, then a random pause.
//! Faults: isolate a head, cut a link, drop a share of messages, slow the network, crash a
//! head; repairs: heal the network, restart a crashed head.

use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;

use super::cluster::Cluster;

/// Take one nemesis step on `cluster`, then wait a random while.
pub(super) async fn step(cluster: &mut Cluster, rng: &mut StdRng) {
    let ids = cluster.ids.clone();
    let pick = |rng: &mut StdRng| ids[rng.random_range(0..ids.len())];
    // Faults hit the leader half of the time: that is where acknowledged writes are at risk.
    let leader = cluster.leader().map(|(id, _)| id);
    let victim = |rng: &mut StdRng| match leader {
        Some(l) if rng.random_bool(0.5) => l,
        _ => pick(rng),
    };
    match rng.random_range(0..10) {
        0 => {
            let id = victim(rng);
            tracing::info!(id, "nemesis: isolate");
            cluster.net.isolate(id, &ids);
        }
        1 => {
            let (a, b) = (victim(rng), pick(rng));
            if a != b {
                tracing::info!(a, b, "nemesis: cut");
                cluster.net.cut(a, b);
            }
        }
        2 | 3 => {
            tracing::info!("nemesis: heal");
            cluster.net.heal(delay(rng));
        }
        4 => {
            let rate = rng.random_range(0.0..0.3);
            tracing::info!(rate, "nemesis: drop");
            cluster.net.set_drop_rate(rate);
        }
        5 => {
            let (min, max) = delay(rng);
            tracing::info!(?min, ?max, "nemesis: delay");
            cluster.net.set_delay(min, max);
        }
        6 | 7 => {
            let id = victim(rng);
            tracing::info!(id, "nemesis: crash");
            cluster.crash(id);
        }
        _ => {
            let down = cluster.down();
            if !down.is_empty() {
                let id = down[rng.random_range(0..down.len())];
                tracing::info!(id, "nemesis: restart");
                cluster.start_head(id).await;
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(rng.random_range(50..1500))).await;
}

/// A delay range for the network: mostly fast, sometimes slow.
fn delay(rng: &mut StdRng) -> (Duration, Duration) {
    let min = rng.random_range(1..5);
    let max = if rng.random_bool(0.2) {
        rng.random_range(50..400)
    } else {
        rng.random_range(min..20)
    };
    (Duration::from_millis(min), Duration::from_millis(max))
}
