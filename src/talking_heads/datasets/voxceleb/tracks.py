"""VoxCeleb face-track txt files (``txt/idXXXXX/<ytid>/NNNNN.txt`` of the ``*_txt`` archives).

Five ``Key : \tvalue`` header lines (identity, YouTube reference, sync offset, confidences),
a blank line and a table of one box per frame. Frame numbers are frames at 25 fps of the
original YouTube video; boxes are ``x, y, w, h`` in pixels of the 360 p frame (VoxCeleb1) or
fractions of the frame (VoxCeleb2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["FPS", "VOX1_REF_HEIGHT", "FaceTrack", "parse_track", "read_track"]

#: VoxCeleb's frame timeline: track frame numbers and FOMM start/end are frames at 25 fps
FPS = 25
#: VoxCeleb1 pixel boxes refer to the frame rescaled to this height (``crop_vox.py``)
VOX1_REF_HEIGHT = 360


@dataclass(frozen=True)
class FaceTrack:
    """One VoxCeleb face track: the header facts and a box per frame.

    ``frames`` are frame numbers at 25 fps in the original YouTube video; ``boxes`` are
    ``x, y, w, h`` rows, in pixels of the 360 p frame (VoxCeleb1) or as fractions of the frame
    (VoxCeleb2, ``normalised``).
    """

    identity: str
    youtube_id: str
    offset: int | None
    fv_conf: float | None
    asd_conf: float | None
    frames: np.ndarray
    boxes: np.ndarray
    normalised: bool

    @property
    def first_frame(self) -> int:
        return int(self.frames[0])

    @property
    def last_frame(self) -> int:
        return int(self.frames[-1])

    @property
    def start_s(self) -> float:
        """Start of the track in the source video (seconds)."""
        return self.first_frame / FPS

    @property
    def end_s(self) -> float:
        """End of the track (exclusive): one frame after the last, in seconds."""
        return (self.last_frame + 1) / FPS

    def pixel_boxes(self, width: int, height: int) -> np.ndarray:
        """Boxes ``x, y, w, h`` in pixels of a ``width`` x ``height`` frame of the same video."""
        if self.normalised:
            return self.boxes * np.array([width, height, width, height], dtype=np.float64)
        return self.boxes * (height / VOX1_REF_HEIGHT)


def _number(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(text.split()[0])
    except ValueError:
        return None


def parse_track(text: str, *, normalised: bool | None = None) -> FaceTrack:
    """Parse a VoxCeleb face-track txt (five ``Key : \\tvalue`` lines, a blank, a table).

    The table header carries trailing spaces (``FRAME \\tX \\tY \\tW \\tH``) and is found by its
    first word. ``normalised`` says whether boxes are fractions (VoxCeleb2); ``None`` infers it
    (every value within [0, 1] and some not integral).
    """
    lines = text.replace("\r\n", "\n").split("\n")
    header: dict[str, str] = {}
    table_at = None
    for number, line in enumerate(lines):
        words = line.split()
        if words and words[0].upper() == "FRAME":
            table_at = number
            break
        if ":" in line:
            key, value = line.split(":", 1)
            header[key.strip().lower()] = value.strip()
    if table_at is None:
        raise ValueError("not a VoxCeleb face-track file (no FRAME table)")
    frames: list[int] = []
    boxes: list[list[float]] = []
    for line in lines[table_at + 1 :]:
        words = line.split()
        if not words:
            continue
        if len(words) < 5:
            raise ValueError(f"malformed face-track row {line.strip()!r}")
        frames.append(int(words[0]))
        boxes.append([float(w) for w in words[1:5]])
    if not frames:
        raise ValueError("face-track file has no frames")
    box_array = np.asarray(boxes, dtype=np.float64)
    if normalised is None:
        normalised = bool(
            box_array.min() >= 0
            and box_array.max() <= 1.0
            and np.any(box_array != np.round(box_array))
        )
    offset = _number(header.get("offset"))
    return FaceTrack(
        identity=header.get("identity", "").split()[0] if header.get("identity") else "",
        youtube_id=header.get("reference", "").split()[0] if header.get("reference") else "",
        offset=None if offset is None else int(offset),
        fv_conf=_number(header.get("fv conf")),
        asd_conf=_number(header.get("asd conf")),
        frames=np.asarray(frames, dtype=np.int64),
        boxes=box_array,
        normalised=normalised,
    )


def read_track(path: Path | str, *, normalised: bool | None = None) -> FaceTrack:
    """:func:`parse_track` of a file."""
    return parse_track(Path(path).read_text("utf-8-sig"), normalised=normalised)
