"""What LRS2 and LRS3 share: licensed VGG archives, user-supplied copies, transcripts.

Both are distributed by Oxford VGG behind a user name and password (read from the
environment, never logged), some archives as byte-split parts joined with ``cat``. An
archive (or split list) already in ``<raw>/archives/`` is used as it is, with no network and
no credentials; a unit that is neither there nor fetchable for lack of credentials is a
failed row naming the missing variables and the file to supply. Joined archives are read
through their parts (:class:`~talking_heads.datasets.transfer.ConcatReader`), their md5 is
recorded (none is published) and they are extracted safely into ``<raw>/``; a marker per
archive makes a second assembly a no-op. Each clip's ``.txt`` gives its ``transcript``
(the ``Text:`` line); clips are sharded by their speaker group, never one job per clip.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import pandas as pd
import requests

from talking_heads.datasets.base import (
    AcquireContext,
    Dataset,
    describe_clips,
    http_fetch,
    read_index,
    stable_shard,
    unit_meta,
)
from talking_heads.datasets.transfer import (
    ConcatReader,
    MissingCredentialsError,
    TransferError,
    hash_stream,
    safe_extract,
)
from talking_heads.utils.atomic import atomic_write_json

SUPPLIED = "archives"
NO_CHECKSUM = "no checksums are published by VGG; md5 of each (joined) archive computed locally"

_TEXT = re.compile(r"^Text:\s*(\S.*?)\s*$")


class Clip(NamedTuple):
    """One expected clip: its id, speaker group, split and where its ``.mp4`` should be."""

    clip_id: str
    group: str
    split: str
    video: Path


class Unauthenticated(requests.Session):
    """The session given without credentials: only files already on disk can be used."""

    def __init__(self, missing: str) -> None:
        super().__init__()
        self.missing = missing


def parse_transcript(text: str) -> str:
    """The ``Text:`` line of an LRS2/LRS3 ``.txt``; ValueError when there is none."""
    for line in text.splitlines():
        if match := _TEXT.match(line.strip()):
            return match[1]
    raise ValueError("no 'Text: <sentence>' line")


def stem_of(member: str) -> str | None:
    """Archive member name without ``.mp4``/``.txt`` (None for other members)."""
    name = member.replace("\\", "/").removeprefix("./")
    return name.rsplit(".", 1)[0] if name.endswith((".mp4", ".txt")) else None


class LipReadingSentences(Dataset):
    """Base of LRS2/LRS3: archives from VGG or ``<raw>/archives/``, clips per speaker group."""

    #: archive -> its byte-split parts as published (empty: published whole)
    archives: ClassVar[dict[str, tuple[str, ...]]]
    #: the Table-1-style note on what ``speakers`` counts
    speakers_note: ClassVar[str] = ""
    needs_assembly = True
    head_movement = "Yes"
    environment = "Wild"

    # -- what each dataset declares ------------------------------------------------------------

    def archives_for(self, ctx: AcquireContext) -> list[str]:
        """The archives the selected subsets need."""
        raise NotImplementedError

    def lists_for(self, ctx: AcquireContext) -> list[str]:
        """Split-list files the selected subsets need (downloaded beside the archives)."""
        return []

    def member_filter(self, ctx: AcquireContext) -> Callable[[str], bool]:
        """Which archive members the selected subsets extract."""
        raise NotImplementedError

    def clips(self, ctx: AcquireContext, archive: str) -> Iterator[Clip]:
        """The clips of ``archive`` the selected subsets expect."""
        raise NotImplementedError

    # -- index and fetch -----------------------------------------------------------------------

    def supplied_dir(self, ctx: AcquireContext) -> Path:
        """Where a user's own copies of the archives and split lists go."""
        return ctx.raw_root / SUPPLIED

    def index(self, ctx: AcquireContext) -> list[dict[str, Any]]:
        """Archives (or their parts, unless the joined archive is supplied) and split lists."""
        base = self.base_url(ctx, "official")
        subset = ",".join(self.selected_subsets(ctx))
        rows = []
        for archive in self.archives_for(ctx):
            parts = self.archives[archive]
            if not parts or (self.supplied_dir(ctx) / archive).exists():
                rows.append(_unit(base, archive, f"{SUPPLIED}/{archive}", "archive", archive))
            else:
                rows += [_unit(base, p, f"parts/{p}", "archive-part", archive) for p in parts]
        rows += [_unit(base, n, f"{SUPPLIED}/{n}", "split-list", n) for n in self.lists_for(ctx)]
        return [{**row, "subset": subset} for row in rows]

    def session(self, ctx: AcquireContext) -> requests.Session:
        """Basic auth from the environment; without it a session that fetches nothing."""
        try:
            return super().session(ctx)
        except MissingCredentialsError as error:
            return Unauthenticated(error.reason)

    def fetch(self, ctx: AcquireContext, unit: Mapping[str, Any], session: Any) -> dict:
        """A file already in place is kept; otherwise downloaded when credentials are set."""
        if not (ctx.raw_root / str(unit["dest"])).exists() and isinstance(session, Unauthenticated):
            wanted = unit_meta(unit).get("archive") or unit["unit_id"]
            raise MissingCredentialsError(
                f"{session.missing}, or put {wanted} in {self.supplied_dir(ctx)}"
            )
        return http_fetch(ctx, unit, session)

    # -- assemble ------------------------------------------------------------------------------

    def assemble(self, ctx: AcquireContext, downloads: pd.DataFrame) -> dict:
        """Join, hash and extract every archive whose units (and split lists) all arrived."""
        ok = set(downloads.loc[downloads["status"] == "ok", "unit_id"])
        units = [u for u in read_index(ctx).to_dict("records") if u["kind"] != "split-list"]
        lists_missing = [n for n in self.lists_for(ctx) if n not in ok]
        results: dict[str, dict[str, Any]] = {}
        for archive in self.archives_for(ctx):
            mine = [u for u in units if unit_meta(u).get("archive") == archive]
            missing = [str(u["unit_id"]) for u in mine if u["unit_id"] not in ok]
            if missing or lists_missing:
                what = "archive files" if missing else "split lists"
                names = ", ".join(missing or lists_missing)
                reason = f"{what} not downloaded: {names}"
                results[archive] = {"status": "failed", "reason": reason, "incomplete": True}
                continue
            paths = [ctx.raw_root / str(u["dest"]) for u in mine]
            results[archive] = self._extract(ctx, archive, paths)
        bad = [f"{a}: {r['reason']}" for a, r in results.items() if r["status"] != "ok"]
        return {
            "status": "failed" if bad else "ok",
            "reason": "; ".join(bad),
            "checksum": NO_CHECKSUM,
            "archives": results,
        }

    def _extract(self, ctx: AcquireContext, archive: str, paths: list[Path]) -> dict[str, Any]:
        sizes = [p.stat().st_size for p in paths]
        subsets = sorted(self.selected_subsets(ctx))
        marker = ctx.raw_root / f".{archive}.extracted.json"
        if marker.exists():
            done = json.loads(marker.read_text("utf-8"))
            if done.get("part_sizes") == sizes and set(subsets) <= set(done.get("subsets", [])):
                return {**done, "status": "ok", "reason": "", "resumed": True}
        md5 = hash_stream(ConcatReader(paths), "md5")
        try:
            with ConcatReader(paths) as joined:
                report = safe_extract(
                    joined,
                    ctx.raw_root,
                    select=self.member_filter(ctx),
                    progress=ctx.progress,
                    desc=archive,
                )
        except TransferError as error:
            joined_from = f" joined from {len(paths)} parts" if len(paths) > 1 else ""
            reason = f"{error.reason}: {archive}{joined_from}"
            return {"status": "failed", "reason": reason, "archive_md5": md5}
        summary = {
            "archive_md5": md5,
            "part_sizes": sizes,
            "subsets": subsets,
            "extracted": len(report.extracted),
            "existing": len(report.existing),
            "rejected": [list(r) for r in report.rejected],
        }
        atomic_write_json(marker, summary)
        return {**summary, "status": "ok", "reason": ""}

    # -- scan ----------------------------------------------------------------------------------

    def scan(self, ctx: AcquireContext, shard: int, units: pd.DataFrame) -> list[dict]:
        """Clip rows of the speaker groups of ``shard`` (``stable_shard(group)``)."""
        if not ctx.assembled_path.exists():
            return []
        assembled = json.loads(ctx.assembled_path.read_text("utf-8"))
        base = self.base_url(ctx, "official")
        rows: list[dict] = []
        items: list[dict] = []
        for archive, result in assembled.get("archives", {}).items():
            parts = self.archives[archive]
            source = f"{base}/{parts[0][:-2]}*" if parts else f"{base}/{archive}"
            common = {"unit_id": archive, "source": source, "kind": "video"}
            if result["status"] != "ok":
                if shard == 0 and not result.get("incomplete"):
                    # every file arrived but the archive is bad: one row says so
                    rows.append({**common, "clip_id": archive, "status": "failed", **_why(result)})
                continue
            refused = {stem_of(m) for m, _ in result.get("rejected", [])}
            if shard == 0:
                rows += _refused_rows(archive, result, common)
            for clip in self.clips(ctx, archive):
                if stable_shard(clip.group, ctx.num_shards) != shard:
                    continue
                if clip.video.exists():
                    items.append(_item(ctx, clip, common, result))
                elif clip.video.relative_to(ctx.raw_root).with_suffix("").as_posix() not in refused:
                    # a refused member already has its row; any other absence is a defect
                    rows.append(_absent(clip, common, archive))
        # a preset failed status (bad transcript) survives a good probe in describe_clips
        return rows + describe_clips(items, ctx)

    # -- statistics ----------------------------------------------------------------------------

    def statistics(self, manifest: pd.DataFrame) -> dict[str, Any]:
        """Hours, speaker groups and utterances of the ok clips, by split."""
        ok = manifest[manifest["status"] == "ok"]
        return {
            "hours": float(pd.to_numeric(ok["duration_s"], errors="coerce").sum() / 3600.0),
            "speakers": int(ok["speaker"].nunique()),
            "speakers_note": self.speakers_note,
            "utterances": len(ok),
            "by_split": {str(k): int(v) for k, v in ok["split"].value_counts().items()},
            "head_movement": self.head_movement,
            "source": self.environment,
        }


def _unit(base: str, name: str, dest: str, kind: str, archive: str) -> dict[str, Any]:
    return {
        "unit_id": name,
        "group": name,
        "kind": kind,
        "url": f"{base}/{name}",
        "dest": dest,
        "meta": {"checksum": NO_CHECKSUM, "archive": archive},
    }


def _why(result: Mapping[str, Any]) -> dict[str, str]:
    return {"reason": str(result.get("reason") or "assembly failed")}


def _refused_rows(archive: str, result: Mapping[str, Any], common: dict) -> list[dict]:
    return [
        {
            **common,
            "clip_id": f"{archive}/refused/{index:03d}",
            "status": "skipped",
            "reason": f"refused archive member: {member} ({why})",
        }
        for index, (member, why) in enumerate(result.get("rejected", []))
    ]


def _absent(clip: Clip, common: dict, archive: str) -> dict[str, Any]:
    return {
        **common,
        "clip_id": clip.clip_id,
        "speaker": clip.group,
        "split": clip.split,
        "subset": clip.split,
        "status": "failed",
        "reason": f"listed clip not in the archive: {clip.clip_id}.mp4 ({archive})",
    }


def _item(
    ctx: AcquireContext, clip: Clip, common: dict[str, Any], result: Mapping[str, Any]
) -> dict[str, Any]:
    item: dict[str, Any] = {
        **common,
        "clip_id": clip.clip_id,
        "speaker": clip.group,
        "split": clip.split,
        "path": ctx.rel(clip.video),
        "subset": clip.split,
        "transcript": None,
        "archive_md5": result.get("archive_md5"),
        "_abs_path": str(clip.video),
    }
    txt = clip.video.with_suffix(".txt")
    if not txt.exists():
        item.update(status="failed", reason=f"annotation missing: {txt.name}")
        return item
    try:
        item["transcript"] = parse_transcript(txt.read_text("utf-8", errors="replace"))
    except ValueError as error:
        item.update(status="failed", reason=f"annotation malformed: {txt.name} ({error})")
    return item
