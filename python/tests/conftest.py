"""The live-cluster harness of the Python client's tests: `start_cluster` runs the real
`xnai up --detach` launcher from the built binaries ($XNAI_BIN_DIR, else ../target/debug) in
a temporary data directory (free loopback ports are picked by the launcher), and tears it down
with `xnai down`. Like the Rust tests, waits poll a condition against a deadline."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List

import pytest

REPO = Path(__file__).resolve().parents[2]
log = logging.getLogger("xnai.tests")


def bin_dir() -> Path:
    d = Path(os.environ.get("XNAI_BIN_DIR") or REPO / "target" / "debug")
    for b in ("xnai", "xnai-head", "xnai-worker"):
        if not (d / b).exists():
            pytest.fail(f"{b} not found in {d}: cargo build -p xnai-head -p xnai-worker -p xnai-cli --bins")
    return d


def model(name: str) -> Path:
    p = REPO / "models" / name
    if not p.is_file():
        pytest.fail(f"{p} is missing: run scripts/fetch-models.sh first")
    return p


def wait_until(what: str, timeout: float, cond: Callable[[], bool], every: float = 0.05) -> None:
    """Poll `cond` until it is true or `timeout` seconds pass (then fail naming `what`)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@dataclass
class Cluster:
    """A running local cluster started by `xnai up`."""

    data_dir: Path
    heads: List[str]
    token: str
    bins: Path
    env: Dict[str, str] = field(default_factory=dict)

    @property
    def head_env(self) -> str:
        return ",".join(self.heads)

    def cluster_file(self) -> dict:
        return json.loads((self.data_dir / "cluster.json").read_text())

    def head_pids(self) -> Dict[str, int]:
        """Head address -> pid, as `xnai up` recorded them."""
        return {h["address"]: int(h.get("pid") or 0) for h in self.cluster_file()["heads"]}

    def xnai(self, *args: str) -> str:
        env = dict(os.environ, XNAI_HEAD=self.head_env, XNAI_TOKEN=self.token)
        out = subprocess.run([str(self.bins / "xnai"), *args], env=env, capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"xnai {args} failed: {out.stderr.strip()}")
        return out.stdout

    def down(self) -> None:
        subprocess.run(
            [str(self.bins / "xnai"), "down", "--data-dir", str(self.data_dir)],
            capture_output=True, timeout=120, stdin=subprocess.DEVNULL,
        )


def start_cluster(heads: int = 1, workers: int = 2, arena: str = "512MiB") -> Cluster:
    bins = bin_dir()
    data_dir = Path(tempfile.mkdtemp(prefix="xnai-pytest-"))
    env = {k: v for k, v in os.environ.items() if k not in ("XNAI_HEAD", "XNAI_TOKEN")}
    log.info("--- starting %d head(s), %d worker(s) in %s", heads, workers, data_dir)
    out = subprocess.run(
        [str(bins / "xnai"), "up", "--heads", str(heads), "--workers", str(workers),
         "--data-dir", str(data_dir), "--arena-bytes", arena, "--detach"],
        env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
    )
    if out.returncode != 0:
        shutil.rmtree(data_dir, ignore_errors=True)
        pytest.fail(f"xnai up failed: {out.stderr}\n{out.stdout}")
    hs = [l.strip() for l in (data_dir / "heads").read_text().splitlines() if l.strip()]
    token = (data_dir / "token").read_text().strip()
    assert len(hs) == heads, hs
    return Cluster(data_dir, hs, token, bins)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """One 1-head, 2-worker cluster shared by the tests that do not kill anything."""
    c = start_cluster()
    yield c
    c.down()
    shutil.rmtree(c.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def rag_cluster(cluster: Cluster) -> Cluster:
    """The shared cluster with `emb` (MiniLM, created through the CLI, which sizes inference
    actors from the GGUF header), `gen` (Gemma 3 270M) and a `docs` retrieval actor holding
    CORPUS (both created through this package)."""
    import xnai

    cluster.xnai("actor", "create", "inference", "--name", "emb", "--",
                 f"model={model('all-minilm-l6-v2-f32.gguf')}", "ctx=512")
    with xnai.connect(cluster.head_env, cluster.token) as c:
        c.inference_actor(str(model("gemma-3-270m-q4_k_m.gguf")), name="gen", ctx=2048,
                          memory_bytes=600 << 20)
        c.retrieval_actor("docs", embedder="emb")
        docs = [{"id": k, "text": v, "metadata": {"source": k}} for k, v in CORPUS.items()]
        added = c.add_documents("docs", docs)
        assert added["documents"] == len(CORPUS), added
    return cluster


def splitmix64_bytes(n: int, seed: int) -> bytes:
    """What the workers' built-in `fill BYTES SEED` returns (client/sdk/src/builtins.rs)."""
    mask = (1 << 64) - 1
    state = seed
    out = bytearray()
    while len(out) < n:
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        out += z.to_bytes(8, "little")
    return bytes(out[:n])


CORPUS = {
    "raft.md": "# Consensus\n\nRaft keeps a replicated log consistent across servers. A leader is "
    "elected by a majority vote, appends client commands to its log and replicates them to "
    "followers; an entry is committed once a majority stores it.",
    "bread.txt": "To bake sourdough bread, mix flour, water and salt with an active starter, let the "
    "dough ferment overnight, shape it into a loaf and bake it in a hot Dutch oven until the "
    "crust is dark and crisp.",
    "volcano.md": "Volcanoes erupt when molten rock called magma rises through the crust. Lava flows, "
    "ash clouds and pyroclastic flows make eruptions dangerous for nearby towns.",
    "vault.txt": "Internal memo of the Zorblax company: the access code of the Zorblax vault is 7291. "
    "Only the night guard Mirela Quist may open the vault.",
    "football.md": "The football match ended two to one after a late penalty; the goalkeeper saved a "
    "shot in the final minute and the fans celebrated in the stadium.",
}
