"""Faces for the metrics: detection + 68 landmarks per frame, shared between metrics.

Several metrics look at the same frames' faces (CSIM, AED, AKD, LMD, head pose from
landmarks); :class:`FaceFinder` runs a registered detector and landmark model once per
distinct frame and keeps the result in a bounded per-process cache keyed by the frame's
bytes and the models used, so scoring with several face metrics detects each frame once.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["FaceFinder", "per_frame_cached", "to_uint8"]

#: frames whose faces are remembered (68 points each: a few MB at most)
CACHE_SIZE = 20_000
_CACHE: OrderedDict[tuple[str, bytes], Any] = OrderedDict()


def to_uint8(frames: Tensor) -> np.ndarray:
    """Float ``(N, 3, H, W)`` in ``[0, 1]`` -> uint8 ``(N, H, W, 3)`` RGB (rounded)."""
    out = (frames.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8)
    return np.ascontiguousarray(out.permute(0, 2, 3, 1).cpu().numpy())


class FaceFinder:
    """Best-scoring face per frame (a registered detector) and its 68 landmarks."""

    def __init__(
        self,
        detector: str,
        landmarks: str = "dlib68",
        landmark_options: dict[str, Any] | None = None,
        **detector_options: Any,
    ) -> None:
        from talking_heads.preprocess.detect import make_detector
        from talking_heads.preprocess.landmarks import LANDMARKERS

        landmark_options = dict(landmark_options or {})
        self.detector = make_detector(detector, **detector_options)
        self.landmarker = LANDMARKERS.get(landmarks)(**landmark_options)
        self.key = (
            f"{detector}:{sorted(detector_options.items())}:"
            f"{landmarks}:{sorted(landmark_options.items())}"
        )

    def __call__(self, frames: np.ndarray) -> list[np.ndarray | None]:
        """68 points ``(68, 2)`` per uint8 RGB frame ``(N, H, W, 3)``, None where no face."""
        return per_frame_cached(self.key, frames, self._find)

    def _find(self, frames: np.ndarray) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = []
        for frame, boxes in zip(frames, self.detector(frames), strict=True):
            out.append(self.landmarker.detect(frame, boxes[:1])[0] if len(boxes) else None)
        return out


def per_frame_cached(
    kind: str, frames: np.ndarray, compute: Callable[[np.ndarray], list[Any]]
) -> list[Any]:
    """``compute(frames)`` per frame, remembering results by ``kind`` and the frame's bytes:
    only frames not seen before with this ``kind`` are computed."""
    keys = [
        (kind, f"{frame.shape}".encode() + hashlib.blake2b(frame.tobytes()).digest())
        for frame in frames
    ]
    todo = [i for i, key in enumerate(keys) if key not in _CACHE]
    if todo:
        for i, value in zip(todo, compute(np.stack([frames[i] for i in todo])), strict=True):
            _CACHE[keys[i]] = value
            if len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
    out = []
    for key in keys:
        _CACHE.move_to_end(key)
        out.append(_CACHE[key])
    return out
