"""Frames as the metrics see them: selected, resized, batched, and scored per video.

:func:`load_pair` reads one generated/reference pair, keeps every ``stride``-th frame up to
``max_frames`` (:class:`FrameSelection`) and the common first frames when the lengths
differ; :class:`FrameScorer` feeds it to the metrics in batches of ``[0, 1]`` tensors
(per-frame and set metrics) and then whole (per-video metrics). Frames are compared at the
generated size, or at ``size`` x ``size`` when given: area averaging when shrinking,
anti-aliased bilinear otherwise, and every resize is recorded.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from talking_heads.metrics.base import METRICS, BaseMetric, Metric, SetMetric, VideoMetric
from talking_heads.metrics.inputs import ScoreInputError, ScoreInputs, load_video
from talking_heads.utils.media import read_frames

log = logging.getLogger(__name__)

__all__ = [
    "FrameNotes",
    "FrameScorer",
    "FrameSelection",
    "VideoFrames",
    "attach_sources",
    "build_metrics",
    "fit",
    "load_pair",
    "metric_outputs",
    "resize",
    "resize_method",
    "to_tensor",
]


def to_tensor(frames: np.ndarray, device: torch.device, dtype: torch.dtype) -> Tensor:
    """``(T, H, W, 3)`` uint8 as ``(T, 3, H, W)`` in ``[0, 1]`` on ``device``."""
    frames = np.ascontiguousarray(frames)
    if not frames.flags.writeable:  # decoded buffers may be read-only; torch wants to own them
        frames = frames.copy()
    batch = torch.from_numpy(frames).to(device)
    return batch.permute(0, 3, 1, 2).to(dtype) / 255.0


def resize_method(native: tuple[int, ...], size: tuple[int, ...]) -> str:
    """How frames of ``native`` size are brought to ``size`` (as recorded)."""
    if native[0] >= size[0] and native[1] >= size[1]:
        return "area (torch adaptive average pool)"
    return "bilinear, antialias=True (upsampling)"


def resize(frames: Tensor, size: tuple[int, ...]) -> tuple[Tensor, str]:
    """``frames`` at ``size`` and the method used."""
    method = resize_method(tuple(frames.shape[-2:]), size)
    if method.startswith("area"):
        return F.interpolate(frames, size=size, mode="area"), method
    resized = F.interpolate(frames, size=size, mode="bilinear", align_corners=False, antialias=True)
    return resized.clamp(0.0, 1.0), method


def fit(frames: Tensor, size: tuple[int, ...]) -> Tensor:
    """``frames`` at ``size`` (unchanged when already there)."""
    return frames if tuple(frames.shape[-2:]) == tuple(size) else resize(frames, size)[0]


def metric_outputs(name: str, metric: BaseMetric) -> tuple[str, ...]:
    """The result keys of ``metric`` registered or given as ``name``."""
    return metric.outputs or (name,)


def build_metrics(
    metrics: Sequence[str | BaseMetric], device: torch.device
) -> dict[str, BaseMetric]:
    """``name -> metric`` on ``device`` from registered names or instances; names and
    outputs must be distinct and per-frame metrics have one output."""
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
    outputs = [out for name, m in built.items() for out in metric_outputs(name, m)]
    clashing = sorted({out for out in outputs if outputs.count(out) > 1})
    if clashing:
        raise ValueError(f"metric outputs {clashing} are produced twice")
    return built


@dataclass(frozen=True)
class FrameSelection:
    """Every ``stride``-th frame, at most ``max_frames`` of them."""

    stride: int = 1
    max_frames: int | None = None

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return frames[:: self.stride][: self.max_frames]

    def fps(self, fps: float | None) -> float | None:
        """The frame rate of the selected frames."""
        return fps / self.stride if fps is not None and self.stride > 1 else fps


@dataclass
class VideoFrames:
    """One pair's selected frames, the size they are scored at and what they are scored with."""

    stem: str
    generated_path: Path
    reference_path: Path | None
    generated: np.ndarray
    reference: np.ndarray | None
    fps: float | None
    size: tuple[int, ...]
    #: per-frame source frames (the pairs protocol) or a ``(1, H, W, 3)`` still
    source_frames: np.ndarray | None = None
    source_still: np.ndarray | None = None
    audio_path: Path | None = None

    @property
    def num(self) -> int:
        """Frames scored: the common first frames of generated and reference."""
        if self.reference is None:
            return len(self.generated)
        return min(len(self.generated), len(self.reference))

    @property
    def length_mismatch(self) -> dict[str, int] | None:
        if self.reference is None or len(self.generated) == len(self.reference):
            return None
        return {"generated": len(self.generated), "reference": len(self.reference)}

    def _resizing(self, frames: np.ndarray) -> dict[str, Any] | None:
        native = tuple(frames.shape[1:3])
        if native == self.size:
            return None
        return {
            "from": list(native),
            "to": list(self.size),
            "method": resize_method(native, self.size),
        }

    @property
    def generated_resize(self) -> dict[str, Any] | None:
        return self._resizing(self.generated)

    @property
    def reference_resize(self) -> dict[str, Any] | None:
        if self.reference is None or self.num == 0:
            return None
        return self._resizing(self.reference)


@dataclass
class FrameNotes:
    """What was changed about each video's frames: resizes and length mismatches by stem."""

    resized_generated: dict[str, dict[str, Any]] = field(default_factory=dict)
    resized_reference: dict[str, dict[str, Any]] = field(default_factory=dict)
    length_mismatch: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, video: VideoFrames) -> None:
        """Record ``video`` (after it was scored)."""
        for notes, note in (
            (self.resized_generated, video.generated_resize),
            (self.resized_reference, video.reference_resize),
            (self.length_mismatch, video.length_mismatch),
        ):
            if note is not None:
                notes[video.stem] = note


def load_pair(
    stem: str,
    generated: Path,
    reference: Path | None,
    selection: FrameSelection,
    size: int | None,
) -> VideoFrames:
    """The selected frames of one pair, scored at ``size`` x ``size`` or the generated size."""
    gen_frames, fps = load_video(generated)
    ref_frames, ref_fps = load_video(reference) if reference is not None else (None, None)
    gen_frames = selection(gen_frames)
    if ref_frames is not None:
        ref_frames = selection(ref_frames)
    fps, ref_fps = selection.fps(fps), selection.fps(ref_fps)
    native = tuple(gen_frames.shape[1:3])
    video = VideoFrames(
        stem,
        generated,
        reference,
        gen_frames,
        ref_frames,
        fps if fps is not None else ref_fps,
        native if size is None else (size, size),
    )
    if (lengths := video.length_mismatch) is not None:
        log.warning(
            "%s: %d generated vs %d reference frames; scoring the first %d",
            stem,
            lengths["generated"],
            lengths["reference"],
            video.num,
        )
    return video


def attach_sources(video: VideoFrames, inputs: ScoreInputs, selection: FrameSelection) -> None:
    """Give ``video`` its audio path and, when a metric needs one, its source portrait: the
    per-frame source frames, the stem's still, or the first reference frame."""
    video.audio_path = inputs.audio.get(video.stem)
    if not inputs.needs_source:
        return
    path = inputs.sources.get(video.stem)
    if inputs.per_frame_source:
        frames = selection(read_frames(path))  # type: ignore[arg-type]
        if len(frames) < video.num:
            raise ScoreInputError(
                f"{path}: {len(frames)} source frames for "
                f"{video.num} generated frames of {video.stem!r}"
            )
        video.source_frames = frames
    elif path is not None:
        video.source_still = read_frames(path)
    else:
        video.source_still = video.reference[:1]  # type: ignore[index]


@dataclass
class FrameScorer:
    """Runs ``metrics`` over videos: per-frame and set metrics in batches of ``batch_size``
    frames (``dtype``), then per-video metrics on the whole video (float32)."""

    metrics: Mapping[str, BaseMetric]
    device: torch.device
    dtype: torch.dtype = torch.float64
    batch_size: int = 32
    progress: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for metric in self.metrics.values():
            if isinstance(metric, SetMetric):
                metric.reset()

    @property
    def frame_metrics(self) -> dict[str, BaseMetric]:
        return {n: m for n, m in self.metrics.items() if isinstance(m, Metric)}

    @property
    def video_metrics(self) -> dict[str, VideoMetric]:
        return {n: m for n, m in self.metrics.items() if isinstance(m, VideoMetric)}

    def context(self, video: VideoFrames) -> dict[str, Any]:
        """The keyword inputs every metric call on ``video`` gets."""
        context: dict[str, Any] = {
            "stem": video.stem,
            "fps": video.fps,
            "generated_path": video.generated_path,
            "reference_path": video.reference_path,
            **self.extra,
        }
        if video.audio_path is not None:
            context["audio_path"] = video.audio_path
        if video.source_still is not None:
            context["source"] = self._tensor(video.source_still)
        return context

    def score_video(self, video: VideoFrames) -> tuple[dict[str, Tensor], dict[str, float]]:
        """Per-frame values (float64, one per frame) of each per-frame metric, and each
        per-video metric output; set metrics are updated."""
        context = self.context(video)
        frame_values = self._score_batches(video, context)
        video_values: dict[str, float] = {}
        if self.video_metrics:
            video_values = self._score_whole(video, context)
        return frame_values, video_values

    def _tensor(self, frames: np.ndarray, dtype: torch.dtype | None = None) -> Tensor:
        return to_tensor(frames, self.device, dtype or self.dtype)

    def _score_batches(self, video: VideoFrames, context: dict[str, Any]) -> dict[str, Tensor]:
        from tqdm import tqdm

        num, size = video.num, video.size
        chunks: dict[str, list[Tensor]] = {name: [] for name in self.frame_metrics}
        bar = tqdm(
            total=num,
            desc=video.stem,
            unit="frame",
            file=sys.stderr,
            disable=not self.progress,
            mininterval=1.0,
        )
        for start in range(0, num, self.batch_size):
            stop = min(start + self.batch_size, num)
            gen = fit(self._tensor(video.generated[start:stop]), size)
            ref = None
            if video.reference is not None:
                ref = fit(self._tensor(video.reference[start:stop]), size)
            context["frame_index"] = torch.arange(start, stop, device=self.device)
            if video.source_frames is not None:
                context["source"] = self._tensor(video.source_frames[start:stop])
            for name, metric in self.metrics.items():
                if isinstance(metric, SetMetric):
                    metric.update(gen, ref, **context)
                elif isinstance(metric, Metric):
                    values = metric(gen, ref, **context)
                    if values.shape != (stop - start,):
                        raise RuntimeError(f"metric {name!r} returned shape {tuple(values.shape)}")
                    chunks[name].append(values.detach().to("cpu", torch.float64))
            bar.update(stop - start)
        bar.close()
        return {
            name: torch.cat(parts) if parts else torch.empty(0, dtype=torch.float64)
            for name, parts in chunks.items()
        }

    def _score_whole(self, video: VideoFrames, context: dict[str, Any]) -> dict[str, float]:
        num, size = video.num, video.size
        context.pop("frame_index", None)
        if video.source_frames is not None:
            context["source"] = self._tensor(video.source_frames[:num])
        gen_all = fit(self._tensor(video.generated[:num], torch.float32), size)
        ref_all = None
        if video.reference is not None:
            ref_all = fit(self._tensor(video.reference[:num], torch.float32), size)
        values: dict[str, float] = {}
        for name, metric in self.video_metrics.items():
            result = metric.compute_video(gen_all, ref_all, **context)
            for out in metric_outputs(name, metric):
                values[out] = float(result.get(out, math.nan))
        return values
