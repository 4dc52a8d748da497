//! How `xnai up` divides the host among the workers it starts. Every worker on one host used to
//! offer all its cores and all its memory (two workers on a 2-core host each offered 2 CPUs and
//! the whole RAM), so the scheduler placed twice what the host can run. Here each worker gets
//! `floor(host CPUs / workers)` CPUs (at least 1) and an equal share of the memory left once
//! the arenas and the heads are paid for; `--worker-cpus` / `--worker-memory` override either.
//! The division is pure ([`divide`]); [`host_resources`] reads the machine.

use xnai_proto::units::format_size;

/// Memory set aside for each head process (sled's 64 MiB page cache, the replicated state,
/// gRPC buffers), taken from what workers may offer.
pub const HEAD_RESERVE_BYTES: u64 = 256 << 20;

/// The least memory a worker is given when the host has less to share (it can still run
/// tasks that ask for none); the user is warned.
pub const MIN_WORKER_MEMORY_BYTES: u64 = 64 << 20;

/// What the host can give: cores and memory not in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostResources {
    /// Cores this process may run on.
    pub cpus: u64,
    /// Bytes available for new work: MemAvailable, or less when a cgroup limit is nearer.
    pub memory_bytes: u64,
}

/// What `xnai up` was asked for, as far as the division is concerned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SizingRequest {
    /// Workers to start.
    pub workers: usize,
    /// Heads to start (each reserves [`HEAD_RESERVE_BYTES`]).
    pub heads: usize,
    /// Arena capacity per worker (tmpfs: it takes host memory once written).
    pub arena_bytes: u64,
    /// `--worker-cpus`: CPUs each worker offers, instead of the division.
    pub cpus: Option<f64>,
    /// `--worker-memory`: memory each worker offers, instead of the division.
    pub memory_bytes: Option<u64>,
}

/// What each worker offers to the scheduler (`--cpus`, `--memory-bytes` of `xnai-worker`).
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerShare {
    /// CPUs offered (fractions only when given with `--worker-cpus`).
    pub cpus: f64,
    /// Memory offered, in bytes.
    pub memory_bytes: u64,
    /// Set when the host had less to give than [`MIN_WORKER_MEMORY_BYTES`] per worker.
    pub warning: Option<String>,
}

/// Why a request cannot be divided.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SizingError {
    /// `--worker-cpus` is not a positive number.
    #[error("--worker-cpus must be a positive number of CPUs (e.g. 1 or 0.5), got {0}")]
    Cpus(f64),
    /// `--worker-memory` is zero.
    #[error("--worker-memory must be more than 0 (e.g. 2GiB)")]
    Memory,
}

/// CPUs per worker: an even, whole share of the host's cores, at least 1.
pub fn cpus_per_worker(host_cpus: u64, workers: usize) -> u64 {
    (host_cpus / (workers.max(1) as u64)).max(1)
}

/// Memory per worker: what is available once every arena (a full tmpfs arena is host memory)
/// and every head's reserve are taken, shared evenly; `None` when that leaves less than
/// [`MIN_WORKER_MEMORY_BYTES`] each.
pub fn memory_per_worker(host_memory: u64, req: &SizingRequest) -> Option<u64> {
    let workers = req.workers.max(1) as u64;
    let taken = req
        .arena_bytes
        .saturating_mul(workers)
        .saturating_add(HEAD_RESERVE_BYTES.saturating_mul(req.heads as u64));
    let share = host_memory.saturating_sub(taken) / workers;
    (share >= MIN_WORKER_MEMORY_BYTES).then_some(share)
}

/// Each worker's share of `host`, or what the flags say.
pub fn divide(host: &HostResources, req: &SizingRequest) -> Result<WorkerShare, SizingError> {
    let cpus = match req.cpus {
        Some(c) if !(c.is_finite() && c > 0.0) => return Err(SizingError::Cpus(c)),
        Some(c) => c,
        None => cpus_per_worker(host.cpus, req.workers) as f64,
    };
    let mut warning = None;
    let memory_bytes = match req.memory_bytes {
        Some(0) => return Err(SizingError::Memory),
        Some(m) => m,
        None => memory_per_worker(host.memory_bytes, req).unwrap_or_else(|| {
            warning = Some(format!(
                "the host has {} available, too little for {} worker(s) with {} arenas and {} \
                 head(s): each worker offers {} (set --worker-memory, or a smaller --arena-bytes)",
                format_size(host.memory_bytes),
                req.workers,
                format_size(req.arena_bytes),
                req.heads,
                format_size(MIN_WORKER_MEMORY_BYTES)
            ));
            MIN_WORKER_MEMORY_BYTES
        }),
    };
    Ok(WorkerShare {
        cpus,
        memory_bytes,
        warning,
    })
}

/// A `/proc/meminfo` field (`MemAvailable`, `MemTotal`) in bytes.
pub fn meminfo_field(meminfo: &str, field: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb.saturating_mul(1024))
    })
}

/// Memory a cgroup v2 still allows (`memory.max` - `memory.current`); `None` when unlimited
/// or unreadable.
pub fn cgroup_room(max: &str, current: &str) -> Option<u64> {
    let max: u64 = max.trim().parse().ok()?;
    let current: u64 = current.trim().parse().ok()?;
    Some(max.saturating_sub(current))
}

/// Available memory from the texts of `/proc/meminfo` and the cgroup files: MemAvailable
/// (MemTotal on kernels without it), capped by the cgroup's room.
pub fn available_memory(meminfo: &str, cgroup: Option<(&str, &str)>) -> u64 {
    let host = meminfo_field(meminfo, "MemAvailable")
        .or_else(|| meminfo_field(meminfo, "MemTotal"))
        .unwrap_or(0);
    match cgroup.and_then(|(max, cur)| cgroup_room(max, cur)) {
        Some(room) => host.min(room),
        None => host,
    }
}

/// This machine's cores and available memory.
pub fn host_resources() -> HostResources {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let max = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok();
    let cur = std::fs::read_to_string("/sys/fs/cgroup/memory.current").ok();
    let cgroup = max.as_deref().zip(cur.as_deref());
    HostResources {
        cpus,
        memory_bytes: available_memory(&meminfo, cgroup),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn req(workers: usize, heads: usize, arena: u64) -> SizingRequest {
        SizingRequest {
            workers,
            heads,
            arena_bytes: arena,
            cpus: None,
            memory_bytes: None,
        }
    }

    #[test]
    fn cpus_are_a_whole_even_share_and_at_least_one() {
        assert_eq!(cpus_per_worker(2, 2), 1);
        assert_eq!(cpus_per_worker(2, 1), 2);
        assert_eq!(cpus_per_worker(8, 3), 2);
        assert_eq!(cpus_per_worker(2, 5), 1, "more workers than cores: 1 each");
        assert_eq!(cpus_per_worker(4, 0), 4, "no workers divides by one");
    }

    #[test]
    fn memory_is_what_arenas_and_heads_leave_shared_evenly() {
        // The host: 23.5 GiB available, 2 workers of 1 GiB arenas, 1 head.
        let host = 47 * GIB / 2;
        let each = memory_per_worker(host, &req(2, 1, GIB)).unwrap();
        assert_eq!(each, (host - 2 * GIB - HEAD_RESERVE_BYTES) / 2);
        // Three heads reserve three times as much.
        let three = memory_per_worker(host, &req(2, 3, GIB)).unwrap();
        assert_eq!(each - three, HEAD_RESERVE_BYTES);
        // Arenas bigger than the host leave nothing: no share.
        assert_eq!(memory_per_worker(4 * GIB, &req(2, 1, 2 * GIB)), None);
    }

    #[test]
    fn divide_uses_the_host_or_the_flags() {
        let host = HostResources {
            cpus: 2,
            memory_bytes: 10 * GIB,
        };
        let share = divide(&host, &req(2, 1, GIB)).unwrap();
        assert_eq!(share.cpus, 1.0);
        assert_eq!(
            share.memory_bytes,
            (10 * GIB - 2 * GIB - HEAD_RESERVE_BYTES) / 2
        );
        assert_eq!(share.warning, None);

        let flags = SizingRequest {
            cpus: Some(0.5),
            memory_bytes: Some(3 * GIB),
            ..req(2, 1, GIB)
        };
        let share = divide(&host, &flags).unwrap();
        assert_eq!((share.cpus, share.memory_bytes), (0.5, 3 * GIB));

        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let r = SizingRequest {
                cpus: Some(bad),
                ..req(2, 1, GIB)
            };
            assert!(matches!(divide(&host, &r), Err(SizingError::Cpus(_))));
        }
        let r = SizingRequest {
            memory_bytes: Some(0),
            ..req(2, 1, GIB)
        };
        assert_eq!(divide(&host, &r), Err(SizingError::Memory));
    }

    #[test]
    fn a_host_too_small_gets_the_minimum_and_a_warning() {
        let host = HostResources {
            cpus: 1,
            memory_bytes: GIB,
        };
        let share = divide(&host, &req(2, 1, GIB)).unwrap();
        assert_eq!(share.memory_bytes, MIN_WORKER_MEMORY_BYTES);
        let w = share.warning.expect("a warning");
        assert!(w.contains("--worker-memory"), "{w}");
        assert_eq!(share.cpus, 1.0);
    }

    #[test]
    fn available_memory_reads_meminfo_and_the_cgroup() {
        let meminfo = "MemTotal:       24684084 kB\nMemFree:  20734588 kB\n\
                       MemAvailable:   23226300 kB\n";
        assert_eq!(available_memory(meminfo, None), 23226300 * 1024);
        assert_eq!(meminfo_field(meminfo, "MemTotal"), Some(24684084 * 1024));
        assert_eq!(
            meminfo_field(meminfo, "Mem"),
            None,
            "whole field names only"
        );
        // A cgroup limit nearer than the host wins; "max" (unlimited) does not.
        let limited = available_memory(meminfo, Some(("1073741824\n", "73741824\n")));
        assert_eq!(limited, 1_000_000_000);
        assert_eq!(
            available_memory(meminfo, Some(("max\n", "1000\n"))),
            23226300 * 1024
        );
        // An old kernel without MemAvailable: MemTotal.
        assert_eq!(available_memory("MemTotal: 2048 kB\n", None), 2048 * 1024);
        assert_eq!(available_memory("", None), 0);
    }
}
