"""A minimal 8-bit greyscale PNG writer (zlib + struct), so masks need no imaging library."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np


def encode_png(image: np.ndarray) -> bytes:
    """Encode a 2-D uint8 array as a greyscale PNG (rows top to bottom)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 2:
        raise ValueError(f"encode_png expects a 2-D array, got shape {image.shape}")
    height, width = image.shape
    raw = b"".join(b"\x00" + image[r].tobytes() for r in range(height))  # filter 0 per row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(
            ">I", zlib.crc32(tag + data) & 0xFFFFFFFF
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write :func:`encode_png` of ``image`` to ``path`` (callers handle atomicity)."""
    Path(path).write_bytes(encode_png(image))
