//! The fault-injecting TCP proxy of the local target (toxiproxy-like). Every node is reached by
//! its peers through a proxy this process owns; the nemesis switches a proxy's [`LinkMode`]:
//! `Cut` blackholes it (open connections stop forwarding, new ones are accepted and starve;
//! all of them are closed when the link heals, as after a real partition), `Slow` delays every
//! chunk and resets a connection now and then (the loss a TCP peer sees).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::error::{ChaosError, Result};
use crate::rng::Rng;

/// How a proxied link behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LinkMode {
    /// Forward everything.
    Up,
    /// Forward nothing (a partition).
    Cut,
    /// Delay every chunk by `delay`; reset a connection with probability `reset` per chunk.
    Slow {
        /// Added latency per chunk.
        delay: Duration,
        /// Probability of resetting the connection at each chunk.
        reset: f64,
    },
}

/// A running proxy from `listen` to `upstream`. Dropping it stops accepting (open connections
/// end when their peers close them).
pub struct Proxy {
    /// Where peers connect.
    pub listen: SocketAddr,
    /// The node behind it.
    pub upstream: SocketAddr,
    mode: watch::Sender<LinkMode>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Binds `listen` (port 0 picks one) and forwards to `upstream`; `seed` drives resets.
    pub async fn start(listen: SocketAddr, upstream: SocketAddr, seed: u64) -> Result<Self> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| ChaosError::io(format!("binding proxy on {listen}"), e))?;
        let listen = listener
            .local_addr()
            .map_err(|e| ChaosError::io("proxy address", e))?;
        let (mode, rx) = watch::channel(LinkMode::Up);
        let rng = Arc::new(Mutex::new(Rng::new(seed)));
        let task = tokio::spawn(accept_loop(listener, upstream, rx, rng));
        Ok(Self {
            listen,
            upstream,
            mode,
            task,
        })
    }

    /// Switch the link's behaviour; open connections follow at once.
    pub fn set(&self, mode: LinkMode) {
        self.mode.send_replace(mode);
    }

    /// The current behaviour.
    pub fn mode(&self) -> LinkMode {
        *self.mode.borrow()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    mode: watch::Receiver<LinkMode>,
    rng: Arc<Mutex<Rng>>,
) {
    loop {
        let Ok((down, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let mode = mode.clone();
        let rng = rng.clone();
        tokio::spawn(async move {
            if *mode.borrow() == LinkMode::Cut {
                // A partitioned node is unreachable: hold the connection silent until the
                // link heals, then drop it.
                starve(mode).await;
                return;
            }
            let Ok(up) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = down.set_nodelay(true);
            let _ = up.set_nodelay(true);
            let (dr, dw) = down.into_split();
            let (ur, uw) = up.into_split();
            tokio::select! {
                _ = pump(dr, uw, mode.clone(), rng.clone()) => {}
                _ = pump(ur, dw, mode, rng) => {}
            }
        });
    }
}

/// Wait while the link is cut.
async fn starve(mut mode: watch::Receiver<LinkMode>) {
    while *mode.borrow_and_update() == LinkMode::Cut {
        if mode.changed().await.is_err() {
            return;
        }
    }
}

/// Copy one direction until EOF, an error, a reset, or the end of a cut (which closes it).
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut mode: watch::Receiver<LinkMode>,
    rng: Arc<Mutex<Rng>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if *mode.borrow_and_update() == LinkMode::Cut {
            starve(mode).await;
            return;
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => { let _ = to.shutdown().await; return; }
                Ok(n) => n,
            },
            _ = mode.changed() => continue,
        };
        let current = *mode.borrow();
        match current {
            LinkMode::Up => {}
            LinkMode::Cut => continue,
            LinkMode::Slow { delay, reset } => {
                tokio::time::sleep(delay).await;
                let drop_it = rng.lock().map(|mut r| r.chance(reset)).unwrap_or(false);
                if drop_it {
                    return;
                }
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 1024];
                    while let Ok(n) = s.read(&mut b).await {
                        if n == 0 || s.write_all(&b[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn roundtrip(addr: SocketAddr, within: Duration) -> bool {
        let fut = async {
            let mut s = TcpStream::connect(addr).await.ok()?;
            s.write_all(b"ping").await.ok()?;
            let mut b = [0u8; 4];
            s.read_exact(&mut b).await.ok()?;
            Some(&b == b"ping")
        };
        matches!(tokio::time::timeout(within, fut).await, Ok(Some(true)))
    }

    #[tokio::test]
    async fn forwards_cuts_heals_and_delays() {
        let up = echo_server().await;
        let p = Proxy::start("127.0.0.1:0".parse().unwrap(), up, 1)
            .await
            .unwrap();
        assert!(roundtrip(p.listen, Duration::from_secs(2)).await);
        p.set(LinkMode::Cut);
        assert!(!roundtrip(p.listen, Duration::from_millis(300)).await);
        p.set(LinkMode::Up);
        assert!(roundtrip(p.listen, Duration::from_secs(2)).await);
        p.set(LinkMode::Slow {
            delay: Duration::from_millis(150),
            reset: 0.0,
        });
        let t = std::time::Instant::now();
        assert!(roundtrip(p.listen, Duration::from_secs(2)).await);
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(
            p.mode(),
            LinkMode::Slow {
                delay: Duration::from_millis(150),
                reset: 0.0
            }
        );
    }
}
