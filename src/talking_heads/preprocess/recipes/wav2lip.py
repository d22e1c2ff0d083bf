"""The ``wav2lip`` recipe: Wav2Lip's padded, smoothed per-frame face boxes at 25 fps, 96² crops,
with the audio under the frames."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talking_heads.preprocess.decode import VideoSource
from talking_heads.preprocess.track import TrackingResult, TrackParams

from .base import (
    RECIPES,
    SEVERAL_FACES,
    FaceParams,
    FaceVideoRecipe,
    UnusableInputError,
    _Selection,
    _several_faces,
)


@dataclass
class Wav2LipParams(FaceParams):
    """The ``wav2lip`` recipe: Wav2Lip's face boxes at 25 fps, 96² crops, audio required.

    Upstream (``preprocess.py``) runs S3FD on every frame of 25 fps LRS2 clips and saves the
    raw box resized to 96²; ``inference.py`` pads the box (``pads`` top, bottom, left, right:
    0, 10, 0, 0 px), clamps it to the frame and smooths it with a 5-frame mean (``smooth``).
    We apply the inference padding and smoothing to the training crops too, so training and
    inference see the same framing (set ``pads=0,0,0,0`` and ``smooth=1`` for upstream's
    training crops). Upstream aborts on a frame without a face; here the longest face track
    is kept (its frames and audio) and the rest is noted. Crops are resized with
    ``cv2.resize`` (bilinear), as upstream.
    """

    recipe = "wav2lip"

    resolution: int = 96
    fps: float | None = 25.0
    pads: tuple[int, int, int, int] = (0, 10, 0, 0)
    smooth: int = 5
    min_frames: int = 16
    require_audio: bool = True
    several_faces: str = "skip"

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.pads) != 4:
            raise ValueError(f"pads takes four values (top, bottom, left, right): {self.pads}")
        if self.several_faces not in SEVERAL_FACES:
            raise ValueError(f"several_faces must be one of {SEVERAL_FACES}")


@RECIPES.register("wav2lip")
class Wav2LipRecipe(FaceVideoRecipe):
    """Wav2Lip's per-frame padded, smoothed face boxes at 25 fps, 96² crops, with audio."""

    name = "wav2lip"
    params_type = Wav2LipParams

    def track_params(self) -> TrackParams:
        """Smoothing from the ``smooth`` parameter (Wav2Lip: 5-frame mean)."""
        p: Wav2LipParams = self.params  # type: ignore[assignment]
        return p.track_params(p.smooth, "mean")

    def resize(self, crop: np.ndarray, size: int) -> np.ndarray:
        """``cv2.resize`` to ``size`` squared (bilinear), as Wav2Lip."""
        import cv2

        return cv2.resize(crop, (size, size))

    def select(self, tracking: TrackingResult, video: VideoSource, notes: list[str]) -> _Selection:
        """The longest face track: padded, clamped per-frame boxes."""
        p: Wav2LipParams = self.params  # type: ignore[assignment]
        pair = _several_faces(tracking, p.min_frames)
        if pair and p.several_faces == "skip":
            raise UnusableInputError(
                f"several faces: {len(tracking.tracks)} face tracks, two overlapping over "
                f"frames {max(pair[0].start, pair[1].start)}-{min(pair[0].end, pair[1].end)}"
            )
        track = tracking.longest()
        if track is None:
            raise UnusableInputError(
                f"no face detected in any sampled frame ({tracking.frames_detected} sampled)"
            )
        needed = p.min_track_frames(tracking.num_frames)
        if track.length < needed:
            raise UnusableInputError(
                f"no face track of at least {needed} frames (longest track "
                f"{track.length} frames, {len(tracking.tracks)} tracks; {track.end_reason} at "
                f"frame {track.end}){p.coverage_note(needed, tracking.num_frames)}"
            )
        size = max(float(np.max(track.boxes[:, 2] - track.boxes[:, 0])), 0.0)
        if size < p.min_size:
            raise UnusableInputError(f"face too small: {size:.0f} px < min_size {p.min_size}")
        if track.length < tracking.num_frames:
            notes.append(
                f"face on frames {track.start}-{track.end} of {tracking.num_frames} "
                f"({track.end_reason}): kept those"
            )
        top, bottom, left, right = p.pads
        boxes = np.rint(track.boxes).astype(np.int64)
        crop_boxes = np.stack(
            [
                np.maximum(0, boxes[:, 0] - left),
                np.maximum(0, boxes[:, 1] - top),
                np.minimum(video.width, boxes[:, 2] + right),
                np.minimum(video.height, boxes[:, 3] + bottom),
            ],
            axis=1,
        )
        if np.any(crop_boxes[:, 2] <= crop_boxes[:, 0]) or np.any(
            crop_boxes[:, 3] <= crop_boxes[:, 1]
        ):
            raise UnusableInputError("face box leaves the frame")
        union = (
            int(crop_boxes[:, 0].min()),
            int(crop_boxes[:, 1].min()),
            int(crop_boxes[:, 2].max()),
            int(crop_boxes[:, 3].max()),
        )
        return _Selection(
            track.start, track.end, crop_boxes, track.boxes, "-".join(map(str, union))
        )
