"""Preprocessing recipes (registered in ``RECIPES``) and the sharded runner :func:`run_shard`.

A recipe turns one manifest row (a video or an image) into outputs in a shard directory and
returns that row's output manifest entry. :func:`run_shard` selects the rows of one shard,
runs the recipe on each, and writes the shard directory atomically::

    out_dir/
      clips/<clip_id>.mp4        video crops (H.264 yuv444p, source fps, no audio)
      clips/<clip_id>.png        image crops
      audio/<clip_id>.wav        16 kHz mono audio under the cropped frames
      features.npz               Wav2Lip log-mel (80, T) float32 per clip id with audio
      manifest.parquet           one row per input item: ok / skipped / failed, with a reason
      summary.json               counts by status and reason, throughput, parameters

Output paths in the shard manifest are relative to ``out_dir``; the output columns (``path``,
``num_frames``, ...) describe the crop and stay empty for skipped or failed rows. Extra
columns: ``input_path`` (the dataset manifest's ``path``, relative to that manifest),
``input_sha256``, ``start_frame``/``end_frame`` (the cropped source
frames), ``bbox`` (``left-top-right-bot`` crop box in source pixels, as in vox-metadata.csv),
``audio_path``, ``mel_frames`` and ``notes`` (e.g. "no audio stream" for an ok clip).

Sharding: the manifest's ``video`` and ``image`` rows are sorted by ``clip_id`` and row ``i``
goes to shard ``i % num_shards``. The assignment is deterministic for a given manifest;
adding rows to the dataset reshuffles shards, so re-run every shard after a dataset change.
"""

from __future__ import annotations

import inspect
import logging
import sys
import time
import traceback
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from talking_heads.manifest import MANIFEST_COLUMNS, read_manifest, sha256_file, write_manifest
from talking_heads.preprocess.audio import (
    WAV2LIP_MEL,
    NoAudioStreamError,
    extract_audio,
    melspectrogram,
    read_wav,
    slice_frames,
    write_wav,
)
from talking_heads.preprocess.crop import (
    BORDER_MODES,
    CropPlan,
    crop_frames,
    link_tracks,
    plan_crop,
    sample_indices,
)
from talking_heads.preprocess.detect import DETECTORS, FaceDetector
from talking_heads.registry import Registry
from talking_heads.utils.atomic import atomic_path, atomic_write_json
from talking_heads.utils.media import read_image, write_image, write_video

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
    "notes",
)


class ParamsBase:
    """Mixin: build a parameter dataclass from a plain dict, rejecting unknown keys."""

    @classmethod
    def from_dict(cls, params: Mapping[str, Any] | None = None):
        """Instance from ``params``; missing keys keep their defaults."""
        params = dict(params or {})
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} parameter(s) {unknown}; known: {sorted(known)}"
            )
        return cls(**params)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every parameter."""
        return asdict(self)  # type: ignore[call-overload]


@dataclass
class FommParams(ParamsBase):
    """Parameters of the ``fomm`` recipe; defaults follow video-preprocessing's ``crop_vox.py``.

    Upstream detects every frame with S3FD; ``dlib_hog`` is the default here because it needs
    no downloaded weights. ``stride``, ``max_missed``, ``upsample``, ``detector_threshold``
    and ``image_increase`` have no upstream counterpart (``stride=1, max_missed=0`` is
    upstream's behaviour). ``image_increase`` enlarges single images (portraits) instead of
    ``increase``: a video's tube box spans the head's motion, a portrait's box only the face,
    so a larger value frames a portrait like the driving clips.
    """

    resolution: int = 256
    increase: float = 0.1
    image_increase: float | None = None
    detector: str = "dlib_hog"
    upsample: int = 1
    detector_threshold: float = 0.0
    stride: int = 1
    iou_threshold: float = 0.25
    max_missed: int = 0
    min_frames: int = 64
    max_frames: int | None = None
    min_size: int = 256
    border: str = "reject"
    audio: bool = True
    require_audio: bool = False
    sample_rate: int = 16_000
    crf: int = 10
    batch_frames: int = 64

    def __post_init__(self) -> None:
        if self.border not in BORDER_MODES:
            raise ValueError(f"border must be one of {BORDER_MODES}, got {self.border!r}")
        DETECTORS.get(self.detector)  # a KeyError naming the known detectors when unknown
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(spec.default, bool) and isinstance(value, str):
                setattr(self, spec.name, value.strip().lower() in {"1", "true", "yes", "on"})
            elif isinstance(spec.default, bool) or value is None:
                continue
            elif isinstance(spec.default, int) or spec.name == "max_frames":
                setattr(self, spec.name, int(value))
            elif isinstance(spec.default, float) or spec.name == "image_increase":
                setattr(self, spec.name, float(value))
        for name in ("resolution", "stride", "min_frames", "min_size", "batch_frames"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= float(self.iou_threshold) <= 1.0:
            raise ValueError(f"iou_threshold must lie in [0, 1], got {self.iou_threshold}")


class UnusableInputError(Exception):
    """An input the recipe cannot use; the message is the manifest reason."""

    def __init__(self, reason: str, frames_decoded: int = 0) -> None:
        super().__init__(reason)
        self.frames_decoded = frames_decoded


@dataclass
class ItemResult:
    """A recipe's outcome for one input row."""

    row: dict[str, Any]
    mel: np.ndarray | None = None
    frames_decoded: int = 0
    frames_written: int = 0


class Recipe(ABC):
    """A preprocessing recipe: parameters plus a per-item ``process``."""

    name: ClassVar[str] = "abstract"
    params_type: ClassVar[type[ParamsBase]] = ParamsBase

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.params = self.params_type.from_dict(params)

    @abstractmethod
    def process(self, row: Mapping[str, Any], src: Path, out_dir: Path) -> ItemResult:
        """Process one row read from ``src``; raise :class:`UnusableInputError` to skip it."""


RECIPES: Registry[type[Recipe]] = Registry("recipe")


def _make_detector(params: FommParams) -> FaceDetector:
    cls = DETECTORS.get(params.detector)
    options = {"upsample": params.upsample, "threshold": params.detector_threshold}
    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in options.items() if k in accepted})


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


def _read_frames(reader: Any, indices: list[int]) -> np.ndarray:
    """Decode frames ``indices``; a decoder error marks the input as unusable."""
    try:
        return reader.get_batch(indices).asnumpy()
    except Exception as error:  # a truncated or corrupt stream
        raise UnusableInputError(
            f"cannot decode frames {indices[0]}-{indices[-1]}: {_first_line(error)}"
        ) from error


@RECIPES.register("fomm")
class FommRecipe(Recipe):
    """FOMM / video-preprocessing crops for clips and portraits, plus Wav2Lip audio features."""

    name = "fomm"
    params_type = FommParams

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self.params: FommParams
        self._detector: FaceDetector | None = None

    @property
    def detector(self) -> FaceDetector:
        """The face detector, created on first use."""
        if self._detector is None:
            self._detector = _make_detector(self.params)
        return self._detector

    def process(self, row: Mapping[str, Any], src: Path, out_dir: Path) -> ItemResult:
        """Crop a video or image row; extract audio and log-mel for videos."""
        if row["kind"] == "image":
            return self._process_image(row, src, out_dir)
        return self._process_video(row, src, out_dir)

    def _plan(
        self,
        indices: list[int],
        detections: list[np.ndarray],
        num_frames: int,
        frame_size: tuple[int, int],
        min_frames: int,
        increase: float,
    ) -> CropPlan:
        p = self.params
        tracks = link_tracks(
            indices,
            detections,
            num_frames,
            iou_threshold=p.iou_threshold,
            max_missed=p.max_missed,
            max_frames=p.max_frames,
        )
        return plan_crop(
            tracks,
            frame_size,
            num_sampled=len(indices),
            min_frames=min_frames,
            min_size=p.min_size,
            increase=increase,
            border=p.border,
        )

    def _process_image(self, row: Mapping[str, Any], src: Path, out_dir: Path) -> ItemResult:
        try:
            image = read_image(src)
        except Exception as error:  # any decoder error means an unusable input
            raise UnusableInputError(f"cannot decode: {_first_line(error)}") from error
        height, width = image.shape[:2]
        increase = self.params.image_increase
        increase = self.params.increase if increase is None else increase
        plan = self._plan([0], self.detector.detect(image[None]), 1, (width, height), 1, increase)
        if not plan.ok:
            raise UnusableInputError(plan.reason)
        assert plan.box is not None
        crop = crop_frames(image[None], plan.box, self.params.resolution)[0]
        rel = f"clips/{row['clip_id']}.png"
        write_image(out_dir / rel, crop)
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
            },
            frames_decoded=1,
            frames_written=1,
        )

    def _process_video(self, row: Mapping[str, Any], src: Path, out_dir: Path) -> ItemResult:
        import decord

        p = self.params
        try:
            reader = decord.VideoReader(str(src), ctx=decord.cpu(0), num_threads=1)
            num_frames = len(reader)
            fps = float(reader.get_avg_fps())
            if num_frames == 0:
                raise ValueError("no video frames")
            height, width = reader[0].shape[:2]
        except Exception as error:  # any decoder error means an unusable input
            raise UnusableInputError(f"cannot decode: {_first_line(error)}") from error

        indices = sample_indices(num_frames, p.stride)
        detections: list[np.ndarray] = []
        for begin in range(0, len(indices), p.batch_frames):
            batch = _read_frames(reader, indices[begin : begin + p.batch_frames])
            detections += self.detector.detect(batch)
        plan = self._plan(
            indices, detections, num_frames, (width, height), p.min_frames, p.increase
        )
        if not plan.ok:
            raise UnusableInputError(plan.reason, frames_decoded=len(indices))
        assert plan.box is not None

        notes: list[str] = []
        audio_row: dict[str, Any] = {"audio_rate": None, "audio_path": "", "mel_frames": 0}
        mel = None
        if p.audio or p.require_audio:
            audio_row, mel, note = self._audio(row, src, out_dir, fps, plan)
            if note:
                if p.require_audio:
                    raise UnusableInputError(note, frames_decoded=len(indices))
                notes.append(note)

        crops = []
        for begin in range(plan.start, plan.end, p.batch_frames):
            stop = min(begin + p.batch_frames, plan.end)
            frames = _read_frames(reader, list(range(begin, stop)))
            crops.append(crop_frames(frames, plan.box, p.resolution))
        clip = np.concatenate(crops)
        rel = f"clips/{row['clip_id']}.mp4"
        write_video(out_dir / rel, clip, fps, crf=p.crf)
        return ItemResult(
            row={
                "path": rel,
                "num_frames": len(clip),
                "fps": fps,
                "width": clip.shape[2],
                "height": clip.shape[1],
                "duration_s": len(clip) / fps,
                "sha256": sha256_file(out_dir / rel),
                "start_frame": plan.start,
                "end_frame": plan.end,
                "bbox": "-".join(map(str, plan.box)),
                "notes": "; ".join(notes),
                **audio_row,
            },
            mel=mel,
            frames_decoded=len(indices) + len(clip),
            frames_written=len(clip),
        )

    def _audio(
        self, row: Mapping[str, Any], src: Path, out_dir: Path, fps: float, plan: CropPlan
    ) -> tuple[dict[str, Any], np.ndarray | None, str]:
        """Audio under the cropped frames, its log-mel, and a note when there is none."""
        rate = self.params.sample_rate
        empty = {"audio_rate": None, "audio_path": "", "mel_frames": 0}
        full = out_dir / "audio" / f".{row['clip_id']}.full.wav"
        try:
            extract_audio(src, full, rate)
            samples, _ = read_wav(full)
        except NoAudioStreamError:
            return empty, None, "no audio stream"
        except Exception as error:  # a broken audio track is recorded, not fatal
            return empty, None, f"cannot decode audio: {_first_line(error)}"
        finally:
            full.unlink(missing_ok=True)
        segment = slice_frames(samples, rate, fps, plan.start, plan.end)
        rel = f"audio/{row['clip_id']}.wav"
        write_wav(out_dir / rel, segment, rate)
        samples, _ = read_wav(out_dir / rel)  # features from the stored 16-bit samples
        mel = None
        if rate == WAV2LIP_MEL.sample_rate:
            mel = melspectrogram(samples, rate, WAV2LIP_MEL)
        mel_frames = 0 if mel is None else int(mel.shape[1])
        return {"audio_rate": rate, "audio_path": rel, "mel_frames": mel_frames}, mel, ""


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


def _base_row(row: Mapping[str, Any], src: Path) -> dict[str, Any]:
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
        "notes": "",
    }


def _run_item(recipe: Recipe, row: Mapping[str, Any], src: Path, out_dir: Path) -> ItemResult:
    """Run the recipe on one row; never raises (skips and failures become the row status)."""
    base = _base_row(row, src)
    status = row.get("status") or "ok"
    if status != "ok":
        reason = row.get("reason") or "no reason given"
        return ItemResult({**base, "status": "skipped", "reason": f"input {status}: {reason}"})
    if not src.is_file():
        return ItemResult({**base, "status": "skipped", "reason": f"missing input file {src}"})
    if src.stat().st_size == 0:
        return ItemResult({**base, "status": "skipped", "reason": "cannot decode: empty file"})
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


def _typed_manifest(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=[*MANIFEST_COLUMNS, *EXTRA_COLUMNS])
    for column in (
        "num_frames",
        "width",
        "height",
        "audio_rate",
        "start_frame",
        "end_frame",
        "mel_frames",
    ):
        df[column] = pd.array(df[column], dtype="Int64")
    for column in ("fps", "duration_s"):
        df[column] = pd.array(df[column], dtype="Float64")
    for column in (
        "speaker",
        "split",
        "source",
        "path",
        "sha256",
        "reason",
        "input_path",
        "input_sha256",
        "bbox",
        "audio_path",
        "notes",
    ):
        df[column] = df[column].fillna("").astype(str)
    return df


@dataclass
class _Progress:
    frames: int = 0
    written: int = 0
    by_status: Counter = field(default_factory=Counter)


def run_shard(
    manifest: Path | str,
    recipe: str,
    params: Mapping[str, Any] | None,
    shard_index: int,
    num_shards: int,
    out_dir: Path | str,
) -> Path:
    """Run ``recipe`` on shard ``shard_index`` of ``num_shards`` of ``manifest`` into ``out_dir``.

    Bad items never raise: they get status ``skipped`` (unusable input, with the reason) or
    ``failed`` (an unexpected error). ``out_dir`` is built in a temporary directory beside it
    and renamed into place at the end, so an interrupted shard leaves nothing behind and a
    re-run replaces it whole. Returns ``out_dir``.
    """
    from tqdm import tqdm

    manifest = Path(manifest)
    out_dir = Path(out_dir)
    recipe_obj = RECIPES.get(recipe)(params)
    rows = select_shard(read_manifest(manifest), shard_index, num_shards)
    log.info(
        "%s shard %d/%d: %d items from %s", recipe, shard_index, num_shards, len(rows), manifest
    )
    started = time.perf_counter()
    progress = _Progress()
    out_rows: list[dict[str, Any]] = []
    mels: dict[str, np.ndarray] = {}
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
            if result.mel is not None:
                mels[str(row["clip_id"])] = result.mel
            progress.frames += result.frames_decoded
            progress.written += result.frames_written
            progress.by_status[result.row["status"]] += 1
            elapsed = max(time.perf_counter() - started, 1e-9)
            bar.set_postfix(
                frames_per_s=f"{progress.frames / elapsed:.1f}", **dict(progress.by_status)
            )
        bar.close()
        with open(tmp / "features.npz", "wb") as handle:
            np.savez(handle, **mels)
        table = _typed_manifest(out_rows)
        write_manifest(table, tmp / "manifest.parquet")
        elapsed = time.perf_counter() - started
        summary = {
            "recipe": recipe,
            "params": recipe_obj.params.to_dict(),
            "mel": WAV2LIP_MEL.to_dict(),
            "manifest": str(manifest),
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
