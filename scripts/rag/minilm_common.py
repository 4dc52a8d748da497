"""Shared by the MiniLM converter and its numpy reference: a safetensors reader in plain numpy
(the format is an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
shape and byte range, then the raw little-endian data), so neither needs torch.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

DTYPES = {
    "F32": np.float32,
    "F16": np.float16,
    "F64": np.float64,
    "I64": np.int64,
    "I32": np.int32,
}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file, as numpy arrays (copies, so the file can close)."""
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        # Offsets in the header count from the first byte after it (the current position).
        raw = np.fromfile(f, dtype=np.uint8)
    out: dict[str, np.ndarray] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        dtype = DTYPES.get(spec["dtype"])
        if dtype is None:
            raise ValueError(f"{name}: unsupported dtype {spec['dtype']}")
        start, end = spec["data_offsets"]
        array = raw[start:end].view(np.dtype(dtype).newbyteorder("<"))
        out[name] = array.reshape(spec["shape"]).astype(dtype, copy=True)
    return out
