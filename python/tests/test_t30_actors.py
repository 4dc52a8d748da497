"""Actors from Python: calls reach the hosting worker in order, named lookups, application
errors and killed actors map to their exceptions."""

import pytest

import xnai

from conftest import Cluster


def test_counter_calls_in_order(cluster: Cluster) -> None:
    with xnai.connect(cluster.head_env, cluster.token) as c:
        a = c.actor("counter", name="py-counter")
        for i in range(1, 51):
            assert a.call("incr") == str(i).encode()
        assert a.call("incr", 10) == b"60"
        same = c.get_actor("py-counter")
        assert same.id == a.id and same.call("incr") == b"61"
        with pytest.raises(xnai.ActorMethodError) as e:
            a.call("incr", "not-a-number")
        assert e.value.cause
        a.kill()
        with pytest.raises(xnai.ActorDead):
            c.get_actor(a.id)
