"""Preprocessing recipes (registered in ``RECIPES``) and the sharded runner :func:`run_shard`.

A recipe turns one manifest row (a video or an image) into the inputs a method family trains
and evaluates on, and returns that row's output manifest entry:

==========  ==================================================================================
recipe      what it writes per clip (parameters: :class:`FommParams`, :class:`Wav2LipParams`,
            :class:`HdtfParams`, :class:`EmotionParams`)
==========  ==================================================================================
``fomm``    video-preprocessing's VoxCeleb crop: the longest face tube that passes the length,
            size, IoU-with-the-first-box and border checks, enlarged by ``increase``, made
            square, anti-aliased to ``resolution``\\ ² (256), at the source frame rate; portraits
            likewise as PNG
``wav2lip`` Wav2Lip's per-frame face boxes (``pads`` 0/10/0/0 px, 5-frame mean smoothing) at a
            constant 25 fps, each resized to 96², with the 16 kHz audio under the frames
``hdtf``    the HDTF annotation crops (applied at acquisition: 512² clips of the annotated
            intervals) as ``resolutions`` 512² and 256² copies, with audio
``emotion`` (MEAD, CREMA-D) the ``wav2lip`` crop at 25 fps, keeping the dataset's emotion and
            intensity labels as manifest columns
==========  ==================================================================================

Every video recipe decodes through :func:`talking_heads.preprocess.decode.open_video` (decord,
checked against the container, with an ffmpeg fallback for variable frame rates and damaged
files), finds faces with :func:`talking_heads.preprocess.track.track_faces` (detection on a
stride of frames, linking, shot-change splits, interpolation), extracts 16 kHz mono audio,
computes the Wav2Lip log-mel and SyncNet MFCC features, and locates 68 landmarks on the written
crops. :func:`run_shard` writes a shard directory atomically::

    out_dir/
      clips/<clip_id>.mp4        crops (H.264 yuv444p; crf 10 is visually lossless, 0 lossless)
      clips/<clip_id>.png        portrait crops (``fomm``)
      clips_<res>/<clip_id>.mp4  further resolutions (``hdtf``)
      audio/<clip_id>.wav        16 kHz mono PCM under the cropped frames
      features.npz               per clip: ``mel/<id>`` (80, M) Wav2Lip log-mel, ``mfcc/<id>``
                                 (13, N) SyncNet MFCC at 100 Hz, ``boxes/<id>`` (T, 4) face box
                                 per frame in source pixels, ``landmarks/<id>`` (T, 68, 2) in
                                 crop pixels (NaN where none was found)
      manifest.parquet           one row per input item: ok / skipped / failed, with a reason
      summary.json               counts by status and reason, throughput, parameters

Output paths in the shard manifest are relative to ``out_dir``; the output columns (``path``,
``num_frames``, ...) describe the crop and stay empty for skipped or failed rows. Extra
columns: ``input_path`` (the dataset manifest's ``path``, relative to that manifest),
``input_sha256``, ``start_frame``/``end_frame`` (the cropped frames, on the decoded timeline:
the 25 fps one for ``wav2lip``), ``bbox`` (``left-top-right-bot`` crop box in source pixels, as
in vox-metadata.csv; the union of the per-frame boxes for ``wav2lip``), ``audio_path``,
``mel_frames``, ``mfcc_frames``, ``faces`` (most faces seen in one sampled frame), ``notes``
(facts about an ok clip: "no audio stream", "audio resampled from 8000 Hz", "variable frame
rate ...") and, for ``emotion``, the label columns.

Sharding: the manifest's ``video`` and ``image`` rows are sorted by ``clip_id`` and row ``i``
goes to shard ``i % num_shards``. The assignment is deterministic for a given manifest;
adding rows to the dataset reshuffles shards, so re-run every shard after a dataset change.
A shard whose ``summary.json`` records the same recipe, parameters and input manifest is
complete and is not recomputed.
"""

from __future__ import annotations

import inspect
import logging
import sys
import time
import traceback
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from talking_heads.manifest import MANIFEST_COLUMNS, read_manifest, sha256_file, write_manifest
from talking_heads.preprocess.audio import (
    WAV2LIP_MEL,
    NoAudioStreamError,
    conversion_note,
    extract_audio,
    is_silent,
    melspectrogram,
    probe_audio,
    read_wav,
    slice_frames,
    syncnet_mfcc,
    write_wav,
)
from talking_heads.preprocess.crop import (
    BORDER_MODES,
    RESIZE_MODES,
    CropPlan,
    Track,
    crop_frames,
    link_tracks,
    plan_crop,
    resize_antialiased,
)
from talking_heads.preprocess.decode import UndecodableVideoError, VideoSource, open_video
from talking_heads.preprocess.detect import DETECTORS, FaceDetector
from talking_heads.preprocess.landmarks import LANDMARKERS, LandmarkDetector
from talking_heads.preprocess.track import FaceTrack, TrackingResult, TrackParams, track_faces
from talking_heads.registry import Registry
from talking_heads.utils.atomic import atomic_path, atomic_write_json
from talking_heads.utils.media import VideoWriter, read_image, write_image

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
SEVERAL_FACES = ("longest", "skip")


def _is_none(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in {"none", "null"})


def _coerce(value: Any, annotation: str) -> Any:
    """A parameter value from config or ``--param key=value`` text, cast to its annotation."""
    if "None" in annotation and _is_none(value):
        return None
    kind = annotation.replace(" | None", "").strip()
    if kind == "bool":
        if isinstance(value, str):
            return value.strip().lower() in {"1", "true", "yes", "on"}
        return bool(value)
    if kind.startswith("tuple"):
        items = (
            value.replace("[", "").replace("]", "").split(",") if isinstance(value, str) else value
        )
        cast = float if "float" in kind else int if "int" in kind else str
        return tuple(cast(str(item).strip()) if cast is str else cast(item) for item in items)
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return value


class ParamsBase:
    """Mixin: build a parameter dataclass from a plain dict, rejecting unknown keys."""

    @classmethod
    def from_dict(cls, params: Mapping[str, Any] | None = None):
        """Instance from ``params`` (strings are cast to each field's type); missing keys keep
        their defaults."""
        params = dict(params or {})
        known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} parameter(s) {unknown}; known: {sorted(known)}"
            )
        return cls(**{k: _coerce(v, str(known[k].type)) for k, v in params.items()})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every parameter."""
        return asdict(self)  # type: ignore[call-overload]


@dataclass
class FaceParams(ParamsBase):
    """Detection, tracking, audio and storage parameters shared by the video recipes.

    ``detector`` is a ``DETECTORS`` name (``dlib_hog``, the offline default; ``sfd``,
    face-alignment's S3FD, batched on a GPU; ``dlib_cnn``); ``upsample`` and
    ``detector_threshold`` go to the detectors that take them (None keeps each detector's own
    default: dlib's decision rule, S3FD's 0.5), ``device`` to the torch ones.
    ``stride``, ``detect_size``, ``link_iou``, ``max_missed`` and ``shot_threshold`` configure
    :class:`~talking_heads.preprocess.track.TrackParams` (the references detect every frame:
    ``stride=1``). ``fps`` resamples to a constant frame rate (None keeps the source rate).
    ``landmarks`` is a ``LANDMARKERS`` name (``dlib68``, ``fan68``) or ``none``.
    """

    resolution: int = 256
    detector: str = "dlib_hog"
    upsample: int = 1
    detector_threshold: float | None = None
    device: str = "auto"
    stride: int = 5
    detect_size: int | None = None
    link_iou: float = 0.5
    max_missed: int = 1
    shot_threshold: float | None = 0.3
    min_frames: int = 64
    min_size: int = 0
    fps: float | None = None
    landmarks: str = "dlib68"
    audio: bool = True
    require_audio: bool = False
    silence_dbfs: float = -60.0
    sample_rate: int = 16_000
    crf: int = 10
    batch_frames: int = 64

    def __post_init__(self) -> None:
        DETECTORS.get(self.detector)  # a KeyError naming the known detectors when unknown
        if self.landmarks != "none":
            LANDMARKERS.get(self.landmarks)
        for name in ("resolution", "stride", "min_frames", "batch_frames"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= float(self.link_iou) <= 1.0:
            raise ValueError(f"link_iou must lie in [0, 1], got {self.link_iou}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    def track_params(self, smooth: int = 0, smooth_mode: str = "mean") -> TrackParams:
        """The tracker's parameters."""
        return TrackParams(
            stride=self.stride,
            detect_size=self.detect_size,
            link_iou=self.link_iou,
            max_missed=self.max_missed,
            shot_threshold=self.shot_threshold,
            smooth=smooth,
            smooth_mode=smooth_mode,
            batch_frames=min(self.batch_frames, 32),
        )


@dataclass
class FommParams(FaceParams):
    """The ``fomm`` recipe; defaults follow video-preprocessing's ``crop_vox.py``.

    Upstream detects every frame with S3FD and chunks a face at the first frame whose IoU with
    the chunk's first box is below ``iou_threshold`` (0.25), at most ``max_frames`` (1024)
    frames per chunk, rejecting chunks under ``min_frames`` (64) frames, tubes under
    ``min_size`` (256) px and enlarged boxes that leave the frame (``border="reject"``). Here
    the detector runs on a stride and the same chunking applies to each tracked face.
    ``image_increase`` enlarges single images (portraits) instead of ``increase``: a video's
    tube spans the head's motion, a portrait's box only the face. ``resize="fast"`` is an
    OpenCV equivalent of upstream's skimage resize (within one grey level).
    ``several_faces="longest"`` keeps the longest valid chunk when several faces are tracked
    (upstream writes one clip per chunk); ``"skip"`` rejects such inputs.
    """

    increase: float = 0.1
    image_increase: float | None = None
    iou_threshold: float = 0.25
    max_frames: int | None = None
    min_size: int = 256
    border: str = "reject"
    resize: str = "fast"
    several_faces: str = "longest"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.border not in BORDER_MODES:
            raise ValueError(f"border must be one of {BORDER_MODES}, got {self.border!r}")
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {self.resize!r}")
        if self.several_faces not in SEVERAL_FACES:
            raise ValueError(f"several_faces must be one of {SEVERAL_FACES}")
        if not 0.0 <= float(self.iou_threshold) <= 1.0:
            raise ValueError(f"iou_threshold must lie in [0, 1], got {self.iou_threshold}")


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


@dataclass
class EmotionParams(Wav2LipParams):
    """The ``emotion`` recipe (MEAD, CREMA-D; EmoGen's preprocessing): ``wav2lip`` crops at 25
    fps (EmoGen's ``convertFPS.py`` re-encodes with ``-r 25``) plus the ``labels`` columns of
    the dataset manifest that exist (emotion, intensity level, sentence, camera view)."""

    labels: tuple[str, ...] = ("emotion", "level", "sentence", "view")


@dataclass
class HdtfParams(FaceParams):
    """The ``hdtf`` recipe: the annotated, cropped HDTF intervals at ``resolutions``.

    The crop boxes and intervals of the annotation files are applied at acquisition
    (:mod:`talking_heads.datasets.hdtf`, 512² clips); this recipe checks each clip is square,
    writes it at every resolution (anti-aliased, source frame rate) and adds audio, features
    and landmarks. Faces are still tracked, for the landmarks and to reject clips without one.
    """

    resolutions: tuple[int, ...] = (512, 256)
    resolution: int = 512
    min_frames: int = 25
    resize: str = "fast"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.resolutions or min(self.resolutions) < 1:
            raise ValueError(f"resolutions must be positive sizes, got {self.resolutions}")
        self.resolution = int(self.resolutions[0])


class UnusableInputError(Exception):
    """An input the recipe cannot use; the message is the manifest reason."""

    def __init__(self, reason: str, frames_decoded: int = 0) -> None:
        super().__init__(reason)
        self.frames_decoded = frames_decoded


@dataclass
class ItemResult:
    """A recipe's outcome for one input row: its manifest row and per-clip arrays."""

    row: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    frames_decoded: int = 0
    frames_written: int = 0


class Recipe(ABC):
    """A preprocessing recipe: parameters plus a per-item ``process``."""

    name: ClassVar[str] = "abstract"
    params_type: ClassVar[type[ParamsBase]] = ParamsBase
    #: Extra manifest columns this recipe fills.
    columns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.params = self.params_type.from_dict(params)

    @abstractmethod
    def process(self, row: Mapping[str, Any], src: Path, out_dir: Path) -> ItemResult:
        """Process one row read from ``src``; raise :class:`UnusableInputError` to skip it."""

    def prepare(self) -> None:  # noqa: B027 (optional hook: most recipes load nothing)
        """Load models before the first item, so missing weights fail the job up front."""


RECIPES: Registry[type[Recipe]] = Registry("recipe")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


def _with_options(cls: type, options: Mapping[str, Any]) -> Any:
    """Instantiate ``cls`` with the options its constructor accepts."""
    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in options.items() if k in accepted})


def _read(video: VideoSource, indices: list[int]) -> np.ndarray:
    """Decode frames ``indices``; a decoder error marks the input as unusable."""
    try:
        return video.read(indices)
    except Exception as error:  # a stream damaged beyond what the decoder checks caught
        raise UnusableInputError(
            f"cannot decode frames {indices[0]}-{indices[-1]}: {_first_line(error)}"
        ) from error


# Frames per decoded batch when writing: small, so the decoder thread works ahead while the
# previous batch is cropped, resized and encoded instead of everyone waiting for a large batch.
WRITE_BATCH = 8


def _detect_batch(detector: FaceDetector) -> int:
    """Frames per decoded batch for detection: the detector's own batch (GPU backends), at
    least 4."""
    return max(4, int(getattr(detector, "batch_size", 1)))


def _stream(
    video: VideoSource, indices: range, *, region: tuple[int, int, int, int], batch: int
) -> Iterator[tuple[np.ndarray, float]]:
    """``video.stream`` with a decoder error marking the input as unusable."""
    try:
        yield from video.stream(list(indices), region=region, batch=batch)
    except RuntimeError as error:
        raise UnusableInputError(
            f"cannot decode frames {indices[0]}-{indices[-1]}: {_first_line(error)}"
        ) from error


@dataclass
class _Selection:
    """Frames ``[start, end)`` to write: one crop box per frame, the face box inside it."""

    start: int
    end: int
    crop_boxes: np.ndarray
    face_boxes: np.ndarray
    bbox: str


@dataclass
class _Audio:
    row: dict[str, Any]
    arrays: dict[str, np.ndarray]


class FaceVideoRecipe(Recipe):
    """Shared video path: decode, track faces, select frames, crop, audio, landmarks."""

    params_type: ClassVar[type[ParamsBase]] = FaceParams
    smooth: ClassVar[tuple[int, str]] = (0, "mean")

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self.params: FaceParams
        self._detector: FaceDetector | None = None
        self._landmarker: LandmarkDetector | None = None

    @property
    def detector(self) -> FaceDetector:
        """The face detector, created on first use."""
        if self._detector is None:
            p = self.params
            options: dict[str, Any] = {"upsample": p.upsample, "device": p.device}
            if p.detector_threshold is not None:
                options["threshold"] = p.detector_threshold
            self._detector = _with_options(DETECTORS.get(p.detector), options)
        return self._detector

    @property
    def landmarker(self) -> LandmarkDetector | None:
        """The landmark detector (None when ``landmarks`` is ``none``), created on first use."""
        if self.params.landmarks == "none":
            return None
        if self._landmarker is None:
            cls = LANDMARKERS.get(self.params.landmarks)
            self._landmarker = _with_options(cls, {"device": self.params.device})
        return self._landmarker

    def prepare(self) -> None:
        """Create the face detector and landmark model (a missing weights file raises here)."""
        _ = self.detector, self.landmarker

    def track_params(self) -> TrackParams:
        """Tracker parameters of this recipe."""
        smooth, mode = self.smooth
        return self.params.track_params(smooth, mode)

    # -- the per-recipe parts -------------------------------------------------------------

    @abstractmethod
    def select(self, tracking: TrackingResult, video: VideoSource, notes: list[str]) -> _Selection:
        """Frames and crop boxes to write, or :class:`UnusableInputError` with the reason."""

    def outputs(self, row: Mapping[str, Any]) -> dict[int, str]:
        """Output resolution -> relative path of the clip written at it."""
        return {int(self.params.resolution): f"clips/{row['clip_id']}.mp4"}

    def resize(self, crop: np.ndarray, size: int) -> np.ndarray:
        """Resize one crop to ``size`` squared (anti-aliased, as video-preprocessing)."""
        return resize_antialiased(crop, size, getattr(self.params, "resize", "fast"))

    def extra_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Recipe-specific manifest columns."""
        return {}

    # -- shared path ------------------------------------------------------------------------

    def process(self, row: Mapping[str, Any], src: Path, out_dir: Path) -> ItemResult:
        """Decode, track, crop, and extract audio and landmarks for one video row."""
        if row["kind"] != "video":
            raise UnusableInputError(
                f"not a video ({row['kind']}): the {self.name} recipe takes clips"
            )
        try:
            video = open_video(src, target_fps=self.params.fps)
        except UndecodableVideoError as error:
            raise UnusableInputError(str(error)) from error
        with video:
            return self._process_video(row, src, out_dir, video)

    def _process_video(
        self, row: Mapping[str, Any], src: Path, out_dir: Path, video: VideoSource
    ) -> ItemResult:
        p = self.params
        notes = list(video.notes)
        if video.num_frames < p.min_frames:
            raise UnusableInputError(
                f"too short: {video.num_frames} frames < min_frames {p.min_frames}"
            )
        tracking = track_faces(
            lambda indices: _read(video, indices),
            video.num_frames,
            self.detector,
            self.track_params(),
            frame_size=(video.width, video.height),
            stream=lambda indices, max_side: video.stream(
                indices,
                max_side=max_side,
                batch=_detect_batch(self.detector),
                keep_decoded=True,
            ),
        )
        decoded = tracking.frames_detected
        try:
            selection = self.select(tracking, video, notes)
        except UnusableInputError as skip:
            skip.frames_decoded = decoded
            raise
        audio = self._audio(row, src, out_dir, video.fps, selection, notes)
        written, landmarks, extra = self._write(row, out_dir, video, selection)
        decoded += selection.end - selection.start
        arrays = {**audio.arrays, "boxes": selection.face_boxes.astype(np.float32)}
        if landmarks is not None:
            arrays["landmarks"] = landmarks
        rel = next(iter(self.outputs(row).values()))
        size = int(self.params.resolution)
        result_row = {
            "path": rel,
            "num_frames": written,
            "fps": video.fps,
            "width": size,
            "height": size,
            "duration_s": written / video.fps,
            "sha256": sha256_file(out_dir / rel),
            "start_frame": selection.start,
            "end_frame": selection.end,
            "bbox": selection.bbox,
            "faces": max(tracking.faces_per_sample, default=0),
            "notes": "; ".join(notes),
            **audio.row,
            **extra,
            **self.extra_row(row),
        }
        return ItemResult(result_row, arrays, frames_decoded=decoded, frames_written=written)

    def _write(
        self, row: Mapping[str, Any], out_dir: Path, video: VideoSource, selection: _Selection
    ) -> tuple[int, np.ndarray | None, dict[str, Any]]:
        """Crop, resize and encode the selected frames (streamed in batches); landmarks."""
        outputs = self.outputs(row)
        first = int(self.params.resolution)
        writers = {
            size: VideoWriter(out_dir / rel, size, size, video.fps, crf=self.params.crf)
            for size, rel in outputs.items()
        }
        landmarks = []
        boxes = selection.crop_boxes.astype(np.int64)
        region = (
            max(0, int(boxes[:, 0].min())),
            max(0, int(boxes[:, 1].min())),
            min(video.width, int(boxes[:, 2].max())),
            min(video.height, int(boxes[:, 3].max())),
        )
        if region[2] <= region[0] or region[3] <= region[1]:
            raise UnusableInputError("face box leaves the frame")
        try:
            k = 0
            for batch, _ in _stream(
                video,
                range(selection.start, selection.end),
                region=region,
                batch=min(self.params.batch_frames, WRITE_BATCH),
            ):
                for frame in batch:
                    left, top, right, bot = (int(v) for v in boxes[k])
                    crop = _crop_padded(
                        frame, left - region[0], top - region[1], right - region[0], bot - region[1]
                    )
                    for size, writer in writers.items():
                        out = (
                            crop
                            if crop.shape[0] == size and crop.shape[1] == size
                            else (self.resize(crop, size))
                        )
                        writer.write(out)
                        if size == first and self.landmarker is not None:
                            landmarks.append(self._landmarks(out, selection, k, crop.shape))
                    k += 1
            for writer in writers.values():
                writer.close()
        except BaseException:
            for writer in writers.values():
                writer.abort()
            raise
        extra = {}
        if len(outputs) > 1:
            extra["variants"] = ";".join(f"{s}={rel}" for s, rel in outputs.items())
        points = np.stack(landmarks).astype(np.float32) if landmarks else None
        return selection.end - selection.start, points, extra

    def _landmarks(
        self, crop: np.ndarray, selection: _Selection, k: int, crop_shape: tuple[int, ...]
    ) -> np.ndarray:
        """68 points of the face in one written crop (NaN when the box is degenerate)."""
        assert self.landmarker is not None
        scale_y = crop.shape[0] / crop_shape[0]
        scale_x = crop.shape[1] / crop_shape[1]
        x1, y1, x2, y2 = (
            selection.face_boxes[k] - np.repeat(selection.crop_boxes[k][:2], 2)[[0, 2, 1, 3]]
        )
        box = np.array([[x1 * scale_x, y1 * scale_y, x2 * scale_x, y2 * scale_y]])
        if not np.isfinite(box).all() or box[0, 2] - box[0, 0] < 2 or box[0, 3] - box[0, 1] < 2:
            return np.full((68, 2), np.nan, dtype=np.float32)
        return self.landmarker.detect(crop, box)[0]

    def _audio(
        self,
        row: Mapping[str, Any],
        src: Path,
        out_dir: Path,
        fps: float,
        selection: _Selection,
        notes: list[str],
    ) -> _Audio:
        """Audio under the selected frames, its log-mel and MFCC; problems become notes or a
        skip (``require_audio``)."""
        p = self.params
        empty = _Audio(
            {"audio_rate": None, "audio_path": "", "mel_frames": 0, "mfcc_frames": 0}, {}
        )
        if not (p.audio or p.require_audio):
            return empty

        def problem(reason: str) -> _Audio:
            if p.require_audio:
                raise UnusableInputError(reason, frames_decoded=selection.end - selection.start)
            notes.append(reason)
            return empty

        try:
            stream = probe_audio(src)
        except ValueError as error:
            return problem(f"cannot decode audio: {_first_line(error)}")
        if stream is None:
            return problem("no audio stream")
        full = out_dir / "audio" / f".{row['clip_id']}.full.wav"
        try:
            extract_audio(src, full, p.sample_rate)
            samples, _ = read_wav(full)
        except NoAudioStreamError:
            return problem("no audio stream")
        except Exception as error:  # a broken audio track is recorded, not fatal
            return problem(f"cannot decode audio: {_first_line(error)}")
        finally:
            full.unlink(missing_ok=True)
        conversion = conversion_note(stream, p.sample_rate)
        if conversion:
            notes.append(conversion)
        segment = slice_frames(samples, p.sample_rate, fps, selection.start, selection.end)
        if is_silent(segment, threshold_dbfs=p.silence_dbfs):
            return problem(f"silent audio (below {p.silence_dbfs:g} dBFS)")
        rel = f"audio/{row['clip_id']}.wav"
        write_wav(out_dir / rel, segment, p.sample_rate)
        samples, _ = read_wav(out_dir / rel)  # features from the stored 16-bit samples
        arrays: dict[str, np.ndarray] = {}
        if p.sample_rate == WAV2LIP_MEL.sample_rate:
            arrays["mel"] = melspectrogram(samples, p.sample_rate, WAV2LIP_MEL)
            arrays["mfcc"] = syncnet_mfcc(samples, p.sample_rate).astype(np.float32)
        return _Audio(
            {
                "audio_rate": p.sample_rate,
                "audio_path": rel,
                "mel_frames": int(arrays["mel"].shape[1]) if "mel" in arrays else 0,
                "mfcc_frames": int(arrays["mfcc"].shape[1]) if "mfcc" in arrays else 0,
            },
            arrays,
        )


def _crop_padded(frame: np.ndarray, left: int, top: int, right: int, bot: int) -> np.ndarray:
    """``frame[top:bot, left:right]`` with zero padding where the box leaves the frame."""
    height, width = frame.shape[:2]
    if left >= 0 and top >= 0 and right <= width and bot <= height:
        return frame[top:bot, left:right]
    out = np.zeros((bot - top, right - left, 3), dtype=frame.dtype)
    y1, y2, x1, x2 = max(top, 0), min(bot, height), max(left, 0), min(right, width)
    if y2 > y1 and x2 > x1:
        out[y1 - top : y2 - top, x1 - left : x2 - left] = frame[y1:y2, x1:x2]
    return out


def _several_faces(tracking: TrackingResult, min_frames: int) -> tuple[FaceTrack, ...]:
    """Pairs of long face tracks that overlap in time (a second person on screen)."""
    long_tracks = [t for t in tracking.tracks if t.length >= min_frames]
    for i, a in enumerate(long_tracks):
        for b in long_tracks[i + 1 :]:
            overlap = min(a.end, b.end) - max(a.start, b.start)
            if overlap >= min_frames:
                return (a, b)
    return ()


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
        plan = self._plan(
            chunks, (video.width, video.height), tracking.frames_detected, p.min_frames, p.increase
        )
        if not plan.ok:
            longest = tracking.longest()
            ending = (
                f"; the longest face track, frames {longest.start}-{longest.end}, ends: "
                f"{longest.end_reason}"
                if longest is not None and plan.reason.startswith("no face track")
                else ""
            )
            raise UnusableInputError(plan.reason + ending)
        assert plan.box is not None
        if plan.end - plan.start < tracking.num_frames:
            notes.append(f"kept frames {plan.start}-{plan.end} of {tracking.num_frames}")
        face_track = next(t for t in tracking.tracks if t.start <= plan.start and plan.end <= t.end)
        count = plan.end - plan.start
        crop_boxes = np.tile(np.asarray(plan.box, dtype=np.int64), (count, 1))
        face_boxes = face_track.boxes[plan.start - face_track.start : plan.end - face_track.start]
        return _Selection(
            plan.start, plan.end, crop_boxes, face_boxes, "-".join(map(str, plan.box))
        )

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
        crop = crop_frames(image[None], plan.box, p.resolution, p.resize)[0]
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
            },
            arrays=arrays,
            frames_decoded=1,
            frames_written=1,
        )


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
        if track.length < p.min_frames:
            raise UnusableInputError(
                f"no face track of at least {p.min_frames} frames (longest track "
                f"{track.length} frames, {len(tracking.tracks)} tracks; {track.end_reason} at "
                f"frame {track.end})"
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


@RECIPES.register("emotion")
class EmotionRecipe(Wav2LipRecipe):
    """``wav2lip`` crops at 25 fps with the dataset's emotion labels kept."""

    name = "emotion"
    params_type = EmotionParams

    def extra_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The label columns present in the input row."""
        labels: tuple[str, ...] = self.params.labels  # type: ignore[attr-defined]
        return {label: row.get(label) for label in labels if label in row}


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
    import json

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
) -> Path:
    """Run ``recipe`` on shard ``shard_index`` of ``num_shards`` of ``manifest`` into ``out_dir``.

    Bad items never raise: they get status ``skipped`` (unusable input, with the reason) or
    ``failed`` (an unexpected error). ``out_dir`` is built in a temporary directory beside it
    and renamed into place at the end, so an interrupted shard leaves nothing behind and a
    re-run replaces it whole. A shard already complete for the same recipe, parameters and
    input manifest is left as it is unless ``force``. Returns ``out_dir``.
    """
    from tqdm import tqdm

    manifest = Path(manifest)
    out_dir = Path(out_dir)
    recipe_obj = RECIPES.get(recipe)(params)
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
