"""Atomic writes: an output is either complete or absent, never half-written."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from talking_heads.errors import UserError


class UnwritablePathError(UserError):
    """An output path that cannot be created (a parent is a file, or not writable)."""


def check_writable(path: Path | str) -> Path:
    """``path`` if it can be written: its nearest existing ancestor is a writable directory.

    Nothing is created; otherwise an :class:`UnwritablePathError` names the path and why.
    """
    target = Path(path)
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UnwritablePathError(
            f"cannot write {target}: {ancestor} is a file, not a directory; "
            "choose an output path inside a directory"
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UnwritablePathError(
            f"cannot write {target}: directory {ancestor} is not writable (permission denied)"
        )
    return target


def ensure_parent(path: Path | str) -> Path:
    """Create ``path``'s parent directories (checked by :func:`check_writable`); ``path``."""
    target = check_writable(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UnwritablePathError(f"cannot write {target}: {error.strerror or error}") from error
    return target


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    Works for files and directories (the caller creates the directory). The temporary name
    keeps the suffix so tools that dispatch on it (ffmpeg, pandas) still work. On error the
    temporary is removed and ``path`` is left untouched.
    """
    target = ensure_parent(path)
    tmp = target.with_name(f".{target.stem}.tmp-{uuid.uuid4().hex[:8]}{target.suffix}")
    try:
        yield tmp
        if not (tmp.exists() or tmp.is_symlink()):
            raise FileNotFoundError(f"nothing was written to {tmp} for {target}")
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (fsync'd before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(path)


def atomic_write_text(path: Path | str, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path | str, obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically; non-JSON scalars are stringified."""
    return atomic_write_text(
        path, json.dumps(obj, indent=indent, sort_keys=True, default=str) + "\n"
    )
