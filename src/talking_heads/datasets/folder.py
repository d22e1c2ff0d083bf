"""Your own media as a dataset: a directory of videos and/or portraits, indexed in place.

``talking-heads datasets index folder --path DIR --out data/NAME`` (Snakemake: ``datasets:
{NAME: {kind: folder, path: DIR, num_shards: 1}}``) writes ``data/NAME/manifest.parquet`` and
``data/NAME/summary.json`` (counts by status, kind and reason), both atomically; the media
stay in ``DIR`` and the manifest's paths point at them (relative to ``data/NAME``). Every
recipe, protocol and table then runs on ``NAME`` as on any dataset.

What ``DIR`` may hold (searched recursively; names starting with ``.`` are ignored):

- **videos** (``.mp4``, ``.mov``, ``.mkv``, ``.avi``, ``.webm``, ``.m4v``, ``.gif``) and
  **portraits** (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.webp``): one row each. The
  ``clip_id`` is the path below ``DIR`` without its suffix, folders joined by ``#``, characters
  other than letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``.
- **same-stem** ``.wav`` **files** (``talk.wav`` beside ``talk.mp4``): the clip's audio. It
  *replaces* the video's own audio track when the video has one and is the clip's audio when
  it has none; the recipes extract their 16 kHz audio and features from it (column
  ``audio_file``) and the row's ``notes`` say which case it was. A ``.wav`` without a
  same-stem video or portrait is a row of kind ``audio``.
- ``labels.csv`` (optional): a column ``file`` (path below ``DIR``) or ``stem`` (the clip id),
  and any of ``speaker``, ``split``, ``emotion`` and further columns, each of which becomes a
  manifest column. Without a label, ``speaker`` is the clip id and ``split`` is ``test``.

Every file is probed without decoding it whole (the ffmpeg binary of ``imageio-ffmpeg``, as
:mod:`talking_heads.preprocess.decode`): the container's packets (frame count, variable frame
rate: column ``vfr`` and a note), frame rate (the average rate for VFR clips), width and
height, duration, the audio stream's sample rate and channels (``audio_rate``,
``audio_channels``), a display rotation (a note), a decode of the first frame, size and
sha256. An unknown extension becomes a ``skipped`` row ("not a media file"); an empty,
undecodable or text file with a media extension, a video without a video stream and a
labels row naming no file become ``failed`` rows with the reason. Nothing raises but a
malformed ``labels.csv`` (a one-line error naming it) or a missing ``DIR``.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from talking_heads.datasets.base import AcquireContext, Dataset
from talking_heads.datasets.transfer import map_bounded
from talking_heads.manifest import MANIFEST_COLUMNS, sha256_file, write_manifest
from talking_heads.utils.atomic import atomic_write_json
from talking_heads.utils.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, ffmpeg_exe

log = logging.getLogger(__name__)

LABELS_FILE = "labels.csv"
AUDIO_SUFFIXES = frozenset({".wav"})
DEFAULT_SPLIT = "test"
#: Columns a folder manifest adds to ``MANIFEST_COLUMNS``.
FOLDER_COLUMNS = ("vfr", "audio_channels", "audio_file", "notes")
_LABEL_KEYS = ("file", "stem")
_INT_COLUMNS = ("num_frames", "width", "height", "audio_rate", "audio_channels", "size_bytes")
_FLOAT_COLUMNS = ("fps", "duration_s")
_VIDEO_SIZE = re.compile(r"Stream #[^\n]*: Video: [^\n]*?\b(\d{1,5})x(\d{1,5})\b")
#: decode the first video frame and discard it (ffmpeg output options)
_FIRST_FRAME = ("-map", "0:v:0", "-frames:v", "1", "-f", "null", "-")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees")


class FolderDataset(Dataset):
    """A directory of the user's own media (see the module docstring); indexed, not fetched."""

    name = "folder"
    fixture_test = "tests/test_folder_dataset.py"
    survey_name = ""
    description = (
        "your own directory of videos and/or portraits, same-stem .wav audio and an optional "
        "labels.csv: `talking-heads datasets index folder --path DIR --out data/NAME`"
    )
    homepage = "README.md#your-own-data-folder-datasets"
    licence = "the user's own media"
    subsets: ClassVar[dict[str, str]] = {"all": "every file of the directory"}
    default_subsets = ("all",)
    sources: ClassVar[dict[str, str]] = {"local": "a directory on this machine"}
    built = False

    def index(self, ctx: AcquireContext) -> list[dict[str, Any]]:
        """Folders are not downloaded: a one-line error saying what to run instead."""
        raise ValueError(
            "folder datasets are indexed in place, not downloaded: use `talking-heads datasets "
            "index folder --path DIR --out data/NAME`"
        )


# -- probing ------------------------------------------------------------------------------------


def _first_error(stderr: str) -> str:
    from talking_heads.preprocess.decode import _error_lines

    lines = _error_lines(stderr)
    return lines[0] if lines else "unreadable"


def _looks_like_text(path: Path) -> bool:
    """Whether the file starts with printable UTF-8 text (no NUL bytes)."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if not head or b"\0" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)


class UnusableMediaError(Exception):
    """A media file that cannot be used; the message is its manifest row's reason."""


def _vfr_note(info: Any) -> str:
    low, _, high = info.interval_spread()
    return f"variable frame rate (frame intervals {low * 1e3:.0f}-{high * 1e3:.0f} ms)"


def probe_video(path: Path) -> dict[str, Any]:
    """Facts of one video (container packets, stream header, first frame decoded, audio)."""
    from talking_heads.preprocess.audio import probe_audio
    from talking_heads.preprocess.decode import UndecodableVideoError, probe_container

    try:
        info = probe_container(path)
    except UndecodableVideoError as error:
        if str(error) != "empty file (0 bytes)" and _looks_like_text(path):
            raise UnusableMediaError(
                f"not a media file: text with a {path.suffix} extension"
            ) from None
        raise UnusableMediaError(str(error)) from None
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), *_FIRST_FRAME],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not re.search(r"frame=\s*1\b", result.stderr):
        raise UnusableMediaError(f"cannot decode the first frame: {_first_error(result.stderr)}")
    size = _VIDEO_SIZE.search(result.stderr)
    notes: list[str] = []
    vfr = info.is_variable_rate()
    average = info.num_frames / info.end_s if info.end_s > 0 else None
    fps = average if vfr or not info.fps else info.fps
    if vfr:
        notes.append(_vfr_note(info))
    rotation = _ROTATION.search(result.stderr)
    if rotation and float(rotation.group(1)) % 360:
        notes.append(
            f"display rotation {float(rotation.group(1)):g} degrees (frames are stored unrotated)"
        )
    try:
        audio = probe_audio(path)
    except ValueError:
        audio = None
    return {
        "kind": "video",
        "num_frames": info.num_frames,
        "fps": fps,
        "vfr": vfr,
        "width": int(size.group(1)) if size else None,
        "height": int(size.group(2)) if size else None,
        "duration_s": info.duration_s or info.end_s,
        "audio_rate": audio["sample_rate"] if audio else None,
        "audio_channels": audio["channels"] if audio else None,
        "notes": notes,
    }


def probe_image(path: Path) -> dict[str, Any]:
    """Facts of one portrait (decoded with Pillow)."""
    from PIL import Image, UnidentifiedImageError

    if path.stat().st_size == 0:
        raise UnusableMediaError("empty file (0 bytes)")
    try:
        with Image.open(path) as image:
            image.load()
            width, height = image.size
    except UnidentifiedImageError:
        if _looks_like_text(path):
            raise UnusableMediaError(
                f"not a media file: text with a {path.suffix} extension"
            ) from None
        raise UnusableMediaError("cannot decode: not an image Pillow reads") from None
    except (OSError, ValueError) as error:
        raise UnusableMediaError(f"cannot decode: {str(error).splitlines()[0]}") from None
    return {"kind": "image", "num_frames": 1, "width": width, "height": height, "notes": []}


def probe_wav(path: Path) -> dict[str, Any]:
    """Facts of one ``.wav`` file (soundfile)."""
    import soundfile

    if path.stat().st_size == 0:
        raise UnusableMediaError("empty file (0 bytes)")
    try:
        info = soundfile.info(str(path))
    except Exception as error:  # libsndfile's error for anything it cannot read
        raise UnusableMediaError(f"cannot decode audio: {str(error).splitlines()[0]}") from None
    return {
        "kind": "audio",
        "duration_s": float(info.duration),
        "audio_rate": int(info.samplerate),
        "audio_channels": int(info.channels),
        "notes": [],
    }


def media_kind(path: Path) -> str | None:
    """``video``, ``image``, ``audio`` from the suffix, or None for other files."""
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    return None


_PROBES = {"video": probe_video, "image": probe_image, "audio": probe_wav}


# -- the folder's items ---------------------------------------------------------------------


@dataclass
class _Item:
    """One row to be: its main file, the same-stem ``.wav`` and the outcome of probing."""

    clip_id: str
    path: Path
    rel: str
    kind: str | None
    wav: Path | None = None
    status: str = "ok"
    reason: str = ""
    facts: dict[str, Any] = field(default_factory=dict)


def _clip_id(rel: Path, *, keep_suffix: bool = False) -> str:
    parts = [*rel.parent.parts, rel.name if keep_suffix else rel.stem]
    return "#".join(re.sub(r"[^A-Za-z0-9._-]+", "_", part) for part in parts)


def _unique(clip_id: str, taken: set[str]) -> str:
    candidate, n = clip_id, 2
    while candidate in taken:
        candidate, n = f"{clip_id}~{n}", n + 1
    taken.add(candidate)
    return candidate


def _files(root: Path, out_dir: Path) -> list[Path]:
    """Files under ``root`` (sorted; hidden ones, ``labels.csv`` and ``out_dir`` left out)."""
    out = out_dir.resolve()
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if rel.as_posix() == LABELS_FILE or out in path.resolve().parents:
            continue
        found.append(path)
    return found


def collect_items(root: Path, out_dir: Path) -> list[_Item]:
    """One item per video, portrait, lone ``.wav`` and other file; same-stem ``.wav`` files
    attached to their video or portrait."""
    groups: dict[Path, list[Path]] = {}
    for path in _files(root, out_dir):
        groups.setdefault(path.with_suffix(""), []).append(path)
    items: list[_Item] = []
    taken: set[str] = set()
    for paths in groups.values():
        kinds = {p: media_kind(p) for p in paths}
        visuals = [p for p in paths if kinds[p] in ("video", "image")]
        wavs = [p for p in paths if kinds[p] == "audio"]
        others = [p for p in paths if kinds[p] is None]
        main = visuals[:1] or wavs[:1]
        stem_id = _clip_id(paths[0].relative_to(root))
        for path in main:
            wav = wavs[0] if visuals and wavs else None
            items.append(_item(root, path, _unique(stem_id, taken), kinds[path], wav))
        for path in [*visuals[1:], *wavs[1:]]:
            item = _item(root, path, _suffixed_id(root, path, taken), kinds[path])
            item.status = "skipped"
            item.reason = f"duplicate clip id {stem_id} (also {main[0].name})"
            items.append(item)
        for path in others:
            item = _item(root, path, _suffixed_id(root, path, taken), None)
            item.status = "skipped"
            item.reason = f"not a media file ({path.suffix or 'no extension'})"
            items.append(item)
    return items


def _suffixed_id(root: Path, path: Path, taken: set[str]) -> str:
    return _unique(_clip_id(path.relative_to(root), keep_suffix=True), taken)


def _item(root: Path, path: Path, clip_id: str, kind: str | None, wav: Path | None = None) -> _Item:
    return _Item(clip_id, path, path.relative_to(root).as_posix(), kind, wav)


def probe_item(item: _Item) -> _Item:
    """Probe the item's file (and its ``.wav``); problems become its status and reason."""
    if item.status != "ok" or item.kind is None:
        return item
    try:
        item.facts = _PROBES[item.kind](item.path)
    except UnusableMediaError as error:
        item.status, item.reason = "failed", str(error)
        return item
    if item.wav is not None:
        _attach_wav(item)
    return item


def _attach_wav(item: _Item) -> None:
    """The same-stem ``.wav`` becomes the clip's audio (or a note saying why it is not)."""
    assert item.wav is not None
    facts = item.facts
    try:
        audio = probe_wav(item.wav)
    except UnusableMediaError as error:
        facts["notes"].append(f"{item.wav.name} not used: {error}")
        item.wav = None
        return
    if facts.get("audio_rate"):
        channels = facts.get("audio_channels")
        track = f"{facts['audio_rate']} Hz" + (f", {channels} ch" if channels else "")
        facts["notes"].append(f"audio from {item.wav.name}, replacing the video's ({track})")
    elif item.kind == "video":
        facts["notes"].append(f"audio from {item.wav.name} (the video has no audio track)")
    else:
        facts["notes"].append(f"audio from {item.wav.name}")
    facts["audio_rate"], facts["audio_channels"] = audio["audio_rate"], audio["audio_channels"]


def _relative(path: Path, out_dir: Path) -> str:
    return Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix()


def _row(item: _Item, root: Path, out_dir: Path) -> dict[str, Any]:
    facts = item.facts
    exists = item.path.is_file()
    size = item.path.stat().st_size if exists else None
    return {
        "clip_id": item.clip_id,
        "speaker": item.clip_id,
        "split": DEFAULT_SPLIT,
        "kind": item.kind or facts.get("kind") or "other",
        "source": f"folder {root.name}/{item.rel}",
        "path": _relative(item.path, out_dir),
        "num_frames": facts.get("num_frames"),
        "fps": facts.get("fps"),
        "width": facts.get("width"),
        "height": facts.get("height"),
        "duration_s": facts.get("duration_s"),
        "audio_rate": facts.get("audio_rate"),
        "size_bytes": size,
        "sha256": sha256_file(item.path) if size else "",
        "status": item.status,
        "reason": item.reason,
        "vfr": facts.get("vfr"),
        "audio_channels": facts.get("audio_channels"),
        "audio_file": _relative(item.wav, out_dir) if item.wav is not None else "",
        "notes": "; ".join(facts.get("notes", [])),
    }


# -- labels ---------------------------------------------------------------------------------


def read_labels(root: Path) -> pd.DataFrame | None:
    """``labels.csv`` of the folder (every cell text), or None when there is none."""
    path = root / LABELS_FILE
    if not path.is_file():
        return None
    try:
        labels = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path}: not a readable CSV file ({str(error).splitlines()[0]})"
        ) from None
    labels.columns = [str(c).strip() for c in labels.columns]
    keys = [k for k in _LABEL_KEYS if k in labels.columns]
    if len(keys) != 1:
        raise ValueError(
            f"{path}: needs exactly one of the columns 'file' or 'stem', got {list(labels.columns)}"
        )
    reserved = (set(MANIFEST_COLUMNS) | set(FOLDER_COLUMNS)) - {"speaker", "split"}
    clashes = sorted(set(labels.columns) & reserved)
    if clashes:
        raise ValueError(
            f"{path}: column(s) {', '.join(clashes)} are filled by the index, not labels"
        )
    key = keys[0]
    labels[key] = labels[key].str.strip()
    duplicated = labels[key][labels[key].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"{path}: {key} listed more than once: {', '.join(duplicated[:5])}")
    return labels


def apply_labels(
    rows: list[dict[str, Any]], items: list[_Item], labels: pd.DataFrame, root: Path
) -> list[dict[str, Any]]:
    """Label columns onto the rows they name; labels naming no file become failed rows."""
    key = "file" if "file" in labels.columns else "stem"
    lookup: dict[str, int] = {}
    for index, item in enumerate(items):
        if key == "stem":
            lookup[item.clip_id] = index
            lookup.setdefault(Path(item.rel).stem, index)
        else:
            lookup[item.rel] = index
            if item.wav is not None:
                lookup[item.wav.relative_to(root).as_posix()] = index
    columns = [c for c in labels.columns if c != key]
    for record in labels.to_dict("records"):
        name = str(record[key])
        values = {c: record[c] for c in columns}
        index = lookup.get(Path(name).as_posix() if key == "file" else name)
        if index is None:
            rows.append(_missing_row(name, key, values))
            continue
        row = rows[index]
        for column, value in values.items():
            if column in ("speaker", "split") and not value:
                continue
            row[column] = value
    for row in rows:
        for column in columns:
            row.setdefault(column, "")
    return rows


def _missing_row(name: str, key: str, values: Mapping[str, str]) -> dict[str, Any]:
    kind = media_kind(Path(name)) if key == "file" else None
    clip_id = _clip_id(Path(name)) if key == "file" else name
    return {
        "clip_id": clip_id,
        "speaker": values.get("speaker") or clip_id,
        "split": values.get("split") or DEFAULT_SPLIT,
        "kind": kind or "video",
        "path": "",
        "status": "failed",
        "reason": f"missing file: {name} is listed in {LABELS_FILE} but not in the folder",
        **{c: v for c, v in values.items() if c not in ("speaker", "split")},
    }


# -- the index ------------------------------------------------------------------------------


def _typed(rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns = [*MANIFEST_COLUMNS, *FOLDER_COLUMNS]
    extra = [c for c in dict.fromkeys(k for row in rows for k in row) if c not in columns]
    table = pd.DataFrame(rows, columns=[*columns, *extra])
    for column in _INT_COLUMNS:
        table[column] = pd.array(pd.to_numeric(table[column]), dtype="Int64")
    for column in _FLOAT_COLUMNS:
        table[column] = pd.array(pd.to_numeric(table[column]), dtype="Float64")
    table["vfr"] = pd.array(
        [None if v is None or pd.isna(v) else bool(v) for v in table["vfr"]], dtype="boolean"
    )
    typed_columns = {*_INT_COLUMNS, *_FLOAT_COLUMNS, "vfr"}
    for column in table.columns:
        if column not in typed_columns:
            table[column] = table[column].map(lambda v: "" if v is None or v is pd.NA else str(v))
    return table.sort_values("clip_id", kind="stable").reset_index(drop=True)


def _summary(table: pd.DataFrame, root: Path, out_dir: Path, labelled: bool) -> dict[str, Any]:
    ok = table[table["status"] == "ok"]
    bad = table[table["status"] != "ok"]
    return {
        "dataset": out_dir.name,
        "kind": "folder",
        "path": str(root.resolve()),
        "labels": labelled,
        "items": len(table),
        "by_status": {str(k): int(v) for k, v in table["status"].value_counts().items()},
        "by_kind": {str(k): int(v) for k, v in ok["kind"].value_counts().items()},
        "by_reason": {str(k): int(v) for k, v in bad["reason"].value_counts().items()},
        "variable_frame_rate": int(ok["vfr"].fillna(False).sum()),
        "with_audio": int(ok["audio_rate"].notna().sum()),
        "hours": float(ok["duration_s"].fillna(0).sum() / 3600.0),
        "speakers": int(ok["speaker"].nunique()),
        "splits": {str(k): int(v) for k, v in ok["split"].value_counts().items()},
    }


def index_folder(
    path: Path | str, out_dir: Path | str, *, jobs: int = 4, progress: bool = False
) -> Path:
    """Index the media directory ``path`` into ``out_dir`` (``manifest.parquet`` and
    ``summary.json``, written atomically, the manifest last); the manifest path."""
    root = Path(path).expanduser()
    out_dir = Path(out_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such media directory")
    labels = read_labels(root)
    items = collect_items(root, out_dir)
    probed = {
        item.clip_id: result if isinstance(result, _Item) else _unexpected(item, result)
        for item, result in map_bounded(
            probe_item, items, jobs=jobs, desc=f"index {root.name}", unit="file", progress=progress
        )
    }
    items = [probed[item.clip_id] for item in items]
    rows = [_row(item, root, out_dir) for item in items]
    if labels is not None:
        rows = apply_labels(rows, items, labels, root)
    table = _typed(rows)
    summary = _summary(table, root, out_dir, labels is not None)
    atomic_write_json(out_dir / "summary.json", summary)
    manifest = write_manifest(table, out_dir / "manifest.parquet")
    log.info("%s: %d items %s -> %s", root, len(table), summary["by_status"], manifest)
    return manifest


def _unexpected(item: _Item, error: BaseException) -> _Item:
    """An error no probe anticipated: the item fails with it instead of the index."""
    text = str(error).strip().splitlines()
    item.status = "failed"
    item.reason = f"unexpected {type(error).__name__}: {text[0] if text else ''}".strip()
    return item
