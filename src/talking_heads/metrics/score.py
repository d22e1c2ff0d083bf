"""Score generated videos against references with registered metrics.

``score`` pairs generated and reference videos (:mod:`~talking_heads.metrics.inputs`), runs
every metric on batched frames under ``torch.inference_mode``
(:mod:`~talking_heads.metrics.batching`) and returns a JSON-ready dict
(:mod:`~talking_heads.metrics.aggregate` makes the means)::

    {"summary": {metric: mean over all frames of all videos},
     "per_video": {stem: {metric: mean over the video's frames, "num_frames": n}},
     "metrics": {metric: {"reference": ..., "higher_is_better": ..., ...}},
     "inputs": {paths, pairing, device, resizing, ...}}

Either side may be a video file, a directory of frames (one video), a directory of videos
(video files and/or sub-directories of frames, matched by file stem), or, for the
reference, a list of such directories pooled together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from talking_heads.metrics.aggregate import ScoreTotals
from talking_heads.metrics.base import BaseMetric
from talking_heads.metrics.batching import (
    FrameNotes,
    FrameScorer,
    FrameSelection,
    attach_sources,
    build_metrics,
    load_pair,
)
from talking_heads.metrics.inputs import (
    MissingInputError,
    ScoreInputError,
    ScoreInputs,
    discover_videos,
    gather_inputs,
    pair_videos,
    path_label,
)
from talking_heads.utils.atomic import atomic_write_json

__all__ = [
    "MissingInputError",
    "ScoreInputError",
    "discover_videos",
    "pair_videos",
    "score",
    "write_score",
]

#: inputs ``score`` passes to every metric call
PROVIDED_INPUTS = frozenset({"stem", "fps", "frame_index", "generated_path", "reference_path"})


def score(
    metrics: Sequence[str | BaseMetric],
    generated: Path | str,
    reference: Path | str | Sequence[Path | str] | None = None,
    *,
    audio: Path | str | Sequence[Path | str] | None = None,
    source: Path | str | Sequence[Path | str] | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 32,
    dtype: torch.dtype = torch.float64,
    inputs: Mapping[str, Any] | None = None,
    size: int | None = None,
    stride: int = 1,
    max_frames: int | None = None,
    aggregation: str = "frames",
    progress: bool = True,
) -> dict[str, Any]:
    """Score ``generated`` (against ``reference``) with ``metrics`` (names or instances).

    ``size`` (a frame side in pixels) makes every frame square at that size before scoring
    (generated and reference alike; resizing recorded); ``stride`` / ``max_frames`` select
    every ``stride``-th frame up to ``max_frames`` of each video; ``aggregation`` is
    ``"frames"`` (summary = mean over all frames of all videos) or ``"videos"`` (mean of the
    per-video means). A :mod:`~talking_heads.metrics.protocols` scoring protocol sets all four.

    Frames are compared at the generated resolution: a reference of another size is resized
    (area averaging when shrinking, anti-aliased bilinear otherwise) and that is recorded
    under ``inputs.resized_reference``. If the two videos differ in length the common first
    frames are scored and ``inputs.length_mismatch`` records both lengths. Without a
    reference only no-reference metrics may be asked for.

    ``audio`` and ``source`` are a file used for every video or a directory holding
    ``<stem>.wav`` / ``<stem>.png`` per video; they reach the metrics as ``audio_path`` and
    ``source`` (``(1, 3, H, W)``). For a single generated video, ``source`` may also be a
    directory of frames, one source per generated frame (the pairs protocol's source
    frames); metrics then get ``source`` batched like the generated frames. A metric
    needing ``source`` with none given gets the reference video's first frame (the
    reconstruction protocol's source), recorded under ``inputs.source``.
    ``inputs`` are extra keyword inputs passed to every metric call.

    ``summary`` holds, per output, the mean over all frames of all videos (frame-weighted)
    for per-frame metrics, the mean over videos for per-video metrics, and the set value for
    set metrics. ``NaN`` values (a frame or video a metric could not score) are left out of
    every mean and counted in ``metrics.<name>.skipped_frames`` / ``skipped_videos``;
    infinite values (PSNR of identical frames) are kept and counted in ``nonfinite_frames``.
    Paths that do not exist or cannot be paired are a :class:`ScoreInputError`.
    """
    _check_settings(batch_size, stride, max_frames, aggregation)
    device = torch.device(device)
    extra = dict(inputs or {})
    built = build_metrics(metrics, device)
    _check_metric_inputs(built, extra, audio is not None, reference is not None)
    needs_source = any("source" in m.inputs for m in built.values())
    found = gather_inputs(generated, reference, audio, source, needs_source=needs_source)
    selection = FrameSelection(stride, max_frames)
    scorer = FrameScorer(built, device, dtype, batch_size, progress, extra)
    totals = ScoreTotals(built, aggregation)  # type: ignore[arg-type]
    notes = FrameNotes()
    with torch.inference_mode():
        for stem, gen_path, ref_path in found.pairs:
            video = load_pair(stem, gen_path, ref_path, selection, size)
            attach_sources(video, found, selection)
            totals.add_video(stem, video.num, *scorer.score_video(video))
            notes.add(video)
    summary, described = totals.summarise()
    return {
        "summary": summary,
        "per_video": totals.per_video,
        "metrics": described,
        "inputs": _inputs_record(
            found,
            totals,
            notes,
            paths={
                "generated": generated,
                "reference": reference,
                "audio": audio,
                "source": source,
            },
            selection=selection,
            size=size,
            aggregation=aggregation,
            device=device,
            dtype=dtype,
            batch_size=batch_size,
        ),
    }


def _check_settings(batch_size: int, stride: int, max_frames: int | None, aggregation: str) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if stride < 1 or (max_frames is not None and max_frames < 1):
        raise ValueError(f"stride and max_frames must be >= 1, got {stride}, {max_frames}")
    if aggregation not in ("frames", "videos"):
        raise ValueError(f"aggregation must be 'frames' or 'videos', got {aggregation!r}")


def _check_metric_inputs(
    built: Mapping[str, BaseMetric], extra: Mapping[str, Any], audio: bool, reference: bool
) -> None:
    """Every metric gets the inputs it declares, and a reference when it compares."""
    provided = set(PROVIDED_INPUTS) | set(extra) | {"source"}
    if audio:
        provided.add("audio_path")
    for name, metric in built.items():
        missing = set(metric.inputs) - provided
        if missing:
            hint = " (give audio=...)" if "audio_path" in missing else ""
            raise ValueError(f"metric {name!r} needs input(s) {sorted(missing)}{hint}")
        if metric.needs_reference and not reference:
            raise ValueError(f"metric {name!r} compares against references; give reference=...")


def _inputs_record(
    found: ScoreInputs,
    totals: ScoreTotals,
    notes: FrameNotes,
    *,
    paths: Mapping[str, Any],
    selection: FrameSelection,
    size: int | None,
    aggregation: str,
    device: torch.device,
    dtype: torch.dtype,
    batch_size: int,
) -> dict[str, Any]:
    """The result's ``inputs``: what was scored, how it was paired, compared and averaged."""
    source = path_label(paths["source"])
    if paths["source"] is None and found.needs_source:
        source = "first reference frame"
    averaged = (
        "summary = mean over all frames of all videos (frame-weighted)"
        if aggregation == "frames"
        else "summary = mean over videos of each video's frame mean"
    )
    return {
        "generated": str(paths["generated"]),
        "reference": path_label(paths["reference"]),
        "audio": path_label(paths["audio"]),
        "source": source,
        "pairs": {
            stem: {"generated": str(g), "reference": None if r is None else str(r)}
            for stem, g, r in found.pairs
        },
        "num_videos": len(totals.per_video),
        "num_frames": totals.num_frames,
        "frames": "RGB uint8 decoded, scaled to [0, 1], compared at the generated size",
        "aggregation": averaged
        + " for per-frame metrics, mean over videos for per-video metrics; per_video = "
        "mean over the video's frames; NaN (unscorable) values left out and counted",
        "frame_selection": {"stride": selection.stride, "max_frames": selection.max_frames},
        "size": None if size is None else [size, size],
        "resized_generated": notes.resized_generated,
        "resized_reference": notes.resized_reference,
        "length_mismatch": notes.length_mismatch,
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "batch_size": batch_size,
    }


def write_score(out: Path | str, result: Mapping[str, Any]) -> Path:
    """Write a :func:`score` result as JSON, atomically (``inf`` is written as ``Infinity``)."""
    return atomic_write_json(out, dict(result))
