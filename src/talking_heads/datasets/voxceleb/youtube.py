"""The ``youtube`` route: the original YouTube videos, cut into VoxCeleb and FOMM clips.

Videos are fetched with yt-dlp (:mod:`talking_heads.datasets.youtube`) and cut into one clip
per face track (``dev_txt``/``test_txt``: the track archives, taken from ``hf``) at
``clips/<clip id>.mp4``, or per FOMM chunk of ``vox-metadata.csv`` (``fomm``,
:mod:`~talking_heads.datasets.voxceleb.metadata`) at ``fomm/<partition>/<chunk>.mp4``.
VoxCeleb1's video was never released (clovaai/voxceleb_trainer#178), so this is the only way
to get Vox1 video; expect 5-10 % dead videos. A unit is one YouTube video with its tracks and
chunks; what was cut (and why a clip could not be) is kept in ``youtube/<id>.cuts.json``.

A FOMM chunk is ``[start/25, end/25)`` of the downloaded video, its box rescaled to the
downloaded resolution, cropped and resized to 256x256 (as ``load_videos.py`` does) at a
constant 25 fps, keeping the audio (the original tool writes silent mp4s at imageio's default
rate).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from talking_heads.datasets.base import AcquireContext, cell_text, stable_shard, unit_meta
from talking_heads.datasets.transfer import (
    TransferError,
    download_file,
    make_session,
    redact_url,
    safe_extract,
)
from talking_heads.datasets.voxceleb.archives import Archive
from talking_heads.datasets.voxceleb.metadata import (
    FOMM_SIZE,
    fomm_chunks,
    load_fomm_metadata,
    rescale_fomm_bbox,
)
from talking_heads.datasets.voxceleb.route import SPEAKER, Route
from talking_heads.datasets.voxceleb.tracks import FPS, read_track
from talking_heads.utils.atomic import atomic_write_json

log = logging.getLogger(__name__)

__all__ = ["YOUTUBE_SUBSETS", "YouTubeRoute"]

#: the subsets the YouTube route can make
YOUTUBE_SUBSETS: tuple[str, ...] = ("dev_txt", "test_txt", "meta", "fomm")


class YouTubeRoute(Route):
    """Track and FOMM-chunk clips cut from the YouTube videos."""

    # -- index ---------------------------------------------------------------------------------

    def default_subsets(self) -> tuple[str, ...]:
        return self.dataset.default_youtube_subsets

    def check_subsets(self, subsets: tuple[str, ...]) -> None:
        media = [s for s in subsets if s not in YOUTUBE_SUBSETS]
        if media:
            raise ValueError(
                f"{self.dataset.name}: subset(s) {', '.join(media)} are archives, not on YouTube; "
                "with source=youtube choose dev_txt/test_txt (track clips), fomm or meta"
            )

    def units(self, ctx: AcquireContext, subsets: tuple[str, ...]) -> list[dict[str, Any]]:
        """One unit per YouTube video: its face tracks (txt archives) and FOMM chunks."""
        videos = _VideoUnits(self.dataset.base_url(ctx, "youtube"))
        session = make_session()
        for subset in ("dev_txt", "test_txt"):
            archive = self.dataset.archive(subset)
            if subset not in subsets or archive is None:
                continue
            for video_id, track in self._tracks(ctx, archive, subset, session):
                videos.unit(video_id, track["speaker"], subset)["meta"]["tracks"].append(track)
        if "fomm" in subsets:
            for video_id, chunk in self._chunks(ctx, session):
                videos.unit(video_id, chunk["speaker"], "fomm")["meta"]["chunks"].append(chunk)
        log.info("%s: %d YouTube videos to fetch", self.dataset.name, len(videos.units))
        return list(videos.units.values())

    def _tracks(
        self, ctx: AcquireContext, archive: Archive, subset: str, session: Any
    ) -> list[tuple[str, dict[str, Any]]]:
        """``(video id, track)`` of the txt archive (downloaded from ``hf``, extracted)."""
        zip_path = ctx.raw_root / "archives" / archive.name
        url = f"{self.dataset.base_url(ctx, 'hf')}/vox{self.dataset.version}/{archive.name}"
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
        tracks = []
        for txt in sorted(names):
            parts = txt.split("/")
            if len(parts) < 3 or not txt.endswith(".txt"):
                continue
            speaker, video_id, stem = parts[-3], parts[-2], parts[-1][:-4]
            if not SPEAKER.fullmatch(speaker):
                continue
            track = {
                "clip_id": f"{speaker}/{video_id}/{stem}",
                "speaker": speaker,
                "split": archive.split,
                "txt": txt,
            }
            tracks.append((video_id, track))
        return tracks

    def _chunks(self, ctx: AcquireContext, session: Any) -> list[tuple[str, dict[str, Any]]]:
        """``(video id, chunk)`` of the distinct FOMM chunks of ``vox-metadata.csv``
        (downloaded into ``meta/``)."""
        path = ctx.raw_root / "meta" / "vox-metadata.csv"
        download_file(
            f"{self.dataset.base_url(ctx, 'fomm')}/vox-metadata.csv",
            path,
            session=session,
            retries=ctx.retries,
            backoff_s=ctx.backoff_s,
            progress=ctx.progress,
        )
        return [
            (
                row["video_id"],
                {
                    "clip_id": f"fomm/{row['partition']}/{row['chunk']}",
                    "chunk": row["chunk"],
                    "speaker": row["person_id"],
                    "split": row["partition"],
                    **{k: row[k] for k in ("start", "end", "bbox", "fps", "width", "height")},
                },
            )
            for row in fomm_chunks(load_fomm_metadata(path)).to_dict("records")
        ]

    # -- download ------------------------------------------------------------------------------

    def fetch(self, ctx: AcquireContext, unit: Mapping[str, Any], session: Any) -> dict:
        """yt-dlp for a video; metadata files over HTTP."""
        if unit["kind"] != "youtube":
            return super().fetch(ctx, unit, session)
        from talking_heads.datasets.youtube import ytdlp_download

        dest = ctx.raw_root / str(unit["dest"])
        existed = dest.exists()
        ytdlp_download(str(unit["url"]), dest, retries=ctx.retries, progress=ctx.progress)
        return {
            "bytes_fetched": 0 if existed else dest.stat().st_size,
            "resumed_from": 0,
            "path": str(unit["dest"]),
        }

    def after_fetch(self, ctx: AcquireContext, unit: Mapping[str, Any]) -> None:
        """Cut every track / chunk of a downloaded video; record boxes and per-clip failures."""
        if unit["kind"] != "youtube":
            return
        from talking_heads.utils.media import probe_video

        meta = unit_meta(unit)
        video = ctx.raw_root / str(unit["dest"])
        try:
            probed = probe_video(video)
            width, height = int(probed["width"]), int(probed["height"])
        except (ValueError, KeyError, TypeError) as error:
            raise TransferError(f"downloaded video unreadable: {video.name} ({error})") from None
        cutter = _Cutter(video, float(probed.get("duration_s") or 0.0))
        record: dict[str, Any] = {
            "video": {"width": width, "height": height, "fps": probed.get("fps")},
            "clips": {},
            "errors": {},
        }
        for track in meta.get("tracks", []):
            self._cut_track(ctx, cutter, track, record)
        for chunk in meta.get("chunks", []):
            _cut_chunk(ctx, cutter, chunk, (width, height), record)
        for clip_id, reason in record["errors"].items():
            log.warning("%s %s: %s", self.dataset.name, clip_id, reason)
        atomic_write_json(_cuts_path(ctx, meta["video_id"]), record)

    def _cut_track(
        self, ctx: AcquireContext, cutter: _Cutter, track: Mapping[str, Any], record: dict
    ) -> None:
        clip_id = track["clip_id"]
        try:
            face = read_track(ctx.raw_root / track["txt"], normalised=self.dataset.version == 2)
            record["clips"][clip_id] = {
                "first_frame": face.first_frame,
                "last_frame": face.last_frame,
                "sync_offset": face.offset,
            }
            cutter.cut(ctx.data_root / "clips" / f"{clip_id}.mp4", face.start_s, face.end_s)
        except (TransferError, ValueError, OSError) as error:
            record["errors"][clip_id] = _cut_reason(error)

    # -- scan ----------------------------------------------------------------------------------

    def scan(
        self,
        ctx: AcquireContext,
        shard: int,
        records: list[dict[str, Any]],
        iden: Mapping[str, str],
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Rows of this shard's tracks / chunks cut from YouTube videos (failed ones too)."""
        items: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        for unit in records:
            if unit.get("kind") == "youtube":
                self._scan_video(ctx, shard, unit, iden, items, failures)
        return items, failures

    def _scan_video(
        self,
        ctx: AcquireContext,
        shard: int,
        unit: Mapping[str, Any],
        iden: Mapping[str, str],
        items: list[dict[str, Any]],
        failures: list[dict[str, Any]],
    ) -> None:
        """The rows of one video's clips of this shard: ok, or failed with the reason."""
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
        entries = [(t, "voxceleb") for t in meta.get("tracks", [])]
        entries += [(c, "fomm") for c in meta.get("chunks", [])]
        for entry, protocol in entries:
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
            out = self._describe_entry(ctx, row, entry, protocol, iden)
            row["path"] = ctx.rel(out)
            error = cuts.get("errors", {}).get(clip_id)
            if status != "ok":
                failures.append({**row, "status": "failed", "reason": reason})
            elif error:
                failures.append({**row, "status": "failed", "reason": error})
            else:
                items.append({**row, "_abs_path": out})

    def _describe_entry(
        self,
        ctx: AcquireContext,
        row: dict[str, Any],
        entry: Mapping[str, Any],
        protocol: str,
        iden: Mapping[str, str],
    ) -> Path:
        """Add a track's or chunk's own columns to ``row``; the clip's path."""
        clip_id = entry["clip_id"]
        if protocol == "voxceleb":
            row.update(
                split=self.dataset.split_of(clip_id, entry["split"], iden),
                archive_split=entry["split"],
                subset=f"{entry['split']}_txt",
                utterance=clip_id.rsplit("/", 1)[-1],
                track=ctx.rel(ctx.raw_root / entry["txt"]),
                box_format=self.dataset.box_format(),
            )
            return ctx.data_root / "clips" / f"{clip_id}.mp4"
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
        return ctx.data_root / f"{clip_id}.mp4"


class _VideoUnits:
    """The ``youtube`` units being listed, one per video, in the order first seen."""

    def __init__(self, url_template: str) -> None:
        self.url_template = url_template
        self.units: dict[str, dict[str, Any]] = {}

    def unit(self, video_id: str, speaker: str, subset: str) -> dict[str, Any]:
        """The unit of ``video_id`` (created for ``speaker``), with ``subset`` among its own."""
        unit = self.units.get(video_id)
        if unit is None:
            unit = self.units[video_id] = {
                "unit_id": f"youtube/{video_id}",
                "group": speaker,
                "subset": subset,
                "kind": "youtube",
                "url": self.url_template.format(video_id=video_id),
                "dest": f"youtube/{video_id}.mp4",
                "meta": {"video_id": video_id, "tracks": [], "chunks": []},
            }
        elif subset not in unit["subset"].split("+"):
            unit["subset"] = "+".join(sorted([*unit["subset"].split("+"), subset]))
        return unit


class _Cutter:
    """Cuts clips out of one downloaded video of ``duration`` seconds (0: unknown)."""

    def __init__(self, video: Path, duration: float) -> None:
        self.video = video
        self.duration = duration

    def cut(self, out: Path, start_s: float, end_s: float, **options: Any) -> None:
        """``[start_s, end_s)`` to ``out`` at 25 fps (kept when it exists); a
        :class:`ValueError` when the span is not inside the video."""
        from talking_heads.datasets.youtube import cut_clip

        duration = self.duration
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
            cut_clip(self.video, out, start_s=start_s, end_s=end_s, fps=FPS, **options)


def _cut_chunk(
    ctx: AcquireContext,
    cutter: _Cutter,
    chunk: Mapping[str, Any],
    size: tuple[int, int],
    record: dict[str, Any],
) -> None:
    """Cut one FOMM chunk, cropped to its box rescaled to the ``size`` of the download."""
    clip_id = chunk["clip_id"]
    try:
        x, y, w, h = rescale_fomm_bbox(chunk["bbox"], chunk["width"], chunk["height"], *size)
        record["clips"][clip_id] = {"crop_x": x, "crop_y": y, "crop_w": w, "crop_h": h}
        start_s = chunk["start"] / chunk["fps"]
        end_s = chunk["end"] / chunk["fps"]
        out = ctx.data_root / f"{clip_id}.mp4"
        cutter.cut(out, start_s, end_s, crop=(x, y, w, h), size=FOMM_SIZE)
    except (TransferError, ValueError, OSError) as error:
        record["errors"][clip_id] = _cut_reason(error)


def _cuts_path(ctx: AcquireContext, video_id: str) -> Path:
    return ctx.raw_root / "youtube" / f"{video_id}.cuts.json"


def _cut_reason(error: BaseException) -> str:
    if isinstance(error, TransferError):
        return error.reason
    return f"cannot cut clip: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
