//! One doubling backoff: `start`, then twice as long after each failure, never above `max`.
//! Every retry loop in xnai (following the leader, registering, heartbeats after failures, Raft
//! peer senders, actor restarts, held-back tasks) uses it instead of its own arithmetic.

use std::time::Duration;

use tokio::time::Instant;

/// A doubling delay between attempts. Not shared: each loop owns its own (cheap to copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    start: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starting at `start`, doubling up to `max`.
    pub const fn new(start: Duration, max: Duration) -> Self {
        Self {
            start,
            max,
            next: start,
        }
    }

    /// The delay before attempt `n` (1-based) counted from the start: `start * 2^(n-1)`, at
    /// most `max`; zero for `n == 0`. For delays derived from a count kept elsewhere (e.g. a
    /// restart count in the replicated state).
    pub fn nth(&self, n: u32) -> Duration {
        if n == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32 << (n - 1).min(31);
        self.start.saturating_mul(factor).min(self.max)
    }

    /// The delay to wait now; the next one is twice as long (at most `max`).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next.min(self.max);
        self.next = self.next.saturating_mul(2).min(self.max);
        d
    }

    /// Back to `start` (after a success).
    pub fn reset(&mut self) {
        self.next = self.start;
    }

    /// Sleep for [`Backoff::next_delay`].
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }

    /// Sleep for [`Backoff::next_delay`], but not past `deadline`.
    pub async fn wait_until(&mut self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(self.next_delay().min(left)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_up_to_max_and_resets() {
        let mut b = Backoff::new(50 * MS, 300 * MS);
        let got: Vec<_> = (0..5).map(|_| b.next_delay()).collect();
        assert_eq!(got, vec![50 * MS, 100 * MS, 200 * MS, 300 * MS, 300 * MS]);
        b.reset();
        assert_eq!(b.next_delay(), 50 * MS);
        let b = Backoff::new(200 * MS, 2000 * MS);
        let nth: Vec<_> = (0..=6).map(|n| b.nth(n)).collect();
        assert_eq!(
            nth,
            vec![
                Duration::ZERO,
                200 * MS,
                400 * MS,
                800 * MS,
                1600 * MS,
                2000 * MS,
                2000 * MS
            ]
        );
        assert_eq!(b.nth(u32::MAX), 2000 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn waits_on_paused_time_and_respects_the_deadline() {
        let t0 = Instant::now();
        let mut b = Backoff::new(100 * MS, Duration::from_secs(1));
        b.wait().await;
        b.wait().await;
        assert_eq!(t0.elapsed(), 300 * MS);
        b.wait_until(t0 + 350 * MS).await;
        assert_eq!(t0.elapsed(), 350 * MS, "cut at the deadline");
        assert_eq!(b.next_delay(), 800 * MS, "the cut wait still counted");
    }
}
