"""Reproducible randomness for masks: explicit seeds, never the global random state.

Per-file seeds come from the file *name* through SHA-256, so the same scan gets the same mask
on every machine, process and rank (Python's ``hash`` is salted per process and would not).
"""

from __future__ import annotations

import hashlib
from pathlib import PurePath

import numpy as np

from mrirecon.sampling.spec import Seed


def rng(seed: Seed, *keys: int) -> np.random.Generator:
    """A ``numpy.random.Generator`` from ``SeedSequence(seed)``, optionally split by ``keys``.

    ``keys`` (slice index, rank, worker, ...) select independent streams of the same seed.
    """
    entropy = list(seed) if isinstance(seed, tuple) else seed
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=tuple(keys)))


def seed_from_name(name: str, base_seed: int = 0) -> int:
    """A stable 32-bit seed from a file's base name (directory ignored) and a base seed."""
    digest = hashlib.sha256(f"{int(base_seed)}:{PurePath(name).name}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def fastmri_seed(name: str) -> tuple[int, ...]:
    """FastMRI's validation seed for a file: ``tuple(map(ord, fname))`` of its base name."""
    return tuple(map(ord, PurePath(name).name))


def int_seed(seed: Seed) -> int:
    """One 32-bit integer from any seed (for libraries that only take an int)."""
    return int(np.random.SeedSequence(list(seed) if isinstance(seed, tuple) else seed)
               .generate_state(1)[0])
