"""Video, image and frame-directory I/O (decord for decoding, ffmpeg for encoding)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from talking_heads.errors import UserError
from talking_heads.utils.atomic import atomic_path, ensure_parent

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


class MediaError(UserError):
    """A media file cannot be read: empty, truncated, damaged or not of the expected kind."""


def _check_nonempty(path: Path, kind: str) -> None:
    """A missing file is a :class:`FileNotFoundError`, an empty one a :class:`MediaError`."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.is_file() and path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file (0 bytes), not {kind}")


def ffmpeg_reason(path: Path | str) -> str:
    """ffmpeg's first error line on decoding ``path`` (e.g. ``moov atom not found``)."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-xerror"]
    try:
        result = subprocess.run(
            [*cmd, "-i", str(path), "-f", "null", "-"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "no decoder could read it"
    for line in result.stderr.splitlines():
        line = re.sub(r"^(\[[^]]*\]\s*)+", "", line).strip()
        line = re.sub(r"^Error opening input( file)?:\s*", "", line).rstrip(".")
        if line:
            return line
    return "no decoder could read it"


@contextmanager
def _native_stderr() -> Iterator[list[bytes]]:
    """File descriptor 2 redirected to a temporary file while the block runs (native libraries
    log there directly); the list yielded receives what they wrote."""
    sys.stderr.flush()
    saved = os.dup(2)
    written: list[bytes] = []
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield written
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            written.append(sink.read())


def read_video(path: Path | str) -> tuple[np.ndarray, float]:
    """Decode all frames of a video with decord: ``(T, H, W, 3)`` uint8 RGB and the fps.

    An empty, truncated or undecodable file is a :class:`MediaError` naming it and ffmpeg's
    reason (decord's own log lines about it are dropped).
    """
    import decord

    path = Path(path)
    _check_nonempty(path, "a video")
    decord.logging.set_level(decord.logging.QUIET)
    failed = False
    with _native_stderr() as written:
        try:
            reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
            fps = float(reader.get_avg_fps())
            count = len(reader)
            frames = reader.get_batch(list(range(count))).asnumpy() if count else None
            del reader
        except Exception as error:  # decord's RuntimeError/DECORDError give no reason
            failed = True
            error.__traceback__ = None  # the half-built reader is freed (and logs) right here
    if failed:
        raise MediaError(
            f"{path}: not a readable video ({ffmpeg_reason(path)}); the file is truncated, "
            "damaged or not a video"
        )
    if written[0]:
        os.write(2, written[0])
    if frames is None:
        raise MediaError(f"{path}: no frames decoded; the file holds no video stream")
    return frames, fps


def read_image(path: Path | str) -> np.ndarray:
    """Read an image as ``(H, W, 3)`` uint8 RGB (a writable array); an empty, truncated or
    unknown file is a :class:`MediaError` naming it."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    _check_nonempty(path, "an image")
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except UnidentifiedImageError as error:
        raise MediaError(f"{path}: not a readable image (unknown image format)") from error
    except (OSError, ValueError, SyntaxError) as error:
        if isinstance(error, FileNotFoundError | IsADirectoryError | PermissionError):
            raise
        raise MediaError(f"{path}: not a readable image ({error})") from error


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


class VideoWriter:
    """Stream ``(n, H, W, 3)`` uint8 RGB batches into an H.264 file, atomically.

    Frames go to ffmpeg through a pipe as they come, so memory stays at one batch; the file
    appears under its final name only when :meth:`close` succeeds (use it as a context
    manager: an exception discards the partial file). ``crf`` 10 is visually lossless and
    decodable by decord; 0 is lossless. ``pix_fmt`` is yuv444p (no chroma subsampling, any
    frame size) unless asked otherwise, e.g. ``yuv420p`` for a camera-like source (even sizes).
    x264's ``veryfast`` preset encodes about 3x faster than ``medium``; at CRF 10 on face crops
    it stays near 48 dB PSNR (about 1 dB below ``medium``) at a similar file size.
    """

    def __init__(
        self,
        path: Path | str,
        width: int,
        height: int,
        fps: float,
        *,
        audio: Path | str | None = None,
        crf: int = 10,
        pix_fmt: str = "yuv444p",
        preset: str = "veryfast",
    ) -> None:
        self.path = ensure_parent(path)
        self.size = (int(width), int(height))
        self.frames = 0
        self._tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
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
        cmd += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf)]
        cmd += ["-pix_fmt", pix_fmt, "-f", "mp4", str(self._tmp)]
        self._process = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
        )

    def write(self, frames: np.ndarray) -> None:
        """Append ``(n, H, W, 3)`` (or one ``(H, W, 3)``) uint8 RGB frames."""
        frames = np.ascontiguousarray(frames, dtype=np.uint8)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[2:0:-1] != self.size:
            raise ValueError(f"expected frames of shape (n, {self.size[1]}, {self.size[0]}, 3)")
        assert self._process.stdin is not None
        self._process.stdin.write(frames.tobytes())
        self.frames += len(frames)

    def close(self) -> Path:
        """Finish encoding and move the file into place."""
        assert self._process.stdin is not None
        self._process.stdin.close()
        error = self._process.stderr.read().decode() if self._process.stderr else ""
        if self._process.wait() != 0 or self.frames == 0:
            self._tmp.unlink(missing_ok=True)
            raise RuntimeError(f"ffmpeg failed writing {self.path}: {error[-2000:]}")
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and drop the partial file."""
        self._process.kill()
        self._process.wait()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


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
    are fine with yuv444p. The file is written atomically (see :class:`VideoWriter`).
    """
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    with VideoWriter(path, frames.shape[2], frames.shape[1], fps, audio=audio, crf=crf) as out:
        out.write(frames)
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
