"""Video, image and frame-directory I/O (decord for decoding, ffmpeg for encoding)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np

from talking_heads.utils.atomic import atomic_path

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif", ".m4v"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by ``imageio-ffmpeg`` (no system ffmpeg needed)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def is_video(path: Path | str) -> bool:
    """Whether ``path`` has a video file suffix."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def is_image(path: Path | str) -> bool:
    """Whether ``path`` has an image file suffix."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_video(path: Path | str) -> tuple[np.ndarray, float]:
    """Decode all frames of a video with decord: ``(T, H, W, 3)`` uint8 RGB and the fps."""
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    fps = float(reader.get_avg_fps())
    if len(reader) == 0:
        raise ValueError(f"{path}: no frames decoded")
    frames = reader.get_batch(list(range(len(reader)))).asnumpy()
    return frames, fps


def read_image(path: Path | str) -> np.ndarray:
    """Read an image as ``(H, W, 3)`` uint8 RGB."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def write_image(path: Path | str, image: np.ndarray) -> Path:
    """Write an ``(H, W, 3)`` uint8 RGB image atomically (format from the suffix)."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(image)).save(tmp, format=_pil_format(path))
    return Path(path)


def _pil_format(path: Path | str) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    return {"jpg": "JPEG", "jpeg": "JPEG"}.get(suffix, suffix.upper())


def read_frames(path: Path | str) -> np.ndarray:
    """Frames ``(T, H, W, 3)`` uint8 from a video file, an image, or a directory of images."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if is_image(p))
        if not files:
            raise FileNotFoundError(f"{path}: directory holds no image frames")
        return np.stack([read_image(p) for p in files])
    if is_image(path):
        return read_image(path)[None]
    return read_video(path)[0]


def write_frames_dir(path: Path | str, frames: np.ndarray) -> Path:
    """Write frames as ``000000.png, 000001.png, ...`` into a directory, atomically."""
    with atomic_path(path) as tmp:
        tmp.mkdir(parents=True)
        for index, frame in enumerate(frames):
            write_image(tmp / f"{index:06d}.png", frame)
    return Path(path)


def write_video(
    path: Path | str,
    frames: np.ndarray,
    fps: float,
    *,
    audio: Path | str | None = None,
    crf: int = 10,
) -> Path:
    """Encode ``(T, H, W, 3)`` uint8 RGB frames to H.264 (yuv444p) with optional audio.

    ``crf`` 10 is visually lossless and decodable by decord; 0 is lossless. Odd frame sizes
    are fine with yuv444p. The file is written atomically.
    """
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    num, height, width, _ = frames.shape
    with atomic_path(path) as tmp:
        cmd = [
            ffmpeg_exe(),
            "-y",
            "-loglevel",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{width}x{height}",
            "-r",
            f"{fps:.6f}",
            "-i",
            "-",
        ]
        if audio is not None:
            cmd += ["-i", str(audio), "-c:a", "aac", "-b:a", "128k", "-shortest"]
        cmd += [
            "-c:v",
            "libx264",
            "-preset",
            "medium",
            "-crf",
            str(crf),
            "-pix_fmt",
            "yuv444p",
            "-frames:v",
            str(num),
            "-f",
            "mp4",
            str(tmp),
        ]
        result = subprocess.run(cmd, input=frames.tobytes(), capture_output=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"ffmpeg failed writing {path}: {result.stderr.decode()[-2000:]}")
    return Path(path)


def probe_video(path: Path | str) -> dict:
    """Container facts of a media file: frames, fps, size, duration and audio presence."""
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True, check=False
    )
    info = result.stderr
    if "Invalid data" in info or "No such file" in info or "Stream #" not in info:
        raise ValueError(f"{path}: not a readable media file")
    facts: dict = {"has_audio": bool(re.search(r"Stream #.*Audio:", info))}
    video = re.search(
        r"Stream #.*Video:.*?(\d{2,5})x(\d{2,5}).*?(?:([\d.]+) fps|([\d.]+) tbr)", info
    )
    if video:
        facts["width"], facts["height"] = int(video.group(1)), int(video.group(2))
        facts["fps"] = float(video.group(3) or video.group(4))
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", info)
    if duration:
        hours, minutes, seconds = duration.groups()
        facts["duration_s"] = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    rate = re.search(r"Audio:.*?(\d+) Hz", info)
    facts["audio_rate"] = int(rate.group(1)) if rate else None
    if video:
        import decord

        try:
            facts["num_frames"] = len(decord.VideoReader(str(path), num_threads=1))
        except Exception:
            facts["num_frames"] = None
    return facts
