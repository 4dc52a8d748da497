//! The silence timings of a cluster, all derived from one number, the worker lease: how often
//! workers heartbeat, when a quiet worker stops getting placements, how often the head probes
//! workers, and how often a client renews a session lease. One source of truth for head,
//! worker and SDK; the ratios are documented on each method and in ARCHITECTURE.md.

use std::time::Duration;

/// Default worker lease: a worker silent this long (no heartbeat, no answered probe) is
/// declared dead.
pub const DEFAULT_WORKER_LEASE: Duration = Duration::from_millis(1500);

/// Renewals (heartbeats, session keep-alives) per lease: a lease runs out only after this many
/// renewals in a row were missed.
pub const RENEWALS_PER_LEASE: u32 = 3;

/// Longest heartbeat and probe interval, however long the lease: heartbeats also carry load
/// and memory pressure for the scheduler, and probes drive the circuit breakers, so both must
/// stay frequent even when a long lease is chosen to keep silent workers from being declared
/// dead.
pub const MAX_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);

/// Heartbeats missed in a row after which a worker is "silent": no new placements, shown as
/// degraded, but not yet declared dead.
pub const SILENT_AFTER_MISSED: u32 = 2;

/// The timings derived from one worker lease. Cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    lease: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self::new(DEFAULT_WORKER_LEASE)
    }
}

impl Timings {
    /// The timings of `lease`.
    pub const fn new(lease: Duration) -> Self {
        Self { lease }
    }

    /// The worker lease: silent this long, a worker is declared dead. Also the grace period a
    /// new leader (a fresh runtime) gives every worker before declaring any dead.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// How often a worker heartbeats: lease / [`RENEWALS_PER_LEASE`], at most
    /// [`MAX_HEARTBEAT_INTERVAL`] (500 ms for the default 1.5 s lease).
    pub fn heartbeat_interval(&self) -> Duration {
        renew_every(self.lease).min(MAX_HEARTBEAT_INTERVAL)
    }

    /// After how long without a heartbeat a worker is silent (no new placements):
    /// [`SILENT_AFTER_MISSED`] heartbeat intervals (1 s for the default lease).
    pub fn silent_after(&self) -> Duration {
        self.heartbeat_interval() * SILENT_AFTER_MISSED
    }

    /// How often the head probes every live worker (an answered probe counts as a heartbeat
    /// and closes a half-open breaker): once per heartbeat interval.
    pub fn probe_interval(&self) -> Duration {
        self.heartbeat_interval()
    }

    /// How long a probe may take before it fails: 4/5 of the probe interval (400 ms for the
    /// default lease), so probes of one worker never overlap.
    pub fn probe_timeout(&self) -> Duration {
        self.probe_interval() * 4 / 5
    }
}

/// How often a holder renews a lease of `lease` (a client's session keep-alive):
/// lease / [`RENEWALS_PER_LEASE`], so it runs out only after that many missed renewals.
pub fn renew_every(lease: Duration) -> Duration {
    lease / RENEWALS_PER_LEASE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_lease_gives_the_documented_timings() {
        let t = Timings::default();
        let ms = |d: Duration| d.as_millis();
        assert_eq!(ms(t.lease()), 1500);
        assert_eq!(ms(t.heartbeat_interval()), 500);
        assert_eq!(ms(t.silent_after()), 1000);
        assert_eq!(ms(t.probe_interval()), 500);
        assert_eq!(ms(t.probe_timeout()), 400);
        assert_eq!(ms(renew_every(Duration::from_secs(10))), 3333);
    }

    #[test]
    fn ratios_hold_for_short_leases_and_heartbeats_stay_frequent_for_long_ones() {
        let short = Timings::new(Duration::from_millis(300));
        assert_eq!(short.heartbeat_interval(), Duration::from_millis(100));
        assert_eq!(short.silent_after(), Duration::from_millis(200));
        assert!(short.silent_after() < short.lease());
        let long = Timings::new(Duration::from_secs(120));
        assert_eq!(long.heartbeat_interval(), MAX_HEARTBEAT_INTERVAL);
        assert_eq!(long.probe_timeout(), Duration::from_millis(400));
    }
}
