"""CREMA-D (Cao et al., IEEE TAC 2014): 91 actors, 12 sentences, 6 emotions, 7,442 clips.

**Source.** The repository ``CheyneyComputerScience/CREMA-D`` keeps its media in Git LFS
(ODbL 1.0 database, DbCL 1.0 contents; the README asks users to fill in a Google form). A zip
of the repository holds only LFS pointers, so every media file is fetched on its own:

* the index reads ``SentenceFilenames.csv`` (``Stimulus_Number,Filename``: the 7,442 clip
  names) from ``raw.githubusercontent.com`` and, for every name and selected directory, the
  **LFS pointer** served there (``version https://git-lfs.github.com/spec/v1`` /
  ``oid sha256:<hex>`` / ``size <n>``); each media file becomes a unit with that sha256 and
  size, so downloads are verified byte for byte. Pointers are cached under
  ``<raw>/lfs-pointers/`` so a second index needs no network.
* source ``github`` (default) downloads the objects from
  ``https://media.githubusercontent.com/media/CheyneyComputerScience/CREMA-D/master/<dir>/<file>``
  (GitHub's LFS media host; ``raw.githubusercontent.com`` would return the pointer);
* source ``gitlab`` downloads from the mirror the README recommends,
  ``https://gitlab.com/cs-cooper-lab/crema-d-mirror/-/raw/main/<dir>/<file>``, verified with
  the same GitHub pointers (the branch name ``main`` comes from users' clone scripts; not
  verified here).

**Subsets.** ``VideoFlash`` (``.flv``, the audio-visual clips; commonly 480x360 at ~30 fps),
``AudioWAV`` (16 kHz mono PCM converted from the video), ``AudioMP3`` (the raters' MP3s).
Default: ``VideoFlash`` + ``AudioWAV``.

**Names.** ``{ActorID}_{Sentence}_{Emotion}_{Level}``: actors ``1001``-``1091``; sentences
``IEO TIE IOM IWW TAI MTI IWL ITH DFA ITS TSI WSI``; emotions ``ANG DIS FEA HAP NEU SAD``;
levels ``LO MD HI XX`` (only IEO was recorded at three levels). :func:`parse_name` validates
a name against these lists; a name that does not parse becomes a failed unit. Rows carry
``speaker`` (the actor), ``sentence``, ``emotion``, ``level``; units are grouped by actor for
sharding, so one actor's files share a shard.

**Split.** There is no official split (the repository's issue #2 only asks to keep each
actor's files together). :func:`speaker_split` is speaker-disjoint and deterministic: the 91
actor ids, sorted, shuffled by ``numpy.random.RandomState(0)`` and cut 70/10/20 % into
train/validation/test, the procedure of TensorFlow Datasets' ``crema_d`` builder
(``_get_inter_splits_by_group`` with split number 0), so our speakers fall as TFDS's do. It
uses the fixed actor list, never the files that happened to download.

**Known defects** (the repository README), flagged on every row of the clip with a
``known_issue`` column and status ``skipped``: ``1076_MTI_NEU_XX`` and ``1076_MTI_SAD_XX``
(very short, no audio), ``1064_TIE_SAD_XX`` (zero duration), ``1064_IEO_DIS_MD`` (one minute
long, holding all the emotions). They are still downloaded, so they can be inspected.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from talking_heads.datasets.base import AcquireContext, Dataset, describe_clips, unit_meta
from talking_heads.datasets.transfer import (
    TransferError,
    fetch_text,
    make_session,
    map_bounded,
    redact_url,
)
from talking_heads.utils.atomic import atomic_path

log = logging.getLogger(__name__)

ACTORS: tuple[str, ...] = tuple(str(n) for n in range(1001, 1092))
SENTENCES: dict[str, str] = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
EMOTIONS: dict[str, str] = {
    "ANG": "anger",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
LEVELS: dict[str, str] = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
#: subset (repository directory) -> file extension and manifest kind
DIRECTORIES: dict[str, tuple[str, str]] = {
    "VideoFlash": ("flv", "video"),
    "AudioWAV": ("wav", "audio"),
    "AudioMP3": ("mp3", "audio"),
}
KNOWN_ISSUES: dict[str, str] = {
    "1076_MTI_NEU_XX": "very short and without audio (CREMA-D README)",
    "1076_MTI_SAD_XX": "very short and without audio (CREMA-D README)",
    "1064_TIE_SAD_XX": "zero duration (CREMA-D README)",
    "1064_IEO_DIS_MD": "one minute long, holding all the emotions (CREMA-D README)",
}
SPLIT_FRACTIONS: tuple[tuple[str, float], ...] = (
    ("train", 0.7),
    ("validation", 0.1),
    ("test", 0.2),
)

_POINTER_VERSION = "version https://git-lfs.github.com/spec/v1"
_OID = re.compile(r"^oid sha256:([0-9a-f]{64})$")
_SIZE = re.compile(r"^size (\d+)$")


def parse_name(stem: str) -> dict[str, str]:
    """``ActorID_Sentence_Emotion_Level`` checked against the known codes; ValueError if not."""
    parts = stem.split("_")
    if len(parts) != 4:
        raise ValueError(f"not ActorID_Sentence_Emotion_Level: {stem!r}")
    actor, sentence, emotion, level = parts
    problems = [
        f"actor {actor!r} not in 1001-1091" if actor not in ACTORS else "",
        f"unknown sentence {sentence!r}" if sentence not in SENTENCES else "",
        f"unknown emotion {emotion!r}" if emotion not in EMOTIONS else "",
        f"unknown level {level!r}" if level not in LEVELS else "",
    ]
    problems = [p for p in problems if p]
    if problems:
        raise ValueError(f"{stem}: {'; '.join(problems)}")
    return {"actor": actor, "sentence": sentence, "emotion": emotion, "level": level}


def parse_lfs_pointer(text: str) -> tuple[str, int]:
    """``(sha256, size)`` of a Git LFS pointer file; ValueError when it is not one."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if not lines or lines[0] != _POINTER_VERSION:
        raise ValueError("not a Git LFS pointer")
    oid = next((m[1] for line in lines if (m := _OID.match(line))), None)
    size = next((int(m[1]) for line in lines if (m := _SIZE.match(line))), None)
    if oid is None or size is None:
        raise ValueError("Git LFS pointer without 'oid sha256:' or 'size'")
    return oid, size


def speaker_split(actor: str) -> str:
    """Speaker-disjoint split of an actor (TFDS ``crema_d`` procedure, seed 0, 70/10/20)."""
    return _SPEAKER_SPLITS[actor]


def _speaker_splits() -> dict[str, str]:
    import numpy as np

    groups = sorted(ACTORS)
    np.random.RandomState(0).shuffle(groups)
    splits: dict[str, str] = {}
    total = 0.0
    for name, fraction in SPLIT_FRACTIONS:
        start, total = int(total * len(groups)), total + fraction
        end = len(groups) if name == SPLIT_FRACTIONS[-1][0] else int(total * len(groups))
        splits.update({g: name for g in groups[start:end]})
    return splits


_SPEAKER_SPLITS = _speaker_splits()


class CremaD(Dataset):
    """CREMA-D media files as units, verified against their Git LFS pointers."""

    name = "cremad"
    fixture_test = "tests/test_dataset_cremad.py"
    survey_name = "CREMA-D"
    description = "CREMA-D: 7,442 clips of 91 actors, 12 sentences, 6 emotions, 4 levels"
    homepage = "https://github.com/CheyneyComputerScience/CREMA-D"
    licence = "ODbL 1.0 (database), DbCL 1.0 (contents)"
    subsets: ClassVar[dict[str, str]] = {
        "VideoFlash": "audio-visual clips (.flv)",
        "AudioWAV": "16 kHz mono PCM audio converted from the video (.wav)",
        "AudioMP3": "MP3 audio presented to the raters (.mp3)",
    }
    default_subsets: ClassVar[tuple[str, ...]] = ("VideoFlash", "AudioWAV")
    sources: ClassVar[dict[str, str]] = {
        "github": "Git LFS objects from media.githubusercontent.com (pointers from raw)",
        "gitlab": "the GitLab mirror cs-cooper-lab/crema-d-mirror (pointers from GitHub raw)",
    }
    url_bases: ClassVar[dict[str, str]] = {
        "raw": "https://raw.githubusercontent.com/CheyneyComputerScience/CREMA-D/master",
        "media": "https://media.githubusercontent.com/media/CheyneyComputerScience/CREMA-D/master",
        "gitlab": "https://gitlab.com/cs-cooper-lab/crema-d-mirror/-/raw/main",
    }
    head_movement = "No"
    environment = "Lab"

    # -- index ---------------------------------------------------------------------------------

    def index(self, ctx: AcquireContext) -> list[dict[str, Any]]:
        """One unit per media file of the selected directories, sha256/size from its pointer."""
        raw = self.base_url(ctx, "raw")
        media = self.base_url(ctx, "gitlab" if self.source_of(ctx) == "gitlab" else "media")
        session = make_session()
        names_csv = fetch_text(
            f"{raw}/SentenceFilenames.csv",
            session=session,
            retries=ctx.retries,
            backoff_s=ctx.backoff_s,
        )
        self._save(ctx.raw_root / "SentenceFilenames.csv", names_csv)
        stems = read_sentence_filenames(names_csv)
        units: list[dict[str, Any]] = []
        for subset in self.selected_subsets(ctx):
            extension, kind = DIRECTORIES[subset]
            for stem in stems:
                rel = f"{subset}/{stem}.{extension}"
                unit: dict[str, Any] = {
                    "unit_id": rel,
                    "group": stem.split("_", 1)[0],
                    "subset": subset,
                    "kind": kind,
                    "url": f"{media}/{rel}",
                    "dest": rel,
                    "meta": {"stem": stem, "pointer": f"{raw}/{rel}"},
                }
                try:
                    unit["meta"].update(parse_name(stem))
                except ValueError as error:
                    unit.update(status="failed", reason=f"unparseable clip name: {error}")
                units.append(unit)
        pending = [u for u in units if "status" not in u]
        for unit, outcome in map_bounded(
            lambda u: self._pointer(ctx, u["meta"]["pointer"], u["dest"], session),
            pending,
            jobs=max(ctx.jobs, 8),
            desc=f"{self.name} LFS pointers",
            unit="file",
            progress=ctx.progress,
        ):
            if isinstance(outcome, TransferError):
                unit.update(status="failed", reason=f"LFS pointer: {outcome.reason}")
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                unit["sha256"], unit["size"] = outcome
        return units

    def _pointer(self, ctx: AcquireContext, url: str, rel: str, session: Any) -> tuple[str, int]:
        """sha256 and size of one media file from its (cached) LFS pointer."""
        cache = ctx.raw_root / "lfs-pointers" / rel
        if cache.exists():
            try:
                return parse_lfs_pointer(cache.read_text("utf-8"))
            except ValueError:
                cache.unlink()  # a damaged cache entry: fetch the pointer again
        try:
            text = fetch_text(url, session=session, retries=ctx.retries, backoff_s=ctx.backoff_s)
        except UnicodeDecodeError:
            raise TransferError(
                f"not a Git LFS pointer (binary content): {redact_url(url)}"
            ) from None
        try:
            pointer = parse_lfs_pointer(text)
        except ValueError as error:
            raise TransferError(f"{error}: {redact_url(url)}") from None
        self._save(cache, text)
        return pointer

    @staticmethod
    def _save(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(text, "utf-8")

    # -- scan ----------------------------------------------------------------------------------

    def scan(self, ctx: AcquireContext, shard: int, units: pd.DataFrame) -> list[dict]:
        """One row per file of the shard's actors (failed downloads too), defects flagged.

        Besides :func:`describe_clips`' checks, a video whose decodable frames cover much
        less than the duration its container declares is failed as truncated: FLV is a
        streaming format without an index, so a cut file still opens and decodes its head.
        """
        mine = units[units["shard"] == shard]
        items, failed = [], []
        for unit in mine.to_dict("records"):
            meta = unit_meta(unit)
            if "stem" not in meta:
                continue  # a failed metadata unit: the pipeline adds its row
            stem = meta["stem"]
            issue = KNOWN_ISSUES.get(stem, "")
            item: dict[str, Any] = {
                "clip_id": f"{unit['subset']}/{stem}",
                "unit_id": unit["unit_id"],
                "speaker": meta.get("actor"),
                "split": speaker_split(meta["actor"]) if "actor" in meta else None,
                "kind": unit["kind"],
                "source": redact_url(str(unit["url"])),
                "subset": unit["subset"],
                "utterance": stem,
                "sentence": meta.get("sentence"),
                "emotion": meta.get("emotion"),
                "level": meta.get("level"),
                "known_issue": issue,
            }
            if unit.get("download_status") != "ok":
                reason = unit.get("download_reason")
                if not isinstance(reason, str) or not reason:
                    reason = unit.get("reason") or "not downloaded (download stage did not run)"
                failed.append({**item, "status": "failed", "reason": reason})
                continue
            path = ctx.raw_root / str(unit["dest"])
            item.update(path=ctx.rel(path), _abs_path=str(path))
            if issue:
                item.update(status="skipped", reason=f"known defect: {stem} is {issue}")
            items.append(item)
        rows = describe_clips(items, ctx)
        for row in rows:
            problem = _truncation(row)
            if problem and row["status"] == "ok":
                row.update(status="failed", reason=f"{problem}: {Path(row['path']).name}")
            # a known defect stays "skipped" even when probing also fails on it
            if row.get("known_issue") and row["status"] == "failed":
                row["reason"] = (
                    f"known defect: {row['utterance']} is {row['known_issue']}; {row['reason']}"
                )
                row["status"] = "skipped"
        return rows + failed

    # -- statistics ----------------------------------------------------------------------------

    def statistics(self, manifest: pd.DataFrame) -> dict[str, Any]:
        """Table 1 numbers: utterances are distinct clip names (one per video/wav/mp3 triple).

        Hours are summed over one modality, the first present of VideoFlash, AudioWAV,
        AudioMP3, so a clip is not counted once per file format.
        """
        ok = manifest[manifest["status"] == "ok"]
        present = [s for s in DIRECTORIES if (ok["subset"] == s).any()]
        rows = ok[ok["subset"] == present[0]] if present else ok
        return {
            "hours": float(pd.to_numeric(rows["duration_s"], errors="coerce").sum() / 3600.0),
            "speakers": int(ok["speaker"].nunique()),
            "utterances": int(ok["utterance"].nunique()),
            "hours_from": present[0] if present else None,
            "head_movement": self.head_movement,
            "source": self.environment,
        }


def read_sentence_filenames(text: str) -> list[str]:
    """Clip names of ``SentenceFilenames.csv`` (``Stimulus_Number,Filename``), in order."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "Filename" not in reader.fieldnames:
        raise TransferError("SentenceFilenames.csv has no 'Filename' column")
    stems = [row["Filename"].strip() for row in reader if (row.get("Filename") or "").strip()]
    return list(dict.fromkeys(stems))


def _truncation(row: Mapping[str, Any]) -> str | None:
    """Why a probed video looks cut short (frames far shorter than the declared duration)."""
    frames, fps, duration = row.get("num_frames"), row.get("fps"), row.get("duration_s")
    if row.get("kind") != "video" or not frames or not fps or not duration:
        return None
    decoded = float(frames) / float(fps)
    if decoded < 0.8 * float(duration) and float(duration) - decoded > 0.2:
        return (
            f"truncated video ({int(frames)} frames = {decoded:.2f} s decodable of the "
            f"{float(duration):.2f} s the container declares)"
        )
    return None
