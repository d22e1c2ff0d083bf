"""The shard runner: which rows a shard holds, the per-item loop that turns every bad input into
a manifest row, the shard's manifest and summary, and the completion check that lets a re-run
skip a finished shard."""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from talking_heads.manifest import MANIFEST_COLUMNS, read_manifest, sha256_file, write_manifest
from talking_heads.preprocess.audio import WAV2LIP_MEL
from talking_heads.utils.atomic import atomic_path, atomic_write_json

from .base import RECIPES, ItemResult, Recipe, UnusableInputError, _first_line
from .presets import resolve_params

log = logging.getLogger(__name__)

PROCESSED_KINDS = ("video", "image")
#: Columns a shard manifest adds to ``MANIFEST_COLUMNS``.
EXTRA_COLUMNS = (
    "input_path",
    "input_sha256",
    "start_frame",
    "end_frame",
    "bbox",
    "audio_path",
    "mel_frames",
    "mfcc_frames",
    "faces",
    "notes",
)


def select_shard(manifest: pd.DataFrame, shard_index: int, num_shards: int) -> pd.DataFrame:
    """Rows of ``kind`` video/image sorted by ``clip_id``; row ``i`` goes to shard ``i % n``."""
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"shard {shard_index} is not in 0..{num_shards - 1}")
    rows = manifest[manifest["kind"].isin(PROCESSED_KINDS)]
    rows = rows.sort_values(["clip_id", "path"], kind="stable").reset_index(drop=True)
    return rows.iloc[shard_index::num_shards].reset_index(drop=True)


def _resolve(path: str, manifest: Path) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else manifest.parent / candidate


def _with_resolved_audio(row: dict[str, Any], manifest: Path) -> dict[str, Any]:
    """The row with its separate ``audio_file`` (relative to the manifest) made a full path."""
    value = row.get("audio_file")
    if isinstance(value, str) and value.strip():
        return {**row, "audio_file": str(_resolve(value, manifest))}
    return row


def _base_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The output row before processing: identity columns from the input, outputs empty."""
    return {
        "clip_id": row["clip_id"],
        "speaker": row.get("speaker"),
        "split": row.get("split"),
        "kind": row["kind"],
        "source": row.get("source"),
        "path": "",
        "num_frames": None,
        "fps": None,
        "width": None,
        "height": None,
        "duration_s": None,
        "audio_rate": None,
        "sha256": "",
        "status": "ok",
        "reason": "",
        "input_path": str(row.get("path") or ""),
        "input_sha256": row.get("sha256") or "",
        "start_frame": None,
        "end_frame": None,
        "bbox": "",
        "audio_path": "",
        "mel_frames": 0,
        "mfcc_frames": 0,
        "faces": None,
        "notes": "",
    }


def _run_item(recipe: Recipe, row: Mapping[str, Any], src: Path, out_dir: Path) -> ItemResult:
    """Run the recipe on one row; never raises (skips and failures become the row status)."""
    base = _base_row(row)
    status = row.get("status") or "ok"
    if status != "ok":
        reason = row.get("reason") or "no reason given"
        return ItemResult({**base, "status": "skipped", "reason": f"input {status}: {reason}"})
    if not src.is_file():
        return ItemResult({**base, "status": "skipped", "reason": f"missing input file {src}"})
    try:
        result = recipe.process(row, src, out_dir)
    except UnusableInputError as skip:
        return ItemResult(
            {**base, "status": "skipped", "reason": str(skip)}, frames_decoded=skip.frames_decoded
        )
    except Exception as error:  # one bad item must not stop the shard
        log.error("%s failed:\n%s", row["clip_id"], traceback.format_exc())
        return ItemResult(
            {
                **base,
                "status": "failed",
                "reason": f"{type(error).__name__}: {_first_line(error)}",
            }
        )
    result.row = {**base, **result.row}
    return result


_INT_COLUMNS = (
    "num_frames",
    "width",
    "height",
    "audio_rate",
    "start_frame",
    "end_frame",
    "mel_frames",
    "mfcc_frames",
    "faces",
)
_FLOAT_COLUMNS = ("fps", "duration_s")


def _typed_manifest(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Shard manifest with fixed dtypes; recipe-specific columns (labels, variants) follow."""
    fixed = [*MANIFEST_COLUMNS, *EXTRA_COLUMNS]
    extra = sorted({k for row in rows for k in row} - set(fixed))
    df = pd.DataFrame(rows, columns=[*fixed, *extra])
    for column in _INT_COLUMNS:
        df[column] = pd.array(pd.to_numeric(df[column]), dtype="Int64")
    for column in _FLOAT_COLUMNS:
        df[column] = pd.array(pd.to_numeric(df[column]), dtype="Float64")
    for column in df.columns:
        if column not in _INT_COLUMNS and column not in _FLOAT_COLUMNS:
            df[column] = df[column].map(lambda v: "" if v is None or v is pd.NA else str(v))
    return df


def load_features(shard_dir: Path | str, clip_id: str) -> dict[str, np.ndarray]:
    """The arrays of ``clip_id`` in a shard's ``features.npz`` (``mel``, ``mfcc``, ``boxes``,
    ``landmarks``; those the recipe produced)."""
    with np.load(Path(shard_dir) / "features.npz") as features:
        prefix = f"/{clip_id}"
        return {k[: -len(prefix)]: features[k] for k in features.files if k.endswith(prefix)}


@dataclass
class _Progress:
    frames: int = 0
    written: int = 0
    by_status: Counter = field(default_factory=Counter)


def _complete(out_dir: Path, recipe: str, params: dict[str, Any], manifest_sha: str) -> bool:
    """Whether ``out_dir`` already holds this shard for the same recipe, params and input."""
    summary_path = out_dir / "summary.json"
    if not (summary_path.is_file() and (out_dir / "manifest.parquet").is_file()):
        return False
    try:
        summary = json.loads(summary_path.read_text())
    except ValueError:
        return False
    same_params = json.loads(json.dumps(params)) == summary.get("params")
    return (
        summary.get("recipe") == recipe
        and same_params
        and summary.get("manifest_sha256") == manifest_sha
    )


def run_shard(
    manifest: Path | str,
    recipe: str,
    params: Mapping[str, Any] | None,
    shard_index: int,
    num_shards: int,
    out_dir: Path | str,
    *,
    force: bool = False,
    preset: str | None = None,
) -> Path:
    """Run ``recipe`` on shard ``shard_index`` of ``num_shards`` of ``manifest`` into ``out_dir``.

    ``params`` override the recipe's defaults and, with ``preset``, the preset's parameters
    for the recipe (``configs/recipe/<preset>.yaml``).

    Bad items never raise: they get status ``skipped`` (unusable input, with the reason) or
    ``failed`` (an unexpected error). ``out_dir`` is built in a temporary directory beside it
    and renamed into place at the end, so an interrupted shard leaves nothing behind and a
    re-run replaces it whole. A shard already complete for the same recipe, parameters and
    input manifest is left as it is unless ``force``. Returns ``out_dir``.
    """
    from tqdm import tqdm

    manifest = Path(manifest)
    out_dir = Path(out_dir)
    if not manifest.is_file():
        raise FileNotFoundError(
            f"manifest {manifest} not found; build it first with `talking-heads datasets "
            "prepare`, `datasets download` or `datasets index`"
        )
    recipe_obj = RECIPES.get(recipe)(resolve_params(recipe, params, preset))
    manifest_sha = sha256_file(manifest)
    if not force and _complete(out_dir, recipe, recipe_obj.params.to_dict(), manifest_sha):
        log.info(
            "%s shard %d/%d is complete in %s: skipped", recipe, shard_index, num_shards, out_dir
        )
        return out_dir
    rows = select_shard(read_manifest(manifest), shard_index, num_shards)
    recipe_obj.prepare()
    log.info(
        "%s shard %d/%d: %d items from %s", recipe, shard_index, num_shards, len(rows), manifest
    )
    started = time.perf_counter()
    progress = _Progress()
    out_rows: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    with atomic_path(out_dir) as tmp:
        (tmp / "clips").mkdir(parents=True)
        (tmp / "audio").mkdir()
        bar = tqdm(
            rows.to_dict("records"),
            desc=f"{recipe} shard {shard_index}/{num_shards}",
            unit="clip",
            file=sys.stderr,
            dynamic_ncols=True,
        )
        for row in bar:
            row = _with_resolved_audio(row, manifest)
            src = _resolve(str(row["path"]), manifest)
            result = _run_item(recipe_obj, row, src, tmp)
            out_rows.append(result.row)
            for key, value in result.arrays.items():
                arrays[f"{key}/{row['clip_id']}"] = value
            progress.frames += result.frames_decoded
            progress.written += result.frames_written
            progress.by_status[result.row["status"]] += 1
            elapsed = max(time.perf_counter() - started, 1e-9)
            bar.set_postfix(
                clips_per_s=f"{len(out_rows) / elapsed:.2f}",
                frames_per_s=f"{progress.frames / elapsed:.1f}",
                **dict(progress.by_status),
            )
        bar.close()
        with open(tmp / "features.npz", "wb") as handle:
            np.savez(handle, **arrays)
        table = _typed_manifest(out_rows)
        write_manifest(table, tmp / "manifest.parquet")
        elapsed = time.perf_counter() - started
        summary = {
            "recipe": recipe,
            "preset": preset,
            "params": recipe_obj.params.to_dict(),
            "mel": WAV2LIP_MEL.to_dict(),
            "manifest": str(manifest),
            "manifest_sha256": manifest_sha,
            "shard_index": shard_index,
            "num_shards": num_shards,
            "items": len(table),
            "by_status": {k: int(v) for k, v in table["status"].value_counts().items()},
            "by_reason": {
                k: int(v)
                for k, v in table.loc[table["status"] != "ok", "reason"].value_counts().items()
            },
            "frames_decoded": progress.frames,
            "frames_written": progress.written,
            "elapsed_s": round(elapsed, 3),
            "clips_per_s": round(len(table) / elapsed, 3) if elapsed > 0 else None,
            "frames_per_s": round(progress.frames / elapsed, 1) if elapsed > 0 else None,
        }
        atomic_write_json(tmp / "summary.json", summary)
    log.info(
        "%s shard %d/%d done in %.1f s: %s",
        recipe,
        shard_index,
        num_shards,
        elapsed,
        summary["by_status"],
    )
    return out_dir
