"""The archive routes: VoxCeleb's published zips from one of three sources.

* ``official``: Oxford VGG, ``https://thor.robots.ox.ac.uk/~vgg/data/voxceleb/vox1a/<file>``
  with the user/password VGG sends after the request form, read from ``VOXCELEB_USER`` and
  ``VOXCELEB_PASSWORD`` (HTTP basic auth).
* ``kaist``: the KAIST mirror, ``https://cn01.mmai.io/download/voxceleb?key=<KEY>&file=<file>``;
  the key (``VOXCELEB_KAIST_KEY``) travels in the query string only, the session carries no
  basic auth, and every URL we record or log shows ``key=***``.
* ``hf``: the Hugging Face copy ``ProgramComputer/voxceleb`` (``vox1/<file>``, ``vox2/<file>``,
  CC BY 4.0, no credentials).

Archives and checksums: VoxCeleb1 dev audio is four byte-split parts ``vox1_dev_wav_parta{a..d}``
of one zip; VoxCeleb2 dev video nine ``vox2_dev_mp4_parta{a..i}``, dev audio eight
``vox2_dev_aac_parta{a..h}``. Every part is a unit of its own (they spread over the shards);
:meth:`ArchiveRoute.assemble` reads the parts through :class:`ConcatReader` (no joined copy),
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
(:mod:`~talking_heads.datasets.voxceleb.tracks`). A clip's id is ``idXXXXX/<ytid>/NNNNN``; a
Vox2 utterance whose video and audio are both present is one row (``path`` the mp4,
``audio_path`` the m4a).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from talking_heads.datasets.base import (
    AcquireContext,
    cell_text,
    http_fetch,
    read_index,
    stable_shard,
    unit_meta,
)
from talking_heads.datasets.transfer import (
    ConcatReader,
    TransferError,
    fetch_text,
    hash_stream,
    make_session,
    redact_url,
    safe_extract,
)
from talking_heads.datasets.voxceleb.route import SPEAKER, Route
from talking_heads.utils.atomic import atomic_write_json

log = logging.getLogger(__name__)

__all__ = [
    "CHECKSUM_LISTS",
    "NO_PUBLISHED_MD5",
    "PUBLISHED_MD5",
    "Archive",
    "ArchiveRoute",
    "archive_parts",
    "parse_md5_list",
]

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

_MD5 = re.compile(r"[0-9a-fA-F]{32}")
_CONTENT_DIR = {"audio": ("wav", "aac"), "video": ("mp4",), "track": ("txt",)}
_SUFFIXES = {"audio": (".wav", ".m4a"), "video": (".mp4",), "track": (".txt",)}


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


def archive_parts(stem: str, count: int) -> tuple[str, ...]:
    """The names of ``count`` byte-split parts: ``<stem>_partaa``, ``<stem>_partab``, ..."""
    return tuple(f"{stem}_parta{chr(ord('a') + i)}" for i in range(count))


def parse_md5_list(text: str) -> dict[str, str]:
    """``name md5`` lines (``fileparts.txt``) or ``glob name md5`` lines (``files.txt``)."""
    table = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and _MD5.fullmatch(words[-1]):
            table[words[-2]] = words[-1].lower()
    return table


class ArchiveRoute(Route):
    """The published archives from ``official``, ``kaist`` or ``hf``."""

    # -- index ---------------------------------------------------------------------------------

    def check_subsets(self, subsets: tuple[str, ...]) -> None:
        if "fomm" in subsets:
            raise ValueError(
                f"{self.dataset.name}: subset fomm is cut from YouTube; use source=youtube"
            )

    def units(self, ctx: AcquireContext, subsets: tuple[str, ...]) -> list[dict[str, Any]]:
        """One unit per archive file (each part of a split archive is its own)."""
        archives = [a for a in self.dataset.archives if a.subset in subsets]
        if not archives:
            return []
        md5s = self.published_md5s(ctx)
        return [unit for archive in archives for unit in self._archive_units(ctx, archive, md5s)]

    def file_url(self, ctx: AcquireContext, name: str, key: str = "***") -> str:
        """URL of a published file from the chosen source (``kaist``: with ``key``)."""
        if self.source == "official":
            return f"{self.dataset.base_url(ctx, 'official')}/{name}"
        if self.source == "kaist":
            base = self.dataset.base_url(ctx, "kaist")
            return f"{base}?key={quote(key, safe='*')}&file={quote(name)}"
        return f"{self.dataset.base_url(ctx, 'hf')}/vox{self.dataset.version}/{name}"

    def published_md5s(self, ctx: AcquireContext) -> dict[str, str]:
        """Built-in md5s, updated from the published lists when they can be read."""
        table = dict(PUBLISHED_MD5)
        session = make_session()
        for name in CHECKSUM_LISTS:
            url = f"{self.dataset.base_url(ctx, 'checksums')}/{name}"
            try:
                text = fetch_text(
                    url, session=session, retries=ctx.retries, backoff_s=ctx.backoff_s
                )
                table.update(parse_md5_list(text))
            except TransferError as error:
                log.warning(
                    "%s: md5 list unavailable (%s); using built-in md5s", name, error.reason
                )
        return table

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

    # -- download ------------------------------------------------------------------------------

    def fetch(self, ctx: AcquireContext, unit: Mapping[str, Any], session: Any) -> dict:
        """An HTTP download; from ``kaist``, with the key put into the URL only now."""
        if self.source == "kaist" and unit["kind"] != "metadata":
            _mask_keys_in_http_logs()
            key = (self.dataset.auth(ctx) or ("",))[0]
            unit = {**unit, "url": self.file_url(ctx, unit_meta(unit)["file"], key)}
        return http_fetch(ctx, unit, session)

    def after_fetch(self, ctx: AcquireContext, unit: Mapping[str, Any]) -> None:
        """Extract a whole (single-file) archive into ``<raw>/<subset>/``."""
        if unit["kind"] != "archive":
            return
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

    # -- assembly ------------------------------------------------------------------------------

    def assemble(self, ctx: AcquireContext, downloads: pd.DataFrame) -> dict:
        """Join, verify and extract every multi-part archive whose parts all arrived."""
        index = read_index(ctx)
        status = dict(zip(downloads["unit_id"], downloads["status"], strict=True))
        reasons = dict(zip(downloads["unit_id"], downloads["reason"], strict=True))
        chosen = set(index["subset"].astype(str))
        summary: dict[str, Any] = {}
        for archive in self.dataset.archives:
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

    def scan(
        self,
        ctx: AcquireContext,
        shard: int,
        records: list[dict[str, Any]],
        iden: Mapping[str, str],
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Clip rows of this shard's speakers from the extracted media archives."""
        subsets = {s for u in records for s in str(u.get("subset") or "").split("+")}
        utterances, failures = self._utterance_files(ctx, shard, records, subsets)
        track_roots = [
            root
            for subset in ("dev_txt", "test_txt")
            if subset in subsets
            for root in _layout_roots(ctx.raw_root / subset, ["txt"])
        ]
        items = [
            self._clip_row(ctx, clip_id, utterances[clip_id], track_roots, iden)
            for clip_id in sorted(utterances)
        ]
        self._warn_about_test_ids(items)
        return items, failures

    def _utterance_files(
        self, ctx: AcquireContext, shard: int, records: list[dict[str, Any]], subsets: set[str]
    ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """clip id -> ``{"video"|"audio": (file, archive, source, checksum)}`` of every media
        archive that arrived whole; a failed row per split archive that could not be joined."""
        by_unit = {str(u["unit_id"]): u for u in records}
        assembled = {}
        if ctx.assembled_path.exists():
            assembled = json.loads(ctx.assembled_path.read_text("utf-8")).get("archives", {})
        failures: list[dict[str, Any]] = []
        utterances: dict[str, dict[str, Any]] = {}
        for archive in self.dataset.archives:
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
        return utterances, failures

    def _clip_row(
        self,
        ctx: AcquireContext,
        clip_id: str,
        entry: Mapping[str, Any],
        track_roots: list[Path],
        iden: Mapping[str, str],
    ) -> dict[str, Any]:
        """The row of one utterance: its video (else audio) file, audio beside it, track."""
        file, archive, source, checksum = entry.get("video") or entry["audio"]
        speaker, video_id, utterance = clip_id.split("/")
        item: dict[str, Any] = {
            "clip_id": clip_id,
            "unit_id": archive.name,
            "speaker": speaker,
            "split": self.dataset.split_of(clip_id, archive.split, iden),
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
            item["box_format"] = self.dataset.box_format()
        return item

    def _warn_about_test_ids(self, items: list[dict[str, Any]]) -> None:
        odd = sorted(
            {
                i["speaker"]
                for i in items
                if (i["archive_split"] == "test") != (i["speaker"] in self.dataset.test_ids)
            }
        )
        if odd:
            log.warning(
                "%s: %d identities disagree with the official test list (e.g. %s)",
                self.dataset.name,
                len(odd),
                ", ".join(odd[:3]),
            )

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


# ---------------------------------------------------------------------------------------------
# the extracted layout


def _layout_roots(base: Path, names: Iterable[str]) -> list[Path]:
    """Folders under ``base`` holding ``idXXXXX`` folders: ``base/<name>``, ``base/*/<name>``
    (``dev/mp4``, ``test/aac``) or ``base`` itself."""
    if not base.is_dir():
        return []
    children = [d for d in sorted(base.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    roots = []
    for name in names:
        roots += [p for p in (base / name, *(d / name for d in children)) if p.is_dir()]
    if not roots and any(SPEAKER.fullmatch(d.name) for d in children):
        roots = [base]
    return roots


def _speaker_dirs(roots: Iterable[Path], shard: int, num_shards: int) -> list[Path]:
    return [
        d
        for root in roots
        for d in sorted(root.iterdir())
        if d.is_dir() and SPEAKER.fullmatch(d.name) and stable_shard(d.name, num_shards) == shard
    ]


def _utterances(speaker_dir: Path, suffixes: tuple[str, ...]) -> Iterable[tuple[str, Path]]:
    """``(clip id, file)`` of every ``<ytid>/NNNNN.<suffix>`` under a speaker folder."""
    for video in sorted(speaker_dir.iterdir()):
        if not video.is_dir():
            continue
        for file in sorted(video.iterdir()):
            if file.suffix.lower() in suffixes and not file.name.startswith("."):
                yield f"{speaker_dir.name}/{video.name}/{file.stem}", file


# ---------------------------------------------------------------------------------------------
# the KAIST key in logs

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
