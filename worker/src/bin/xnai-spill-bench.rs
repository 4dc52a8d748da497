//! `xnai-spill-bench`: how fast a worker's arena moves primaries to its spill directory and
//! back, measured on the arena itself (no cluster, no network): spill GB/s (making room for new
//! objects by copying the least recently used ones to disk), restore GB/s (reading spilled
//! objects back into free arena room, CRC-32 checked) and swap GB/s (a restore that must spill
//! another object first). Prints a markdown table of medians (and min..max) over repeats.
//!
//! Run: `cargo build --release --bins && target/release/xnai-spill-bench` (docs/BENCHMARKS.md).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use xnai_proto::ids::ObjectId;
use xnai_worker::arena::{Arena, ArenaConfig, CopyKind, SpillConfig};

#[derive(Parser, Debug)]
#[command(about = "arena spill and restore throughput")]
struct Args {
    /// Arena capacity in MiB (on tmpfs: /dev/shm).
    #[arg(long, default_value_t = 512)]
    arena_mib: u64,
    /// Object size in MiB.
    #[arg(long, default_value_t = 8)]
    object_mib: u64,
    /// Spill directory's parent (a disk; default: the system temp dir).
    #[arg(long)]
    spill_parent: Option<PathBuf>,
    /// Repeats; the table shows the median.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

/// GB/s of each phase in one repeat.
struct Rates {
    spill: f64,
    restore: f64,
    swap: f64,
}

fn gbps(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / took.as_secs_f64() / 1e9
}

fn oid(n: u64) -> ObjectId {
    ObjectId((n as u128 + 1) << 8)
}

fn run_once(args: &Args) -> Result<Rates> {
    let shm = tempfile::tempdir_in("/dev/shm").context("a directory under /dev/shm")?;
    let disk = match &args.spill_parent {
        Some(p) => tempfile::tempdir_in(p)?,
        None => tempfile::tempdir()?,
    };
    let capacity = args.arena_mib << 20;
    let size = args.object_mib << 20;
    let (arena, _evictions) = Arena::open(ArenaConfig {
        dir: Some(shm.path().join("arena")),
        capacity,
        spill: Some(SpillConfig {
            dir: disk.path().join("spill"),
            capacity: 4 * capacity,
        }),
    })?;
    let per_arena = capacity / size;
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();

    // Fill the arena, then write 3 more arenas' worth: each reservation spills one object.
    let mut reserve_time = Duration::ZERO;
    for n in 0..4 * per_arena {
        let start = Instant::now();
        let mut w = arena.writer(oid(n), size, CopyKind::Primary)?;
        if n >= per_arena {
            reserve_time += start.elapsed();
        }
        w.write(&data)?;
        w.commit(None)?;
    }
    let spilled = arena.spill_usage().spilled_bytes;
    anyhow::ensure!(spilled == 3 * per_arena * size, "spilled {spilled}");

    // Swap: read the oldest spilled objects back while the arena is full (each spills one).
    let swaps = per_arena / 2;
    let start = Instant::now();
    for n in 0..swaps {
        drop(arena.get(&oid(n))?);
    }
    let swap_time = start.elapsed();

    // Restore: free the arena, then read spilled objects back into the room.
    let in_arena: Vec<ObjectId> = (0..4 * per_arena)
        .map(oid)
        .filter(|id| !arena.is_spilled(id))
        .collect();
    arena.delete(&in_arena);
    let spilled_ids: Vec<ObjectId> = (0..4 * per_arena)
        .map(oid)
        .filter(|id| arena.is_spilled(id))
        .take(per_arena as usize)
        .collect();
    let before = arena.spill_usage().spills;
    let start = Instant::now();
    for id in &spilled_ids {
        drop(arena.get(id)?);
    }
    let restore_time = start.elapsed();
    anyhow::ensure!(
        arena.spill_usage().spills == before,
        "restores needed no spill"
    );
    arena.remove_all()?;
    Ok(Rates {
        spill: gbps(spilled, reserve_time),
        restore: gbps(spilled_ids.len() as u64 * size, restore_time),
        swap: gbps(swaps * size, swap_time),
    })
}

fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!("{:.2} ({:.2}..{:.2})", v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.object_mib > 0 && args.arena_mib >= 2 * args.object_mib);
    let mut all = Vec::new();
    for i in 0..args.repeats.max(1) {
        let r = run_once(&args)?;
        eprintln!(
            "repeat {i}: spill {:.2} GB/s, restore {:.2} GB/s, swap {:.2} GB/s",
            r.spill, r.restore, r.swap
        );
        all.push(r);
    }
    println!(
        "arena {} MiB on /dev/shm, {} MiB objects, spill directory on {}",
        args.arena_mib,
        args.object_mib,
        args.spill_parent
            .clone()
            .unwrap_or_else(std::env::temp_dir)
            .display()
    );
    println!();
    println!("| operation | GB/s median (min..max) |");
    println!("|---|---|");
    println!(
        "| spill (arena -> disk, to make room) | {} |",
        summary(all.iter().map(|r| r.spill).collect())
    );
    println!(
        "| restore (disk -> free arena room, CRC-32 checked) | {} |",
        summary(all.iter().map(|r| r.restore).collect())
    );
    println!(
        "| swap (restore into a full arena: spill one, restore one; bytes restored) | {} |",
        summary(all.iter().map(|r| r.swap).collect())
    );
    Ok(())
}
