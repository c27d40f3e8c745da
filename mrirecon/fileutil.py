"""Writing outputs safely: never overwrite by accident, never leave a half-written file.

Writers call :func:`check_writable` for every path they will produce *before* writing any of
them, then write each through :func:`atomic_path`, which hands out a temporary name in the same
folder and renames it into place only when the write succeeded.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from mrirecon.errors import OutputError, one_line


def check_writable(paths: Iterable[str | os.PathLike], overwrite: bool) -> None:
    """Fail before anything is written if an output exists or its folder cannot take it.

    Nothing is created here: a missing parent folder is fine when its nearest existing ancestor
    is a writable folder (:func:`atomic_path` makes it, like ``mkdir -p``, at the first write),
    so an input that fails after this check leaves no empty output folder behind. Problems are
    an :class:`~mrirecon.errors.OutputError`.
    """
    for p in map(Path, paths):
        if p.exists() and not overwrite:
            raise OutputError(f"{p}: output exists; pass --overwrite to replace it")
        if p.is_dir():
            raise OutputError(f"{p}: output path is a directory")
        parent = p.parent if str(p.parent) else Path(".")
        existing = next(a for a in (parent, *parent.parents) if a.exists())
        if not existing.is_dir():
            raise OutputError(f"{existing}: cannot create output directory (not a directory)")
        if not os.access(existing, os.W_OK | os.X_OK):
            what = "output directory is not writable" if existing == parent else (
                f"cannot create output directory {parent} (not writable)")
            raise OutputError(f"{existing}: {what}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file keeps ``path``'s suffixes (``.nii.gz``, ``.h5``) so libraries that look at
    the name write the right format. On any exception the temporary file is removed and the
    existing ``path``, if any, is left untouched.
    """
    path = Path(path)
    check_writable([path], overwrite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path.parent}: cannot create output directory ({exc.strerror})"
                          ) from None
    suffix = "".join(path.suffixes)[-20:]
    # the temporary name stays within the file-name limit whatever the length of path's name
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=f".part{suffix}",
                                   dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write here ({exc.strerror})") from None
    os.close(fd)
    tmp_path = Path(tmp)
    mode = 0o666 & ~_umask()  # mkstemp makes 0600; outputs get the usual mode
    os.chmod(tmp_path, mode)
    try:
        yield tmp_path
        os.chmod(tmp_path, mode)  # again: some writers (safetensors) recreate the file as 0600
        if path.exists() and not overwrite:
            raise OutputError(f"{path}: output appeared while writing; not replaced")
        os.replace(tmp_path, path)
    except (OSError, RuntimeError) as exc:  # a full disk, a size limit, a vanished folder
        cause = exc if isinstance(exc, OSError) else exc.__context__
        if not isinstance(cause, OSError):  # a RuntimeError of the writer's own: not ours
            raise
        reason = cause.strerror or one_line(cause)
        raise OutputError(f"{path}: could not be written ({reason}); nothing written") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
