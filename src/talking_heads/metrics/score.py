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

from talking_heads.metrics.base import METRICS, BaseMetric, Metric, SetMetric, VideoMetric
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
    frames = np.ascontiguousarray(frames)
    if not frames.flags.writeable:  # decoded buffers may be read-only; torch wants to own them
        frames = frames.copy()
    batch = torch.from_numpy(frames).to(device)
    return batch.permute(0, 3, 1, 2).to(dtype) / 255.0


def _resize_method(native: tuple[int, ...], size: tuple[int, ...]) -> str:
    if native[0] >= size[0] and native[1] >= size[1]:
        return "area (torch adaptive average pool)"
    return "bilinear, antialias=True (upsampling)"


def _resize(frames: Tensor, size: tuple[int, ...]) -> tuple[Tensor, str]:
    method = _resize_method(tuple(frames.shape[-2:]), size)
    if method.startswith("area"):
        return F.interpolate(frames, size=size, mode="area"), method
    resized = F.interpolate(frames, size=size, mode="bilinear", align_corners=False, antialias=True)
    return resized.clamp(0.0, 1.0), method


def _fit(frames: Tensor, size: tuple[int, ...]) -> Tensor:
    """``frames`` at ``size`` (unchanged when already there)."""
    return frames if tuple(frames.shape[-2:]) == tuple(size) else _resize(frames, size)[0]


AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg")


def _build(metrics: Sequence[str | BaseMetric], device: torch.device) -> dict[str, BaseMetric]:
    built: dict[str, BaseMetric] = {}
    for item in metrics:
        metric = METRICS.get(item)().to(device) if isinstance(item, str) else item.to(device)
        name = item if isinstance(item, str) else (metric.name or type(metric).__name__)
        if name in built:
            raise ValueError(f"metric {name!r} requested twice")
        if isinstance(metric, Metric) and len(metric.output_names()) != 1:
            raise TypeError(f"per-frame metric {name!r} must have exactly one output")
        built[name] = metric
    if not built:
        raise ValueError("no metrics requested")
    outputs = [out for name, m in built.items() for out in _outputs(name, m)]
    clashing = sorted({out for out in outputs if outputs.count(out) > 1})
    if clashing:
        raise ValueError(f"metric outputs {clashing} are produced twice")
    return built


def _outputs(name: str, metric: BaseMetric) -> tuple[str, ...]:
    return metric.outputs or (name,)


def _per_stem(
    path: Path | str | Sequence[Path | str] | None,
    stems: Sequence[str],
    what: str,
    suffixes: Sequence[str],
) -> dict[str, Path]:
    """``stem -> file``: one file for every stem, or ``<dir>/<stem><suffix>`` per stem from
    one directory or the first of several that holds it."""
    if path is None:
        return {}
    paths = [Path(p) for p in path] if isinstance(path, (list, tuple)) else [Path(path)]  # type: ignore[arg-type]
    if len(paths) == 1 and paths[0].is_file():
        return dict.fromkeys(stems, paths[0])
    for folder in paths:
        if not folder.is_dir():
            raise FileNotFoundError(f"{what} {folder}: no such directory")
    found: dict[str, Path] = {}
    for stem in stems:
        candidates = (folder / f"{stem}{suffix}" for folder in paths for suffix in suffixes)
        match = next((c for c in candidates if c.is_file()), None)
        if match is None:
            where = ", ".join(str(f) for f in paths)
            raise ScoreInputError(
                f"no {what} for {stem!r} in {where} (looked for {stem}{{{','.join(suffixes)}}})"
            )
        found[stem] = match
    return found


def _mean(values: Tensor) -> float:
    """Mean over the finite-or-infinite values, leaving NaN (skipped) out."""
    kept = values[~torch.isnan(values)]
    return float(kept.mean()) if kept.numel() else math.nan


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
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if stride < 1 or (max_frames is not None and max_frames < 1):
        raise ValueError(f"stride and max_frames must be >= 1, got {stride}, {max_frames}")
    if aggregation not in ("frames", "videos"):
        raise ValueError(f"aggregation must be 'frames' or 'videos', got {aggregation!r}")
    device = torch.device(device)
    extra = dict(inputs or {})
    built = _build(metrics, device)
    provided = set(PROVIDED_INPUTS) | set(extra) | {"source"}
    if audio is not None:
        provided.add("audio_path")
    for name, metric in built.items():
        missing = set(metric.inputs) - provided
        if missing:
            hint = " (give audio=...)" if "audio_path" in missing else ""
            raise ValueError(f"metric {name!r} needs input(s) {sorted(missing)}{hint}")
        if metric.needs_reference and reference is None:
            raise ValueError(f"metric {name!r} compares against references; give reference=...")
    if reference is None:
        found, _ = discover_videos(generated)
        pairs: list[tuple[str, Path, Path | None]] = [
            (s, p, None) for s, p in sorted(found.items())
        ]
    else:
        pairs = list(pair_videos(generated, reference))
    stems = [stem for stem, _, _ in pairs]
    audio_paths = _per_stem(audio, stems, "audio", AUDIO_SUFFIXES)
    needs_source = any("source" in m.inputs for m in built.values())
    per_frame_source = (
        needs_source
        and len(stems) == 1
        and isinstance(source, (str, Path))
        and _is_frames_dir(Path(source))
        and not any((Path(source) / f"{stems[0]}{s}").is_file() for s in (".png", ".jpg"))
    )
    source_paths = (
        {stems[0]: Path(source)}  # type: ignore[arg-type]
        if per_frame_source
        else _per_stem(source if needs_source else None, stems, "source image", (".png", ".jpg"))
    )
    if needs_source and source is None and reference is None:
        raise ValueError("a metric needs the source portrait: give source=... or a reference")

    frame_metrics = {n: m for n, m in built.items() if isinstance(m, Metric)}
    video_metrics = {n: m for n, m in built.items() if isinstance(m, VideoMetric)}
    for metric in built.values():
        if isinstance(metric, SetMetric):
            metric.reset()
    per_frame: dict[str, list[Tensor]] = {name: [] for name in frame_metrics}
    per_video_values: dict[str, list[float]] = {
        out: [] for name, m in video_metrics.items() for out in _outputs(name, m)
    }
    per_video: dict[str, dict[str, Any]] = {}
    resized: dict[str, dict[str, Any]] = {}
    resized_generated: dict[str, dict[str, Any]] = {}
    mismatched: dict[str, dict[str, int]] = {}
    from tqdm import tqdm

    with torch.inference_mode():
        for stem, gen_path, ref_path in pairs:
            gen_frames, fps = _load(gen_path)
            ref_frames, ref_fps = _load(ref_path) if ref_path is not None else (None, None)
            gen_frames = gen_frames[::stride][:max_frames]
            if ref_frames is not None:
                ref_frames = ref_frames[::stride][:max_frames]
            if stride > 1:
                fps, ref_fps = (None if f is None else f / stride for f in (fps, ref_fps))
            num = len(gen_frames) if ref_frames is None else min(len(gen_frames), len(ref_frames))
            if ref_frames is not None and len(gen_frames) != len(ref_frames):
                log.warning(
                    "%s: %d generated vs %d reference frames; scoring the first %d",
                    stem,
                    len(gen_frames),
                    len(ref_frames),
                    num,
                )
                mismatched[stem] = {"generated": len(gen_frames), "reference": len(ref_frames)}
            native = tuple(gen_frames.shape[1:3])
            frame_size = native if size is None else (size, size)
            if frame_size != native:
                resized_generated[stem] = {
                    "from": list(native),
                    "to": list(frame_size),
                    "method": _resize_method(native, frame_size),
                }
            context: dict[str, Any] = {
                "stem": stem,
                "fps": fps if fps is not None else ref_fps,
                "generated_path": gen_path,
                "reference_path": ref_path,
                **extra,
            }
            if stem in audio_paths:
                context["audio_path"] = audio_paths[stem]
            source_frames = None
            if needs_source:
                if per_frame_source:
                    source_frames = read_frames(source_paths[stem])[::stride][:max_frames]
                    if len(source_frames) < num:
                        raise ScoreInputError(
                            f"{source_paths[stem]}: {len(source_frames)} source frames for "
                            f"{num} generated frames of {stem!r}"
                        )
                    context["source"] = _to_tensor(source_frames[:num], device, dtype)
                elif stem in source_paths:
                    context["source"] = _to_tensor(read_frames(source_paths[stem]), device, dtype)
                else:
                    context["source"] = _to_tensor(ref_frames[:1], device, dtype)  # type: ignore[index]
            video_values: dict[str, list[Tensor]] = {name: [] for name in frame_metrics}
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
                gen = _fit(_to_tensor(gen_frames[start:stop], device, dtype), frame_size)
                ref = None
                if ref_frames is not None:
                    ref = _to_tensor(ref_frames[start:stop], device, dtype)
                    if tuple(ref.shape[-2:]) != frame_size:
                        ref, method = _resize(ref, frame_size)
                        resized[stem] = {
                            "from": list(ref_frames.shape[1:3]),
                            "to": list(frame_size),
                            "method": method,
                        }
                context["frame_index"] = torch.arange(start, stop, device=device)
                if source_frames is not None:
                    context["source"] = _to_tensor(source_frames[start:stop], device, dtype)
                for name, metric in built.items():
                    if isinstance(metric, SetMetric):
                        metric.update(gen, ref, **context)
                    elif isinstance(metric, Metric):
                        values = metric(gen, ref, **context)
                        if values.shape != (stop - start,):
                            raise RuntimeError(
                                f"metric {name!r} returned shape {tuple(values.shape)}"
                            )
                        video_values[name].append(values.detach().to("cpu", torch.float64))
                bar.update(stop - start)
            bar.close()
            entry: dict[str, Any] = {}
            for name, chunks in video_values.items():
                values = torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.float64)
                per_frame[name].append(values)
                entry[name] = _mean(values)
            if video_metrics:
                context.pop("frame_index", None)
                if source_frames is not None:
                    context["source"] = _to_tensor(source_frames[:num], device, dtype)
                gen_all = _fit(_to_tensor(gen_frames[:num], device, torch.float32), frame_size)
                ref_all = None
                if ref_frames is not None:
                    ref_all = _fit(_to_tensor(ref_frames[:num], device, torch.float32), frame_size)
                for name, metric in video_metrics.items():
                    result = metric.compute_video(gen_all, ref_all, **context)
                    for out in _outputs(name, metric):
                        value = float(result.get(out, math.nan))
                        per_video_values[out].append(value)
                        entry[out] = value
            entry["num_frames"] = num
            per_video[stem] = entry

    summary: dict[str, float] = {}
    described: dict[str, dict[str, Any]] = {}
    for name, metric in built.items():
        described[name] = {"name": name, **metric.describe()}
        if isinstance(metric, SetMetric):
            result = metric.compute()
            if isinstance(result, Mapping):
                described[name].update({k: v for k, v in result.items() if k not in summary})
                for out in _outputs(name, metric):
                    summary[out] = float(result[out])
            else:
                summary[_outputs(name, metric)[0]] = float(result)
        elif isinstance(metric, VideoMetric):
            for out in _outputs(name, metric):
                values = torch.tensor(per_video_values[out], dtype=torch.float64)
                summary[out] = _mean(values)
                described[name].setdefault("skipped_videos", {})[out] = int(
                    torch.isnan(values).sum()
                )
        else:
            values = torch.cat(per_frame[name]) if per_frame[name] else torch.empty(0)
            if aggregation == "videos":
                summary[name] = _mean(
                    torch.tensor([_mean(v) for v in per_frame[name]], dtype=torch.float64)
                )
            else:
                summary[name] = _mean(values)
            described[name]["nonfinite_frames"] = int(torch.isinf(values).sum())
            described[name]["skipped_frames"] = int(torch.isnan(values).sum())
    reference_label: Any = (
        [str(p) for p in reference]
        if isinstance(reference, (list, tuple))
        else (None if reference is None else str(reference))
    )
    source_label = (
        _label(source)
        if source is not None
        else ("first reference frame" if needs_source else None)
    )
    return {
        "summary": summary,
        "per_video": per_video,
        "metrics": described,
        "inputs": {
            "generated": str(generated),
            "reference": reference_label,
            "audio": _label(audio),
            "source": source_label,
            "pairs": {
                stem: {"generated": str(g), "reference": None if r is None else str(r)}
                for stem, g, r in pairs
            },
            "num_videos": len(per_video),
            "num_frames": sum(v["num_frames"] for v in per_video.values()),
            "frames": "RGB uint8 decoded, scaled to [0, 1], compared at the generated size",
            "aggregation": (
                "summary = mean over all frames of all videos (frame-weighted)"
                if aggregation == "frames"
                else "summary = mean over videos of each video's frame mean"
            )
            + " for per-frame metrics, mean over videos for per-video metrics; per_video = "
            "mean over the video's frames; NaN (unscorable) values left out and counted",
            "frame_selection": {"stride": stride, "max_frames": max_frames},
            "size": None if size is None else [size, size],
            "resized_generated": resized_generated,
            "resized_reference": resized,
            "length_mismatch": mismatched,
            "device": str(device),
            "dtype": str(dtype).removeprefix("torch."),
            "batch_size": batch_size,
        },
    }


def _label(path: Path | str | Sequence[Path | str] | None) -> Any:
    if path is None:
        return None
    return [str(p) for p in path] if isinstance(path, (list, tuple)) else str(path)


def write_score(out: Path | str, result: Mapping[str, Any]) -> Path:
    """Write a :func:`score` result as JSON, atomically (``inf`` is written as ``Infinity``)."""
    return atomic_write_json(out, dict(result))
