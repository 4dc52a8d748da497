"""Plain value types the API hands out: object references, wait results, generation stats,
search hits and answers. No I/O; shared by the sync client and `xnai.aio`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple


@dataclass(frozen=True)
class ObjectRef:
    """A reference to an object in the cluster (a task's output or a put). Pass it as a task
    argument to hand the object over without moving its bytes through this process."""

    hex: str

    def __str__(self) -> str:
        return self.hex


class WaitResult(NamedTuple):
    """Which refs are done (ready, failed or lost) and which are still pending, in order;
    unpacks as `done, pending = c.wait(refs)`."""

    done: List[ObjectRef]
    pending: List[ObjectRef]


@dataclass(frozen=True)
class GenerateStats:
    """How a generation went, measured on the worker."""

    prompt_tokens: int
    generated_tokens: int
    queue_ms: float
    prompt_ms: float
    generate_ms: float
    time_to_first_token_ms: float
    finish_reason: str


@dataclass(frozen=True)
class Hit:
    """One search result: a chunk of a document."""

    doc_id: str
    chunk: int
    text: str
    score: float
    metadata: Dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    """An answer from `ask`: the text, the numbered passages it was given, the ones it cites."""

    answer: str
    passages: List[Hit]
    cited: List[int]
    prompt: str
