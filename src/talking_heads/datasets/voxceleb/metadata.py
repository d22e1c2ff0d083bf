"""VoxCeleb metadata files: FOMM's ``vox-metadata.csv``, ``iden_split.txt``, ``vox*_meta.csv``.

FOMM protocol (VoxCeleb1 subset ``fomm``, source ``youtube``): ``vox-metadata.csv`` of
AliaksandrSiarohin/video-preprocessing lists 20,075 chunks (train 19,550 / test 525) as
``video_id,start,end,bbox,fps,width,height,partition,person_id``. A chunk is named
``{person_id}#{video_id}#{start:06d}#{end:06d}``, ``start``/``end`` are frames on a 25 fps
timeline and ``bbox`` is ``left-top-right-bot`` in a ``width`` x ``height`` frame (rescaled
to the downloaded resolution by :func:`rescale_fomm_bbox`). Known problems of the file: 308
rows repeat another row exactly and three chunk names occur in both partitions (rows of the
test identities id10282 and id10306 marked train), so there are 19,242 + 525 distinct
``partition/chunk`` files (:func:`fomm_chunks`).
"""

from __future__ import annotations

import logging
from io import StringIO
from pathlib import Path
from typing import Any

import pandas as pd

from talking_heads.datasets.voxceleb.route import SPEAKER

log = logging.getLogger(__name__)

__all__ = [
    "FOMM_COLUMNS",
    "FOMM_EXPECTED_COUNTS",
    "FOMM_SIZE",
    "fomm_chunk_name",
    "fomm_chunks",
    "fomm_test_chunks",
    "load_fomm_metadata",
    "read_iden_split",
    "read_speaker_meta",
    "rescale_fomm_bbox",
]

#: FOMM's output side (``load_videos.py --image_shape 256,256``)
FOMM_SIZE = 256
#: rows per partition of the real ``vox-metadata.csv`` (reference §1)
FOMM_EXPECTED_COUNTS: dict[str, int] = {"train": 19550, "test": 525}
FOMM_COLUMNS: tuple[str, ...] = (
    "video_id",
    "start",
    "end",
    "bbox",
    "fps",
    "width",
    "height",
    "partition",
    "person_id",
)

_IDEN_SPLITS = {"1": "train", "2": "val", "3": "test"}


def fomm_chunk_name(person_id: str, video_id: str, start: int, end: int) -> str:
    """The name ``load_videos.py`` gives a chunk: ``{person}#{video}#{start:06d}#{end:06d}``."""
    return f"{person_id}#{video_id}#{int(start):06d}#{int(end):06d}"


def load_fomm_metadata(source: Path | str) -> pd.DataFrame:
    """``vox-metadata.csv`` (a path, or the CSV text) as a frame with a ``chunk`` column.

    Every column is checked; ids are read as text (YouTube ids may look like numbers). A
    warning is logged when the partition counts differ from the real file's 19,550 / 525.
    """
    text = source if isinstance(source, str) and "\n" in source else None
    handle: Any = StringIO(text) if text is not None else source
    frame = pd.read_csv(handle, dtype=str, keep_default_na=False)
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in FOMM_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"vox-metadata.csv lacks column(s) {', '.join(missing)}")
    for column in ("start", "end", "fps", "width", "height"):
        frame[column] = pd.to_numeric(frame[column], errors="raise").astype("int64")
    for column in ("video_id", "bbox", "partition", "person_id"):
        frame[column] = frame[column].str.strip()
    frame["chunk"] = [
        fomm_chunk_name(p, v, s, e)
        for p, v, s, e in zip(
            frame["person_id"], frame["video_id"], frame["start"], frame["end"], strict=True
        )
    ]
    counts = frame["partition"].value_counts().to_dict()
    if {k: counts.get(k, 0) for k in FOMM_EXPECTED_COUNTS} != FOMM_EXPECTED_COUNTS or set(
        counts
    ) - set(FOMM_EXPECTED_COUNTS):
        log.warning(
            "vox-metadata.csv: partition counts %s differ from the published file's %s",
            dict(sorted(counts.items())),
            FOMM_EXPECTED_COUNTS,
        )
    return frame


def fomm_chunks(metadata: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct ``partition/chunk`` file (exact repeats of a row dropped)."""
    unique = metadata.drop_duplicates(["partition", "chunk"]).reset_index(drop=True)
    if len(unique) < len(metadata):
        log.info(
            "vox-metadata.csv: %d rows repeat a chunk of the same partition; %d chunks remain",
            len(metadata) - len(unique),
            len(unique),
        )
    return unique


def fomm_test_chunks(metadata: pd.DataFrame | Path | str) -> list[str]:
    """Sorted names of the FOMM test chunks (the reconstruction benchmark's clips)."""
    frame = metadata if isinstance(metadata, pd.DataFrame) else load_fomm_metadata(metadata)
    return sorted(set(frame.loc[frame["partition"] == "test", "chunk"]))


def rescale_fomm_bbox(
    bbox: str, ref_width: int, ref_height: int, width: int, height: int
) -> tuple[int, int, int, int]:
    """A ``left-top-right-bot`` box of a ``ref`` frame as ``x, y, w, h`` in a ``width``x``height``
    frame (truncated to pixels as ``load_videos.py`` does, clipped to the frame)."""
    left, top, right, bot = (int(v) for v in bbox.split("-"))
    sx, sy = width / ref_width, height / ref_height
    x0, y0 = min(max(int(left * sx), 0), width), min(max(int(top * sy), 0), height)
    x1, y1 = min(max(int(right * sx), 0), width), min(max(int(bot * sy), 0), height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"box {bbox} is empty in a {width}x{height} frame")
    return x0, y0, x1 - x0, y1 - y0


def read_iden_split(path: Path) -> dict[str, str]:
    """``iden_split.txt``: clip id (``idXXXXX/<ytid>/NNNNN``) -> train / val / test."""
    splits = {}
    for line in path.read_text("utf-8-sig").splitlines():
        words = line.split()
        if len(words) == 2 and words[0] in _IDEN_SPLITS:
            splits[words[1].rsplit(".", 1)[0]] = _IDEN_SPLITS[words[0]]
    return splits


def read_speaker_meta(path: Path) -> dict[str, dict[str, str]]:
    """``vox1_meta.csv`` (tab-separated) / ``vox2_meta.csv``: identity -> gender, name, ..."""
    text = path.read_text("utf-8-sig")
    first = text.split("\n", 1)[0]
    frame = pd.read_csv(
        StringIO(text), sep="\t" if "\t" in first else ",", dtype=str, keep_default_na=False
    )
    frame.columns = [c.strip() for c in frame.columns]
    rename = {}
    for column in frame.columns[1:]:
        lower = column.lower()
        if lower.startswith("vggface"):
            rename[column] = "vggface_id"
        elif lower in ("gender", "nationality"):
            rename[column] = lower
        elif lower == "set":
            rename[column] = "meta_set"
    table = {}
    for record in frame.to_dict("records"):
        identity = str(record[frame.columns[0]]).strip()
        if SPEAKER.fullmatch(identity):
            table[identity] = {new: str(record[old]).strip() for old, new in rename.items()}
    return table
