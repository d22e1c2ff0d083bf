"""Generation over files: ``talking-heads generate`` for every method, ``animate`` (the
video-driven spelling) and ``lipsync`` (face video + speech); the evaluation protocols are in
:mod:`talking_heads.inference.protocols`.

Inputs are given by kind (:data:`talking_heads.models.interface.INPUT_KINDS`) and checked
against the method's declaration before anything is loaded, so a missing or unexpected input
is one clear error naming it and the method's inputs.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from talking_heads.models import METHODS
from talking_heads.models.interface import AudioClip, GenerationInputs, InputError, check_inputs
from talking_heads.utils.frames import resize_frames, to_frames, to_tensor
from talking_heads.utils.media import (
    is_image,
    read_frames,
    read_video,
    write_frames_dir,
    write_video,
)

__all__ = [
    "animate_files",
    "generate_files",
    "load_inputs",
    "pick_device",
    "resize_frames",
    "to_frames",
    "to_tensor",
    "write_output",
]

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv"}


def pick_device(device: str = "auto") -> str:
    """``auto`` → ``cuda`` when available, else ``cpu`` (the CPU fallback)."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was requested but no CUDA device is available")
    return device


def write_output(out: Path, frames: np.ndarray, fps: float, audio: Path | None = None) -> Path:
    """Write to a video file (with ``audio`` muxed in when given) or, for any other path, a
    directory of PNG frames."""
    if out.suffix.lower() in VIDEO_SUFFIXES:
        return write_video(out, frames, fps, audio=audio)
    return write_frames_dir(out, frames)


def _existing(kind: str, path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"--{kind} {path}: no such file or directory")
    return path


def _read_image(kind: str, path: Path) -> torch.Tensor:
    return to_tensor(read_frames(_existing(kind, path))[:1])[0]


def _read_video(kind: str, path: Path, *, still_ok: bool) -> tuple[torch.Tensor, float]:
    path = _existing(kind, path)
    if path.is_file() and is_image(path):
        if not still_ok:
            raise InputError(f"--{kind} {path} is an image; {kind} needs a video")
        return to_tensor(read_frames(path)[:1]), 25.0
    if path.is_dir():
        return to_tensor(read_frames(path)), 25.0
    frames, fps = read_video(path)
    return to_tensor(frames), float(fps)


def _read_face(path: Path, *, still_ok: bool) -> tuple[torch.Tensor, float]:
    """A face video on a constant-rate timeline: a variable-frame-rate file is resampled to
    its rounded average rate by timestamps (the preprocessing decoder's CFR conversion, with
    its note logged), so that each frame sits under the audio it is generated from; an image
    or a folder of frames is read as one (25 fps)."""
    from talking_heads.preprocess.decode import UndecodableVideoError, open_video

    path = _existing("face", path)
    if path.is_dir() or is_image(path):
        return _read_video("face", path, still_ok=still_ok)
    try:
        video = open_video(path)
    except UndecodableVideoError as error:
        raise InputError(f"--face {path}: {error}") from error
    with video:
        frames = video.read(list(range(video.num_frames)))
        for note in video.notes:
            log.info("--face %s: %s", path.name, note)
        return to_tensor(frames), float(video.fps)


def _read_audio(path: Path) -> AudioClip:
    """Speech from any file with an audio track, as 16 kHz mono (ffmpeg's conversion)."""
    from talking_heads.preprocess.audio import extract_audio, read_wav

    path = _existing("audio", path)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            wav = extract_audio(path, Path(tmp) / "audio.wav")
        except Exception as error:  # ffmpeg's reason, as one line
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else error
            raise InputError(f"--audio {path}: no readable audio ({reason})") from error
        samples, rate = read_wav(wav)
    return AudioClip(samples=samples, sample_rate=rate, path=path)


def _read_array(kind: str, path: Path) -> np.ndarray:
    path = _existing(kind, path)
    try:
        return np.load(path, allow_pickle=False)
    except Exception as error:
        raise InputError(f"--{kind} {path}: not a .npy array ({error})") from error


def load_inputs(given: Mapping[str, Any], *, still_face_ok: bool = True) -> GenerationInputs:
    """Read every given input by its kind (paths, or the label for ``emotion``)."""
    inputs = GenerationInputs()
    for kind, value in given.items():
        if kind == "source":
            inputs.source = _read_image(kind, Path(value))
        elif kind == "driving":
            inputs.driving, inputs.fps = _read_video(kind, Path(value), still_ok=False)
        elif kind == "face":
            inputs.face, inputs.fps = _read_face(Path(value), still_ok=still_face_ok)
            inputs.face_path = Path(value)
        elif kind == "audio":
            inputs.audio = _read_audio(Path(value))
        elif kind == "emotion":
            inputs.emotion = str(value)
        elif kind in ("coefficients", "landmarks", "pose"):
            setattr(inputs, kind, _read_array(kind, Path(value)))
        else:
            raise InputError(f"unknown input kind {kind!r}")
    return inputs


def generate_files(
    method: str,
    checkpoint: Path,
    given: Mapping[str, Any],
    out: Path,
    *,
    options: Mapping[str, Any] | None = None,
    batch_size: int = 16,
    device: str = "auto",
    amp: bool = True,
    family: str | None = None,
) -> dict[str, Any]:
    """Generate with ``method`` from the ``given`` inputs (kind → path or label) into ``out``.

    The inputs and ``options`` are checked against the method's declaration first (and, with
    ``family``, the method must belong to it: ``lipsync`` passes ``lip-sync``). ``amp``: mixed
    precision where the device has it (fp16 on CUDA, bf16 on bf16-capable CPUs).
    """
    spec = METHODS.get(method)
    declaration = spec.declaration
    if family is not None and spec.family != family:
        raise InputError(
            f"{method} is a {spec.family} method, not {family}; "
            f"use `talking-heads generate --method {method}`"
        )
    given = {k: v for k, v in given.items() if v is not None}
    check_inputs(method, declaration, list(given))
    resolved = declaration.resolve_options(options or {})
    device = pick_device(device)
    generator = spec.load_generator(checkpoint, device=device)
    inputs = load_inputs(given)
    start = time.perf_counter()
    generated = generator.synthesize(
        inputs, resolved, batch_size=batch_size, device=device, amp=amp
    )
    seconds = time.perf_counter() - start
    audio = inputs.audio.path if inputs.audio is not None else None
    write_output(out, to_frames(generated), inputs.fps, audio=audio)
    stats = {
        "method": method,
        "inputs": {k: str(v) for k, v in given.items()},
        "options": resolved,
        "frames": int(generated.shape[0]),
        "seconds": seconds,
        "frames_per_second": generated.shape[0] / max(seconds, 1e-9),
        "device": device,
        "resolution": generator.resolution,
        "precision": "amp" if amp else "fp32",
    }
    if getattr(generator, "notes", None):
        stats["notes"] = list(generator.notes)
        for note in generator.notes:
            log.warning("%s", note)
    if hasattr(generator, "reference_frame"):
        stats["reference_frame"] = generator.reference_frame
    log.info(
        "generated %d frames in %.2f s (%.1f frames/s) on %s",
        stats["frames"],
        seconds,
        stats["frames_per_second"],
        device,
    )
    return stats


def animate_files(
    method: str,
    checkpoint: Path,
    source: Path,
    driving: Path,
    out: Path,
    *,
    relative: bool = True,
    adapt_scale: bool = True,
    batch_size: int = 16,
    device: str = "auto",
    best_frame: int | None = None,
    find_best: bool = False,
    landmarks: str = "auto",
    amp: bool = True,
) -> dict[str, Any]:
    """Animate the ``source`` image (first frame if a video) with the ``driving`` video: the
    motion-transfer spelling of :func:`generate_files`.

    ``best_frame`` (or ``find_best``: the driving frame whose face landmarks best match the
    source, with ``landmarks``) makes that driving frame the reference of the relative motion,
    as the demos' ``--best_frame`` / ``--find_best_frame``.
    """
    options = {
        "relative": relative,
        "adapt_scale": adapt_scale,
        "best_frame": -1 if best_frame is None else best_frame,
        "find_best_frame": find_best,
        "landmarks": landmarks,
    }
    stats = generate_files(
        method,
        checkpoint,
        {"source": source, "driving": driving},
        out,
        options=options,
        batch_size=batch_size,
        device=device,
        amp=amp,
        family="motion-transfer",
    )
    stats.update(relative=relative, adapt_scale=adapt_scale)
    return stats
