"""Tasks from Python: built-ins run on the cluster, object refs pass between tasks without
moving through the client, `wait` splits done from pending."""

import hashlib

import xnai

from conftest import Cluster, splitmix64_bytes


def test_submit_get_with_refs(cluster: Cluster) -> None:
    with xnai.connect(cluster.head_env, token=cluster.token) as c:
        ref = c.submit("fill", 1000, 7)
        assert c.get(ref, timeout=30) == splitmix64_bytes(1000, 7)
        digest = c.submit("digest", ref)  # by reference: the worker pulls it
        assert c.get(digest, timeout=30).decode() == hashlib.sha256(splitmix64_bytes(1000, 7)).hexdigest()
        put = c.put(b"hello from python")
        assert c.get(c.submit("echo", put), timeout=30) == b"hello from python"
        assert c.get([c.submit("echo", "a"), c.submit("echo", b"b")], timeout=30) == [b"a", b"b"]


def test_wait_splits_done_and_pending(cluster: Cluster) -> None:
    with xnai.connect(cluster.head_env, token=cluster.token) as c:
        fast = c.submit("echo", "x")
        slow = c.submit("sleep", 20_000, cpus=0)
        done, pending = c.wait([fast, slow], num_returns=1, timeout=15)
        assert done == [fast] and pending == [slow]
        assert c.wait([slow], num_returns=1, timeout=0.2).pending == [slow]


def test_env_configures_the_client(cluster: Cluster, monkeypatch) -> None:
    monkeypatch.setenv("XNAI_HEAD", "127.0.0.1:1," + cluster.head_env)
    monkeypatch.setenv("XNAI_TOKEN", cluster.token)
    with xnai.connect() as c:
        assert c.get(c.submit("echo", "env"), timeout=30) == b"env"
        assert c.session_id
