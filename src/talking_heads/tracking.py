"""DVC tracking of workflow artifacts (DVC as the versioned store, Snakemake as the DAG)."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)


def _dvc(*args: str) -> None:
    command = ["dvc", *args]
    log.info("$ %s", " ".join(command))
    subprocess.run(command, check=True)


def dvc_track(paths: list[Path], *, push: bool = True) -> list[Path]:
    """``dvc add`` each artifact folder (one ``.dvc`` file each), then ``dvc push`` them.

    Workspace files keep their timestamps: DVC's default ``copy`` cache leaves them in place,
    and file modification times are restored should a cache link replace a file.
    """
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"cannot track missing artifacts: {missing}")
    mtimes = {f: f.stat().st_mtime_ns for p in paths for f in _files(p)}
    _dvc("add", "--quiet", *map(str, paths))
    for file, mtime in mtimes.items():
        if file.exists() and file.stat().st_mtime_ns != mtime:
            os.utime(file, ns=(mtime, mtime), follow_symlinks=False)
    records = [p.with_name(p.name + ".dvc") for p in paths]
    if push:
        _dvc("push", "--quiet", *map(str, records))
    return records


def _files(path: Path) -> list[Path]:
    return [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
