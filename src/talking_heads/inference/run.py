"""Batched inference over files: ``animate`` (source + driving); the evaluation protocols are in
:mod:`talking_heads.inference.protocols`."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from talking_heads.models import METHODS
from talking_heads.utils.media import read_frames, read_video, write_frames_dir, write_video

log = logging.getLogger(__name__)


def pick_device(device: str = "auto") -> str:
    """``auto`` → ``cuda`` when available, else ``cpu`` (the CPU fallback)."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was requested but no CUDA device is available")
    return device


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 → ``(T, 3, H, W)`` float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)


def to_frames(tensor: torch.Tensor) -> np.ndarray:
    """``(T, 3, H, W)`` float in [0, 1] → ``(T, H, W, 3)`` uint8 (rounded)."""
    array = tensor.detach().clamp(0, 1).mul(255.0).round().to(torch.uint8)
    return array.permute(0, 2, 3, 1).cpu().numpy()


def resize_frames(frames: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(T, 3, H, W)`` frames to ``size``² with anti-aliasing when needed."""
    if frames.shape[-2:] == (size, size):
        return frames
    return torch.nn.functional.interpolate(
        frames, size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )


def write_output(out: Path, frames: np.ndarray, fps: float) -> Path:
    """Write to an ``.mp4`` file or, for any other path, a directory of PNG frames."""
    if out.suffix.lower() in {".mp4", ".avi", ".mov", ".mkv"}:
        return write_video(out, frames, fps)
    return write_frames_dir(out, frames)


def face_landmarks(frames: np.ndarray, backend: str = "auto") -> list[np.ndarray | None]:
    """68 landmarks of the first (most confident) face in each uint8 frame, ``None`` without one.

    ``fan``: S3FD + 2D-FAN-4, what the official demos' ``find_best_frame`` uses (through
    face_alignment); ``dlib``: dlib's HOG detector + 68-point predictor (offline). ``auto``
    takes ``fan`` when both weight files are in the weights directory, else ``dlib``.
    """
    from talking_heads.preprocess.detect import make_detector
    from talking_heads.preprocess.landmarks import LANDMARKERS
    from talking_heads.weights import MissingWeightsError, resolve

    if backend == "auto":
        try:
            resolve("s3fd"), resolve("fan68")
            backend = "fan"
        except MissingWeightsError:
            backend = "dlib"
    if backend == "fan":
        detector, landmarker = make_detector("sfd"), LANDMARKERS.get("fan68")()
    elif backend == "dlib":
        detector, landmarker = make_detector("dlib_hog"), LANDMARKERS.get("dlib68")()
    else:
        raise ValueError(f"unknown landmark backend {backend!r} (auto, fan or dlib)")
    found: list[np.ndarray | None] = []
    for frame, boxes in zip(frames, detector(frames), strict=True):
        if len(boxes) == 0:
            found.append(None)
            continue
        best = boxes[np.argmax(boxes[:, 4])] if boxes.shape[1] > 4 else boxes[0]
        found.append(landmarker.detect(frame, best[None])[0])
    return found


def find_best_frame(source: torch.Tensor, driving: torch.Tensor, backend: str = "auto") -> int:
    """The demos' ``find_best_frame``: the driving frame whose normalised face landmarks are
    nearest the source's (frame 0 when the source has no detectable face)."""
    from talking_heads.models.motion.animate import best_frame_index

    source_landmarks = face_landmarks(to_frames(source[None]), backend)[0]
    if source_landmarks is None:
        log.warning("no face found in the source: best frame 0")
        return 0
    return best_frame_index(source_landmarks, face_landmarks(to_frames(driving), backend))


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
) -> dict:
    """Animate the ``source`` image (first frame if a video) with the ``driving`` video.

    ``best_frame`` (or ``find_best``: :func:`find_best_frame` with ``landmarks``) makes that
    driving frame the reference of the relative motion, as the demos' ``--best_frame`` /
    ``--find_best_frame`` (forward and backward from it). ``amp``: mixed precision where the
    device has it (fp16 on CUDA, bf16 on bf16-capable CPUs); ``False`` computes in fp32.
    """
    device = pick_device(device)
    animator = METHODS.get(method).load_animator(checkpoint, device=device)
    size = animator.resolution
    source_frames = to_tensor(read_frames(source)[:1])
    driving_frames, fps = read_video(driving) if driving.is_file() else (read_frames(driving), 25.0)
    driving_tensor = resize_frames(to_tensor(driving_frames), size)
    source_tensor = resize_frames(source_frames, size)[0]
    if find_best and best_frame is None:
        best_frame = find_best_frame(source_tensor, driving_tensor, landmarks)
        log.info("best-aligned driving frame: %d", best_frame)
    reference = int(best_frame or 0)
    if not 0 <= reference < driving_tensor.shape[0]:
        raise ValueError(f"best frame {reference} outside the {driving_tensor.shape[0]} frames")
    start = time.perf_counter()
    generated = animator.animate(
        source_tensor,
        driving_tensor,
        relative=relative,
        adapt_scale=adapt_scale,
        batch_size=batch_size,
        device=device,
        amp=amp,
        reference_frame=reference,
    )
    seconds = time.perf_counter() - start
    write_output(out, to_frames(generated), fps)
    stats = {
        "method": method,
        "frames": int(driving_tensor.shape[0]),
        "seconds": seconds,
        "frames_per_second": driving_tensor.shape[0] / max(seconds, 1e-9),
        "device": device,
        "resolution": size,
        "relative": relative,
        "adapt_scale": adapt_scale,
        "reference_frame": reference,
        "precision": "amp" if amp else "fp32",
    }
    log.info(
        "animated %d frames in %.2f s (%.1f frames/s) on %s",
        stats["frames"],
        seconds,
        stats["frames_per_second"],
        device,
    )
    return stats
