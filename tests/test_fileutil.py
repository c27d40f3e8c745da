"""``atomic_path``: nothing half-written, no accidental overwrite, the temporary file beside the
target."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mrirecon.errors import OutputError
from mrirecon.fileutil import atomic_path


class Boom(RuntimeError):
    pass


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_writes_through_a_temporary_file_beside_the_target(tmp_path: Path) -> None:
    target = tmp_path / "out.nii.gz"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        assert tmp.name.startswith(".out.nii.gz.") and tmp.name.endswith(".part.nii.gz")
        assert tmp.exists() and not target.exists()  # nothing at the target until the end
        tmp.write_bytes(b"new")
        assert not target.exists()
    assert target.read_bytes() == b"new"
    assert names(tmp_path) == ["out.nii.gz"]  # the temporary name is gone
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_an_exception_leaves_no_target_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "out.h5"
    with pytest.raises(Boom), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise Boom
    assert not target.exists() and names(tmp_path) == []


def test_an_exception_leaves_an_existing_target_untouched(tmp_path: Path) -> None:
    target = tmp_path / "out.h5"
    target.write_bytes(b"old")
    with pytest.raises(Boom), atomic_path(target, overwrite=True) as tmp:
        tmp.write_bytes(b"half")
        raise Boom
    assert target.read_bytes() == b"old" and names(tmp_path) == ["out.h5"]


def test_refuses_to_overwrite_without_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    entered = False
    with pytest.raises(OutputError, match="out.json: output exists; pass --overwrite"):
        with atomic_path(target):
            entered = True
    assert not entered  # refused before the block runs: no temporary file was made
    assert target.read_text() == "old" and names(tmp_path) == ["out.json"]


def test_replaces_with_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    with atomic_path(target, overwrite=True) as tmp:
        tmp.write_text("new")
        assert target.read_text() == "old"  # replaced only when the block succeeds
    assert target.read_text() == "new" and names(tmp_path) == ["out.json"]


def test_a_target_that_appears_while_writing_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(OutputError, match="appeared while writing"), atomic_path(target) as tmp:
        tmp.write_text("ours")
        target.write_text("someone else's")
    assert target.read_text() == "someone else's" and names(tmp_path) == ["out.json"]


def test_makes_missing_folders(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent
        tmp.write_text("x")
    assert target.read_text() == "x" and names(target.parent) == ["out.txt"]
