"""Score generated videos against references with registered metrics.

``score`` pairs generated and reference videos, runs every metric on batched frames under
``torch.inference_mode`` and returns a JSON-ready dict::

    {"summary": {metric: mean over all frames of all videos},
     "per_video": {stem: {metric: mean over the video's frames, "num_frames": n}},
     "metrics": {metric: {"reference": ..., "higher_is_better": ..., ...}},
     "inputs": {paths, pairing, device, resizing, ...}}

Either side may be a video file, a directory of frames (one video), a directory of videos
(video files and/or sub-directories of frames, matched by file stem), or, for the
reference, a list of such directories pooled together.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from talking_heads.metrics.base import METRICS, BaseMetric, Metric, SetMetric
from talking_heads.utils.atomic import atomic_write_json
from talking_heads.utils.media import is_image, is_video, read_frames, read_video

log = logging.getLogger(__name__)

__all__ = ["ScoreInputError", "discover_videos", "pair_videos", "score", "write_score"]

#: inputs ``score`` passes to every metric call
PROVIDED_INPUTS = frozenset({"stem", "fps", "frame_index", "generated_path", "reference_path"})


class ScoreInputError(ValueError):
    """The generated and reference inputs cannot be paired."""


def _is_frames_dir(path: Path) -> bool:
    return path.is_dir() and any(is_image(p) for p in path.iterdir())


def discover_videos(path: Path | str | Sequence[Path | str]) -> tuple[dict[str, Path], bool]:
    """Map stem -> video (file or frames directory) under ``path``; and whether it is a set.

    A video file or an image is one video; a directory holding videos or frame
    sub-directories is a set of videos (loose images beside them, e.g. source stills, are
    ignored); a directory holding only images is one video of frames named after the
    directory. A list of paths pools their sets; a stem may occur only once.
    """
    if isinstance(path, (list, tuple)):
        if not path:
            raise ScoreInputError("empty list of inputs")
        if len(path) == 1:
            return discover_videos(path[0])
        pooled: dict[str, Path] = {}
        for item in path:
            found, _ = discover_videos(item)
            for stem, video in found.items():
                if stem in pooled:
                    raise ScoreInputError(
                        f"stem {stem!r} occurs in both {pooled[stem]} and {video}"
                    )
                pooled[stem] = video
        return pooled, True
    path = Path(path)  # type: ignore[arg-type]
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.is_file():
        if not (is_video(path) or is_image(path)):
            raise ScoreInputError(f"{path}: neither a video nor an image")
        return {path.stem: path}, False
    children = sorted(path.iterdir())
    videos: dict[str, Path] = {}
    for child in children:
        if (child.is_file() and is_video(child)) or _is_frames_dir(child):
            stem = child.stem if child.is_file() else child.name
            if stem in videos:
                raise ScoreInputError(f"{path}: two videos named {stem!r}: {videos[stem]}, {child}")
            videos[stem] = child
    if videos:
        return videos, True
    if any(is_image(child) for child in children):
        return {path.name: path}, False
    raise ScoreInputError(f"{path}: holds no videos, frame directories or frames")


def pair_videos(
    generated: Path | str, reference: Path | str | Sequence[Path | str]
) -> list[tuple[str, Path, Path]]:
    """``(stem, generated, reference)`` triples, sorted by stem.

    Two single videos are paired whatever their names. Otherwise every generated stem must
    exist on the reference side; a set of generated videos cannot be scored against one
    reference video.
    """
    gen, gen_is_set = discover_videos(generated)
    ref, ref_is_set = discover_videos(reference)
    if not ref_is_set:
        if gen_is_set and len(gen) > 1:
            raise ScoreInputError(
                f"{generated} holds {len(gen)} videos but the reference {reference} is a "
                "single video; give a directory of reference videos named like the generated ones"
            )
        (stem, gen_path), (ref_path,) = next(iter(gen.items())), ref.values()
        return [(stem, gen_path, ref_path)]
    missing = sorted(set(gen) - set(ref))
    if missing:
        shown = ", ".join(missing[:10])
        if len(missing) > 10:
            shown += f", ... ({len(missing)} in all)"
        known = ", ".join(sorted(ref)[:10]) + (", ..." if len(ref) > 10 else "")
        raise ScoreInputError(
            f"no reference video for generated stem(s) {shown}; the reference {reference} "
            f"holds {len(ref)} video(s): {known}"
        )
    return [(stem, gen[stem], ref[stem]) for stem in sorted(gen)]


def _load(path: Path) -> tuple[np.ndarray, float | None]:
    if path.is_file() and is_video(path):
        return read_video(path)
    return read_frames(path), None


def _to_tensor(frames: np.ndarray, device: torch.device, dtype: torch.dtype) -> Tensor:
    batch = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    return batch.permute(0, 3, 1, 2).to(dtype) / 255.0


def _resize(frames: Tensor, size: tuple[int, int]) -> tuple[Tensor, str]:
    height, width = frames.shape[-2:]
    if height >= size[0] and width >= size[1]:
        return F.interpolate(frames, size=size, mode="area"), "area (torch adaptive average pool)"
    resized = F.interpolate(frames, size=size, mode="bilinear", align_corners=False, antialias=True)
    return resized.clamp(0.0, 1.0), "bilinear, antialias=True (upsampling)"


def _build(metrics: Sequence[str | BaseMetric], device: torch.device) -> dict[str, BaseMetric]:
    built: dict[str, BaseMetric] = {}
    for item in metrics:
        metric = METRICS.get(item)().to(device) if isinstance(item, str) else item.to(device)
        name = item if isinstance(item, str) else (metric.name or type(metric).__name__)
        if name in built:
            raise ValueError(f"metric {name!r} requested twice")
        built[name] = metric
    if not built:
        raise ValueError("no metrics requested")
    return built


def _mean(values: Tensor) -> float:
    return float(values.mean()) if values.numel() else math.nan


def score(
    metrics: Sequence[str | BaseMetric],
    generated: Path | str,
    reference: Path | str | Sequence[Path | str],
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 32,
    dtype: torch.dtype = torch.float64,
    inputs: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score ``generated`` against ``reference`` with ``metrics`` (names or instances).

    Frames are compared at the generated resolution: a reference of another size is resized
    (area averaging when shrinking, anti-aliased bilinear otherwise) and that is recorded
    under ``inputs.resized_reference``. If the two videos differ in length the common first
    frames are scored and ``inputs.length_mismatch`` records both lengths. ``inputs`` are
    extra keyword inputs passed to every metric call (e.g. for metrics needing audio).
    ``summary`` holds the mean over all frames of all videos (frame-weighted); per-frame
    values that are not finite (PSNR of identical frames is +inf) are counted in
    ``metrics.<name>.nonfinite_frames``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device)
    extra = dict(inputs or {})
    built = _build(metrics, device)
    for name, metric in built.items():
        missing = set(metric.inputs) - PROVIDED_INPUTS - set(extra)
        if missing:
            raise ValueError(f"metric {name!r} needs input(s) {sorted(missing)}; pass inputs=...")
    pairs = pair_videos(generated, reference)

    per_frame = {name: [] for name, m in built.items() if isinstance(m, Metric)}
    for metric in built.values():
        if isinstance(metric, SetMetric):
            metric.reset()
    per_video: dict[str, dict[str, Any]] = {}
    resized: dict[str, dict[str, Any]] = {}
    mismatched: dict[str, dict[str, int]] = {}
    from tqdm import tqdm

    with torch.inference_mode():
        for stem, gen_path, ref_path in pairs:
            gen_frames, fps = _load(gen_path)
            ref_frames, ref_fps = _load(ref_path)
            num = min(len(gen_frames), len(ref_frames))
            if len(gen_frames) != len(ref_frames):
                log.warning(
                    "%s: %d generated vs %d reference frames; scoring the first %d",
                    stem,
                    len(gen_frames),
                    len(ref_frames),
                    num,
                )
                mismatched[stem] = {"generated": len(gen_frames), "reference": len(ref_frames)}
            size = tuple(gen_frames.shape[1:3])
            video_values = {name: [] for name in per_frame}
            bar = tqdm(
                total=num,
                desc=stem,
                unit="frame",
                file=sys.stderr,
                disable=not progress,
                mininterval=1.0,
            )
            for start in range(0, num, batch_size):
                stop = min(start + batch_size, num)
                gen = _to_tensor(gen_frames[start:stop], device, dtype)
                ref = _to_tensor(ref_frames[start:stop], device, dtype)
                if tuple(ref.shape[-2:]) != size:
                    ref, method = _resize(ref, size)  # type: ignore[arg-type]
                    resized[stem] = {
                        "from": list(ref_frames.shape[1:3]),
                        "to": list(size),
                        "method": method,
                    }
                context = {
                    "stem": stem,
                    "fps": fps if fps is not None else ref_fps,
                    "frame_index": torch.arange(start, stop, device=device),
                    "generated_path": gen_path,
                    "reference_path": ref_path,
                    **extra,
                }
                for name, metric in built.items():
                    if isinstance(metric, SetMetric):
                        metric.update(gen, ref, **context)
                        continue
                    values = metric(gen, ref, **context)  # type: ignore[operator]
                    if values.shape != (stop - start,):
                        raise RuntimeError(f"metric {name!r} returned shape {tuple(values.shape)}")
                    video_values[name].append(values.detach().to("cpu", torch.float64))
                bar.update(stop - start)
            bar.close()
            entry: dict[str, Any] = {}
            for name, chunks in video_values.items():
                values = torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.float64)
                per_frame[name].append(values)
                entry[name] = _mean(values)
            entry["num_frames"] = num
            per_video[stem] = entry

    summary: dict[str, float] = {}
    described: dict[str, dict[str, Any]] = {}
    for name, metric in built.items():
        described[name] = {"name": name, **metric.describe()}
        if isinstance(metric, SetMetric):
            summary[name] = float(metric.compute())
            continue
        values = torch.cat(per_frame[name]) if per_frame[name] else torch.empty(0)
        summary[name] = _mean(values)
        described[name]["nonfinite_frames"] = int((~torch.isfinite(values)).sum())
    reference_label: Any = (
        [str(p) for p in reference] if isinstance(reference, (list, tuple)) else str(reference)
    )
    return {
        "summary": summary,
        "per_video": per_video,
        "metrics": described,
        "inputs": {
            "generated": str(generated),
            "reference": reference_label,
            "pairs": {stem: {"generated": str(g), "reference": str(r)} for stem, g, r in pairs},
            "num_videos": len(per_video),
            "num_frames": sum(v["num_frames"] for v in per_video.values()),
            "frames": "RGB uint8 decoded, scaled to [0, 1], compared at the generated size",
            "aggregation": "summary = mean over all frames of all videos (frame-weighted); "
            "per_video = mean over the video's frames",
            "resized_reference": resized,
            "length_mismatch": mismatched,
            "device": str(device),
            "dtype": str(dtype).removeprefix("torch."),
            "batch_size": batch_size,
        },
    }


def write_score(out: Path | str, result: Mapping[str, Any]) -> Path:
    """Write a :func:`score` result as JSON, atomically (``inf`` is written as ``Infinity``)."""
    return atomic_write_json(out, dict(result))
