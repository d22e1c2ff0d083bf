"""Manifests: one Parquet table per dataset / shard, one row per item, with its status."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from talking_heads.utils.atomic import atomic_path

MANIFEST_COLUMNS: tuple[str, ...] = (
    "clip_id",
    "speaker",
    "split",
    "kind",
    "source",
    "path",
    "num_frames",
    "fps",
    "width",
    "height",
    "duration_s",
    "audio_rate",
    "size_bytes",
    "sha256",
    "status",
    "reason",
)
STATUSES = ("ok", "skipped", "failed")


def sha256_file(path: Path | str, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def normalise_manifest(df: pd.DataFrame) -> pd.DataFrame:
    """Add missing standard columns (as NA), order them first, and check statuses."""
    df = df.copy()
    for column in MANIFEST_COLUMNS:
        if column not in df.columns:
            df[column] = pd.NA
    bad = set(df["status"].dropna()) - set(STATUSES)
    if bad:
        raise ValueError(f"unknown manifest status values: {sorted(bad)}")
    df["reason"] = df["reason"].fillna("").astype(str)
    extra = [c for c in df.columns if c not in MANIFEST_COLUMNS]
    return df[list(MANIFEST_COLUMNS) + extra].reset_index(drop=True)


def write_manifest(df: pd.DataFrame, path: Path | str) -> Path:
    """Write a manifest as Parquet atomically."""
    df = normalise_manifest(df)
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)


def read_manifest(path: Path | str) -> pd.DataFrame:
    """Read one manifest, or concatenate several when given a directory of ``*.parquet``."""
    path = Path(path)
    if path.is_dir():
        parts = sorted(path.rglob("*.parquet"))
        if not parts:
            raise FileNotFoundError(f"{path}: no manifest parquet files")
        return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    return pd.read_parquet(path)


def merge_shard_manifests(
    shard_dirs: list[Path], out: Path, *, summary_path: Path | None = None
) -> dict:
    """Concatenate shard manifests (adding a ``shard`` column) and summarise by status/reason."""
    from talking_heads.utils.atomic import atomic_write_json

    frames = []
    for shard in shard_dirs:
        df = read_manifest(Path(shard) / "manifest.parquet")
        df["shard"] = Path(shard).name
        frames.append(df)
    merged = normalise_manifest(pd.concat(frames, ignore_index=True))
    write_manifest(merged, out)
    summary = {
        "items": len(merged),
        "by_status": {k: int(v) for k, v in merged["status"].value_counts().items()},
        "by_reason": {
            k: int(v)
            for k, v in merged.loc[merged["status"] != "ok", "reason"].value_counts().items()
        },
        "shards": [Path(s).name for s in shard_dirs],
        **_throughput(shard_dirs),
    }
    if "notes" in merged.columns:
        notes = merged.loc[merged["status"] == "ok", "notes"].fillna("").astype(str)
        counts = pd.Series([n for text in notes for n in text.split("; ") if n]).value_counts()
        summary["ok_with_notes"] = {k: int(v) for k, v in counts.items()}
    if summary_path is not None:
        atomic_write_json(summary_path, summary)
    return summary


def _throughput(shard_dirs: list[Path]) -> dict:
    """Totals over the shards' ``summary.json`` files: recipe, frames, time and rates."""
    import json

    summaries = []
    for shard in shard_dirs:
        path = Path(shard) / "summary.json"
        if path.is_file():
            summaries.append(json.loads(path.read_text()))
    if not summaries:
        return {}
    frames = sum(int(s.get("frames_decoded", 0)) for s in summaries)
    items = sum(int(s.get("items", 0)) for s in summaries)
    busy = sum(float(s.get("elapsed_s", 0.0)) for s in summaries)
    return {
        "recipe": summaries[0].get("recipe"),
        "params": summaries[0].get("params"),
        "frames_decoded": frames,
        "frames_written": sum(int(s.get("frames_written", 0)) for s in summaries),
        "shard_seconds": round(busy, 3),
        "clips_per_shard_second": round(items / busy, 3) if busy > 0 else None,
        "frames_per_shard_second": round(frames / busy, 1) if busy > 0 else None,
    }
