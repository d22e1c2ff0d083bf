"""MEAD (Wang et al., ECCV 2020): emotional talking faces, 7 views, 8 emotions, 3 levels.

**Source.** The publisher (wywu.github.io/projects/MEAD) distributes "Part0", 48 of the 60
recorded actors, from Google Drive: one folder per actor (``MXXX`` male, ``WXXX`` female)
holding ``video.tar`` and ``audio.tar``; use is bound by the MEAD Terms of Use (non-commercial
research). No checksums are published. Two sources are implemented as URL templates:

``hf`` (default)
    The public Hugging Face copy ``jordantencent/my_MEAD``:
    ``{hf}/{actor}_{archive}.tar`` with ``hf`` =
    ``https://huggingface.co/datasets/jordantencent/my_MEAD/resolve/main``. Verified from the
    repository's commit history: ``W018``..``W040`` ``*_video.tar`` uploads and
    ``W021_audio.tar``; the rest of its listing, and whether the tars carry the same member
    layout as the Drive ones, are not verified. The index reads the repository's file listing
    (``hf_api`` base, the Hugging Face tree API), which gives each file's LFS sha256 and size,
    so downloads are verified; an archive absent from the listing becomes a failed unit
    ("not on the mirror") without a request. Most audio archives are not on this mirror.
``official``
    The Drive folder layout ``{official}/{actor}/{archive}.tar``. Google Drive addresses
    files by opaque per-file IDs (uniBruce/Mead#34 lists ``gdown`` IDs for the video tars
    only) and answers large files with a confirmation page, so it cannot be fetched by path:
    copy the actor folders (gdown, rclone) to any HTTP server and pass its URL with
    ``--mirror official=URL``. Without a mirror the index fails with that explanation.

**Actors.** :data:`PUBLIC_ACTORS`, the 48 released actors: the 47 identities of EMOTE's
train/val/test lists (27 male, 20 female) plus ``W017``, whose release holds only the
``down`` view (which is why EMOTE leaves it out). Another list can be given as
``MEAD(actors=...)`` or the ``MEAD_ACTORS`` environment variable (comma-separated).

**Units and subsets.** One unit per actor and archive (``M003/video``, ``M003/audio``;
shard group = actor), downloaded to ``<raw>/<actor>/<archive>.tar`` and extracted safely
into ``<raw>/<actor>/`` right after download. Subsets: ``front`` (the video archive, only its
front view extracted: what talking-head papers use, and the survey's "39 h per view"),
``video`` (all seven views), ``audio`` (the per-emotion/level ``.m4a`` tree). Default:
``front`` + ``audio``. Refused archive members (absolute paths, ``..``, links) become
``skipped`` rows naming the member and why.

**Layout.** ``MXXX/video/<view>/<emotion>/level_<n>/NNN.mp4`` and
``MXXX/audio/<emotion>/level_<n>/NNN.m4a`` (audio is per emotion/level, shared by the
views). Views ``front, down, top, left_30, left_60, right_30, right_60``; emotions
``angry, contempt, disgusted, fear, happy, neutral, sad, surprised``; neutral has only
``level_1``. Nominally 40 neutral sentences and 30 per other emotion and level. Video rows
carry ``view, emotion, level, sentence`` and ``audio_path`` (the paired ``.m4a``, when
present); the layout is parsed from the right, so tars whose members start with the actor
folder work too. Video is 1920x1080 at a nominal 30 fps (facts come from the files).

**Split** (:func:`official_split`, uniBruce/Mead README citing the supplementary §6): for each
intensity level the last 10 neutral sentences (031-040) and the last 6 sentences of each
other emotion (025-030) are ``test``; the rest are ``train``. It depends only on emotion and
sentence number, so a missing file never shifts it.

**Known defects** (a ``known_issue`` column on every affected row):

* ``W017`` released only the ``down`` view (uniBruce/Mead#9): with the ``front`` subset its
  video archive yields no clips and becomes one ``skipped`` row saying so.
* ``M011`` and ``M019`` lack some emotions/views (uniBruce/Mead#9): their rows are kept,
  flagged.
* The Drive copy of ``M019/video.tar`` is corrupted (uniBruce/Mead#28): extraction fails and
  the unit's ``failed`` reason carries the note.
* ``M041/video/front/sad/level_2/020``-``023.mp4`` have no audio track (inferno
  ``process_mead.py``): rows stay ``ok``, flagged, with ``audio_path`` from the audio tree.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import pandas as pd

from talking_heads.datasets.base import AcquireContext, Dataset, describe_clips, unit_meta
from talking_heads.datasets.transfer import TransferError, fetch_text, redact_url, safe_extract
from talking_heads.utils.atomic import atomic_write_json

log = logging.getLogger(__name__)

#: the 48 actors of the public release ("Part0")
PUBLIC_ACTORS: tuple[str, ...] = (
    *(
        f"M{n:03d}"
        for n in (3, 5, 7, 9, 11, 12, 13, 19, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33)
    ),
    *(f"M{n:03d}" for n in (34, 35, 37, 39, 40, 41, 42)),
    *(f"W{n:03d}" for n in (9, 11, 14, 15, 16, 17, 18, 19, 21, 23, 24, 25, 26, 28, 29, 33)),
    *(f"W{n:03d}" for n in (35, 36, 37, 38, 40)),
)
VIEWS: tuple[str, ...] = ("front", "down", "top", "left_30", "left_60", "right_30", "right_60")
EMOTIONS: tuple[str, ...] = (
    "angry",
    "contempt",
    "disgusted",
    "fear",
    "happy",
    "neutral",
    "sad",
    "surprised",
)
LEVELS: tuple[str, ...] = ("level_1", "level_2", "level_3")
ARCHIVES: tuple[str, ...] = ("video", "audio")

#: nominal sentences per (emotion, level) and how many of the last ones are test
NEUTRAL_SENTENCES, NEUTRAL_TEST = 40, 10
EMOTION_SENTENCES, EMOTION_TEST = 30, 6

ACTOR_ISSUES: dict[str, str] = {
    "W017": "W017 released only the 'down' view (uniBruce/Mead#9)",
    "M011": "M011 lacks some emotions/views (uniBruce/Mead#9)",
    "M019": "M019 lacks some emotions/views (uniBruce/Mead#9)",
}
ARCHIVE_ISSUES: dict[tuple[str, str], str] = {
    ("M019", "video"): "M019/video.tar on Google Drive is corrupted (uniBruce/Mead#28)",
}
#: (actor, view, emotion, level) -> sentences whose video has no audio track
SILENT_VIDEOS: dict[tuple[str, str, str, str], frozenset[int]] = {
    ("M041", "front", "sad", "level_2"): frozenset({20, 21, 22, 23}),
}

_ACTOR = re.compile(r"^[MW]\d{3}$")
_SENTENCE = re.compile(r"^(\d{3})\.(mp4|m4a)$")


def official_split(emotion: str, sentence: int) -> str:
    """MEAD's split of one sentence: ``test`` for the last 10 neutral / last 6 other ones.

    Per intensity level, neutral sentences ``031``-``040`` and sentences ``025``-``030`` of
    every other emotion are test; everything else is train (uniBruce/Mead README).
    """
    if emotion not in EMOTIONS:
        raise ValueError(f"unknown MEAD emotion {emotion!r}")
    if sentence < 1:
        raise ValueError(f"MEAD sentences are numbered from 001, got {sentence}")
    if emotion == "neutral":
        return "test" if sentence > NEUTRAL_SENTENCES - NEUTRAL_TEST else "train"
    return "test" if sentence > EMOTION_SENTENCES - EMOTION_TEST else "train"


def parse_clip_path(path: PurePosixPath | Path) -> dict[str, Any] | None:
    """Columns of a clip from its path (right-anchored), or None when it is not a MEAD clip.

    ``.../video/<view>/<emotion>/level_<n>/NNN.mp4`` and
    ``.../audio/<emotion>/level_<n>/NNN.m4a``.
    """
    parts = PurePosixPath(path).parts
    match = _SENTENCE.match(parts[-1]) if parts else None
    if match is None:
        return None
    sentence, suffix = int(match[1]), match[2]
    if suffix == "mp4" and len(parts) >= 5 and parts[-5] == "video":
        view, emotion, level = parts[-4], parts[-3], parts[-2]
        if view not in VIEWS:
            return None
        kind = "video"
    elif suffix == "m4a" and len(parts) >= 4 and parts[-4] == "audio":
        view, emotion, level = None, parts[-3], parts[-2]
        kind = "audio"
    else:
        return None
    if emotion not in EMOTIONS or level not in LEVELS:
        return None
    return {
        "kind": kind,
        "view": view,
        "emotion": emotion,
        "level": int(level.removeprefix("level_")),
        "sentence": sentence,
    }


class MEAD(Dataset):
    """MEAD per-actor ``video.tar`` / ``audio.tar`` archives, extracted and parsed."""

    name = "mead"
    fixture_test = "tests/test_dataset_mead.py"
    survey_name = "MEAD"
    description = "MEAD: 60 actors (48 public), 8 emotions x 3 levels, 7 camera views"
    homepage = "https://wywu.github.io/projects/MEAD/MEAD.html"
    licence = "MEAD Terms of Use: non-commercial research only"
    subsets: ClassVar[dict[str, str]] = {
        "front": "video.tar of each actor, only the front view extracted",
        "video": "video.tar of each actor, all seven views extracted",
        "audio": "audio.tar of each actor (per emotion/level .m4a, shared by the views)",
    }
    default_subsets: ClassVar[tuple[str, ...]] = ("front", "audio")
    sources: ClassVar[dict[str, str]] = {
        "hf": "Hugging Face copy jordantencent/my_MEAD ({actor}_{archive}.tar, LFS sha256)",
        "official": "an HTTP copy of the Google Drive actor folders ({actor}/{archive}.tar)",
    }
    url_bases: ClassVar[dict[str, str]] = {
        "hf": "https://huggingface.co/datasets/jordantencent/my_MEAD/resolve/main",
        "hf_api": "https://huggingface.co/api/datasets/jordantencent/my_MEAD/tree/main",
        "official": "",
    }
    url_templates: ClassVar[dict[str, str]] = {
        "hf": "{base}/{actor}_{archive}.tar",
        "official": "{base}/{actor}/{archive}.tar",
    }
    environment = "Lab"
    head_movement = "Yes"

    def __init__(self, actors: Iterable[str] | None = None) -> None:
        self._actors = tuple(actors) if actors is not None else None

    # -- index ---------------------------------------------------------------------------------

    def actors(self, ctx: AcquireContext) -> tuple[str, ...]:
        """Actors to fetch: the constructor's list, else ``MEAD_ACTORS``, else all 48."""
        if self._actors is not None:
            chosen = self._actors
        elif ctx.environ.get("MEAD_ACTORS"):
            chosen = tuple(a.strip() for a in ctx.environ["MEAD_ACTORS"].split(",") if a.strip())
        else:
            chosen = PUBLIC_ACTORS
        bad = [a for a in chosen if not _ACTOR.match(a)]
        if bad:
            raise ValueError(f"mead: actor ids look like M003/W017, got {', '.join(bad)}")
        return tuple(dict.fromkeys(chosen))

    def views(self, ctx: AcquireContext) -> tuple[str, ...]:
        """Views extracted from the video archives (all with ``video``, else ``front``)."""
        chosen = self.selected_subsets(ctx)
        if "video" in chosen:
            return VIEWS
        return ("front",) if "front" in chosen else ()

    def index(self, ctx: AcquireContext) -> list[dict[str, Any]]:
        """One unit per actor and archive, URLs from the chosen source's template."""
        source = self.source_of(ctx)
        base = self.base_url(ctx, source)
        if not base:
            raise TransferError(
                "no URL for the official MEAD source: Google Drive serves files by opaque IDs, "
                "so copy the actor folders to an HTTP server and pass --mirror official=URL "
                "(or use --source hf)"
            )
        archives = [a for a in ARCHIVES if a != "video" or self.views(ctx)]
        archives = [a for a in archives if a != "audio" or "audio" in self.selected_subsets(ctx)]
        listing = self._hf_listing(ctx) if source == "hf" else None
        video_subset = "video" if len(self.views(ctx)) > 1 else "front"
        units = []
        for actor in self.actors(ctx):
            for archive in archives:
                url = self.url_templates[source].format(base=base, actor=actor, archive=archive)
                remote = url.rsplit("/", 1)[-1]
                issue = "; ".join(
                    i for i in (ACTOR_ISSUES.get(actor), ARCHIVE_ISSUES.get((actor, archive))) if i
                )
                unit: dict[str, Any] = {
                    "unit_id": f"{actor}/{archive}",
                    "group": actor,
                    "subset": "audio" if archive == "audio" else video_subset,
                    "kind": f"{archive}-archive",
                    "url": url,
                    "dest": f"{actor}/{archive}.tar",
                    "meta": {"actor": actor, "archive": archive, "known_issue": issue},
                }
                if listing is not None:
                    entry = listing.get(remote)
                    if entry is None:
                        unit.update(
                            status="failed",
                            reason=f"not on the mirror: {remote} is not in its file listing",
                        )
                    else:
                        unit.update(size=entry.get("size"), sha256=entry.get("sha256"))
                units.append(unit)
        return units

    def _hf_listing(self, ctx: AcquireContext) -> dict[str, dict[str, Any]] | None:
        """File name -> size/sha256 from the Hugging Face tree API (None when unavailable)."""
        url = self.base_url(ctx, "hf_api")
        try:
            entries = json.loads(fetch_text(url, retries=ctx.retries, backoff_s=ctx.backoff_s))
        except (TransferError, ValueError) as error:
            why = error.reason if isinstance(error, TransferError) else "not JSON"
            log.warning("mead: no file listing from %s (%s); no checksums", redact_url(url), why)
            return None
        listing: dict[str, dict[str, Any]] = {}
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or entry.get("type") != "file":
                continue
            lfs = entry.get("lfs") or {}
            listing[str(entry.get("path"))] = {
                "size": lfs.get("size", entry.get("size")),
                "sha256": lfs.get("oid") or lfs.get("sha256"),
            }
        return listing

    # -- download (the default resumable, verified http_fetch) -----------------------------------

    def after_fetch(self, ctx: AcquireContext, unit: Mapping[str, Any]) -> None:
        """Extract the archive safely into ``<raw>/<actor>/`` (once; a marker records it)."""
        meta = unit_meta(unit)
        actor, archive = meta["actor"], meta["archive"]
        tar_path = ctx.raw_root / str(unit["dest"])
        target = ctx.raw_root / actor
        marker = _marker(ctx, actor, archive)
        views = list(self.views(ctx)) if archive == "video" else []
        size = tar_path.stat().st_size
        if marker.exists():
            done = json.loads(marker.read_text("utf-8"))
            if done.get("archive_size") == size and set(views) <= set(done.get("views", [])):
                return

        def select(name: str) -> bool:
            # only well-formed clips of another view/archive are left out; every other
            # member goes through safe_extract's checks, so hostile names are reported
            parsed = parse_clip_path(PurePosixPath(name.replace("\\", "/")))
            if parsed is None:
                return True
            if parsed["kind"] != archive:
                return False
            return archive == "audio" or parsed["view"] in views

        try:
            report = safe_extract(
                tar_path, target, select=select, progress=ctx.progress, desc=f"{actor} {archive}"
            )
        except TransferError as error:
            issue = ARCHIVE_ISSUES.get((actor, archive))
            raise TransferError(
                f"{error.reason}: {actor}/{archive}.tar"
                + (f" (known defect: {issue})" if issue else "")
            ) from None
        atomic_write_json(
            marker,
            {
                "archive_size": size,
                "views": views,
                "extracted": len(report.extracted),
                "existing": len(report.existing),
                "rejected": [list(r) for r in report.rejected],
            },
        )

    # -- scan ----------------------------------------------------------------------------------

    def scan(self, ctx: AcquireContext, shard: int, units: pd.DataFrame) -> list[dict]:
        """Clip rows of the shard's actors: layout parsed, audio paired, defects flagged."""
        mine = units[(units["shard"] == shard) & (units["download_status"] == "ok")]
        views = set(self.views(ctx))
        items: list[dict[str, Any]] = []
        extra: list[dict[str, Any]] = []
        for unit in mine.to_dict("records"):
            meta = unit_meta(unit)
            actor, archive = meta["actor"], meta["archive"]
            marker = _marker(ctx, actor, archive)
            rejected = json.loads(marker.read_text("utf-8"))["rejected"] if marker.exists() else []
            for index, (member, why) in enumerate(rejected):
                extra.append(
                    {
                        "clip_id": f"{unit['unit_id']}/refused/{index:03d}",
                        "unit_id": unit["unit_id"],
                        "speaker": actor,
                        "kind": archive,
                        "source": redact_url(str(unit["url"])),
                        "subset": unit["subset"],
                        "status": "skipped",
                        "reason": f"refused archive member: {member} ({why})",
                    }
                )
            found = self._clips(ctx, unit, actor, archive, views)
            if not found:
                issue = meta.get("known_issue") or ""
                what = (
                    "audio clips" if archive == "audio" else f"clips of the views {sorted(views)}"
                )
                extra.append(
                    {
                        "clip_id": unit["unit_id"],
                        "unit_id": unit["unit_id"],
                        "speaker": actor,
                        "kind": archive,
                        "source": redact_url(str(unit["url"])),
                        "subset": unit["subset"],
                        "known_issue": issue,
                        "status": "skipped" if issue else "failed",
                        "reason": f"archive holds no {what}: {actor}/{archive}.tar"
                        + (f" (known defect: {issue})" if issue else ""),
                    }
                )
            items.extend(found)
        return describe_clips(items, ctx) + extra

    def _clips(
        self,
        ctx: AcquireContext,
        unit: Mapping[str, Any],
        actor: str,
        archive: str,
        views: set[str],
    ) -> list[dict[str, Any]]:
        root = ctx.raw_root / actor
        suffix = "mp4" if archive == "video" else "m4a"
        audio_index = _audio_index(root) if archive == "video" else {}
        items = []
        for path in sorted(root.rglob(f"*.{suffix}")):
            parsed = parse_clip_path(path.relative_to(root))
            if parsed is None or parsed["kind"] != archive:
                continue
            if archive == "video" and parsed["view"] not in views:
                continue
            key = (parsed["emotion"], parsed["level"], parsed["sentence"])
            issues = [ACTOR_ISSUES[actor]] if actor in ACTOR_ISSUES else []
            level = f"level_{parsed['level']}"
            silent = SILENT_VIDEOS.get((actor, parsed["view"] or "", parsed["emotion"], level))
            if archive == "video" and silent and parsed["sentence"] in silent:
                issues.append(
                    "video has no audio track (inferno process_mead.py); use audio_path "
                    "from the audio tree"
                )
            audio = audio_index.get(key)
            parts = [actor, archive] + ([parsed["view"]] if parsed["view"] else [])
            items.append(
                {
                    "clip_id": "/".join(
                        [*parts, parsed["emotion"], level, f"{parsed['sentence']:03d}"]
                    ),
                    "unit_id": unit["unit_id"],
                    "speaker": actor,
                    "split": official_split(parsed["emotion"], parsed["sentence"]),
                    "kind": archive,
                    "source": redact_url(str(unit["url"])),
                    "path": ctx.rel(path),
                    "subset": unit["subset"],
                    "view": parsed["view"],
                    "emotion": parsed["emotion"],
                    "level": parsed["level"],
                    "sentence": parsed["sentence"],
                    "audio_path": ctx.rel(audio) if audio is not None else None,
                    "known_issue": "; ".join(issues),
                    "_abs_path": str(path),
                }
            )
        return items

    # -- statistics ----------------------------------------------------------------------------

    def statistics(self, manifest: pd.DataFrame) -> dict[str, Any]:
        """Table 1 numbers from ok **video** rows (audio rows when no video was fetched).

        Hours and utterances count every extracted view: with the default ``front`` subset
        they are per-view figures, comparable with the survey's "39 h (per view)". Speakers
        are distinct actors.
        """
        ok = manifest[manifest["status"] == "ok"]
        rows = ok[ok["kind"] == "video"] if (ok["kind"] == "video").any() else ok
        return {
            "hours": float(pd.to_numeric(rows["duration_s"], errors="coerce").sum() / 3600.0),
            "speakers": int(rows["speaker"].nunique()),
            "utterances": len(rows),
            "views": sorted(str(v) for v in rows.get("view", pd.Series()).dropna().unique()),
            "head_movement": self.head_movement,
            "source": self.environment,
        }


def _marker(ctx: AcquireContext, actor: str, archive: str) -> Path:
    return ctx.raw_root / actor / f".{archive}.extracted.json"


def _audio_index(root: Path) -> dict[tuple[str, int, int], Path]:
    """(emotion, level, sentence) -> the actor's ``.m4a`` (for pairing with video rows)."""
    index = {}
    for path in root.rglob("*.m4a"):
        parsed = parse_clip_path(path.relative_to(root))
        if parsed is not None and parsed["kind"] == "audio":
            index[(parsed["emotion"], parsed["level"], parsed["sentence"])] = path
    return index
