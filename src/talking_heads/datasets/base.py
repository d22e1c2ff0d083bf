"""The acquisition pipeline every downloadable dataset shares, and the class they derive from.

A dataset module declares its sources (URL bases, credentials), its subsets, how to list its
**units** (the atoms of download: an archive part, a media file, a YouTube video with its
segments), how to fetch one unit, how to assemble multi-part archives, how to parse its
on-disk layout into clip rows, and its statistics. The pipeline runs in five stages, each a
Snakemake rule working on shards (never one job per clip):

=========  ========================================  =========================================
stage      writes                                    jobs
=========  ========================================  =========================================
index      ``<raw>/index.parquet`` (units, shards)   one per dataset (metadata only)
download   ``<raw>/downloads/shard-NNN.parquet``     one per shard: its units, ``jobs`` at once
assemble   ``<raw>/assembled.json``                  one per dataset (join/extract parts)
scan       ``<data>/manifest/shard-NNN.parquet``     one per shard: layout parsed, clips probed
merge      ``<data>/manifest.parquet``,              one per dataset
           ``coverage.json``, ``statistics.json``
=========  ========================================  =========================================

``<raw>`` is ``data/raw/<name>`` (media as the source lays it out) and ``<data>`` is
``data/<name>`` (what the rest of the workflow reads). Manifest paths are relative to
``<data>``. Units and clips go to shards by a stable hash of their group (a speaker, a
video, an actor), so a shard's contents never depend on the number of other items.
Every failure becomes a row with status ``failed``/``skipped`` and a one-line reason.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import requests

from talking_heads.datasets.transfer import (
    MissingCredentialsError,
    TransferError,
    credentials_from_env,
    download_file,
    make_session,
    map_bounded,
    redact_url,
)
from talking_heads.manifest import normalise_manifest, read_manifest, sha256_file, write_manifest
from talking_heads.utils.atomic import atomic_write_json

log = logging.getLogger(__name__)

UNIT_COLUMNS: tuple[str, ...] = (
    "unit_id",
    "group",
    "shard",
    "subset",
    "kind",
    "url",
    "dest",
    "size",
    "md5",
    "sha256",
    "meta",
    "status",
    "reason",
)
DOWNLOAD_COLUMNS: tuple[str, ...] = (
    "unit_id",
    "status",
    "reason",
    "bytes_fetched",
    "resumed_from",
    "path",
)


def stable_shard(key: str, num_shards: int) -> int:
    """Shard of ``key`` among ``num_shards``: CRC-32 of its UTF-8 bytes (stable across runs)."""
    return zlib.crc32(key.encode("utf-8")) % num_shards


def shard_name(shard: int) -> str:
    return f"shard-{shard:03d}"


@dataclass
class AcquireContext:
    """Where a dataset goes and how to reach it.

    ``mirrors`` overrides a dataset's URL bases by key (a local mirror, a test server);
    ``source`` picks among the dataset's sources (``official``, ``kaist``, ``hf``,
    ``youtube``, ...). ``environ`` is where credentials are read (the process environment).
    """

    name: str
    raw_root: Path
    data_root: Path
    subsets: tuple[str, ...] = ()
    num_shards: int = 1
    source: str | None = None
    mirrors: dict[str, str] = field(default_factory=dict)
    jobs: int = 4
    progress: bool = True
    retries: int = 5
    backoff_s: float = 1.0
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    @property
    def index_path(self) -> Path:
        return self.raw_root / "index.parquet"

    def download_record(self, shard: int) -> Path:
        return self.raw_root / "downloads" / f"{shard_name(shard)}.parquet"

    @property
    def assembled_path(self) -> Path:
        return self.raw_root / "assembled.json"

    def manifest_shard(self, shard: int) -> Path:
        return self.data_root / "manifest" / f"{shard_name(shard)}.parquet"

    @property
    def manifest_path(self) -> Path:
        return self.data_root / "manifest.parquet"

    def rel(self, path: Path) -> str:
        """``path`` relative to the manifest folder (what a manifest's ``path`` holds)."""
        return Path(os.path.relpath(path, self.data_root)).as_posix()


class Dataset:
    """Base class of a downloadable dataset; subclasses fill the class attributes and hooks."""

    name: ClassVar[str]
    #: the row of the survey's Table 1 this dataset fills
    survey_name: ClassVar[str]
    description: ClassVar[str]
    homepage: ClassVar[str]
    licence: ClassVar[str]
    #: subset name -> what it holds
    subsets: ClassVar[dict[str, str]]
    default_subsets: ClassVar[tuple[str, ...]]
    #: source name -> description; the first is the default
    sources: ClassVar[dict[str, str]] = {"official": "the publisher's server"}
    #: source name -> environment variables holding its credentials
    credentials: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: URL base key -> default URL (overridable through ``AcquireContext.mirrors``)
    url_bases: ClassVar[dict[str, str]] = {}
    #: Table 1's "head movement" and "source" (environment) columns for this dataset
    head_movement: ClassVar[str] = "Yes"
    environment: ClassVar[str] = "Wild"
    #: whether :meth:`assemble` must see every download shard (multi-part archives)
    needs_assembly: ClassVar[bool] = False
    #: the test file that runs this dataset's pipeline on a fixture of its real layout
    fixture_test: ClassVar[str] = ""

    # -- sources ------------------------------------------------------------------------------

    def source_of(self, ctx: AcquireContext) -> str:
        source = ctx.source or next(iter(self.sources))
        if source not in self.sources:
            raise ValueError(
                f"{self.name}: unknown source {source!r}; known: {', '.join(self.sources)}"
            )
        return source

    def base_url(self, ctx: AcquireContext, key: str) -> str:
        """URL base ``key``, from the context's mirrors or the module default."""
        return ctx.mirrors.get(key, self.url_bases[key]).rstrip("/")

    def auth(self, ctx: AcquireContext) -> tuple[str, ...] | None:
        """Credentials of the chosen source from the environment (None when it needs none)."""
        variables = self.credentials.get(self.source_of(ctx))
        if not variables:
            return None
        return credentials_from_env(
            variables,
            purpose=f"{self.name} {self.source_of(ctx)} access",
            environ=dict(ctx.environ),
        )

    def session(self, ctx: AcquireContext) -> requests.Session:
        """HTTP session for unit downloads (basic auth when the source has a user/password)."""
        creds = self.auth(ctx)
        return make_session(creds if creds is not None and len(creds) == 2 else None)

    def selected_subsets(self, ctx: AcquireContext) -> tuple[str, ...]:
        chosen = ctx.subsets or self.default_subsets
        unknown = [s for s in chosen if s not in self.subsets]
        if unknown:
            raise ValueError(
                f"{self.name}: unknown subset(s) {', '.join(unknown)}; "
                f"known: {', '.join(self.subsets)}"
            )
        return tuple(chosen)

    # -- hooks ---------------------------------------------------------------------------------

    def index(self, ctx: AcquireContext) -> list[dict[str, Any]]:
        """The units to download (rows with :data:`UNIT_COLUMNS` keys; ``shard`` optional)."""
        raise NotImplementedError

    def fetch(self, ctx: AcquireContext, unit: Mapping[str, Any], session: Any) -> dict:
        """Download one unit; default: a resumable, verified HTTP download to ``dest``."""
        return http_fetch(ctx, unit, session)

    def after_fetch(self, ctx: AcquireContext, unit: Mapping[str, Any]) -> None:
        """Post-process a downloaded unit (e.g. extract a self-contained archive)."""

    def assemble(self, ctx: AcquireContext, downloads: pd.DataFrame) -> dict:
        """Join and extract multi-part archives once all parts are in; a summary."""
        return {}

    def scan(self, ctx: AcquireContext, shard: int, units: pd.DataFrame) -> list[dict]:
        """Clip rows of ``shard``: the on-disk layout parsed, every clip described."""
        raise NotImplementedError

    def statistics(self, manifest: pd.DataFrame) -> dict[str, Any]:
        """Table 1 statistics of our copy (ok rows only)."""
        ok = manifest[manifest["status"] == "ok"]
        return {
            "hours": float(pd.to_numeric(ok["duration_s"], errors="coerce").sum() / 3600.0),
            "speakers": int(ok["speaker"].nunique()),
            "utterances": len(ok),
            "head_movement": self.head_movement,
            "source": self.environment,
        }


def http_fetch(ctx: AcquireContext, unit: Mapping[str, Any], session: Any) -> dict:
    """Download ``unit['url']`` to ``unit['dest']`` (under the raw root) with its checksums."""
    dest = ctx.raw_root / str(unit["dest"])
    size = unit.get("size")
    result = download_file(
        str(unit["url"]),
        dest,
        session=session,
        md5=_text(unit.get("md5")),
        sha256=_text(unit.get("sha256")),
        expected_size=None if size is None or pd.isna(size) else int(size),
        retries=ctx.retries,
        backoff_s=ctx.backoff_s,
        progress=ctx.progress,
    )
    return {
        "bytes_fetched": result.bytes_fetched,
        "resumed_from": result.resumed_from,
        "path": str(unit["dest"]),
    }


def cell_text(value: Any) -> str:
    """A table cell as text: ``""`` for a missing value (None, NaN, ``pd.NA``)."""
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value)


def unit_meta(unit: Mapping[str, Any]) -> dict[str, Any]:
    """A unit's dataset-specific ``meta`` field (JSON text in the index) as a dict."""
    meta = unit.get("meta")
    if isinstance(meta, str):
        return json.loads(meta) if meta else {}
    return dict(meta) if isinstance(meta, Mapping) else {}


def _text(value: Any) -> str | None:
    return cell_text(value) or None


# ---------------------------------------------------------------------------------------------
# pipeline stages


def _units_frame(rows: Iterable[Mapping[str, Any]], num_shards: int) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    for column in UNIT_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.NA
    if len(frame):
        frame["group"] = frame["group"].fillna(frame["unit_id"]).astype(str)
        missing = frame["shard"].isna()
        if missing.any():
            frame.loc[missing, "shard"] = [
                stable_shard(g, num_shards) for g in frame.loc[missing, "group"]
            ]
        frame["meta"] = [
            m if isinstance(m, str) else json.dumps(m if isinstance(m, dict) else {})
            for m in frame["meta"]
        ]
        frame["status"] = frame["status"].fillna("pending")
        frame["reason"] = frame["reason"].fillna("").astype(str)
        duplicated = frame["unit_id"].duplicated()
        if duplicated.any():
            raise ValueError(f"duplicate unit ids: {frame.loc[duplicated, 'unit_id'].tolist()[:5]}")
    frame["shard"] = frame["shard"].astype("int64")
    return frame[list(UNIT_COLUMNS)]


def run_index(dataset: Dataset, ctx: AcquireContext) -> Path:
    """Stage 1: list the units (fetching only metadata) into ``index.parquet``.

    A metadata failure (dead annotation URL, missing credentials for a metadata file) gives
    one failed ``metadata`` unit carrying the reason instead of an exception.
    """
    dataset.selected_subsets(ctx)
    dataset.source_of(ctx)
    try:
        rows = dataset.index(ctx)
    except TransferError as error:
        log.error("%s: index failed: %s", dataset.name, error.reason)
        rows = [
            {
                "unit_id": "metadata",
                "group": "metadata",
                "shard": 0,
                "kind": "metadata",
                "status": "failed",
                "reason": error.reason,
            }
        ]
    frame = _units_frame(rows, ctx.num_shards)
    frame.attrs["num_shards"] = ctx.num_shards
    ctx.index_path.parent.mkdir(parents=True, exist_ok=True)
    from talking_heads.utils.atomic import atomic_path

    with atomic_path(ctx.index_path) as tmp:
        frame.to_parquet(tmp, index=False)
    atomic_write_json(
        ctx.raw_root / "index.json",
        {
            "dataset": dataset.name,
            "source": dataset.source_of(ctx),
            "subsets": list(dataset.selected_subsets(ctx)),
            "num_shards": ctx.num_shards,
            "units": len(frame),
            "by_kind": {str(k): int(v) for k, v in frame["kind"].value_counts().items()},
            "mirrors": {k: redact_url(v) for k, v in ctx.mirrors.items()},
        },
    )
    log.info(
        "%s: %d units in %d shards -> %s", dataset.name, len(frame), ctx.num_shards, ctx.index_path
    )
    return ctx.index_path


def read_index(ctx: AcquireContext) -> pd.DataFrame:
    if not ctx.index_path.exists():
        raise FileNotFoundError(
            f"{ctx.index_path}: no index; run `talking-heads datasets index {ctx.name}` first"
        )
    return pd.read_parquet(ctx.index_path)


def run_download(dataset: Dataset, ctx: AcquireContext, shard: int) -> Path:
    """Stage 2: download the units of ``shard`` (``ctx.jobs`` at once); record each outcome.

    Units already complete on disk are verified, not fetched again; partial ``.part`` files
    resume. Missing credentials fail every unit of the shard with the same reason.
    """
    index = read_index(ctx)
    units = index[index["shard"] == shard].to_dict("records")
    session: Any = None
    credential_error: str | None = None
    try:
        session = dataset.session(ctx)
    except MissingCredentialsError as error:
        credential_error = error.reason
    records: list[dict[str, Any]] = []

    def fetch(unit: Mapping[str, Any]) -> dict:
        if unit["status"] in ("failed", "skipped"):
            raise TransferError(str(unit["reason"]))
        if credential_error is not None and unit["kind"] != "metadata":
            raise MissingCredentialsError(credential_error)
        outcome = dataset.fetch(ctx, unit, session)
        dataset.after_fetch(ctx, unit)
        return outcome

    for unit, outcome in map_bounded(
        fetch,
        units,
        jobs=ctx.jobs,
        desc=f"{dataset.name} {shard_name(shard)}",
        unit="unit",
        progress=ctx.progress,
    ):
        record = {"unit_id": unit["unit_id"], "bytes_fetched": 0, "resumed_from": 0, "path": ""}
        if isinstance(outcome, BaseException):
            reason = outcome.reason if isinstance(outcome, TransferError) else _unexpected(outcome)
            record.update(status="failed", reason=reason)
            log.warning("%s %s: %s", dataset.name, unit["unit_id"], reason)
        else:
            record.update(status="ok", reason="", **outcome)
        records.append(record)
    frame = pd.DataFrame(records, columns=list(DOWNLOAD_COLUMNS))
    frame = frame.sort_values("unit_id", kind="stable").reset_index(drop=True)
    path = ctx.download_record(shard)
    from talking_heads.utils.atomic import atomic_path

    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    ok = int((frame["status"] == "ok").sum())
    log.info("%s %s: %d/%d units ok", dataset.name, shard_name(shard), ok, len(frame))
    return path


def _unexpected(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"unexpected {type(error).__name__}: {redact_url(text[0]) if text else ''}".strip()


def read_downloads(ctx: AcquireContext) -> pd.DataFrame:
    """Every download record written so far (all shards)."""
    parts = sorted((ctx.raw_root / "downloads").glob("shard-*.parquet"))
    if not parts:
        return pd.DataFrame(columns=list(DOWNLOAD_COLUMNS))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def run_assemble(dataset: Dataset, ctx: AcquireContext) -> Path:
    """Stage 3: join/verify/extract multi-part archives (a no-op for other datasets)."""
    downloads = read_downloads(ctx)
    summary = dataset.assemble(ctx, downloads) if dataset.needs_assembly else {}
    atomic_write_json(ctx.assembled_path, {"dataset": dataset.name, **summary})
    return ctx.assembled_path


def run_scan(dataset: Dataset, ctx: AcquireContext, shard: int) -> Path:
    """Stage 4: parse the layout of ``shard`` into clip rows; failed units become rows too."""
    index = read_index(ctx)
    downloads = read_downloads(ctx)
    units = index.merge(
        downloads[["unit_id", "status", "reason"]].rename(
            columns={"status": "download_status", "reason": "download_reason"}
        ),
        on="unit_id",
        how="left",
    )
    shard_units = units[units["shard"] == shard]
    rows = dataset.scan(ctx, shard, units)
    covered = {r.get("unit_id") for r in rows}
    for unit in shard_units.to_dict("records"):
        status = unit.get("download_status")
        if status == "ok" or unit["unit_id"] in covered:
            continue
        reason = unit.get("download_reason")
        if not isinstance(reason, str) or not reason:
            reason = unit.get("reason") or "not downloaded (download stage did not run)"
        rows.append(
            {
                "clip_id": unit["unit_id"],
                "unit_id": unit["unit_id"],
                "speaker": pd.NA,
                "kind": unit["kind"],
                "source": redact_url(str(unit.get("url") or "")),
                "subset": unit.get("subset"),
                "status": "skipped" if unit["status"] == "skipped" else "failed",
                "reason": reason,
            }
        )
    frame = normalise_manifest(pd.DataFrame(rows) if rows else _empty_manifest())
    frame = frame.sort_values("clip_id", kind="stable").reset_index(drop=True)
    path = ctx.manifest_shard(shard)
    write_manifest(frame, path)
    counts = frame["status"].value_counts().to_dict()
    log.info("%s %s: %d rows %s", dataset.name, shard_name(shard), len(frame), counts)
    return path


def _empty_manifest() -> pd.DataFrame:
    from talking_heads.manifest import MANIFEST_COLUMNS

    return pd.DataFrame({c: pd.Series(dtype="object") for c in MANIFEST_COLUMNS})


def reason_category(reason: str) -> str:
    """The part of a reason before its first ``': '`` (drops URLs and file names)."""
    return reason.split(": ", 1)[0] if reason else ""


def coverage_summary(frame: pd.DataFrame) -> dict[str, Any]:
    """Downloaded / failed counts by status and by reason category."""
    status = frame["status"].astype(str)
    bad = frame[status != "ok"]
    return {
        "rows": len(frame),
        "ok": int((status == "ok").sum()),
        "by_status": {str(k): int(v) for k, v in status.value_counts().items()},
        "by_reason": {
            str(k): int(v)
            for k, v in bad["reason"].astype(str).map(reason_category).value_counts().items()
        },
        "ok_fraction": float((status == "ok").mean()) if len(frame) else 0.0,
    }


def format_coverage(name: str, summary: Mapping[str, Any]) -> str:
    """A short human-readable coverage report."""
    lines = [
        f"{name}: {summary['ok']}/{summary['rows']} rows ok ({100 * summary['ok_fraction']:.1f} %)"
    ]
    for reason, count in summary["by_reason"].items():
        lines.append(f"  {count:>8}  {reason}")
    return "\n".join(lines)


def run_merge(dataset: Dataset, ctx: AcquireContext) -> Path:
    """Stage 5: one manifest from the shard manifests, its coverage and statistics."""
    parts = [ctx.manifest_shard(s) for s in range(ctx.num_shards)]
    missing = [str(p) for p in parts if not p.exists()]
    if missing:
        raise FileNotFoundError(f"missing shard manifests: {', '.join(missing[:3])}")
    frame = pd.concat([read_manifest(p) for p in parts], ignore_index=True)
    frame = normalise_manifest(frame)
    write_manifest(frame, ctx.manifest_path)
    summary = coverage_summary(frame)
    atomic_write_json(ctx.data_root / "coverage.json", {"dataset": dataset.name, **summary})
    stats = dataset.statistics(frame) if summary["ok"] else {}
    atomic_write_json(
        ctx.data_root / "statistics.json",
        {
            "dataset": dataset.name,
            "survey_name": dataset.survey_name,
            "clips_ok": summary["ok"],
            "clips_total": summary["rows"],
            **stats,
        },
    )
    print(format_coverage(dataset.name, summary))
    return ctx.manifest_path


def run_all(dataset: Dataset, ctx: AcquireContext) -> Path:
    """Every stage in this process (what ``talking-heads datasets download NAME`` runs)."""
    run_index(dataset, ctx)
    for shard in range(ctx.num_shards):
        run_download(dataset, ctx, shard)
    run_assemble(dataset, ctx)
    for shard in range(ctx.num_shards):
        run_scan(dataset, ctx, shard)
    return run_merge(dataset, ctx)


# ---------------------------------------------------------------------------------------------
# describing clips


def describe_media(path: Path, *, checksum: bool = True) -> dict[str, Any]:
    """Manifest facts of one media file, with status/reason when it is unusable.

    Video: frames, fps, size, duration, audio rate (container facts from ffmpeg, frame count
    from decord) and a decode of the last frame, which catches truncated files whose index
    is intact. Audio (``.wav``/``.m4a``/``.mp3``): duration and rate. Zero-byte and unreadable
    files get status ``failed``.
    """
    facts: dict[str, Any] = {"size_bytes": None, "sha256": None, "status": "ok", "reason": ""}
    if not path.exists():
        return {**facts, "status": "failed", "reason": f"missing file: {path.name}"}
    size = path.stat().st_size
    facts["size_bytes"] = size
    if size == 0:
        return {**facts, "status": "failed", "reason": f"zero-byte file: {path.name}"}
    if checksum:
        facts["sha256"] = sha256_file(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".wav":
            import soundfile

            info = soundfile.info(str(path))
            facts.update(
                kind="audio",
                duration_s=float(info.duration),
                audio_rate=int(info.samplerate),
            )
            return facts
        from talking_heads.utils.media import probe_video

        probed = probe_video(path)
    except Exception as error:
        detail = str(error).splitlines()[0].replace(f"{path}: ", "") if str(error) else ""
        return {
            **facts,
            "status": "failed",
            "reason": f"unreadable media (corrupt or truncated): {path.name} "
            f"({detail or type(error).__name__})",
        }
    facts.update(
        {k: probed.get(k) for k in ("num_frames", "fps", "width", "height", "duration_s")},
        audio_rate=probed.get("audio_rate"),
        kind="video" if "width" in probed else "audio",
    )
    if facts["kind"] == "video":
        problem = _last_frame_problem(path, probed.get("num_frames"))
        if problem:
            return {**facts, "status": "failed", "reason": f"{problem}: {path.name}"}
    return facts


def _last_frame_problem(path: Path, num_frames: int | None) -> str | None:
    if not num_frames:
        return "truncated video (no decodable frames)"
    import decord

    try:
        reader = decord.VideoReader(str(path), num_threads=1)
        reader.seek(0)
        reader[len(reader) - 1].asnumpy()
    except Exception:
        return "truncated video (last frame not decodable)"
    return None


def describe_clips(
    items: list[dict[str, Any]],
    ctx: AcquireContext,
    *,
    path_of: Callable[[dict[str, Any]], Path] | None = None,
) -> list[dict[str, Any]]:
    """Describe many clips on ``ctx.jobs`` threads; each item's row gains the media facts."""
    path_of = path_of or (lambda item: Path(item["_abs_path"]))
    out: list[dict[str, Any]] = []
    for item, facts in map_bounded(
        lambda item: describe_media(path_of(item)),
        items,
        jobs=ctx.jobs,
        desc=f"{ctx.name} describe",
        unit="clip",
        progress=ctx.progress,
    ):
        if isinstance(facts, BaseException):
            facts = {"status": "failed", "reason": _unexpected(facts)}
        row = {k: v for k, v in item.items() if not k.startswith("_")}
        preset = row.get("status")
        row.update({k: v for k, v in facts.items() if v is not None or k not in row})
        if preset in ("skipped", "failed") and facts.get("status") == "ok":
            row["status"], row["reason"] = preset, item.get("reason", "")
        out.append(row)
    return out
