"""Atomic file writes, for every file bireid writes in place of an older one (checkpoints, ``.bnn`` models,
logs, curves, caches). Standard library only, so the torch-free runtime uses it too."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write_fn: Callable[[str], object]) -> None:
    """Write through ``write_fn(tmp_path)`` to a temporary file beside ``path``, fsync it, then rename over ``path``.

    A crash at any moment leaves either the previous file or the new one, never a partial file. The file gets
    the permissions ``open()`` would give ``path`` (0666 filtered by the umask): the temporary file is created
    so, and given them back after ``write_fn`` (a writer may replace it; safetensors writes 0600 files, as
    ``tempfile.mkstemp`` does).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(path)
    try:
        mode = stat.S_IMODE(os.stat(tmp).st_mode)
        write_fn(tmp)
        os.chmod(tmp, mode)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _create_temp(path: Path) -> str:
    """Create an empty, new, hidden file beside ``path`` (mode 0666 & ~umask) and return its name."""
    while True:
        tmp = str(path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:  # a name drawn twice: draw again
            continue
