"""Objects from Python: 64 MiB put and get byte for byte through same-host shared memory
(mapped arena files, CRC-32 checked) and through 1 MiB chunk streams, from bytes and files."""

import os
import zlib

import pytest

import xnai
from xnai import _local

from conftest import Cluster

SIZE = 64 << 20


@pytest.fixture()
def payload() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture()
def local_calls(monkeypatch):
    """Counts the shared-memory reads and writes the client makes."""
    calls = {"map": 0, "write": 0, "copy": 0}
    real = (_local.map_checked, _local.write_reserved, _local.copy_file_into)

    def counted(name, fn):
        def wrap(*a, **k):
            calls[name] += 1
            return fn(*a, **k)
        return wrap

    monkeypatch.setattr(_local, "map_checked", counted("map", real[0]))
    monkeypatch.setattr(_local, "write_reserved", counted("write", real[1]))
    monkeypatch.setattr(_local, "copy_file_into", counted("copy", real[2]))
    return calls


@pytest.mark.parametrize("shared_memory", [True, False], ids=["shared-memory", "streamed"])
def test_put_get_64_mib_byte_for_byte(cluster: Cluster, payload: bytes, local_calls, tmp_path, shared_memory) -> None:
    with xnai.connect(cluster.head_env, cluster.token, shared_memory=shared_memory) as c:
        ref = c.put(payload)
        got = c.get(ref, timeout=60)
        assert len(got) == SIZE and got == payload
        f = tmp_path / "blob"
        f.write_bytes(payload[::-1])
        ref2 = c.put_file(f)
        assert c.get(ref2, timeout=60) == payload[::-1]
        assert c.object_info(ref2).crc32 == zlib.crc32(payload[::-1])
        out = tmp_path / "out"
        assert c.get_to_file(ref, out, timeout=60) == SIZE
        assert out.read_bytes() == payload
        c.free([ref, ref2])
    if shared_memory:
        assert local_calls == {"map": 3, "write": 1, "copy": 1}, local_calls
    else:
        assert local_calls == {"map": 0, "write": 0, "copy": 0}, local_calls


def test_a_task_output_streams_and_maps_alike(cluster: Cluster) -> None:
    with xnai.connect(cluster.head_env, cluster.token) as a, \
            xnai.connect(cluster.head_env, cluster.token, shared_memory=False) as b:
        ref = a.submit("fill", 3 << 20, 11)
        assert a.get(ref, timeout=60) == b.get(ref, timeout=60)
