"""Per-video and summary values of a scoring run, with skipped-frame counts.

``NaN`` values (a frame or video a metric could not score) are left out of every mean and
counted: ``skipped_frames`` per per-frame metric, ``skipped_videos`` per per-video output.
Infinite values (PSNR of identical frames) are kept and counted in ``nonfinite_frames``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from talking_heads.metrics.base import BaseMetric, SetMetric, VideoMetric
from talking_heads.metrics.batching import metric_outputs

__all__ = ["Aggregation", "ScoreTotals", "nan_mean"]

Aggregation = Literal["frames", "videos"]


def nan_mean(values: Tensor) -> float:
    """Mean over the finite-or-infinite values, leaving NaN (skipped) out; NaN when none."""
    kept = values[~torch.isnan(values)]
    return float(kept.mean()) if kept.numel() else math.nan


@dataclass
class ScoreTotals:
    """Collects each video's values and makes the summary of ``metrics``.

    ``aggregation`` ``"frames"``: a per-frame metric's summary is the mean over all frames of
    all videos (frame-weighted); ``"videos"``: the mean of the per-video means. Per-video
    metrics are averaged over videos and set metrics report their set value.
    """

    metrics: Mapping[str, BaseMetric]
    aggregation: Aggregation = "frames"
    #: stem -> {output: the video's value, ..., "num_frames": n}
    per_video: dict[str, dict[str, Any]] = field(default_factory=dict)
    _frames: dict[str, list[Tensor]] = field(default_factory=dict)
    _videos: dict[str, list[float]] = field(default_factory=dict)

    def add_video(
        self, stem: str, num_frames: int, frames: Mapping[str, Tensor], videos: Mapping[str, float]
    ) -> dict[str, Any]:
        """Record one video's per-frame values and per-video outputs; its ``per_video`` entry."""
        entry: dict[str, Any] = {}
        for name, values in frames.items():
            self._frames.setdefault(name, []).append(values)
            entry[name] = nan_mean(values)
        for out, value in videos.items():
            self._videos.setdefault(out, []).append(value)
            entry[out] = value
        entry["num_frames"] = num_frames
        self.per_video[stem] = entry
        return entry

    @property
    def num_frames(self) -> int:
        return sum(v["num_frames"] for v in self.per_video.values())

    def summarise(self) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
        """``summary`` (output -> value) and ``metrics`` (name -> description and counts)."""
        summary: dict[str, float] = {}
        described: dict[str, dict[str, Any]] = {}
        for name, metric in self.metrics.items():
            described[name] = {"name": name, **metric.describe()}
            if isinstance(metric, SetMetric):
                self._set_summary(name, metric, summary, described[name])
            elif isinstance(metric, VideoMetric):
                self._video_summary(name, metric, summary, described[name])
            else:
                self._frame_summary(name, summary, described[name])
        return summary, described

    def _set_summary(
        self, name: str, metric: SetMetric, summary: dict[str, float], record: dict[str, Any]
    ) -> None:
        result = metric.compute()
        if isinstance(result, Mapping):
            record.update({k: v for k, v in result.items() if k not in summary})
            for out in metric_outputs(name, metric):
                summary[out] = float(result[out])
        else:
            summary[metric_outputs(name, metric)[0]] = float(result)

    def _video_summary(
        self, name: str, metric: VideoMetric, summary: dict[str, float], record: dict[str, Any]
    ) -> None:
        for out in metric_outputs(name, metric):
            values = torch.tensor(self._videos.get(out, []), dtype=torch.float64)
            summary[out] = nan_mean(values)
            record.setdefault("skipped_videos", {})[out] = int(torch.isnan(values).sum())

    def _frame_summary(self, name: str, summary: dict[str, float], record: dict[str, Any]) -> None:
        chunks = self._frames.get(name, [])
        values = torch.cat(chunks) if chunks else torch.empty(0)
        if self.aggregation == "videos":
            means = torch.tensor([nan_mean(v) for v in chunks], dtype=torch.float64)
            summary[name] = nan_mean(means)
        else:
            summary[name] = nan_mean(values)
        record["nonfinite_frames"] = int(torch.isinf(values).sum())
        record["skipped_frames"] = int(torch.isnan(values).sum())
