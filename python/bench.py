#!/usr/bin/env python3
"""Benchmark of the Python client, the figures issue 17 compares with Ray Client on the same
machine: sync and async actor calls/s (counter `incr`), tasks/s (`echo`, submitted then all
fetched), and put/get GB/s of a 100 MiB object, through same-host shared memory and streamed.

    python bench.py --start --bin-dir target/release       # starts (and stops) a local cluster
    XNAI_HEAD=... XNAI_TOKEN=... python bench.py            # an existing cluster

Prints one line per figure and, with --json, the figures as JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict

# Use the installed package: this folder's xnai/ has no generated stubs.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import xnai  # noqa: E402
import xnai.aio  # noqa: E402

MiB = 1 << 20


def start(bin_dir: Path, workers: int) -> tuple:
    d = Path(tempfile.mkdtemp(prefix="xnai-bench-"))
    subprocess.run(
        [str(bin_dir / "xnai"), "up", "--heads", "1", "--workers", str(workers), "--data-dir", str(d),
         "--arena-bytes", "1GiB", "--detach"],
        check=True, capture_output=True, stdin=subprocess.DEVNULL,
    )
    heads = ",".join(l.strip() for l in (d / "heads").read_text().splitlines() if l.strip())
    return d, heads, (d / "token").read_text().strip()


def sync_figures(c: xnai.Client, seconds: float, size: int, rounds: int) -> Dict[str, float]:
    out: Dict[str, float] = {}
    a = c.actor("counter")
    for _ in range(200):  # warm the channel
        a.call("incr")
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(100):
            a.call("incr")
        n += 100
    out["sync_actor_calls_per_s"] = n / (time.perf_counter() - t0)
    a.kill()

    tasks = 1000
    t0 = time.perf_counter()
    refs = [c.submit("echo", "x", cpus=0) for _ in range(tasks)]
    c.get(refs, timeout=300)
    out["tasks_per_s"] = tasks / (time.perf_counter() - t0)
    c.release(refs)

    data = os.urandom(size)
    for label, client in (("shm", c), ("stream", xnai.connect(c.heads, _token(), shared_memory=False))):
        put_s = get_s = 0.0
        for _ in range(rounds):
            t0 = time.perf_counter()
            ref = client.put(data)
            put_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            got = client.get(ref, timeout=120)
            get_s += time.perf_counter() - t0
            assert len(got) == size
            client.free([ref])
        out[f"put_gb_per_s_{label}"] = size * rounds / put_s / 1e9
        out[f"get_gb_per_s_{label}"] = size * rounds / get_s / 1e9
        if client is not c:
            client.close()
    return out


async def async_figures(heads: str, seconds: float, concurrency: int) -> Dict[str, float]:
    c = await xnai.aio.connect(heads, _token())
    a = await c.actor("counter", max_concurrency=1)
    for _ in range(200):
        await a.call("incr")
    count = 0
    stop = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await a.call("incr")
            count += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    out = {"async_actor_calls_per_s": count / (time.perf_counter() - t0)}
    await a.kill()

    tasks = 1000
    t0 = time.perf_counter()
    refs = await asyncio.gather(*(c.submit("echo", "x", cpus=0) for _ in range(tasks)))
    await c.get(list(refs), timeout=300)
    out["async_tasks_per_s"] = tasks / (time.perf_counter() - t0)
    await c.close()
    return out


_TOKEN = ""


def _token() -> str:
    return _TOKEN


def main() -> None:
    global _TOKEN
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--start", action="store_true", help="start a local cluster with xnai up")
    p.add_argument("--bin-dir", default=str(Path(__file__).resolve().parents[1] / "target" / "release"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seconds", type=float, default=5.0, help="length of each calls/s run")
    p.add_argument("--size-mib", type=int, default=100)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=32, help="concurrent async callers")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    data_dir = None
    if args.start:
        data_dir, heads, _TOKEN = start(Path(args.bin_dir), args.workers)
    else:
        heads, _TOKEN = os.environ["XNAI_HEAD"], os.environ["XNAI_TOKEN"]
    try:
        with xnai.connect(heads, _TOKEN) as c:
            figures = sync_figures(c, args.seconds, args.size_mib * MiB, args.rounds)
        figures.update(asyncio.run(async_figures(heads, args.seconds, args.concurrency)))
    finally:
        if data_dir is not None:
            subprocess.run([str(Path(args.bin_dir) / "xnai"), "down", "--data-dir", str(data_dir)],
                           capture_output=True, stdin=subprocess.DEVNULL)
            shutil.rmtree(data_dir, ignore_errors=True)
    for k, v in figures.items():
        print(f"{k:28} {v:12.3f}")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
