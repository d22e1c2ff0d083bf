"""VoxCeleb1 and VoxCeleb2 (Nagrani et al., Interspeech 2017; Chung et al., Interspeech 2018).

Sources (reference notes §1, §2, §8):

* ``official``: Oxford VGG, ``https://thor.robots.ox.ac.uk/~vgg/data/voxceleb/vox1a/<file>``
  with the user/password VGG sends after the request form, read from ``VOXCELEB_USER`` and
  ``VOXCELEB_PASSWORD`` (HTTP basic auth).
* ``kaist``: the KAIST mirror, ``https://cn01.mmai.io/download/voxceleb?key=<KEY>&file=<file>``;
  the key (``VOXCELEB_KAIST_KEY``) travels in the query string only, the session carries no
  basic auth, and every URL we record or log shows ``key=***``.
* ``hf``: the Hugging Face copy ``ProgramComputer/voxceleb`` (``vox1/<file>``, ``vox2/<file>``,
  CC BY 4.0, no credentials).
* ``youtube``: the original YouTube videos, fetched with yt-dlp and cut into one clip per
  face track (``txt`` archives) or per FOMM chunk (``vox-metadata.csv``). VoxCeleb1's video
  was never released (clovaai/voxceleb_trainer#178), so this is the only way to get Vox1 video;
  expect 5-10 % dead videos (§8). The ``txt`` archives this route needs come from ``hf``.

Archives and checksums: VoxCeleb1 dev audio is four byte-split parts ``vox1_dev_wav_parta{a..d}``
of one zip; VoxCeleb2 dev video nine ``vox2_dev_mp4_parta{a..i}``, dev audio eight
``vox2_dev_aac_parta{a..h}``. Every part is a unit of its own (they spread over the shards);
:meth:`VoxCelebBase.assemble` reads the parts through :class:`ConcatReader` (no joined copy),
checks the joined md5 where one is published and extracts the zip. The md5s of
``clovaai/voxceleb_trainer:lists/fileparts.txt`` and ``files.txt`` are built in
(:data:`PUBLISHED_MD5`); the index stage also reads those two lists from the ``checksums`` URL
base, so a corrected list wins. The ``vox2_dev_mp4`` parts, ``vox2_test_mp4.zip`` and the txt
zips have **no published md5**: they are downloaded unverified and their clips say so in the
``checksum`` column.

Layout (zip member prefixes vary between archives, so each archive is extracted into
``<raw>/<subset>/`` and its ``wav``/``mp4``/``aac``/``txt`` folder is looked for at the top or
under ``dev/``/``test/``): ``wav/idXXXXX/<ytid>/NNNNN.wav`` (Vox1, 16 kHz mono PCM),
``dev/mp4/idXXXXX/<ytid>/NNNNN.mp4`` (Vox2, 224x224, 25 fps, AAC audio),
``dev/aac/idXXXXX/<ytid>/NNNNN.m4a`` and ``txt/idXXXXX/<ytid>/NNNNN.txt`` face tracks
(:func:`parse_track`: Vox1 boxes in pixels of the 360 p frame, Vox2 boxes as fractions).
A clip's id is ``idXXXXX/<ytid>/NNNNN``; a Vox2 utterance whose video and audio are both
present is one row (``path`` the mp4, ``audio_path`` the m4a).

Splits: VoxCeleb1 follows ``iden_split.txt`` (1/2/3 = train/val/test, 138,361 / 6,904 /
8,251) when the ``meta`` subset brought it, else dev/test by archive (the verification test
identities are id10270-id10309); VoxCeleb2 is dev/test by archive (the 118 test identities of
:data:`VOX2_TEST_IDS`). ``archive_split`` always holds dev/test.

FOMM protocol (VoxCeleb1 subset ``fomm``, source ``youtube``): ``vox-metadata.csv`` of
AliaksandrSiarohin/video-preprocessing lists 20,075 chunks (train 19,550 / test 525) as
``video_id,start,end,bbox,fps,width,height,partition,person_id``. A chunk is named
``{person_id}#{video_id}#{start:06d}#{end:06d}``, ``start``/``end`` are frames on a 25 fps
timeline and ``bbox`` is ``left-top-right-bot`` in a ``width`` x ``height`` frame. We cut
``[start/25, end/25)`` from the downloaded video, rescale the box to the downloaded resolution,
crop and resize to 256x256 (as ``load_videos.py`` does) at a constant 25 fps, keeping the audio
(the original tool writes silent mp4s at imageio's default rate). Known problems of the file:
308 rows repeat another row exactly and three chunk names occur in both partitions (rows of the
test identities id10282 and id10306 marked train), so there are 19,242 + 525 distinct
``partition/chunk`` files; clip ids are ``fomm/<partition>/<chunk>``.

Statistics: hours are the summed durations of ok clips, speakers the distinct identities and
utterances the ok clips (VoxCeleb utterances; FOMM chunks only when no utterance was acquired).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import numpy as np
import pandas as pd

from talking_heads.datasets.base import (
    AcquireContext,
    Dataset,
    cell_text,
    describe_clips,
    http_fetch,
    read_index,
    stable_shard,
    unit_meta,
)
from talking_heads.datasets.transfer import (
    ConcatReader,
    TransferError,
    download_file,
    fetch_text,
    hash_stream,
    make_session,
    redact_url,
    safe_extract,
)
from talking_heads.utils.atomic import atomic_write_json

log = logging.getLogger(__name__)

#: VoxCeleb's frame timeline: track frame numbers and FOMM start/end are frames at 25 fps
FPS = 25
#: VoxCeleb1 pixel boxes refer to the frame rescaled to this height (``crop_vox.py``)
VOX1_REF_HEIGHT = 360
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

#: VoxCeleb1 verification test identities (40)
VOX1_TEST_IDS: frozenset[str] = frozenset(f"id{n}" for n in range(10270, 10310))
_VOX2_TEST_ID_LIST = (
    "id00017 id00061 id00081 id00154 id00419 id00562 id00812 id00817 id00866 id00926 "
    "id01000 id01041 id01066 id01106 id01224 id01228 id01298 id01333 id01437 id01460 "
    "id01509 id01541 id01567 id01593 id01618 id01822 id01892 id01989 id02019 id02057 "
    "id02086 id02181 id02286 id02317 id02445 id02465 id02542 id02548 id02576 id02577 "
    "id02685 id02725 id02745 id03030 id03041 id03127 id03178 id03347 id03382 id03524 "
    "id03677 id03789 id03839 id03862 id03969 id03978 id03980 id03981 id04006 id04030 "
    "id04094 id04119 id04232 id04253 id04276 id04295 id04366 id04478 id04536 id04570 "
    "id04627 id04656 id04657 id04862 id04950 id05015 id05055 id05124 id05176 id05202 "
    "id05459 id05594 id05654 id05714 id05816 id05850 id05999 id06104 id06209 id06310 "
    "id06484 id06692 id06811 id06816 id06913 id07312 id07354 id07396 id07414 id07426 "
    "id07494 id07620 id07621 id07663 id07802 id07868 id07874 id07961 id08149 id08374 "
    "id08392 id08456 id08548 id08552 id08696 id08701 id08911 id09017"
)
#: VoxCeleb2 test identities (118; the list ``crop_vox.py`` hard-codes)
VOX2_TEST_IDS: frozenset[str] = frozenset(_VOX2_TEST_ID_LIST.split())

#: md5 of every file with a published one (voxceleb_trainer ``lists/fileparts.txt``, ``files.txt``)
PUBLISHED_MD5: dict[str, str] = {
    "vox1_dev_wav_partaa": "e395d020928bc15670b570a21695ed96",
    "vox1_dev_wav_partab": "bbfaaccefab65d82b21903e81a8a8020",
    "vox1_dev_wav_partac": "017d579a2a96a077f40042ec33e51512",
    "vox1_dev_wav_partad": "7bb1e9f70fddc7a678fa998ea8b3ba19",
    "vox1_dev_wav.zip": "ae63e55b951748cc486645f532ba230b",
    "vox1_test_wav.zip": "185fdc63c3c739954633d50379a3d102",
    "vox2_dev_aac_partaa": "da070494c573e5c0564b1d11c3b20577",
    "vox2_dev_aac_partab": "17fe6dab2b32b48abaf1676429cdd06f",
    "vox2_dev_aac_partac": "1de58e086c5edf63625af1cb6d831528",
    "vox2_dev_aac_partad": "5a043eb03e15c5a918ee6a52aad477f9",
    "vox2_dev_aac_partae": "cea401b624983e2d0b2a87fb5d59aa60",
    "vox2_dev_aac_partaf": "fc886d9ba90ab88e7880ee98effd6ae9",
    "vox2_dev_aac_partag": "d160ecc3f6ee3eed54d55349531cb42e",
    "vox2_dev_aac_partah": "6b84a81b9af72a9d9eecbb3b1f602e65",
    "vox2_dev_aac.zip": "bbc063c46078a602ca71605645c2a402",
    "vox2_test_aac.zip": "0d2b3ea430a821c33263b5ea37ede312",
}
NO_PUBLISHED_MD5 = "no published md5"
CHECKSUM_LISTS: tuple[str, ...] = ("fileparts.txt", "files.txt")

_SPEAKER = re.compile(r"id\d{5}")
_MD5 = re.compile(r"[0-9a-fA-F]{32}")
_IDEN_SPLITS = {"1": "train", "2": "val", "3": "test"}


# ---------------------------------------------------------------------------------------------
# face-track txt files


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


# ---------------------------------------------------------------------------------------------
# FOMM / video-preprocessing metadata


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


# ---------------------------------------------------------------------------------------------
# small metadata files


def parse_md5_list(text: str) -> dict[str, str]:
    """``name md5`` lines (``fileparts.txt``) or ``glob name md5`` lines (``files.txt``)."""
    table = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and _MD5.fullmatch(words[-1]):
            table[words[-2]] = words[-1].lower()
    return table


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
        if _SPEAKER.fullmatch(identity):
            table[identity] = {new: str(record[old]).strip() for old, new in rename.items()}
    return table


# ---------------------------------------------------------------------------------------------
# the datasets


@dataclass(frozen=True)
class Archive:
    """A published archive: one file, or byte-split ``parts`` of one zip named ``name``."""

    subset: str
    name: str
    parts: tuple[str, ...] = ()
    content: str = "audio"  # audio | video | track
    split: str = "dev"

    @property
    def files(self) -> tuple[str, ...]:
        return self.parts or (self.name,)


def _parts(stem: str, count: int) -> tuple[str, ...]:
    return tuple(f"{stem}_parta{chr(ord('a') + i)}" for i in range(count))


_CONTENT_DIR = {"audio": ("wav", "aac"), "video": ("mp4",), "track": ("txt",)}
_SUFFIXES = {"audio": (".wav", ".m4a"), "video": (".mp4",), "track": (".txt",)}


def _layout_roots(base: Path, names: Iterable[str]) -> list[Path]:
    """Folders under ``base`` holding ``idXXXXX`` folders: ``base/<name>``, ``base/*/<name>``
    (``dev/mp4``, ``test/aac``) or ``base`` itself."""
    if not base.is_dir():
        return []
    children = [d for d in sorted(base.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    roots = []
    for name in names:
        roots += [p for p in (base / name, *(d / name for d in children)) if p.is_dir()]
    if not roots and any(_SPEAKER.fullmatch(d.name) for d in children):
        roots = [base]
    return roots


def _speaker_dirs(roots: Iterable[Path], shard: int, num_shards: int) -> list[Path]:
    return [
        d
        for root in roots
        for d in sorted(root.iterdir())
        if d.is_dir() and _SPEAKER.fullmatch(d.name) and stable_shard(d.name, num_shards) == shard
    ]


def _utterances(speaker_dir: Path, suffixes: tuple[str, ...]) -> Iterable[tuple[str, Path]]:
    """``(clip id, file)`` of every ``<ytid>/NNNNN.<suffix>`` under a speaker folder."""
    for video in sorted(speaker_dir.iterdir()):
        if not video.is_dir():
            continue
        for file in sorted(video.iterdir()):
            if file.suffix.lower() in suffixes and not file.name.startswith("."):
                yield f"{speaker_dir.name}/{video.name}/{file.stem}", file


class VoxCelebBase(Dataset):
    """What VoxCeleb1 and VoxCeleb2 share: sources, archives, assembly, layout, YouTube cuts."""

    version: ClassVar[int]
    archives: ClassVar[tuple[Archive, ...]]
    #: metadata files of the ``meta`` subset
    meta_files: ClassVar[tuple[str, ...]]
    test_ids: ClassVar[frozenset[str]]
    #: subsets a ``youtube`` run takes when none are named
    default_youtube_subsets: ClassVar[tuple[str, ...]] = ("test_txt", "meta")
    head_movement = "Yes"
    environment = "Wild"
    needs_assembly = True
    sources: ClassVar[dict[str, str]] = {
        "official": "Oxford VGG (thor.robots.ox.ac.uk), basic auth from the access form",
        "kaist": "KAIST mirror (cn01.mmai.io), key in the URL",
        "hf": "Hugging Face ProgramComputer/voxceleb (no credentials)",
        "youtube": "the original YouTube videos (yt-dlp), cut by face track / FOMM chunk",
    }
    credentials: ClassVar[dict[str, tuple[str, ...]]] = {
        "official": ("VOXCELEB_USER", "VOXCELEB_PASSWORD"),
        "kaist": ("VOXCELEB_KAIST_KEY",),
    }
    url_bases: ClassVar[dict[str, str]] = {
        "official": "https://thor.robots.ox.ac.uk/~vgg/data/voxceleb/vox1a",
        "kaist": "https://cn01.mmai.io/download/voxceleb",
        "hf": "https://huggingface.co/datasets/ProgramComputer/voxceleb/resolve/main",
        "meta": "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/meta",
        "checksums": "https://raw.githubusercontent.com/clovaai/voxceleb_trainer/master/lists",
        "youtube": "https://www.youtube.com/watch?v={video_id}",
        "fomm": "https://raw.githubusercontent.com/AliaksandrSiarohin/video-preprocessing/master",
    }

    # -- sources and subsets ------------------------------------------------------------------

    def selected_subsets(self, ctx: AcquireContext) -> tuple[str, ...]:
        if not ctx.subsets and self.source_of(ctx) == "youtube":
            return self.default_youtube_subsets
        return super().selected_subsets(ctx)

    def _archive(self, subset: str) -> Archive | None:
        return next((a for a in self.archives if a.subset == subset), None)

    def file_url(self, ctx: AcquireContext, name: str, key: str = "***") -> str:
        """URL of a published file from the chosen source (``kaist``: with ``key``)."""
        source = self.source_of(ctx)
        if source == "official":
            return f"{self.base_url(ctx, 'official')}/{name}"
        if source == "kaist":
            return f"{self.base_url(ctx, 'kaist')}?key={quote(key, safe='*')}&file={quote(name)}"
        return f"{self.base_url(ctx, 'hf')}/vox{self.version}/{name}"

    def _meta_url(self, ctx: AcquireContext, name: str) -> str:
        if name.endswith("_meta.csv") and self.source_of(ctx) in ("hf", "youtube"):
            return f"{self.base_url(ctx, 'hf')}/vox{self.version}/{name}"
        return f"{self.base_url(ctx, 'meta')}/{name}"

    def published_md5s(self, ctx: AcquireContext) -> dict[str, str]:
        """Built-in md5s, updated from the published lists when they can be read."""
        table = dict(PUBLISHED_MD5)
        session = make_session()
        for name in CHECKSUM_LISTS:
            url = f"{self.base_url(ctx, 'checksums')}/{name}"
            try:
                table.update(
                    parse_md5_list(
                        fetch_text(
                            url, session=session, retries=ctx.retries, backoff_s=ctx.backoff_s
                        )
                    )
                )
            except TransferError as error:
                log.warning(
                    "%s: md5 list unavailable (%s); using built-in md5s", name, error.reason
                )
        return table

    # -- index ---------------------------------------------------------------------------------

    def index(self, ctx: AcquireContext) -> list[dict[str, Any]]:
        subsets = self.selected_subsets(ctx)
        source = self.source_of(ctx)
        if source == "youtube":
            media = [s for s in subsets if s not in ("dev_txt", "test_txt", "meta", "fomm")]
            if media:
                raise ValueError(
                    f"{self.name}: subset(s) {', '.join(media)} are archives, not on YouTube; "
                    "with source=youtube choose dev_txt/test_txt (track clips), fomm or meta"
                )
        elif "fomm" in subsets:
            raise ValueError(f"{self.name}: subset fomm is cut from YouTube; use source=youtube")
        units: list[dict[str, Any]] = []
        archives = [a for a in self.archives if a.subset in subsets]
        if source != "youtube" and archives:
            md5s = self.published_md5s(ctx)
            for archive in archives:
                units += self._archive_units(ctx, archive, md5s)
        if source == "youtube":
            units += self._youtube_units(ctx, subsets)
        if "meta" in subsets:
            for name in self.meta_files:
                units.append(
                    {
                        "unit_id": name,
                        "group": name,
                        "subset": "meta",
                        "kind": "metadata",
                        "url": self._meta_url(ctx, name),
                        "dest": f"meta/{name}",
                        "meta": {"file": name},
                    }
                )
        return units

    def _archive_units(
        self, ctx: AcquireContext, archive: Archive, md5s: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        units = []
        for number, name in enumerate(archive.files):
            md5 = md5s.get(name)
            units.append(
                {
                    "unit_id": name,
                    "group": name,
                    "subset": archive.subset,
                    "kind": "archive-part" if archive.parts else "archive",
                    "url": redact_url(self.file_url(ctx, name)),
                    "dest": f"archives/{name}",
                    "md5": md5,
                    "meta": {
                        "file": name,
                        "archive": archive.name,
                        "part": number + 1,
                        "of": len(archive.files),
                        "checksum": "md5" if md5 else NO_PUBLISHED_MD5,
                        **({"joined_md5": md5s.get(archive.name)} if archive.parts else {}),
                    },
                }
            )
        return units

    def _youtube_units(self, ctx: AcquireContext, subsets: tuple[str, ...]) -> list[dict]:
        """One unit per YouTube video: its face tracks (txt archives) and FOMM chunks."""
        videos: dict[str, dict[str, Any]] = {}

        def video(video_id: str, speaker: str, subset: str) -> dict[str, Any]:
            unit = videos.get(video_id)
            if unit is None:
                unit = videos[video_id] = {
                    "unit_id": f"youtube/{video_id}",
                    "group": speaker,
                    "subset": subset,
                    "kind": "youtube",
                    "url": self.base_url(ctx, "youtube").format(video_id=video_id),
                    "dest": f"youtube/{video_id}.mp4",
                    "meta": {"video_id": video_id, "tracks": [], "chunks": []},
                }
            elif subset not in unit["subset"].split("+"):
                unit["subset"] = "+".join(sorted([*unit["subset"].split("+"), subset]))
            return unit

        session = make_session()
        for subset in ("dev_txt", "test_txt"):
            archive = self._archive(subset)
            if subset not in subsets or archive is None:
                continue
            zip_path = ctx.raw_root / "archives" / archive.name
            url = f"{self.base_url(ctx, 'hf')}/vox{self.version}/{archive.name}"
            download_file(
                url,
                zip_path,
                session=session,
                retries=ctx.retries,
                backoff_s=ctx.backoff_s,
                progress=ctx.progress,
            )
            report = safe_extract(zip_path, ctx.raw_root / subset, progress=ctx.progress)
            names = [p.relative_to(ctx.raw_root).as_posix() for p in report.extracted]
            names += [p.relative_to(ctx.raw_root).as_posix() for p in report.existing]
            for txt in sorted(names):
                parts = txt.split("/")
                if len(parts) < 3 or not txt.endswith(".txt"):
                    continue
                speaker, video_id, stem = parts[-3], parts[-2], parts[-1][:-4]
                if not _SPEAKER.fullmatch(speaker):
                    continue
                video(video_id, speaker, subset)["meta"]["tracks"].append(
                    {
                        "clip_id": f"{speaker}/{video_id}/{stem}",
                        "speaker": speaker,
                        "split": archive.split,
                        "txt": txt,
                    }
                )
        if "fomm" in subsets:
            path = ctx.raw_root / "meta" / "vox-metadata.csv"
            download_file(
                f"{self.base_url(ctx, 'fomm')}/vox-metadata.csv",
                path,
                session=session,
                retries=ctx.retries,
                backoff_s=ctx.backoff_s,
                progress=ctx.progress,
            )
            for row in fomm_chunks(load_fomm_metadata(path)).to_dict("records"):
                video(row["video_id"], row["person_id"], "fomm")["meta"]["chunks"].append(
                    {
                        "clip_id": f"fomm/{row['partition']}/{row['chunk']}",
                        "chunk": row["chunk"],
                        "speaker": row["person_id"],
                        "split": row["partition"],
                        **{k: row[k] for k in ("start", "end", "bbox", "fps", "width", "height")},
                    }
                )
        log.info("%s: %d YouTube videos to fetch", self.name, len(videos))
        return list(videos.values())

    # -- download ------------------------------------------------------------------------------

    def fetch(self, ctx: AcquireContext, unit: Mapping[str, Any], session: Any) -> dict:
        if unit["kind"] == "youtube":
            return self._fetch_video(ctx, unit)
        if self.source_of(ctx) == "kaist" and unit["kind"] != "metadata":
            _mask_keys_in_http_logs()
            key = (self.auth(ctx) or ("",))[0]
            unit = {**unit, "url": self.file_url(ctx, unit_meta(unit)["file"], key)}
        return http_fetch(ctx, unit, session)

    def after_fetch(self, ctx: AcquireContext, unit: Mapping[str, Any]) -> None:
        if unit["kind"] == "archive":
            report = safe_extract(
                ctx.raw_root / str(unit["dest"]),
                ctx.raw_root / str(unit["subset"]),
                progress=ctx.progress,
                desc=str(unit["unit_id"]),
            )
            log.info(
                "%s: %d files extracted, %d already present",
                unit["unit_id"],
                len(report.extracted),
                len(report.existing),
            )
        elif unit["kind"] == "youtube":
            self._cut_video(ctx, unit)

    def _fetch_video(self, ctx: AcquireContext, unit: Mapping[str, Any]) -> dict:
        from talking_heads.datasets.youtube import ytdlp_download

        dest = ctx.raw_root / str(unit["dest"])
        existed = dest.exists()
        ytdlp_download(str(unit["url"]), dest, retries=ctx.retries, progress=ctx.progress)
        return {
            "bytes_fetched": 0 if existed else dest.stat().st_size,
            "resumed_from": 0,
            "path": str(unit["dest"]),
        }

    def _cut_video(self, ctx: AcquireContext, unit: Mapping[str, Any]) -> None:
        """Cut every track / chunk of a downloaded video; record boxes and per-clip failures."""
        from talking_heads.datasets.youtube import cut_clip
        from talking_heads.utils.media import probe_video

        meta = unit_meta(unit)
        video = ctx.raw_root / str(unit["dest"])
        try:
            probed = probe_video(video)
            width, height = int(probed["width"]), int(probed["height"])
        except (ValueError, KeyError, TypeError) as error:
            raise TransferError(f"downloaded video unreadable: {video.name} ({error})") from None
        duration = float(probed.get("duration_s") or 0.0)
        record: dict[str, Any] = {
            "video": {"width": width, "height": height, "fps": probed.get("fps")},
            "clips": {},
            "errors": {},
        }

        def cut(clip_id: str, out: Path, start_s: float, end_s: float, **options: Any) -> None:
            if duration and start_s >= duration:
                raise ValueError(
                    f"starts at {start_s:.2f} s, after the end of the downloaded video "
                    f"({duration:.2f} s)"
                )
            if duration and end_s > duration + 1 / FPS:
                raise ValueError(
                    f"ends at {end_s:.2f} s, after the end of the downloaded video "
                    f"({duration:.2f} s; the upload changed since annotation)"
                )
            if not out.exists():
                cut_clip(video, out, start_s=start_s, end_s=end_s, fps=FPS, **options)

        for track in meta.get("tracks", []):
            clip_id = track["clip_id"]
            try:
                face = read_track(ctx.raw_root / track["txt"], normalised=self.version == 2)
                record["clips"][clip_id] = {
                    "first_frame": face.first_frame,
                    "last_frame": face.last_frame,
                    "sync_offset": face.offset,
                }
                cut(clip_id, ctx.data_root / "clips" / f"{clip_id}.mp4", face.start_s, face.end_s)
            except (TransferError, ValueError, OSError) as error:
                record["errors"][clip_id] = _cut_reason(error)
        for chunk in meta.get("chunks", []):
            clip_id = chunk["clip_id"]
            try:
                x, y, w, h = rescale_fomm_bbox(
                    chunk["bbox"], chunk["width"], chunk["height"], width, height
                )
                record["clips"][clip_id] = {"crop_x": x, "crop_y": y, "crop_w": w, "crop_h": h}
                start_s = chunk["start"] / chunk["fps"]
                end_s = chunk["end"] / chunk["fps"]
                out = ctx.data_root / f"{clip_id}.mp4"
                cut(clip_id, out, start_s, end_s, crop=(x, y, w, h), size=FOMM_SIZE)
            except (TransferError, ValueError, OSError) as error:
                record["errors"][clip_id] = _cut_reason(error)
        for clip_id, reason in record["errors"].items():
            log.warning("%s %s: %s", self.name, clip_id, reason)
        atomic_write_json(_cuts_path(ctx, meta["video_id"]), record)

    # -- assembly ------------------------------------------------------------------------------

    def assemble(self, ctx: AcquireContext, downloads: pd.DataFrame) -> dict:
        """Join, verify and extract every multi-part archive whose parts all arrived."""
        index = read_index(ctx)
        status = dict(zip(downloads["unit_id"], downloads["status"], strict=True))
        reasons = dict(zip(downloads["unit_id"], downloads["reason"], strict=True))
        chosen = set(index["subset"].astype(str))
        summary: dict[str, Any] = {}
        for archive in self.archives:
            if not archive.parts or archive.subset not in chosen:
                continue
            missing = [p for p in archive.parts if status.get(p) != "ok"]
            if missing:
                why = "; ".join(f"{p}: {reasons.get(p) or 'not downloaded'}" for p in missing)
                summary[archive.name] = {
                    "status": "incomplete",
                    "reason": f"parts not downloaded ({len(missing)} of {len(archive.parts)}): "
                    + why,
                }
                log.warning("%s: %s", archive.name, summary[archive.name]["reason"])
                continue
            first = index.loc[index["unit_id"] == archive.parts[0], "meta"]
            first_meta = unit_meta({"meta": first.iloc[0]}) if len(first) else {}
            joined_md5 = first_meta.get("joined_md5")
            summary[archive.name] = self._assemble_one(ctx, archive, joined_md5)
        return {"archives": summary}

    def _assemble_one(
        self, ctx: AcquireContext, archive: Archive, expected: str | None
    ) -> dict[str, Any]:
        """Verify the joined md5 (when published) and extract; resumes from a marker."""
        paths = [ctx.raw_root / "archives" / p for p in archive.parts]
        sizes = [[p.name, p.stat().st_size] for p in paths]
        target = ctx.raw_root / archive.subset
        marker = target / ".assembled.json"
        if marker.exists():
            done = json.loads(marker.read_text("utf-8"))
            if done.get("parts") == sizes:
                return {**done, "status": "ok", "reason": "", "resumed": True}
        checksum = NO_PUBLISHED_MD5
        if expected:
            actual = hash_stream(ConcatReader(paths), "md5")
            if actual != expected:
                reason = (
                    f"checksum mismatch: md5 of joined {archive.name} is {actual}, "
                    f"expected {expected}"
                )
                log.error("%s", reason)
                return {"status": "failed", "reason": reason, "md5": actual}
            checksum = "md5 verified"
        try:
            reader = ConcatReader(paths)
            with reader:
                report = safe_extract(reader, target, progress=ctx.progress, desc=archive.name)
        except TransferError as error:
            reason = f"{error.reason}: {archive.name}"
            log.error("%s", reason)
            return {"status": "failed", "reason": reason, "checksum": checksum}
        done = {
            "archive": archive.name,
            "parts": sizes,
            "checksum": checksum,
            "extracted": len(report.extracted),
            "existing": len(report.existing),
            "rejected": [list(r) for r in report.rejected],
        }
        atomic_write_json(marker, done)
        log.info(
            "%s: joined (%s), %d files extracted", archive.name, checksum, len(report.extracted)
        )
        return {**done, "status": "ok", "reason": ""}

    # -- scan ----------------------------------------------------------------------------------

    def scan(self, ctx: AcquireContext, shard: int, units: pd.DataFrame) -> list[dict]:
        records = units.to_dict("records")
        described: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        speakers = self._speaker_meta(ctx)
        iden = self._iden_split(ctx)
        subsets = {s for u in records for s in str(u.get("subset") or "").split("+")}
        archive_rows, archive_failures = self._scan_archives(ctx, shard, records, subsets, iden)
        described += archive_rows
        rows += archive_failures
        youtube_items, youtube_failures = self._scan_youtube(ctx, shard, records, iden)
        described += youtube_items
        rows += youtube_failures
        for item in described + rows:
            item.update(speakers.get(str(item.get("speaker")), {}))
        return describe_clips(described, ctx) + rows

    def _speaker_meta(self, ctx: AcquireContext) -> dict[str, dict[str, str]]:
        name = next((f for f in self.meta_files if f.endswith("_meta.csv")), None)
        path = ctx.raw_root / "meta" / name if name else None
        if path is None or not path.exists():
            return {}
        try:
            return read_speaker_meta(path)
        except (ValueError, pd.errors.ParserError) as error:
            log.warning("%s unreadable: %s", path.name, error)
            return {}

    def _iden_split(self, ctx: AcquireContext) -> dict[str, str]:
        return {}

    def _split(self, clip_id: str, archive_split: str, iden: Mapping[str, str]) -> str:
        return iden.get(clip_id, archive_split)

    def _scan_archives(
        self,
        ctx: AcquireContext,
        shard: int,
        records: list[dict[str, Any]],
        subsets: set[str],
        iden: Mapping[str, str],
    ) -> tuple[list[dict], list[dict]]:
        """Clip rows of this shard's speakers from the extracted media archives."""
        by_unit = {str(u["unit_id"]): u for u in records}
        assembled = {}
        if ctx.assembled_path.exists():
            assembled = json.loads(ctx.assembled_path.read_text("utf-8")).get("archives", {})
        failures: list[dict[str, Any]] = []
        utterances: dict[str, dict[str, Any]] = {}
        track_roots = [
            root
            for subset in ("dev_txt", "test_txt")
            if subset in subsets
            for root in _layout_roots(ctx.raw_root / subset, ["txt"])
        ]
        for archive in self.archives:
            if archive.subset not in subsets or archive.content == "track":
                continue
            if archive.parts:
                outcome = assembled.get(archive.name)
                parts_ok = all(
                    by_unit.get(p, {}).get("download_status") == "ok" for p in archive.parts
                )
                if outcome is None or outcome.get("status") != "ok":
                    if parts_ok and stable_shard(archive.name, ctx.num_shards) == shard:
                        failures.append(self._archive_failure(ctx, archive, outcome))
                    continue
                checksum = outcome.get("checksum", NO_PUBLISHED_MD5)
            else:
                unit = by_unit.get(archive.name, {})
                if unit.get("download_status") != "ok":
                    continue
                checksum = "md5 verified" if cell_text(unit.get("md5")) else NO_PUBLISHED_MD5
            roots = _layout_roots(ctx.raw_root / archive.subset, _CONTENT_DIR[archive.content])
            source = redact_url(self.file_url(ctx, archive.name))
            for speaker_dir in _speaker_dirs(roots, shard, ctx.num_shards):
                for clip_id, file in _utterances(speaker_dir, _SUFFIXES[archive.content]):
                    entry = utterances.setdefault(clip_id, {})
                    slot = "video" if archive.content == "video" else "audio"
                    entry[slot] = (file, archive, source, checksum)
        items = []
        for clip_id in sorted(utterances):
            entry = utterances[clip_id]
            file, archive, source, checksum = entry.get("video") or entry["audio"]
            speaker, video_id, utterance = clip_id.split("/")
            item: dict[str, Any] = {
                "clip_id": clip_id,
                "unit_id": archive.name,
                "speaker": speaker,
                "split": self._split(clip_id, archive.split, iden),
                "archive_split": archive.split,
                "kind": "video" if archive.content == "video" else "audio",
                "source": source,
                "path": ctx.rel(file),
                "subset": archive.subset,
                "protocol": "voxceleb",
                "youtube_id": video_id,
                "utterance": utterance,
                "checksum": checksum,
                "_abs_path": file,
            }
            if "video" in entry and "audio" in entry:
                item["audio_path"] = ctx.rel(entry["audio"][0])
            track = next(
                (r / f"{clip_id}.txt" for r in track_roots if (r / f"{clip_id}.txt").exists()),
                None,
            )
            if track is not None:
                item["track"] = ctx.rel(track)
                item["box_format"] = self._box_format()
            items.append(item)
        odd = sorted(
            {
                i["speaker"]
                for i in items
                if (i["archive_split"] == "test") != (i["speaker"] in self.test_ids)
            }
        )
        if odd:
            log.warning(
                "%s: %d identities disagree with the official test list (e.g. %s)",
                self.name,
                len(odd),
                ", ".join(odd[:3]),
            )
        return items, failures

    def _archive_failure(
        self, ctx: AcquireContext, archive: Archive, outcome: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        reason = (outcome or {}).get("reason") or "not assembled (assemble stage did not run)"
        return {
            "clip_id": archive.name,
            "unit_id": archive.name,
            "kind": "archive",
            "source": redact_url(self.file_url(ctx, archive.name)),
            "subset": archive.subset,
            "status": "failed",
            "reason": reason,
        }

    def _box_format(self) -> str:
        return "fraction" if self.version == 2 else f"pixels@{VOX1_REF_HEIGHT}p"

    def _scan_youtube(
        self,
        ctx: AcquireContext,
        shard: int,
        records: list[dict[str, Any]],
        iden: Mapping[str, str],
    ) -> tuple[list[dict], list[dict]]:
        """Rows of this shard's tracks / chunks cut from YouTube videos (failed ones too)."""
        items: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        for unit in records:
            if unit.get("kind") != "youtube":
                continue
            meta = unit_meta(unit)
            video_id = meta["video_id"]
            status = cell_text(unit.get("download_status"))
            reason = cell_text(unit.get("download_reason")) or cell_text(unit.get("reason"))
            if not status:
                reason = reason or "not downloaded (download stage did not run)"
            cuts_path = _cuts_path(ctx, video_id)
            cuts = json.loads(cuts_path.read_text("utf-8")) if cuts_path.exists() else {}
            common = {
                "unit_id": unit["unit_id"],
                "kind": "video",
                "source": redact_url(str(unit["url"])),
                "youtube_id": video_id,
            }
            for entry, protocol in [(t, "voxceleb") for t in meta.get("tracks", [])] + [
                (c, "fomm") for c in meta.get("chunks", [])
            ]:
                if stable_shard(entry["speaker"], ctx.num_shards) != shard:
                    continue
                clip_id = entry["clip_id"]
                row: dict[str, Any] = {
                    **common,
                    "clip_id": clip_id,
                    "speaker": entry["speaker"],
                    "protocol": protocol,
                    **cuts.get("clips", {}).get(clip_id, {}),
                }
                if protocol == "voxceleb":
                    out = ctx.data_root / "clips" / f"{clip_id}.mp4"
                    row.update(
                        split=self._split(clip_id, entry["split"], iden),
                        archive_split=entry["split"],
                        subset=f"{entry['split']}_txt",
                        utterance=clip_id.rsplit("/", 1)[-1],
                        track=ctx.rel(ctx.raw_root / entry["txt"]),
                        box_format=self._box_format(),
                    )
                else:
                    out = ctx.data_root / f"{clip_id}.mp4"
                    row.update(
                        split=entry["split"],
                        subset="fomm",
                        chunk=entry["chunk"],
                        start_frame=entry["start"],
                        end_frame=entry["end"],
                        bbox=entry["bbox"],
                        ref_width=entry["width"],
                        ref_height=entry["height"],
                    )
                row["path"] = ctx.rel(out)
                error = cuts.get("errors", {}).get(clip_id)
                if status != "ok":
                    failures.append({**row, "status": "failed", "reason": reason})
                elif error:
                    failures.append({**row, "status": "failed", "reason": error})
                else:
                    items.append({**row, "_abs_path": out})
        return items, failures

    # -- statistics ----------------------------------------------------------------------------

    def statistics(self, manifest: pd.DataFrame) -> dict[str, Any]:
        """Table 1 figures from ok rows: VoxCeleb utterances (FOMM chunks only if none)."""
        ok = manifest[manifest["status"] == "ok"]
        if "protocol" in ok.columns and (ok["protocol"] == "voxceleb").any():
            ok = ok[ok["protocol"] == "voxceleb"]
        return super().statistics(ok)


_KEY_IN_QUERY = re.compile(r"([?&](?:key|token|access_token|password|sig|signature)=)[^&\s\"']+")


class _MaskQueryKeys(logging.Filter):
    """Masks secret query values in a record (urllib3 logs request lines at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _KEY_IN_QUERY.sub(r"\1***", message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def _mask_keys_in_http_logs() -> None:
    """Keep the KAIST key out of urllib3's DEBUG request lines (installed once)."""
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _MaskQueryKeys) for f in logger.filters):
        logger.addFilter(_MaskQueryKeys())


def _cuts_path(ctx: AcquireContext, video_id: str) -> Path:
    return ctx.raw_root / "youtube" / f"{video_id}.cuts.json"


def _cut_reason(error: BaseException) -> str:
    if isinstance(error, TransferError):
        return error.reason
    return f"cannot cut clip: {str(error).splitlines()[0] if str(error) else type(error).__name__}"


class VoxCeleb1(VoxCelebBase):
    """VoxCeleb1: audio archives, face tracks, metadata; video from YouTube (tracks, FOMM).

    Default subsets: the test audio (1.07 GB) with both track archives and the metadata. The
    dev audio (four parts, 32.6 GB) is opt-in (``dev_wav``); the track archives are what a
    YouTube re-crop needs and the metadata carries the identification split.
    """

    name = "voxceleb1"
    survey_name = "VoxCeleb1"
    description = "VoxCeleb1: 1,251 celebrities, 153,516 utterances from YouTube interviews"
    homepage = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox1.html"
    licence = "CC BY 4.0 (metadata); videos remain with their YouTube owners"
    version = 1
    subsets: ClassVar[dict[str, str]] = {
        "dev_wav": "dev audio: 1,211 speakers, 148,642 utterances (wav; 4 parts, 32.6 GB)",
        "test_wav": "test audio: 40 speakers, 4,874 utterances (wav; vox1_test_wav.zip, 1.07 GB)",
        "dev_txt": "dev face tracks (vox1_dev_txt.zip, 139 MB); with source=youtube, the dev "
        "videos cut into one clip per track",
        "test_txt": "test face tracks (vox1_test_txt.zip, 4.6 MB); with source=youtube, the test "
        "videos cut into one clip per track",
        "meta": "vox1_meta.csv (identity, name, gender, nationality, set) and iden_split.txt",
        "fomm": "FOMM/video-preprocessing chunks of vox-metadata.csv (train 19,550 / test 525 "
        "rows), cropped to 256x256 (source=youtube)",
    }
    default_subsets: ClassVar[tuple[str, ...]] = ("test_wav", "dev_txt", "test_txt", "meta")
    archives: ClassVar[tuple[Archive, ...]] = (
        Archive("dev_wav", "vox1_dev_wav.zip", _parts("vox1_dev_wav", 4), "audio", "dev"),
        Archive("test_wav", "vox1_test_wav.zip", (), "audio", "test"),
        Archive("dev_txt", "vox1_dev_txt.zip", (), "track", "dev"),
        Archive("test_txt", "vox1_test_txt.zip", (), "track", "test"),
    )
    meta_files: ClassVar[tuple[str, ...]] = ("vox1_meta.csv", "iden_split.txt")
    test_ids = VOX1_TEST_IDS

    def _iden_split(self, ctx: AcquireContext) -> dict[str, str]:
        path = ctx.raw_root / "meta" / "iden_split.txt"
        return read_iden_split(path) if path.exists() else {}


class VoxCeleb2(VoxCelebBase):
    """VoxCeleb2: video and audio archives, face tracks, metadata; or YouTube track clips.

    Default subsets: the test video (8.91 GB), both track archives and the metadata. The dev
    video (nine parts, about 267 GB, plus as much again to extract) and dev audio are opt-in.
    """

    name = "voxceleb2"
    survey_name = "VoxCeleb2"
    description = "VoxCeleb2: 6,112 celebrities, 1,128,246 utterances from YouTube interviews"
    homepage = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox2.html"
    licence = "CC BY 4.0 (metadata); videos remain with their YouTube owners"
    version = 2
    subsets: ClassVar[dict[str, str]] = {
        "dev_mp4": "dev video: 5,994 speakers, 1,092,009 clips, 224x224 25 fps (9 parts, ~267 GB; "
        "no published md5)",
        "test_mp4": "test video: 118 speakers, 36,237 clips (vox2_test_mp4.zip, 8.91 GB)",
        "dev_aac": "dev audio: AAC 16 kHz (8 parts, ~77 GB)",
        "test_aac": "test audio: AAC 16 kHz (vox2_test_aac.zip, 2.59 GB)",
        "dev_txt": "dev face tracks (vox2_dev_txt.zip, ~1.5 GB); with source=youtube, the dev "
        "videos cut into one clip per track",
        "test_txt": "test face tracks (vox2_test_txt.zip); with source=youtube, the test videos "
        "cut into one clip per track",
        "meta": "vox2_meta.csv (identity, VGGFace2 id, gender, set)",
    }
    default_subsets: ClassVar[tuple[str, ...]] = ("test_mp4", "dev_txt", "test_txt", "meta")
    archives: ClassVar[tuple[Archive, ...]] = (
        Archive("dev_mp4", "vox2_dev_mp4.zip", _parts("vox2_dev_mp4", 9), "video", "dev"),
        Archive("test_mp4", "vox2_test_mp4.zip", (), "video", "test"),
        Archive("dev_aac", "vox2_dev_aac.zip", _parts("vox2_dev_aac", 8), "audio", "dev"),
        Archive("test_aac", "vox2_test_aac.zip", (), "audio", "test"),
        Archive("dev_txt", "vox2_dev_txt.zip", (), "track", "dev"),
        Archive("test_txt", "vox2_test_txt.zip", (), "track", "test"),
    )
    meta_files: ClassVar[tuple[str, ...]] = ("vox2_meta.csv",)
    test_ids = VOX2_TEST_IDS
