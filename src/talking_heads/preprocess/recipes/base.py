"""What every recipe shares: typed parameters, the :class:`Recipe` interface and registry, and
:class:`FaceVideoRecipe`, the video path (decode, track faces, select frames, crop, audio,
landmarks) the video recipes specialise."""

from __future__ import annotations

import inspect
import logging
import math
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from talking_heads.config import ConfigError, typed
from talking_heads.manifest import sha256_file
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
from talking_heads.preprocess.crop import crop_padded, resize_antialiased
from talking_heads.preprocess.decode import UndecodableVideoError, VideoSource, open_video
from talking_heads.preprocess.detect import DETECTORS, FaceDetector
from talking_heads.preprocess.landmarks import LANDMARKERS, LandmarkDetector
from talking_heads.preprocess.track import FaceTrack, TrackingResult, TrackParams, track_faces
from talking_heads.registry import Registry
from talking_heads.utils.media import VideoWriter

log = logging.getLogger(__name__)

SEVERAL_FACES = ("longest", "skip")
_NONE_TEXT = frozenset({"none", "null", "~", ""})
_TRUE_TEXT = frozenset({"true", "yes", "on", "1"})
_FALSE_TEXT = frozenset({"false", "no", "off", "0"})


def _union_members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def from_text(value: Any, annotation: Any) -> Any:
    """A command-line value (``--param key=value`` text, Snakemake's ``a,b`` lists) as what
    its field's ``annotation`` takes: ``none`` for an optional field, ``a,b`` for a tuple,
    numbers and ``true``/``false``. Anything else is returned unchanged, for
    :func:`talking_heads.config.typed` to check."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    members = _union_members(annotation)
    kinds = [m for m in members if m is not type(None)]
    if len(kinds) < len(members) and text.lower() in _NONE_TEXT:
        return None
    if len(kinds) != 1:
        return value
    kind = kinds[0]
    if typing.get_origin(kind) in (tuple, list):
        item = (typing.get_args(kind) or (str,))[0]
        parts = (part.strip() for part in text.strip("[]()").split(","))
        return [from_text(part, item) for part in parts if part]
    if kind is bool:
        lowered = text.lower()
        return True if lowered in _TRUE_TEXT else False if lowered in _FALSE_TEXT else value
    for cast in (int, float):
        if kind is cast:
            try:
                return cast(text)
            except ValueError:
                return value
    return value


class ParamsBase:
    """Mixin of the recipe parameter dataclasses: construction from config or command-line
    values through :func:`talking_heads.config.typed`."""

    #: the recipe the parameters belong to (named in error messages)
    recipe: ClassVar[str] = "recipe"

    @classmethod
    def from_dict(
        cls,
        params: Mapping[str, Any] | None = None,
        *,
        recipe: str | None = None,
        source: str | None = None,
    ) -> Any:
        """Instance from ``params``; missing keys keep their defaults, text is read as each
        field's type (:func:`from_text`). An unknown key or a wrong value is a
        :class:`~talking_heads.config.ConfigError` naming the recipe (or ``source``) and the
        parameter."""
        where = source or f"recipe {recipe or cls.recipe!r}"
        hints = typing.get_type_hints(cls)
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        values = {
            key: from_text(value, hints[key]) if key in known else value
            for key, value in dict(params or {}).items()
        }
        try:
            return typed(cls, values, source=where)  # type: ignore[type-var]
        except ConfigError:
            raise
        except KeyError as error:  # an unknown registry name (detector, landmarks)
            raise ConfigError(f"{where}: {error.args[0] if error.args else error}") from None
        except ValueError as error:  # a range check of __post_init__
            raise ConfigError(f"{where}: {error}") from None

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
    A kept face track needs ``min_frames`` frames and, with ``min_coverage``, that share of
    the clip's frames (a face passing by in a clip without a speaker is no track to keep).
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
    min_coverage: float = 0.0
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
        if not 0.0 <= float(self.min_coverage) <= 1.0:
            raise ValueError(f"min_coverage must lie in [0, 1], got {self.min_coverage}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    def min_track_frames(self, num_frames: int) -> int:
        """Frames a kept face track needs in a clip of ``num_frames``."""
        return max(int(self.min_frames), math.ceil(float(self.min_coverage) * num_frames))

    def coverage_note(self, needed: int, num_frames: int) -> str:
        """What a missing-track reason adds when ``min_coverage`` set the length."""
        if needed <= self.min_frames:
            return ""
        return f"; min_coverage {self.min_coverage:g}: {needed} of the clip's {num_frames} frames"

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
        self.params = self.params_type.from_dict(params, recipe=self.name)

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

    @property
    def pad_mode(self) -> str:
        """How a crop box leaving the frame is filled (``edge`` or ``constant`` black)."""
        return str(getattr(self.params, "pad_mode", "constant"))

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
                    crop = crop_padded(
                        frame,
                        (left - region[0], top - region[1], right - region[0], bot - region[1]),
                        self.pad_mode,
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
        """Audio under the selected frames (from the row's ``audio_file`` when it has one,
        else from ``src``), its log-mel and MFCC; problems become notes or a skip
        (``require_audio``)."""
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

        audio_src = audio_file(row)
        if audio_src is not None:
            if not audio_src.is_file():
                return problem(f"missing audio file {audio_src.name}")
            notes.append(f"audio from {audio_src.name}")
        audio_src = audio_src or src
        try:
            stream = probe_audio(audio_src)
        except ValueError as error:
            return problem(f"cannot decode audio: {_first_line(error)}")
        if stream is None:
            return problem("no audio stream")
        full = out_dir / "audio" / f".{row['clip_id']}.full.wav"
        try:
            extract_audio(audio_src, full, p.sample_rate)
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


def audio_file(row: Mapping[str, Any]) -> Path | None:
    """The row's separate audio file (an ``audio_file`` column, e.g. a folder dataset's
    same-stem ``.wav``), or None when the clip's own audio track is used."""
    value = row.get("audio_file")
    return Path(value) if isinstance(value, str) and value.strip() else None


def _several_faces(tracking: TrackingResult, min_frames: int) -> tuple[FaceTrack, ...]:
    """Pairs of long face tracks that overlap in time (a second person on screen)."""
    long_tracks = [t for t in tracking.tracks if t.length >= min_frames]
    for i, a in enumerate(long_tracks):
        for b in long_tracks[i + 1 :]:
            overlap = min(a.end, b.end) - max(a.start, b.start)
            if overlap >= min_frames:
                return (a, b)
    return ()
