"""LRW (Chung & Zisserman, ACCV 2016): 500 words, 538,766 clips from BBC broadcasts.

**Source.** Oxford VGG distributes LRW under a BBC research licence signed by permanent staff;
applicants receive a user name and password, read here from ``LRW_USER`` and
``LRW_PASSWORD`` (never logged; without them every part is a failed row naming both
variables and the run goes on). The archive is published as byte-split parts
``https://thor.robots.ox.ac.uk/~vgg/data/lip_reading/data1/lrw-v1-parta{a..g}`` that
``cat lrw-v1-parta* > lrw-v1.tar`` joins (theSoenke/lipreading ``lrw_download.sh``).
**No checksums are published**: the parts are downloaded resumably but unverified; the
assemble stage records the md5 of the joined archive (in ``assembled.json`` and every clip
row's ``archive_md5``) so later copies can be compared, and says that none is published.

**Assembly.** ``needs_assembly``: once every part is in, the parts are read as one tar
through :class:`~talking_heads.datasets.transfer.ConcatReader` (no joined copy on disk) and
extracted safely into ``<raw>/``; a marker makes a second assembly a no-op.

**Layout and splits.** ``lipread_mp4/<WORD>/{train,val,test}/<WORD>_<nnnnn>.mp4`` plus a
``.txt`` of the same stem; the split is the directory (train 2010-01 to 2015-08, val
2015-09 to 12, test 2016-01 to 09; 488,766 / 25,000 / 25,000 clips). Subsets ``train``,
``val``, ``test`` extract only those directories. Clips are 29 frames (1.16 s), 256x256,
25 fps, the word centred. The ``.txt`` header's 5th line is ``Duration: <s> seconds``, the
word's length (mpc001 ``lipreading/dataset.py`` reads ``info[4]``); it becomes
``word_duration_s``; its ``Text:`` line must name the clip's word. A clip whose annotation is
missing or malformed is a failed row.

**Speakers.** LRW does not identify speakers (the paper reports "hundreds of speakers" and
surveys "1k+"), so ``speaker`` is NA and :meth:`LRW.statistics` reports ``speakers`` as None
with the reason. Clips are sharded by word (``stable_shard(word, n)``), so a word's clips,
the unit lip-reading works with, share a scan shard.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import pandas as pd

from talking_heads.datasets.base import AcquireContext, Dataset, describe_clips, stable_shard
from talking_heads.datasets.transfer import ConcatReader, TransferError, hash_stream, safe_extract
from talking_heads.utils.atomic import atomic_write_json

log = logging.getLogger(__name__)

PARTS: tuple[str, ...] = tuple(f"lrw-v1-parta{c}" for c in "abcdefg")
SPLITS: tuple[str, ...] = ("train", "val", "test")
ARCHIVE = "lrw-v1.tar"
NO_CHECKSUM = "no checksums are published for LRW; md5 of the joined archive computed locally"

_DURATION = re.compile(r"^Duration:\s*([0-9]*\.?[0-9]+)\s*seconds?\s*$")
_TEXT = re.compile(r"^Text:\s*(\S+)\s*$")
_CLIP = re.compile(r"^([A-Z0-9']+)_(\d{5})\.mp4$")


def parse_annotation(text: str) -> dict[str, Any]:
    """Word and word duration of an LRW ``.txt``; ValueError when malformed.

    The duration is the 5th line (``Duration: 0.35 seconds``); the word the ``Text:`` line.
    """
    lines = text.splitlines()
    if len(lines) < 5:
        raise ValueError(f"{len(lines)} lines, the duration is on the 5th")
    duration = _DURATION.match(lines[4].strip())
    if duration is None:
        raise ValueError(f"5th line is not 'Duration: <s> seconds': {lines[4].strip()[:40]!r}")
    word = next((m[1] for line in lines if (m := _TEXT.match(line.strip()))), None)
    return {"word": word, "word_duration_s": float(duration[1])}


def split_of(member: str) -> str | None:
    """Split directory of an archive member ``lipread_mp4/<WORD>/<split>/...`` (else None)."""
    parts = PurePosixPath(member).parts
    if len(parts) >= 3 and parts[0] == "lipread_mp4" and parts[2] in SPLITS:
        return parts[2]
    return None


class LRW(Dataset):
    """LRW: licensed byte-split tar parts, joined while extracting, words parsed."""

    name = "lrw"
    fixture_test = "tests/test_dataset_lrw.py"
    survey_name = "LRW"
    description = "LRW: 500 words x up to 1,000 speakers, 29-frame clips from BBC TV"
    homepage = "https://www.robots.ox.ac.uk/~vgg/data/lip_reading/lrw1.html"
    licence = "BBC research licence (credentials required)"
    subsets: ClassVar[dict[str, str]] = {
        "train": "training clips (2010-01 to 2015-08), 800-1,000 per word",
        "val": "validation clips (2015-09 to 2015-12), 50 per word",
        "test": "test clips (2016-01 to 2016-09), 50 per word",
    }
    default_subsets: ClassVar[tuple[str, ...]] = SPLITS
    sources: ClassVar[dict[str, str]] = {
        "official": "Oxford VGG (thor.robots.ox.ac.uk), basic auth from LRW_USER/LRW_PASSWORD",
    }
    credentials: ClassVar[dict[str, tuple[str, ...]]] = {
        "official": ("LRW_USER", "LRW_PASSWORD"),
    }
    url_bases: ClassVar[dict[str, str]] = {
        "official": "https://thor.robots.ox.ac.uk/~vgg/data/lip_reading/data1",
    }
    needs_assembly = True
    head_movement = "No"
    environment = "Wild"  # BBC television broadcasts (the survey's "TV")

    # -- index ---------------------------------------------------------------------------------

    def index(self, ctx: AcquireContext) -> list[dict[str, Any]]:
        """The seven archive parts (no checksums: none are published)."""
        base = self.base_url(ctx, "official")
        return [
            {
                "unit_id": part,
                "group": part,
                "subset": ",".join(self.selected_subsets(ctx)),
                "kind": "archive-part",
                "url": f"{base}/{part}",
                "dest": f"parts/{part}",
                "meta": {"checksum": NO_CHECKSUM},
            }
            for part in PARTS
        ]

    # -- assemble ------------------------------------------------------------------------------

    def assemble(self, ctx: AcquireContext, downloads: pd.DataFrame) -> dict:
        """Join the parts (read as one tar), record its md5, extract the selected splits."""
        ok = set(downloads.loc[downloads["status"] == "ok", "unit_id"])
        missing = [p for p in PARTS if p not in ok]
        if missing:
            return {
                "status": "failed",
                "reason": f"archive parts not downloaded: {', '.join(missing)}",
                "checksum": NO_CHECKSUM,
            }
        paths = [ctx.raw_root / "parts" / p for p in PARTS]
        sizes = [p.stat().st_size for p in paths]
        splits = sorted(self.selected_subsets(ctx))
        marker = ctx.raw_root / ".lrw-v1.extracted.json"
        if marker.exists():
            done = json.loads(marker.read_text("utf-8"))
            if done.get("part_sizes") == sizes and set(splits) <= set(done.get("splits", [])):
                return {**done, "status": "ok", "reason": "", "resumed": True}
        md5 = hash_stream(ConcatReader(paths), "md5")
        try:
            with ConcatReader(paths) as joined:
                report = safe_extract(
                    joined,
                    ctx.raw_root,
                    select=lambda name: split_of(name) in splits,
                    progress=ctx.progress,
                    desc=ARCHIVE,
                )
        except TransferError as error:
            return {
                "status": "failed",
                "reason": f"{error.reason}: {ARCHIVE} joined from {len(PARTS)} parts",
                "archive_md5": md5,
                "checksum": NO_CHECKSUM,
            }
        summary = {
            "archive": ARCHIVE,
            "archive_md5": md5,
            "checksum": NO_CHECKSUM,
            "part_sizes": sizes,
            "splits": splits,
            "extracted": len(report.extracted),
            "existing": len(report.existing),
            "rejected": [list(r) for r in report.rejected],
        }
        atomic_write_json(marker, summary)
        return {**summary, "status": "ok", "reason": ""}

    # -- scan ----------------------------------------------------------------------------------

    def scan(self, ctx: AcquireContext, shard: int, units: pd.DataFrame) -> list[dict]:
        """Clip rows of the words of ``shard`` (``stable_shard(word)``) from the extracted tree."""
        if not ctx.assembled_path.exists():
            return []
        assembled = json.loads(ctx.assembled_path.read_text("utf-8"))
        base = self.base_url(ctx, "official")
        common = {"unit_id": ARCHIVE, "source": f"{base}/lrw-v1-parta*", "kind": "video"}
        if assembled.get("status") != "ok":
            complete = not str(assembled.get("reason", "")).startswith("archive parts not")
            if shard == 0 and complete:
                # every part arrived but the joined archive is bad: one row says so
                return [{**common, "clip_id": ARCHIVE, "status": "failed", **_why(assembled)}]
            return []
        rows: list[dict] = []
        if shard == 0:
            for index, (member, why) in enumerate(assembled.get("rejected", [])):
                rows.append(
                    {
                        **common,
                        "clip_id": f"{ARCHIVE}/refused/{index:03d}",
                        "status": "skipped",
                        "reason": f"refused archive member: {member} ({why})",
                    }
                )
        splits = set(assembled.get("splits", SPLITS))
        root = ctx.raw_root / "lipread_mp4"
        items = []
        words = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        for word in words:
            if stable_shard(word, ctx.num_shards) != shard:
                continue
            for split in SPLITS:
                if split not in splits:
                    continue
                for video in sorted((root / word / split).glob("*.mp4")):
                    items.append(self._item(ctx, word, split, video, common, assembled))
        # a preset failed status (bad annotation) survives a good probe in describe_clips
        return rows + describe_clips(items, ctx)

    def _item(
        self,
        ctx: AcquireContext,
        word: str,
        split: str,
        video: Path,
        common: dict[str, Any],
        assembled: dict[str, Any],
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            **common,
            "clip_id": f"{word}/{split}/{video.stem}",
            "speaker": pd.NA,
            "split": split,
            "path": ctx.rel(video),
            "subset": split,
            "word": word,
            "word_duration_s": None,
            "archive_md5": assembled.get("archive_md5"),
            "_abs_path": str(video),
        }
        problem = _annotation_problem(word, video, item)
        if problem:
            item.update(status="failed", reason=problem)
        return item

    # -- statistics ----------------------------------------------------------------------------

    def statistics(self, manifest: pd.DataFrame) -> dict[str, Any]:
        """Table 1 numbers; ``speakers`` is None: LRW does not identify its speakers.

        The survey's "1k+" cannot be recomputed from the release. Hours are clip durations
        (29 frames each), utterances ok clips, and ``words`` the distinct words.
        """
        ok = manifest[manifest["status"] == "ok"]
        return {
            "hours": float(pd.to_numeric(ok["duration_s"], errors="coerce").sum() / 3600.0),
            "speakers": None,
            "speakers_note": "LRW does not identify speakers; the survey reports 1k+",
            "utterances": len(ok),
            "words": int(ok["word"].nunique()) if "word" in ok else 0,
            "by_split": {str(k): int(v) for k, v in ok["split"].value_counts().items()},
            "head_movement": self.head_movement,
            "source": self.environment,
        }


def _why(assembled: dict[str, Any]) -> dict[str, str]:
    return {"reason": str(assembled.get("reason") or "assembly failed")}


def _annotation_problem(word: str, video: Path, item: dict[str, Any]) -> str | None:
    """Fill ``word_duration_s`` from the clip's ``.txt``; a reason when that is impossible."""
    if _CLIP.match(video.name) is None or not video.name.startswith(f"{word}_"):
        return f"clip name is not {word}_<nnnnn>.mp4: {video.name}"
    txt = video.with_suffix(".txt")
    if not txt.exists():
        return f"annotation missing: {txt.name}"
    try:
        parsed = parse_annotation(txt.read_text("utf-8", errors="replace"))
    except ValueError as error:
        return f"annotation malformed: {txt.name} ({error})"
    if parsed["word"] is not None and parsed["word"] != word:
        return f"annotation names {parsed['word']!r}, not {word!r}: {txt.name}"
    item["word_duration_s"] = parsed["word_duration_s"]
    return None
