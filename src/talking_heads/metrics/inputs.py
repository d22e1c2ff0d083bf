"""What :func:`~talking_heads.metrics.score.score` scores: generated and reference videos
paired by stem, and each video's audio track and source portrait.

Either side may be a video file, a directory of frames (one video), a directory of videos
(video files and/or sub-directories of frames, matched by file stem), or, for the reference,
a list of such directories pooled together. Every problem with these paths is a
:class:`ScoreInputError` (a :class:`ValueError`) naming the path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from talking_heads.errors import UserError
from talking_heads.utils.media import is_image, is_video, read_frames, read_video

__all__ = [
    "AUDIO_SUFFIXES",
    "SOURCE_SUFFIXES",
    "MissingInputError",
    "ScoreInputError",
    "ScoreInputs",
    "discover_videos",
    "gather_inputs",
    "is_frames_dir",
    "load_video",
    "pair_videos",
    "path_label",
    "per_stem",
]

#: suffixes of a per-video audio file ``<dir>/<stem><suffix>``
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg")
#: suffixes of a per-video source portrait ``<dir>/<stem><suffix>``
SOURCE_SUFFIXES = (".png", ".jpg")

PathArg = Path | str | Sequence[Path | str]


class ScoreInputError(UserError):
    """The generated and reference inputs cannot be paired."""


class MissingInputError(ScoreInputError, FileNotFoundError):
    """A generated, reference, audio or source path does not exist."""


def is_frames_dir(path: Path) -> bool:
    """Whether ``path`` is a directory holding image frames."""
    return path.is_dir() and any(is_image(p) for p in path.iterdir())


def _as_paths(path: PathArg) -> list[Path]:
    return [Path(p) for p in path] if isinstance(path, (list, tuple)) else [Path(path)]  # type: ignore[arg-type]


def discover_videos(path: PathArg, role: str = "input") -> tuple[dict[str, Path], bool]:
    """Map stem -> video (file or frames directory) under ``path``; and whether it is a set.

    A video file or an image is one video; a directory holding videos or frame
    sub-directories is a set of videos (loose images beside them, e.g. source stills, are
    ignored); a directory holding only images is one video of frames named after the
    directory. A list of paths pools their sets; a stem may occur only once. ``role``
    (generated, reference) names the side in errors.
    """
    if isinstance(path, (list, tuple)):
        return _discover_pooled(path, role)
    path = Path(path)  # type: ignore[arg-type]
    if not path.exists():
        raise MissingInputError(f"{role} {path}: no such file or directory")
    if path.is_file():
        if not (is_video(path) or is_image(path)):
            raise ScoreInputError(f"{path}: neither a video nor an image")
        return {path.stem: path}, False
    children = sorted(path.iterdir())
    videos: dict[str, Path] = {}
    for child in children:
        if (child.is_file() and is_video(child)) or is_frames_dir(child):
            stem = child.stem if child.is_file() else child.name
            if stem in videos:
                raise ScoreInputError(f"{path}: two videos named {stem!r}: {videos[stem]}, {child}")
            videos[stem] = child
    if videos:
        return videos, True
    if any(is_image(child) for child in children):
        return {path.name: path}, False
    raise ScoreInputError(f"{path}: holds no videos, frame directories or frames")


def _discover_pooled(paths: Sequence[Path | str], role: str) -> tuple[dict[str, Path], bool]:
    if not paths:
        raise ScoreInputError(f"empty list of {role} inputs")
    if len(paths) == 1:
        return discover_videos(paths[0], role)
    pooled: dict[str, Path] = {}
    for item in paths:
        found, _ = discover_videos(item, role)
        for stem, video in found.items():
            if stem in pooled:
                raise ScoreInputError(f"stem {stem!r} occurs in both {pooled[stem]} and {video}")
            pooled[stem] = video
    return pooled, True


def pair_videos(generated: PathArg, reference: PathArg) -> list[tuple[str, Path, Path]]:
    """``(stem, generated, reference)`` triples, sorted by stem.

    Two single videos are paired whatever their names. Otherwise every generated stem must
    exist on the reference side; a set of generated videos cannot be scored against one
    reference video.
    """
    gen, gen_is_set = discover_videos(generated, "generated")
    ref, ref_is_set = discover_videos(reference, "reference")
    if not ref_is_set:
        if gen_is_set and len(gen) > 1:
            raise ScoreInputError(
                f"{generated} holds {len(gen)} videos but the reference {reference} is a "
                "single video; give a directory of reference videos named like the generated ones"
            )
        (stem, gen_path), (ref_path,) = next(iter(gen.items())), ref.values()
        return [(stem, gen_path, ref_path)]
    missing = sorted(set(gen) - set(ref))
    if missing:
        shown = ", ".join(missing[:10])
        if len(missing) > 10:
            shown += f", ... ({len(missing)} in all)"
        known = ", ".join(sorted(ref)[:10]) + (", ..." if len(ref) > 10 else "")
        raise ScoreInputError(
            f"no reference video for generated stem(s) {shown}; the reference {reference} "
            f"holds {len(ref)} video(s): {known}"
        )
    return [(stem, gen[stem], ref[stem]) for stem in sorted(gen)]


def per_stem(
    path: PathArg | None, stems: Sequence[str], what: str, suffixes: Sequence[str]
) -> dict[str, Path]:
    """``stem -> file``: one file for every stem, or ``<dir>/<stem><suffix>`` per stem from
    one directory or the first of several that holds it."""
    if path is None:
        return {}
    paths = _as_paths(path)
    if len(paths) == 1 and paths[0].is_file():
        return dict.fromkeys(stems, paths[0])
    for folder in paths:
        if not folder.is_dir():
            raise MissingInputError(f"{what} {folder}: no such directory")
    found: dict[str, Path] = {}
    for stem in stems:
        candidates = (folder / f"{stem}{suffix}" for folder in paths for suffix in suffixes)
        match = next((c for c in candidates if c.is_file()), None)
        if match is None:
            where = ", ".join(str(f) for f in paths)
            raise ScoreInputError(
                f"no {what} for {stem!r} in {where} (looked for {stem}{{{','.join(suffixes)}}})"
            )
        found[stem] = match
    return found


@dataclass(frozen=True)
class ScoreInputs:
    """The paired videos and, per stem, their audio and source portrait."""

    #: ``(stem, generated, reference or None)``, sorted by stem
    pairs: list[tuple[str, Path, Path | None]]
    audio: dict[str, Path]
    #: stem -> source still, or (``per_frame_source``) the one video's source frames
    sources: dict[str, Path]
    needs_source: bool = False
    #: one source frame per generated frame (a single video and a frames directory)
    per_frame_source: bool = False

    @property
    def stems(self) -> list[str]:
        return [stem for stem, _, _ in self.pairs]


def gather_inputs(
    generated: PathArg,
    reference: PathArg | None,
    audio: PathArg | None,
    source: PathArg | None,
    *,
    needs_source: bool,
) -> ScoreInputs:
    """Pair the videos and find each one's audio and (when ``needs_source``) source."""
    if reference is None:
        found, _ = discover_videos(generated, "generated")
        pairs: list[tuple[str, Path, Path | None]] = [
            (s, p, None) for s, p in sorted(found.items())
        ]
    else:
        pairs = list(pair_videos(generated, reference))
    stems = [stem for stem, _, _ in pairs]
    audio_paths = per_stem(audio, stems, "audio", AUDIO_SUFFIXES)
    per_frame = needs_source and _is_per_frame_source(source, stems)
    if per_frame:
        sources = {stems[0]: Path(source)}  # type: ignore[arg-type]
    else:
        sources = per_stem(source if needs_source else None, stems, "source image", SOURCE_SUFFIXES)
    if needs_source and source is None and reference is None:
        raise ValueError("a metric needs the source portrait: give source=... or a reference")
    return ScoreInputs(pairs, audio_paths, sources, needs_source, per_frame)


def _is_per_frame_source(source: PathArg | None, stems: Sequence[str]) -> bool:
    """A frames directory given as the source of one video, not holding ``<stem>.png``."""
    if len(stems) != 1 or not isinstance(source, (str, Path)):
        return False
    folder = Path(source)
    return is_frames_dir(folder) and not any(
        (folder / f"{stems[0]}{suffix}").is_file() for suffix in SOURCE_SUFFIXES
    )


def load_video(path: Path) -> tuple[np.ndarray, float | None]:
    """Frames ``(T, H, W, 3)`` uint8 of a video file (with its fps) or a frames directory."""
    if path.is_file() and is_video(path):
        return read_video(path)
    return read_frames(path), None


def path_label(path: PathArg | None) -> Any:
    """A path argument as JSON: ``None``, a string, or a list of strings."""
    if path is None:
        return None
    return [str(p) for p in path] if isinstance(path, (list, tuple)) else str(path)
