"""Units without a cluster: the RAG prompt and citation rule (same cases as the Rust SDK),
argument encoding and the inline limit, the breaker policy, the shared-memory file checks,
and that gRPC statuses map to the exception hierarchy."""

import os
import zlib

import grpc
import pytest

import xnai
from xnai import _breaker, _local, _rag, _wire
from xnai.errors import from_rpc
from xnai.refs import Hit


def hit(doc: str, text: str) -> Hit:
    return Hit(doc_id=doc, chunk=0, text=text, score=1.0, metadata={"source": f"{doc}.md"})


def test_prompt_and_citations() -> None:
    p = _rag.rag_prompt("Who?", [hit("a", "Alice did it."), hit("b", "Bob watched.")])
    assert "[1] (a.md) Alice did it." in p and "[2] (b.md) Bob watched." in p
    assert p.endswith("Question: Who?\nAnswer:")
    ps = [hit("a", "The vault code is 7291."), hit("b", "Cats sleep a lot.")]
    assert _rag.cited("7291 [1]", "What is the vault code?", ps) == [1]
    assert _rag.cited("It is 7291.", "What is the vault code?", ps) == [1]
    assert _rag.cited("[2] and [9]", "q", ps) == [2]
    assert _rag.cited("The vault code", "What is the vault code?", ps) == []


def test_arguments_and_limits() -> None:
    args = _wire.to_args([b"x", "y", 7, xnai.ObjectRef("ab" * 16)])
    assert [a.WhichOneof("kind") for a in args] == ["value"] * 3 + ["object_id"]
    assert args[2].value == b"7"
    with pytest.raises(ValueError, match="by reference"):
        _wire.to_args([b"x" * (_wire.MAX_INLINE_ARGS_BYTES + 1)])
    with pytest.raises(TypeError):
        _wire.to_args([object()])
    assert _wire.wait_ms(3600) == 600_000 and _wire.wait_ms(None) == 600_000
    assert _wire.heads_from("a:1, b:2,") == ["a:1", "b:2"]
    assert _wire.request_id() != _wire.request_id()


def test_breaker_opens_after_five_and_probes() -> None:
    b = _breaker.Breakers()
    for _ in range(4):
        b.failure("w")
    b.check("w")
    b.failure("w")
    with pytest.raises(xnai.Unavailable, match="circuit breaker open"):
        b.check("w")
    b._by["w"].open_until = 0  # the open period is over: one probe passes
    b.check("w")
    with pytest.raises(xnai.Unavailable):
        b.check("w")
    b.success("w")
    b.check("w")


def test_local_files_are_used_only_when_they_are_the_workers(tmp_path) -> None:
    data = os.urandom(3 << 20)
    f = tmp_path / "obj"
    f.write_bytes(data)
    st = os.stat(f)
    crc = zlib.crc32(data)
    assert _local.map_checked(str(f), st.st_dev, st.st_ino, len(data), crc) == data
    with pytest.raises(_local.NotLocal):
        _local.map_checked(str(f), st.st_dev, st.st_ino + 1, len(data), crc)
    with pytest.raises(_local.Mismatch):
        _local.map_checked(str(f), st.st_dev, st.st_ino, len(data), crc ^ 1)
    link = tmp_path / "link"
    link.symlink_to(f)
    with pytest.raises(_local.NotLocal):
        _local.map_checked(str(link), st.st_dev, st.st_ino, len(data), crc)
    target = tmp_path / "reserved"
    target.write_bytes(b"")
    st = os.stat(target)
    assert _local.write_reserved(str(target), st.st_dev, st.st_ino, data) == crc
    assert target.read_bytes() == data
    assert not _local.LocalArenas(True).worth("w", _wire.LOCAL_MIN_BYTES - 1)
    assert not _local.LocalArenas(False).worth("w", 1 << 30)


class FakeRpcError(grpc.RpcError):
    def __init__(self, code, details="", md=()):
        self._c, self._d, self._md = code, details, md

    def code(self):
        return self._c

    def details(self):
        return self._d

    def trailing_metadata(self):
        return self._md


def test_statuses_map_to_the_hierarchy() -> None:
    cases = {
        grpc.StatusCode.UNAVAILABLE: xnai.Unavailable,
        grpc.StatusCode.UNAUTHENTICATED: xnai.Unauthenticated,
        grpc.StatusCode.NOT_FOUND: xnai.NotFound,
        grpc.StatusCode.INVALID_ARGUMENT: xnai.InvalidArgument,
        grpc.StatusCode.RESOURCE_EXHAUSTED: xnai.ResourceExhausted,
        grpc.StatusCode.DEADLINE_EXCEEDED: xnai.Timeout,
        grpc.StatusCode.INTERNAL: xnai.XnaiError,
    }
    for code, cls in cases.items():
        e = from_rpc(FakeRpcError(code, "why"))
        assert type(e) is cls and e.code == code and "why" in str(e)
        assert not isinstance(e, grpc.RpcError)
    hinted = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "not the leader", (("xnai-leader", "127.0.0.1:7001"),))
    assert _wire.leader_hint(hinted) == "127.0.0.1:7001"
    assert _wire.leader_hint(FakeRpcError(grpc.StatusCode.UNAVAILABLE)) is None
