"""Errors map to the package's exception hierarchy, never to a raw grpc.RpcError."""

import grpc
import pytest

import xnai

from conftest import Cluster


def test_errors_are_mapped(cluster: Cluster) -> None:
    with pytest.raises(xnai.Unauthenticated):
        xnai.connect(cluster.head_env, token="wrong")
    with pytest.raises(xnai.Unavailable):
        xnai.connect("127.0.0.1:1", token="x", connect_timeout=0.5)
    with xnai.connect(cluster.head_env, cluster.token) as c:
        with pytest.raises(xnai.TaskFailed) as e:
            c.get(c.submit("fill", "many", 1), timeout=30)
        assert "BYTES" in e.value.cause or "fill" in e.value.cause, e.value.cause
        with pytest.raises(xnai.Timeout):
            c.get(c.submit("sleep", 10_000, cpus=0), timeout=0.3)
        with pytest.raises(xnai.InvalidArgument) as e:
            c.submit("no-such-function")
        assert not isinstance(e.value, grpc.RpcError)
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(xnai.InvalidArgument, match="unknown actor class"):
            c.actor("no-such-class")
        with pytest.raises((xnai.NotFound, xnai.Timeout, xnai.ActorDead)):
            xnai.connect(cluster.head_env, cluster.token, actor_start_timeout=0.5).get_actor("nobody")
        with pytest.raises(ValueError):
            c.submit("echo", b"x" * (2 << 20))  # over the inline limit: put it instead
        with pytest.raises(xnai.ObjectLost):
            ref = c.put(b"short-lived")
            c.free([ref])
            c.get(ref, timeout=5)
