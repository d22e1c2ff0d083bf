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


def dvc_track(
    paths: list[Path],
    *,
    push: bool = True,
    outputs: list[Path] | None = None,
    timestamps: Path | None = None,
) -> list[Path]:
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
    if timestamps is not None:
        record_timestamps(outputs or [], timestamps)
    if push:
        _dvc("push", "--quiet", *map(str, records))
    return records


def _files(path: Path) -> list[Path]:
    return [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]


def _timestamp_path(output: Path | str) -> Path:
    """The file whose mtime Snakemake reads for an output: a folder's marker, if any."""
    marker = Path(output) / ".snakemake_timestamp"
    return marker if marker.is_file() else Path(output)


def record_timestamps(outputs: list[Path], record: Path) -> dict[str, int]:
    """Write the modification times (ns) of the workflow's declared outputs to ``record``.

    The record is committed with the ``.dvc`` files. ``dvc pull`` restores content but not
    timestamps, and Snakemake compares the timestamps of declared outputs (files, and
    folders through their own mtime) to decide what is stale; :func:`restore_timestamps`
    puts the recorded times back once DVC confirms the content is what was tracked.
    """
    from talking_heads.utils.atomic import atomic_write_json

    stamps = {str(p): p.stat().st_mtime_ns for p in map(_timestamp_path, outputs)}
    atomic_write_json(record, stamps)
    return stamps


def restore_timestamps(record: Path) -> list[str]:
    """Reset recorded outputs to their recorded times when DVC reports the data unchanged.

    A no-op (a few ``stat`` calls) when every timestamp already matches. Otherwise
    ``dvc status`` must report the workspace identical to the ``.dvc`` records (as right
    after ``dvc pull``); if anything differs, nothing is touched, so real edits stay visible.
    """
    import json

    if not record.is_file():
        return []
    stamps: dict[str, int] = json.loads(record.read_text())
    stale = [p for p, ns in stamps.items() if Path(p).exists() and Path(p).stat().st_mtime_ns != ns]
    if not stale:
        return []
    result = subprocess.run(
        ["dvc", "status", "--json"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or result.stdout.strip() not in {"{}", ""}:
        log.warning("DVC-tracked data differs from its records; timestamps left as they are")
        return []
    for path in stale:
        ns = stamps[path]
        os.utime(path, ns=(ns, ns), follow_symlinks=False)
    log.info("restored the recorded timestamps of %d DVC-restored outputs", len(stale))
    return stale
