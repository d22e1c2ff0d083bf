"""``talking-heads datasets verify``: re-check a downloaded dataset against its records.

Every ok manifest row's file must exist with the recorded size and sha256, and every
downloaded unit that is still on disk (archive parts, media files) must match its published
md5/sha256. Problems are listed one per line and saved to ``<data>/verify.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from talking_heads.datasets.base import AcquireContext, read_index
from talking_heads.datasets.transfer import hash_file, map_bounded
from talking_heads.manifest import read_manifest
from talking_heads.utils.atomic import atomic_write_json


def _check_clip(item: tuple[Path, Any, Any]) -> str | None:
    path, size, sha256 = item
    if not path.exists():
        return "missing"
    if size is not None and not pd.isna(size) and path.stat().st_size != int(size):
        return f"size {path.stat().st_size} != recorded {int(size)}"
    if isinstance(sha256, str) and sha256 and hash_file(path) != sha256:
        return "sha256 differs from the manifest"
    return None


def _check_unit(item: tuple[Path, Any, Any]) -> str | None:
    path, md5, sha256 = item
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if isinstance(expected, str) and expected and hash_file(path, algorithm) != expected:
            return f"{algorithm} differs from the published value"
    return None


def verify_dataset(ctx: AcquireContext) -> dict[str, Any]:
    """Check files against the manifest and the index; a report with ``problems`` and ``text``."""
    if not ctx.manifest_path.exists():
        raise FileNotFoundError(
            f"{ctx.manifest_path}: no manifest; download {ctx.name} first "
            f"(`talking-heads datasets download {ctx.name}`)"
        )
    manifest = read_manifest(ctx.manifest_path)
    ok = manifest[(manifest["status"] == "ok") & manifest["path"].notna()]
    clips = [
        (ctx.data_root / str(row.path), row.size_bytes, row.sha256)
        for row in ok.itertuples(index=False)
    ]
    problems: list[str] = []
    for (path, _, _), outcome in map_bounded(
        _check_clip, clips, jobs=ctx.jobs, desc=f"{ctx.name} clips", progress=ctx.progress
    ):
        if outcome is not None:
            problems.append(f"clip {path}: {outcome}")
    units: list[tuple[Path, Any, Any]] = []
    if ctx.index_path.exists():
        index = read_index(ctx)
        for row in index.itertuples(index=False):
            path = ctx.raw_root / str(row.dest)
            if isinstance(row.dest, str) and row.dest and path.is_file():
                units.append((path, row.md5, row.sha256))
    for (path, _, _), outcome in map_bounded(
        _check_unit, units, jobs=ctx.jobs, desc=f"{ctx.name} units", progress=ctx.progress
    ):
        if outcome is not None:
            problems.append(f"download {path}: {outcome}")
    not_ok = int((manifest["status"] != "ok").sum())
    lines = [
        f"{ctx.name}: {len(clips)} ok clips and {len(units)} downloaded files checked, "
        f"{len(problems)} problem(s); {not_ok} manifest rows were not ok to begin with"
    ]
    lines += [f"  {p}" for p in problems]
    report = {
        "dataset": ctx.name,
        "clips_checked": len(clips),
        "units_checked": len(units),
        "problems": problems,
        "text": "\n".join(lines),
    }
    atomic_write_json(ctx.data_root / "verify.json", report)
    return report
