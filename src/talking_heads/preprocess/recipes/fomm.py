"""The ``fomm`` recipe: video-preprocessing's VoxCeleb crop for clips and portraits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from talking_heads.manifest import sha256_file
from talking_heads.preprocess.crop import (
    BORDER_MODES,
    PAD_MODES,
    RESIZE_MODES,
    CropPlan,
    Padding,
    Track,
    crop_frames,
    link_tracks,
    plan_crop,
    resize_antialiased,
)
from talking_heads.preprocess.decode import VideoSource
from talking_heads.preprocess.track import FaceTrack, TrackingResult
from talking_heads.utils.media import read_image, write_image

from .base import (
    RECIPES,
    SEVERAL_FACES,
    FaceParams,
    FaceVideoRecipe,
    ItemResult,
    UnusableInputError,
    _first_line,
    _Selection,
    _several_faces,
)

#: video-preprocessing's ``crop_vox.py`` filters (``--min_frames``, ``--iou_with_initial``):
#: what a kept clip is compared with in its notes when the parameters relax them
REFERENCE_MIN_FRAMES = 64
REFERENCE_IOU = 0.25


@dataclass
class FommParams(FaceParams):
    """The ``fomm`` recipe; defaults follow video-preprocessing's ``crop_vox.py``.

    Upstream detects every frame with S3FD and chunks a face at the first frame whose IoU with
    the chunk's first box is below ``iou_threshold`` (0.25), at most ``max_frames`` (1024)
    frames per chunk, rejecting chunks under ``min_frames`` (64) frames, tubes under
    ``min_size`` (256) px and enlarged boxes that leave the frame (``border="reject"``). Here
    the detector runs on a stride, on frames downscaled to ``detect_size`` (640) px (None
    detects on the full frame, as upstream), and the same chunking applies to each tracked
    face. ``border="shift"`` moves a box leaving the frame inside it when it fits;
    ``border="pad"`` also keeps boxes larger than the frame, padding with ``pad_mode``
    (``edge`` pixels or ``constant`` black). ``image_increase`` enlarges single images
    (portraits) instead of ``increase``: a video's tube spans the head's motion, a portrait's
    box only the face. ``resize="fast"`` is an OpenCV equivalent of upstream's skimage resize
    (within one grey level). ``several_faces="longest"`` keeps the longest valid chunk when
    several faces are tracked (upstream writes one clip per chunk); ``"skip"`` rejects such
    inputs.
    """

    recipe = "fomm"

    detect_size: int | None = 640
    increase: float = 0.1
    image_increase: float | None = None
    iou_threshold: float = REFERENCE_IOU
    max_frames: int | None = None
    min_frames: int = REFERENCE_MIN_FRAMES
    min_size: int = 256
    border: str = "reject"
    pad_mode: str = "edge"
    resize: str = "fast"
    several_faces: str = "longest"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.border not in BORDER_MODES:
            raise ValueError(f"border must be one of {BORDER_MODES}, got {self.border!r}")
        if self.pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {self.pad_mode!r}")
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {self.resize!r}")
        if self.several_faces not in SEVERAL_FACES:
            raise ValueError(f"several_faces must be one of {SEVERAL_FACES}")
        if not 0.0 <= float(self.iou_threshold) <= 1.0:
            raise ValueError(f"iou_threshold must lie in [0, 1], got {self.iou_threshold}")


def fomm_chunks(track: FaceTrack, iou_threshold: float, max_frames: int | None) -> list[Track]:
    """video-preprocessing's chunks of one tracked face: a new chunk starts at the first
    detection whose IoU with the chunk's first box is below ``iou_threshold``, or after
    ``max_frames`` frames; the tube of a chunk is the union of its detections."""
    frames = [int(f) - track.start for f in track.detected_frames]
    detections = [box[None] for box in track.detected_boxes]
    chunks = link_tracks(
        frames,
        detections,
        track.length,
        iou_threshold=iou_threshold,
        max_missed=0,
        max_frames=max_frames,
    )
    for chunk in chunks:
        chunk.start += track.start
        chunk.end += track.start
        chunk.hits = [h + track.start for h in chunk.hits]
    return chunks


def padding_note(padding: Padding, pad_mode: str) -> str:
    """``padded 12 px at the top and 3 px at the left (edge pixels)``."""
    sides = zip(("left", "top", "right", "bottom"), padding, strict=True)
    parts = [f"{px} px at the {side}" for side, px in sides if px]
    pixels = "edge" if pad_mode == "edge" else "black"
    return f"padded {' and '.join(parts)} of the frame ({pixels} pixels)"


def plan_notes(plan: CropPlan, resolution: int, pad_mode: str) -> list[str]:
    """What a crop changed to keep a face: box moved inside the frame, padding, upscaling."""
    assert plan.box is not None and plan.tube is not None
    notes = []
    if plan.shift != (0, 0):
        dx, dy = plan.shift
        notes.append(f"face box shifted inside the frame (by {dx:+d}, {dy:+d} px)")
    if any(plan.padding):
        notes.append(padding_note(plan.padding, pad_mode))
    side = plan.box[2] - plan.box[0]
    if side < resolution:
        tube = max(plan.tube[2] - plan.tube[0], plan.tube[3] - plan.tube[1])
        notes.append(f"face {tube:.0f} px (crop {side} px) upscaled to {resolution}")
    return notes


@RECIPES.register("fomm")
class FommRecipe(FaceVideoRecipe):
    """FOMM / video-preprocessing crops for clips and portraits, plus audio features."""

    name = "fomm"
    params_type = FommParams

    def process(self, row: Mapping[str, Any], src: Path, out_dir: Path) -> ItemResult:
        """Crop a video or an image row."""
        if row["kind"] == "image":
            return self._process_image(row, src, out_dir)
        return super().process(row, src, out_dir)

    def resize(self, crop: np.ndarray, size: int) -> np.ndarray:
        """Anti-aliased resize (``resize`` parameter: fast OpenCV or upstream skimage)."""
        return resize_antialiased(crop, size, self.params.resize)

    def _plan(
        self,
        tracks: list[Track],
        frame_size: tuple[int, int],
        samples: int,
        min_frames: int,
        increase: float,
    ) -> CropPlan:
        p = self.params
        return plan_crop(
            tracks,
            frame_size,
            num_sampled=samples,
            min_frames=min_frames,
            min_size=p.min_size,
            increase=increase,
            border=p.border,
        )

    def select(self, tracking: TrackingResult, video: VideoSource, notes: list[str]) -> _Selection:
        """The longest valid chunk's tube box, fixed over its frames."""
        p: FommParams = self.params  # type: ignore[assignment]
        pair = _several_faces(tracking, p.min_frames)
        if pair:
            message = (
                f"several faces: {len(tracking.tracks)} face tracks, two overlapping over "
                f"frames {max(pair[0].start, pair[1].start)}-{min(pair[0].end, pair[1].end)}"
            )
            if p.several_faces == "skip":
                raise UnusableInputError(message)
            notes.append(f"{message}; kept the longest")
        chunks = [c for t in tracking.tracks for c in fomm_chunks(t, p.iou_threshold, p.max_frames)]
        needed = p.min_track_frames(tracking.num_frames)
        plan = self._plan(
            chunks, (video.width, video.height), tracking.frames_detected, needed, p.increase
        )
        if not plan.ok:
            longest = tracking.longest()
            ending = (
                f"; the longest face track, frames {longest.start}-{longest.end}, ends: "
                f"{longest.end_reason}{p.coverage_note(needed, tracking.num_frames)}"
                if longest is not None and plan.reason.startswith("no face track")
                else ""
            )
            raise UnusableInputError(plan.reason + ending)
        assert plan.box is not None
        if plan.end - plan.start < tracking.num_frames:
            notes.append(f"kept frames {plan.start}-{plan.end} of {tracking.num_frames}")
        face_track = next(t for t in tracking.tracks if t.start <= plan.start and plan.end <= t.end)
        notes.extend(self._relaxed_notes(plan, face_track, tracking.num_frames))
        count = plan.end - plan.start
        crop_boxes = np.tile(np.asarray(plan.box, dtype=np.int64), (count, 1))
        face_boxes = face_track.boxes[plan.start - face_track.start : plan.end - face_track.start]
        return _Selection(
            plan.start, plan.end, crop_boxes, face_boxes, "-".join(map(str, plan.box))
        )

    def _relaxed_notes(self, plan: CropPlan, track: FaceTrack, num_frames: int) -> list[str]:
        """Notes of a kept clip the reference filters would have cut or rejected."""
        p: FommParams = self.params  # type: ignore[assignment]
        notes = plan_notes(plan, int(p.resolution), p.pad_mode)
        if num_frames < REFERENCE_MIN_FRAMES:
            notes.append(
                f"short clip: {num_frames} frames (video-preprocessing keeps >= "
                f"{REFERENCE_MIN_FRAMES})"
            )
        if p.iou_threshold == 0:  # chunking off: where the reference would have cut
            cuts = [
                c.start
                for c in fomm_chunks(track, REFERENCE_IOU, p.max_frames)
                if plan.start < c.start < plan.end
            ]
            if cuts:
                frames = ", ".join(map(str, cuts))
                notes.append(
                    f"track not split by IoU with its first box (IoU {REFERENCE_IOU:g} would "
                    f"cut it at frame {frames})"
                )
        return notes

    def _process_image(self, row: Mapping[str, Any], src: Path, out_dir: Path) -> ItemResult:
        try:
            image = read_image(src)
        except Exception as error:  # any decoder error means an unusable input
            raise UnusableInputError(f"cannot decode: {_first_line(error)}") from error
        p: FommParams = self.params  # type: ignore[assignment]
        height, width = image.shape[:2]
        increase = p.increase if p.image_increase is None else p.image_increase
        detections = self.detector.detect(image[None])
        tracks = link_tracks([0], detections, 1, iou_threshold=p.iou_threshold)
        plan = self._plan(tracks, (width, height), 1, 1, increase)
        if not plan.ok:
            raise UnusableInputError(plan.reason)
        assert plan.box is not None
        crop = crop_frames(image[None], plan.box, p.resolution, p.resize, self.pad_mode)[0]
        rel = f"clips/{row['clip_id']}.png"
        write_image(out_dir / rel, crop)
        arrays = {"boxes": np.asarray(detections[0][:1, :4], dtype=np.float32)}
        if self.landmarker is not None:
            selection = _Selection(0, 1, np.asarray([plan.box]), arrays["boxes"], "")
            bh, bw = plan.box[3] - plan.box[1], plan.box[2] - plan.box[0]
            arrays["landmarks"] = self._landmarks(crop, selection, 0, (bh, bw, 3))[None]
        return ItemResult(
            row={
                "path": rel,
                "num_frames": 1,
                "fps": None,
                "width": crop.shape[1],
                "height": crop.shape[0],
                "duration_s": None,
                "audio_rate": None,
                "sha256": sha256_file(out_dir / rel),
                "start_frame": 0,
                "end_frame": 1,
                "bbox": "-".join(map(str, plan.box)),
                "faces": len(detections[0]),
                "notes": "; ".join(plan_notes(plan, int(p.resolution), p.pad_mode)),
            },
            arrays=arrays,
            frames_decoded=1,
            frames_written=1,
        )
