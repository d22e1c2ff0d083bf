"""YouTube-sourced datasets: yt-dlp downloads (whole video or annotated sections) and cuts.

yt-dlp runs in-process with the ffmpeg binary that ``imageio-ffmpeg`` ships, so no system
ffmpeg is needed. Failures become :class:`~talking_heads.datasets.transfer.TransferError` with
yt-dlp's own one-line message (video unavailable, private, HTTP 404, ...).
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from talking_heads.datasets.transfer import TransferError, redact_url
from talking_heads.utils.atomic import atomic_path
from talking_heads.utils.media import ffmpeg_exe

log = logging.getLogger(__name__)

#: the format preference the reference download guides use (§8 of our dataset notes)
DEFAULT_FORMAT = "bv*[ext=mp4]+ba[ext=m4a]/b[ext=mp4]/bv*+ba/b"
YOUTUBE_URL_TEMPLATE = "https://www.youtube.com/watch?v={video_id}"


def youtube_format(height: int | None = None) -> str:
    """yt-dlp format string, pinned to ``height`` when given (HDTF's crop boxes need it)."""
    if not height:
        return DEFAULT_FORMAT
    return (
        f"bv*[ext=mp4][height={height}]+ba[ext=m4a]/b[ext=mp4][height={height}]/"
        f"bv*[height={height}]+ba/{DEFAULT_FORMAT}"
    )


def _clean_error(message: str) -> str:
    message = re.sub(r"\x1b\[[0-9;]*m", "", message).replace("ERROR: ", "").strip()
    return redact_url(message.splitlines()[0]) if message else "yt-dlp failed"


def ytdlp_download(
    url: str,
    dest: Path | str,
    *,
    sections: Sequence[tuple[float, float]] | None = None,
    height: int | None = None,
    retries: int = 3,
    progress: bool = False,
) -> Path:
    """Download one video with yt-dlp to ``dest`` (an ``.mp4``); return ``dest``.

    ``sections`` (seconds) fetch only those intervals (``--download-sections`` with
    ``--force-keyframes-at-cuts``) into one file per section named
    ``<dest stem>.<k>.mp4``; the call then returns ``dest`` only as the stem owner and the
    section files lie beside it. An existing ``dest`` is kept (resume).
    """
    import yt_dlp
    from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor
    from yt_dlp.utils import download_range_func

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg = ffmpeg_exe()
    # yt-dlp asks "is ffmpeg available" before it reads the per-instance location
    FFmpegPostProcessor._ffmpeg_location.set(ffmpeg)
    options: dict = {
        "format": youtube_format(height),
        "merge_output_format": "mp4",
        "outtmpl": str(dest.with_suffix(""))
        + (".%(section_number)s" if sections else "")
        + ".%(ext)s",
        "ffmpeg_location": ffmpeg,
        "quiet": True,
        "no_warnings": True,
        "noprogress": not progress,
        "retries": retries,
        "fragment_retries": retries,
        "continuedl": True,
        "noplaylist": True,
        "overwrites": False,
    }
    if sections:
        ranges = download_range_func(None, [tuple(s) for s in sections])

        def numbered_ranges(info: dict, ydl: object) -> Iterator[dict]:
            # plain time ranges carry no index, so every section would be named ".NA" (and all
            # but the first skipped as already present); number them 1, 2, ... for section_path
            for number, section in enumerate(ranges(info, ydl), 1):
                yield {**section, "index": number}

        options["download_ranges"] = numbered_ranges
        options["force_keyframes_at_cuts"] = True
    try:
        with yt_dlp.YoutubeDL(options) as downloader:
            downloader.download([url])
    except yt_dlp.utils.DownloadError as error:
        raise TransferError(f"yt-dlp: {_clean_error(str(error))}") from None
    if not sections and not dest.exists():
        raise TransferError(f"yt-dlp wrote no file for {redact_url(url)}")
    return dest


def section_path(dest: Path, number: int) -> Path:
    """File yt-dlp writes for section ``number`` (1-based) of a sectioned download."""
    return dest.with_name(f"{dest.stem}.{number}.mp4")


def cut_clip(
    source: Path | str,
    dest: Path | str,
    *,
    start_s: float,
    end_s: float,
    crop: tuple[int, int, int, int] | None = None,
    size: int | None = None,
    fps: float | None = None,
    audio: bool = True,
) -> Path:
    """Cut ``[start_s, end_s)`` of ``source`` into ``dest`` (H.264, near-lossless), atomically.

    ``crop`` is ``(x, y, w, h)`` in source pixels, ``size`` a square output side (area
    resampling, anti-aliased), ``fps`` a constant output rate. Audio is kept as AAC unless
    ``audio`` is false.
    """
    if end_s <= start_s:
        raise ValueError(f"empty interval [{start_s}, {end_s})")
    filters = []
    if crop is not None:
        x, y, w, h = crop
        filters.append(f"crop={w}:{h}:{x}:{y}")
    if size is not None:
        filters.append(f"scale={size}:{size}:flags=area")
    if fps is not None:
        filters.append(f"fps={fps}")
    command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    # input seeking jumps to the keyframe before start_s and, since the video is re-encoded,
    # decodes and drops frames up to start_s: frame-exact without decoding from the beginning
    command += ["-ss", f"{start_s:.3f}", "-i", str(source), "-t", f"{end_s - start_s:.3f}"]
    if filters:
        command += ["-vf", ",".join(filters)]
    command += ["-c:v", "libx264", "-crf", "10", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    command += ["-c:a", "aac", "-b:a", "128k"] if audio else ["-an"]
    with atomic_path(dest) as tmp:
        result = subprocess.run([*command, str(tmp)], capture_output=True, text=True)
        if result.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
            raise TransferError(
                f"ffmpeg could not cut {Path(source).name} [{start_s:.2f}, {end_s:.2f}): "
                f"{(result.stderr.strip().splitlines() or ['no output'])[-1]}"
            )
    return Path(dest)
