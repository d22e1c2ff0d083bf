"""Batched inference over files: ``animate`` (source + driving) and ``reconstruct`` (protocol)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from talking_heads.manifest import read_manifest
from talking_heads.models import METHODS
from talking_heads.utils.atomic import atomic_write_json
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
) -> dict:
    """Animate the ``source`` image (first frame if a video) with the ``driving`` video."""
    device = pick_device(device)
    animator = METHODS.get(method).load_animator(checkpoint, device=device)
    size = animator.resolution
    source_frames = to_tensor(read_frames(source)[:1])
    driving_frames, fps = read_video(driving) if driving.is_file() else (read_frames(driving), 25.0)
    driving_tensor = resize_frames(to_tensor(driving_frames), size)
    source_tensor = resize_frames(source_frames, size)[0]
    start = time.perf_counter()
    generated = animator.animate(
        source_tensor,
        driving_tensor,
        relative=relative,
        adapt_scale=adapt_scale,
        batch_size=batch_size,
        device=device,
        amp=device.startswith("cuda"),
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
    }
    log.info(
        "animated %d frames in %.2f s (%.1f frames/s) on %s",
        stats["frames"],
        seconds,
        stats["frames_per_second"],
        device,
    )
    return stats


def reconstruct_clips(
    method: str,
    checkpoint: Path,
    clip_dirs: list[Path],
    out_dir: Path,
    *,
    split: str | None = None,
    batch_size: int = 16,
    device: str = "auto",
) -> dict:
    """FOMM's reconstruction protocol: each clip is re-generated from its own frame 0.

    ``clip_dirs`` are preprocessed shard directories (``manifest.parquet`` + ``clips/``);
    only ``ok`` video rows (of ``split`` when given) are used. Motion is absolute, as in
    first-order-model's ``reconstruction.py``. Writes ``<clip_id>.mp4`` per clip and
    ``summary.json`` into ``out_dir``.
    """
    device = pick_device(device)
    animator = METHODS.get(method).load_animator(checkpoint, device=device)
    out_dir.mkdir(parents=True, exist_ok=True)
    clips: list[dict] = []
    total_frames, total_seconds = 0, 0.0
    for shard in clip_dirs:
        manifest = read_manifest(shard / "manifest.parquet")
        rows = manifest[(manifest["status"] == "ok") & (manifest["kind"] == "video")]
        if split is not None:
            rows = rows[rows["split"] == split]
        for row in rows.itertuples():
            frames, fps = read_video(shard / row.path)
            video = resize_frames(to_tensor(frames), animator.resolution)
            start = time.perf_counter()
            generated = animator.reconstruct(video, batch_size=batch_size, device=device)
            total_seconds += time.perf_counter() - start
            total_frames += video.shape[0]
            write_video(out_dir / f"{row.clip_id}.mp4", to_frames(generated), fps, crf=0)
            clips.append(
                {"clip_id": row.clip_id, "frames": int(video.shape[0]), "shard": shard.name}
            )
    if not clips:
        raise RuntimeError(f"no usable clips in {[str(d) for d in clip_dirs]} (split={split})")
    summary = {
        "protocol": "reconstruction (frame 0 of each clip is the source; absolute motion)",
        "method": method,
        "checkpoint": str(checkpoint),
        "clips": clips,
        "frames": total_frames,
        "frames_per_second": total_frames / max(total_seconds, 1e-9),
        "device": device,
    }
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
