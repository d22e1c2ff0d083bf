"""The ``hdtf`` recipe: the annotated, cropped HDTF intervals at several resolutions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from talking_heads.preprocess.decode import VideoSource
from talking_heads.preprocess.track import TrackingResult

from .base import RECIPES, FaceParams, FaceVideoRecipe, UnusableInputError, _Selection


@dataclass
class HdtfParams(FaceParams):
    """The ``hdtf`` recipe: the annotated, cropped HDTF intervals at ``resolutions``.

    The crop boxes and intervals of the annotation files are applied at acquisition
    (:mod:`talking_heads.datasets.hdtf`, 512² clips); this recipe checks each clip is square,
    writes it at every resolution (anti-aliased, source frame rate) and adds audio, features
    and landmarks. Faces are still tracked, for the landmarks and to reject clips without one.
    """

    recipe = "hdtf"

    resolutions: tuple[int, ...] = (512, 256)
    resolution: int = 512
    min_frames: int = 25
    resize: str = "fast"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.resolutions or min(self.resolutions) < 1:
            raise ValueError(f"resolutions must be positive sizes, got {self.resolutions}")
        self.resolution = int(self.resolutions[0])


@RECIPES.register("hdtf")
class HdtfRecipe(FaceVideoRecipe):
    """HDTF annotation crops (square clips) at several resolutions, with audio and features."""

    name = "hdtf"
    params_type = HdtfParams

    def outputs(self, row: Mapping[str, Any]) -> dict[int, str]:
        """The first resolution under ``clips/``, the others under ``clips_<res>/``."""
        sizes = [int(s) for s in self.params.resolutions]  # type: ignore[attr-defined]
        out = {sizes[0]: f"clips/{row['clip_id']}.mp4"}
        out.update({s: f"clips_{s}/{row['clip_id']}.mp4" for s in sizes[1:]})
        return out

    def select(self, tracking: TrackingResult, video: VideoSource, notes: list[str]) -> _Selection:
        """The whole (already cropped) clip; the face track gives landmark boxes."""
        if abs(video.width - video.height) > 1:
            raise UnusableInputError(
                f"not an HDTF crop: {video.width}x{video.height} frames are not square"
            )
        track = tracking.longest()
        if track is None or track.length < self.params.min_frames:
            raise UnusableInputError(
                f"no face track of at least {self.params.min_frames} frames in the crop"
            )
        if track.length < tracking.num_frames:
            notes.append(f"face on frames {track.start}-{track.end} of {tracking.num_frames}")
        count = tracking.num_frames
        full = np.tile(np.array([0, 0, video.width, video.height], dtype=np.int64), (count, 1))
        face = np.full((count, 4), np.nan, dtype=np.float32)
        face[track.start : track.end] = track.boxes
        return _Selection(0, count, full, face, f"0-0-{video.width}-{video.height}")
