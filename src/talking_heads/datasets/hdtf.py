"""HDTF (Zhang et al., CVPR 2021): high-definition talking faces from YouTube.

Source (reference notes §6, §8): only annotations are distributed, in the official repository
``MRzzm/HDTF`` (branch ``main``, folder ``HDTF_dataset/``, CC BY 4.0); the video itself comes
from YouTube through yt-dlp. For each subset ``RD`` (radio addresses), ``WDA`` (White House
Democrats) and ``WRA`` (White House Republicans) there are five whitespace-separated files:

========================  ====================================  ===================================
file                      line                                  example
========================  ====================================  ===================================
``xx_video_url.txt``      ``name url``                          ``Radio2 https://www.youtube.com/
                                                                watch?v=uBWJJvynXpA&t=6s``
``xx_resolution.txt``     ``name.mp4 height``                   ``AdamSchiff.mp4 1080``
``xx_annotion_time.txt``  ``name.mp4 mm:ss-mm:ss ...``          ``Radio11.mp4 00:30-01:00
                                                                01:30-02:30``
``xx_crop_wh.txt``        ``name_k.mp4 x w y h`` (square box    ``Radio10_0.mp4 483 390 0 390``
                          at the listed resolution)
``xx_crop_ratio.txt``     ``name_k.mp4 zoom`` (0.75-1.2)        ``Radio11_0.mp4 1.2``
========================  ====================================  ===================================

Interval ``k`` (0-based, in line order) of video ``name`` is clip ``name_k``. Counts (computed
from the files): 370 URL rows (RD 57, WDA 183, WRA 130), 369 distinct YouTube ids, 436 intervals
of 10-500 s (17.07 h); the 421 intervals with a crop box total 16.35 h.

Known problems of the annotation files, and what we do:

* ``WDA_video_url.txt`` starts with a UTF-8 byte-order mark (MRzzm/HDTF#17); every parser
  strips it, so the first key is ``CarolynMaloney2``.
* Thirteen URLs carry a ``&t=`` start offset; videos are fetched by their YouTube id alone.
* ``KevinMcCarthy1`` has resolution ``0`` and three crop boxes (``MaggieHassan_0``,
  ``MazieHirono1_0``, ``PeterKing_0``) do not fit the listed 720 p frame. For such a video the
  box resolution is taken as the smallest standard height (360 ... 2160) whose 16:9 frame holds
  every box of the video (720 for ``KevinMcCarthy1``), and its rows carry a ``known_issue``.
* ``RD/Radio24`` has no interval: one ``skipped`` row, nothing downloaded.
* YouTube id ``gh3YqnvNdio`` is listed twice in WDA (``JamesClyburn1`` and ``WhipJimClyburn``,
  same interval): the second name in sorted order is ``skipped`` as a duplicate.
* 15 intervals have no crop box (MRzzm/HDTF#2): ``skipped`` with reason
  ``no crop box in <subset>_crop_wh.txt``; they are neither downloaded nor cut, since no crop
  (neither ``crop_wh`` nor ``crop_ratio``) is published for them.

Acquisition: one unit per video (group = the video name, so a video is fetched once). yt-dlp
fetches only the annotated intervals that have a crop box (``--download-sections`` with
keyframes forced at the cuts), at the listed height when YouTube offers it, into
``<raw>/youtube/<subset>/<name>.<n>.mp4``. Each section is cropped with method 1 of the README
(``crop_wh`` at the listed resolution, rescaled by the downloaded height over the box
resolution, clamped to the frame) and resized to 512x512 into
``<data>/clips/<subset>/<name>_<k>.mp4``, H.264 at the source frame rate **with** its AAC audio
(the community script ``universome/HDTF/download.py`` requests video-only formats and loses
the audio, §6). Sections stay in the raw folder for other crops (method 2, ``crop_ratio``).
A dead or private video fails all its clips with yt-dlp's reason; about 150-160 of the 369
videos are still retrievable (MRzzm/HDTF#17). The ``youtube`` URL base is a template with
``{video_id}`` (default ``https://www.youtube.com/watch?v={video_id}``); a mirror without the
placeholder is read as ``<base>/<video_id>.mp4``.

Speakers: in WDA/WRA a name is a politician with an optional video number, so the speaker is
the name without trailing digits (``AmyKlobuchar0`` -> ``AmyKlobuchar``), with the alias
``WhipJimClyburn`` -> ``JamesClyburn``; RD names (``Radio1`` ... ``Radio59``) say nothing about
who speaks, so each RD video is its own speaker.

Split: none is official (papers use ad-hoc test lists, e.g. xg-chu/GAGAvatar#40). Ours is
speaker-disjoint, hence video-disjoint: the first 8 hex digits of SHA-256 of
``hdtf/<speaker>``, modulo 100, give train (< 80), val (< 90) or test. It depends on nothing
but the speaker name, and the index stage writes it per video to ``<data>/split.csv``. On the
published files (computed) the 276 speakers (219 WDA/WRA, 57 RD) give train 223 speakers /
299 videos / 13.44 annotated hours, val 26 / 36 / 1.79 h and test 27 / 35 / 1.84 h.

Manifest: clip id ``<subset>_<name>_<k>``; columns ``subset``, ``video``, ``youtube_id``,
``interval`` (k), ``start_s``/``end_s``, ``resolution`` (as listed), ``box_height`` (the
resolution the box is read at), ``crop_box`` (``x,y,w,h`` at ``box_height``), ``crop_ratio``,
``applied_crop`` (``x,y,w,h`` in the downloaded frame), ``download_height`` and
``known_issue``; ``source`` is the YouTube URL. Statistics: hours of the ok clips, speakers =
distinct speaker names, utterances = ok clips, plus the number of videos they come from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pandas as pd

from talking_heads.datasets.base import (
    AcquireContext,
    Dataset,
    cell_text,
    describe_clips,
    unit_meta,
)
from talking_heads.datasets.transfer import TransferError, fetch_text, redact_url
from talking_heads.datasets.youtube import YOUTUBE_URL_TEMPLATE, section_path
from talking_heads.utils.atomic import atomic_path, atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

SUBSETS: tuple[str, ...] = ("RD", "WDA", "WRA")
#: the five annotation files of each subset (``<subset>_<kind>.txt``; "annotion" sic)
ANNOTATION_FILES: tuple[str, ...] = (
    "video_url",
    "resolution",
    "annotion_time",
    "crop_wh",
    "crop_ratio",
)
CLIP_SIZE = 512
#: heights tried, smallest first, when the listed resolution cannot hold the crop boxes
STANDARD_HEIGHTS: tuple[int, ...] = (360, 480, 720, 1080, 1440, 2160)
SPEAKER_ALIASES: dict[str, str] = {"WhipJimClyburn": "JamesClyburn"}
#: split by the speaker's hash bucket (0-99): train below 80, val below 90, test above
SPLIT_BOUNDS: tuple[tuple[str, int], ...] = (("train", 80), ("val", 90), ("test", 100))
#: a clip whose section is shorter than its interval by more than this gets a known issue
SHORT_TOLERANCE_S = 0.5

_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")


# ---------------------------------------------------------------------------------------------
# annotation files


@dataclass(frozen=True)
class CropBox:
    """A crop box in pixels: ``x, y`` top-left, ``w x h`` (the files list ``x w y h``)."""

    x: int
    y: int
    w: int
    h: int

    def fits(self, height: int, aspect: float = 16 / 9) -> bool:
        """Whether the box lies inside a ``height``-high frame of the given aspect."""
        width = round(height * aspect)
        return (
            self.x >= 0 and self.y >= 0 and self.x + self.w <= width and self.y + self.h <= height
        )

    def text(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"


@dataclass
class HDTFVideo:
    """One annotated video: its URL, listed resolution, intervals and per-interval crops."""

    subset: str
    name: str
    url: str
    resolution: int | None = None
    intervals: list[tuple[float, float]] = field(default_factory=list)
    crops: dict[int, CropBox] = field(default_factory=dict)
    ratios: dict[int, float] = field(default_factory=dict)

    @property
    def youtube_id(self) -> str | None:
        return youtube_id(self.url)

    def clip_name(self, k: int) -> str:
        return f"{self.name}_{k}"


def _lines(text: str) -> Iterable[tuple[int, list[str]]]:
    """Non-blank lines of an annotation file as (line number, fields), any BOM removed."""
    for number, line in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        fields = line.replace("\ufeff", "").split()
        if fields:
            yield number, fields


def _video_name(token: str) -> str:
    return token[:-4] if token.lower().endswith(".mp4") else token


def parse_video_urls(text: str) -> dict[str, str]:
    """``name url`` lines -> {name: url} (a leading UTF-8 BOM is ignored)."""
    urls: dict[str, str] = {}
    for number, fields in _lines(text):
        if len(fields) < 2:
            raise ValueError(f"video_url line {number}: expected 'name url', got {fields!r}")
        urls[_video_name(fields[0])] = fields[1]
    return urls


def parse_resolutions(text: str) -> dict[str, int]:
    """``name.mp4 height`` lines -> {name: height} (0 where the file lists 0)."""
    heights: dict[str, int] = {}
    for number, fields in _lines(text):
        if len(fields) < 2 or not fields[1].isdigit():
            raise ValueError(f"resolution line {number}: expected 'name.mp4 height'")
        heights[_video_name(fields[0])] = int(fields[1])
    return heights


def parse_timestamp(text: str) -> float:
    """``mm:ss`` (or ``hh:mm:ss``, or plain seconds) -> seconds."""
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def parse_intervals(text: str) -> dict[str, list[tuple[float, float]]]:
    """``name.mp4 mm:ss-mm:ss ...`` lines -> {name: [(start_s, end_s), ...]} in line order.

    A name listed without any interval maps to an empty list.
    """
    intervals: dict[str, list[tuple[float, float]]] = {}
    for number, fields in _lines(text):
        spans = []
        for token in fields[1:]:
            start, sep, end = token.partition("-")
            try:
                span = (parse_timestamp(start), parse_timestamp(end))
            except ValueError:
                span = (0.0, -1.0)
            if not sep or span[1] <= span[0]:
                raise ValueError(f"annotion_time line {number}: bad interval {token!r}")
            spans.append(span)
        intervals[_video_name(fields[0])] = spans
    return intervals


def _clip_key(token: str) -> tuple[str, int]:
    name, _, k = _video_name(token).rpartition("_")
    if not name or not k.isdigit():
        raise ValueError(f"not a clip name: {token!r}")
    return name, int(k)


def parse_crop_boxes(text: str) -> dict[tuple[str, int], CropBox]:
    """``name_k.mp4 x w y h`` lines -> {(name, k): CropBox} (note the file's x-w-y-h order)."""
    boxes: dict[tuple[str, int], CropBox] = {}
    for number, fields in _lines(text):
        try:
            x, w, y, h = (int(v) for v in fields[1:5])
            if len(fields) != 5:
                raise ValueError
            boxes[_clip_key(fields[0])] = CropBox(x=x, y=y, w=w, h=h)
        except ValueError:
            raise ValueError(f"crop_wh line {number}: expected 'name_k.mp4 x w y h'") from None
    return boxes


def parse_crop_ratios(text: str) -> dict[tuple[str, int], float]:
    """``name_k.mp4 ratio`` lines -> {(name, k): ratio}."""
    ratios: dict[tuple[str, int], float] = {}
    for number, fields in _lines(text):
        try:
            ratios[_clip_key(fields[0])] = float(fields[1])
        except (ValueError, IndexError):
            raise ValueError(f"crop_ratio line {number}: expected 'name_k.mp4 ratio'") from None
    return ratios


def youtube_id(url: str) -> str | None:
    """The video id of a YouTube URL (``watch?v=``, ``youtu.be/``, ``shorts/``); else None."""
    parts = urlsplit(url.strip())
    candidates = parse_qs(parts.query).get("v", [])
    host = parts.netloc.lower()
    if host.endswith("youtu.be"):
        candidates.append(parts.path.strip("/"))
    elif parts.path.startswith(("/shorts/", "/embed/")):
        candidates.append(parts.path.split("/")[2])
    return next((c for c in candidates if _YOUTUBE_ID.match(c)), None)


def load_subset(subset: str, texts: Mapping[str, str]) -> list[HDTFVideo]:
    """The videos of one subset from its five files' texts (keys of :data:`ANNOTATION_FILES`).

    Every video of ``video_url`` is listed (sorted by name), with whatever the other files say
    about it; intervals, crops or ratios of names absent from ``video_url`` are ignored.
    """
    urls = parse_video_urls(texts["video_url"])
    heights = parse_resolutions(texts["resolution"])
    intervals = parse_intervals(texts["annotion_time"])
    boxes = parse_crop_boxes(texts["crop_wh"])
    ratios = parse_crop_ratios(texts["crop_ratio"])
    unknown = sorted(set(intervals) - set(urls))
    if unknown:
        log.warning("%s: intervals for names without a URL ignored: %s", subset, unknown[:5])
    videos = []
    for name in sorted(urls):
        spans = intervals.get(name, [])
        videos.append(
            HDTFVideo(
                subset=subset,
                name=name,
                url=urls[name],
                resolution=heights.get(name),
                intervals=spans,
                crops={k: boxes[name, k] for k in range(len(spans)) if (name, k) in boxes},
                ratios={k: ratios[name, k] for k in range(len(spans)) if (name, k) in ratios},
            )
        )
    return videos


# ---------------------------------------------------------------------------------------------
# speakers, splits, crops


def speaker_of(subset: str, name: str) -> str:
    """Speaker of a video: RD names are their own speaker, others lose trailing digits."""
    if subset == "RD":
        return name
    return SPEAKER_ALIASES.get(name, re.sub(r"\d+$", "", name) or name)


def split_of(speaker: str) -> str:
    """train / val / test of a speaker (80/10/10 by a SHA-256 bucket of ``hdtf/<speaker>``)."""
    bucket = int(hashlib.sha256(f"hdtf/{speaker}".encode()).hexdigest()[:8], 16) % 100
    return next(split for split, bound in SPLIT_BOUNDS if bucket < bound)


def box_height(resolution: int | None, boxes: Iterable[CropBox]) -> tuple[int | None, str]:
    """Resolution the crop boxes of one video are read at, and a known issue ('' if none).

    The listed resolution when every box fits its 16:9 frame; else the smallest standard
    height whose frame holds every box (a listed 0, or boxes larger than the listed frame).
    """
    boxes = list(boxes)
    if not boxes:
        return (resolution or None), ""
    if resolution and all(box.fits(resolution) for box in boxes):
        return resolution, ""
    guess = next(
        (h for h in STANDARD_HEIGHTS if all(box.fits(h) for box in boxes)), STANDARD_HEIGHTS[-1]
    )
    if resolution is None:
        listed = "no resolution listed"
    elif resolution == 0:
        listed = "resolution 0"
    else:
        listed = f"crop box outside the listed {resolution}p"
    return guess, f"{listed}; crop read at {guess}p"


def scale_crop(box: CropBox, ref_height: int, width: int, height: int) -> tuple[CropBox, bool]:
    """``box`` (given at ``ref_height``) in a ``width x height`` frame; whether it was clamped."""
    scale = height / ref_height
    w = max(1, min(round(box.w * scale), width))
    h = max(1, min(round(box.h * scale), height))
    x0, y0 = round(box.x * scale), round(box.y * scale)
    x = min(max(x0, 0), width - w)
    y = min(max(y0, 0), height - h)
    clamped = (x, y, w, h) != (x0, y0, round(box.w * scale), round(box.h * scale))
    return CropBox(x=x, y=y, w=w, h=h), clamped


def _first_line(error: BaseException) -> str:
    if isinstance(error, TransferError):
        return error.reason
    text = str(error).strip().splitlines()
    return f"cannot cut clip: {text[0] if text else type(error).__name__}"


# ---------------------------------------------------------------------------------------------
# the dataset


class HDTF(Dataset):
    """HDTF: annotations from ``MRzzm/HDTF``, intervals fetched from YouTube and cropped."""

    name = "hdtf"
    fixture_test = "tests/test_dataset_hdtf.py"
    survey_name = "HDTF"
    description = "HDTF: 362 YouTube videos, 15.8 h of 720p/1080p talking faces"
    homepage = "https://github.com/MRzzm/HDTF"
    licence = "CC BY 4.0 (annotations); videos remain with their YouTube owners"
    subsets: ClassVar[dict[str, str]] = {
        "RD": "radio addresses: 57 URL rows, 66 intervals (1.20 h)",
        "WDA": "White House Democrats: 183 videos, 195 intervals (11.10 h)",
        "WRA": "White House Republicans: 130 videos, 175 intervals (4.77 h)",
    }
    default_subsets: ClassVar[tuple[str, ...]] = SUBSETS
    sources: ClassVar[dict[str, str]] = {
        "youtube": "annotations from github.com/MRzzm/HDTF, intervals from YouTube (yt-dlp)",
    }
    url_bases: ClassVar[dict[str, str]] = {
        "annotations": "https://raw.githubusercontent.com/MRzzm/HDTF/main/HDTF_dataset",
        "youtube": YOUTUBE_URL_TEMPLATE,
    }
    head_movement = "Yes"
    environment = "Wild"

    # -- paths ---------------------------------------------------------------------------------

    def video_url(self, ctx: AcquireContext, video_id: str) -> str:
        """Where yt-dlp fetches ``video_id``: the ``youtube`` template (or ``<base>/<id>.mp4``)."""
        template = self.base_url(ctx, "youtube")
        if "{video_id}" in template:
            return template.format(video_id=video_id)
        return f"{template}/{video_id}.mp4"

    @staticmethod
    def clip_path(ctx: AcquireContext, subset: str, name: str, k: int) -> Path:
        return ctx.data_root / "clips" / subset / f"{name}_{k}.mp4"

    @staticmethod
    def cuts_path(ctx: AcquireContext, unit: Mapping[str, Any]) -> Path:
        """Per-video record of the crops applied and the clips that could not be cut."""
        return (ctx.raw_root / str(unit["dest"])).with_suffix(".cuts.json")

    # -- index ---------------------------------------------------------------------------------

    def annotations(self, ctx: AcquireContext, subset: str) -> list[HDTFVideo]:
        """Fetch one subset's five annotation files (copies kept under ``<raw>/annotations``)."""
        base = self.base_url(ctx, "annotations")
        texts = {}
        for kind in ANNOTATION_FILES:
            filename = f"{subset}_{kind}.txt"
            text = fetch_text(f"{base}/{filename}", retries=ctx.retries, backoff_s=ctx.backoff_s)
            atomic_write_text(ctx.raw_root / "annotations" / filename, text)
            texts[kind] = text
        try:
            return load_subset(subset, texts)
        except ValueError as error:
            raise TransferError(f"unreadable {subset} annotations: {error}") from None

    def index(self, ctx: AcquireContext) -> list[dict[str, Any]]:
        """One unit per annotated video; the split table goes to ``<data>/split.csv``."""
        videos = [v for subset in self.selected_subsets(ctx) for v in self.annotations(ctx, subset)]
        first_of: dict[str, HDTFVideo] = {}
        units, split_rows = [], []
        for video in videos:
            units.append(self._unit(ctx, video, first_of))
            meta = units[-1]["meta"]
            split_rows.append(
                {
                    "subset": video.subset,
                    "video": video.name,
                    "youtube_id": video.youtube_id or "",
                    "speaker": meta["speaker"],
                    "split": meta["split"],
                    "intervals": len(video.intervals),
                    "annotated_s": sum(end - start for start, end in video.intervals),
                }
            )
        table = pd.DataFrame(split_rows)
        with atomic_path(ctx.data_root / "split.csv") as tmp:
            table.to_csv(tmp, index=False)
        return units

    def _unit(
        self, ctx: AcquireContext, video: HDTFVideo, first_of: dict[str, HDTFVideo]
    ) -> dict[str, Any]:
        speaker = speaker_of(video.subset, video.name)
        ref_height, issue = box_height(video.resolution, video.crops.values())
        vid = video.youtube_id
        clips = [
            {
                "k": k,
                "start_s": start,
                "end_s": end,
                "crop": video.crops[k].text() if k in video.crops else None,
                "crop_ratio": video.ratios.get(k),
            }
            for k, (start, end) in enumerate(video.intervals)
        ]
        meta = {
            "subset": video.subset,
            "name": video.name,
            "speaker": speaker,
            "split": split_of(speaker),
            "youtube_id": vid,
            "youtube_url": YOUTUBE_URL_TEMPLATE.format(video_id=vid) if vid else video.url,
            "resolution": video.resolution,
            "box_height": ref_height,
            "known_issue": issue,
            "clips": clips,
        }
        unit: dict[str, Any] = {
            "unit_id": f"{video.subset}/{video.name}",
            "group": video.name,
            "subset": video.subset,
            "kind": "youtube",
            "url": self.video_url(ctx, vid) if vid else redact_url(video.url),
            "dest": f"youtube/{video.subset}/{video.name}.mp4",
            "meta": meta,
        }
        if vid is None:
            unit.update(status="failed", reason=f"not a YouTube URL: {redact_url(video.url)}")
        elif not video.intervals:
            unit.update(
                status="skipped",
                reason=f"no annotated interval in {video.subset}_annotion_time.txt",
            )
        elif not video.crops:
            unit.update(status="skipped", reason=f"no crop box in {video.subset}_crop_wh.txt")
        elif vid in first_of and first_of[vid].intervals == video.intervals:
            other = first_of[vid]
            unit.update(
                status="skipped",
                reason=f"duplicate of {other.subset}/{other.name} "
                f"(same YouTube video {vid} and intervals)",
            )
        if vid is not None:
            first_of.setdefault(vid, video)
        return unit

    # -- download ------------------------------------------------------------------------------

    def fetch(self, ctx: AcquireContext, unit: Mapping[str, Any], session: Any) -> dict:
        """yt-dlp the intervals that have a crop box (one section file each)."""
        from talking_heads.datasets.youtube import ytdlp_download

        meta = unit_meta(unit)
        cropped = [c for c in meta["clips"] if c["crop"]]
        dest = ctx.raw_root / str(unit["dest"])
        sections = [section_path(dest, n) for n in range(1, len(cropped) + 1)]
        clips = [self.clip_path(ctx, meta["subset"], meta["name"], c["k"]) for c in cropped]
        result = {"bytes_fetched": 0, "resumed_from": 0, "path": str(unit["dest"])}
        if all(p.exists() for p in clips) or all(p.exists() for p in sections):
            return result
        before = sum(p.stat().st_size for p in sections if p.exists())
        ytdlp_download(
            str(unit["url"]),
            dest,
            sections=[(c["start_s"], c["end_s"]) for c in cropped],
            height=meta["box_height"] or None,
            retries=ctx.retries,
            progress=ctx.progress,
        )
        after = sum(p.stat().st_size for p in sections if p.exists())
        return {**result, "bytes_fetched": after - before, "resumed_from": before}

    def after_fetch(self, ctx: AcquireContext, unit: Mapping[str, Any]) -> None:
        """Crop each section to its box, resize to 512x512 (audio kept); record what was done."""
        from talking_heads.datasets.youtube import cut_clip
        from talking_heads.utils.media import probe_video

        meta = unit_meta(unit)
        dest = ctx.raw_root / str(unit["dest"])
        record_path = self.cuts_path(ctx, unit)
        record: dict[str, Any] = {"clips": {}, "errors": {}}
        if record_path.exists():
            record["clips"] = json.loads(record_path.read_text("utf-8")).get("clips", {})
        cropped = [c for c in meta["clips"] if c["crop"]]
        for number, clip in enumerate(cropped, 1):
            key, out = str(clip["k"]), self.clip_path(ctx, meta["subset"], meta["name"], clip["k"])
            if out.exists() and key in record["clips"]:
                continue
            section = section_path(dest, number)
            length = clip["end_s"] - clip["start_s"]
            try:
                if not section.exists():
                    raise TransferError(
                        f"yt-dlp wrote no section for interval {clip['start_s']:.0f}-"
                        f"{clip['end_s']:.0f} s: {section.name}"
                    )
                probed = probe_video(section)
                width, height = int(probed["width"]), int(probed["height"])
                x, y, w, h = (int(v) for v in clip["crop"].split(","))
                box, clamped = scale_crop(
                    CropBox(x, y, w, h), int(meta["box_height"] or height), width, height
                )
                record["clips"][key] = {
                    "applied_crop": box.text(),
                    "clamped": clamped,
                    "download_width": width,
                    "download_height": height,
                    "section_s": probed.get("duration_s"),
                }
                if not out.exists():
                    cut_clip(
                        section,
                        out,
                        start_s=0.0,
                        end_s=length,
                        crop=(box.x, box.y, box.w, box.h),
                        size=CLIP_SIZE,
                    )
            except (TransferError, ValueError, KeyError, OSError) as error:
                record["errors"][key] = _first_line(error)
                log.warning("%s %s_%s: %s", self.name, meta["name"], key, record["errors"][key])
        atomic_write_json(record_path, record)

    # -- scan ----------------------------------------------------------------------------------

    def scan(self, ctx: AcquireContext, shard: int, units: pd.DataFrame) -> list[dict]:
        """One row per interval of the shard's videos (one row for a video without any)."""
        rows: list[dict[str, Any]] = []
        items: list[dict[str, Any]] = []
        for unit in units[units["shard"] == shard].to_dict("records"):
            if unit["kind"] != "youtube":
                continue
            meta = unit_meta(unit)
            record_path = self.cuts_path(ctx, unit)
            record = json.loads(record_path.read_text("utf-8")) if record_path.exists() else {}
            base = {
                "unit_id": unit["unit_id"],
                "speaker": meta["speaker"],
                "split": meta["split"],
                "kind": "video",
                "source": meta["youtube_url"],
                "subset": meta["subset"],
                "video": meta["name"],
                "youtube_id": meta["youtube_id"] or "",
                "resolution": meta["resolution"],
                "box_height": meta["box_height"],
            }
            preset = cell_text(unit.get("status"))
            if not meta["clips"]:
                rows.append(
                    {
                        **base,
                        "clip_id": f"{meta['subset']}_{meta['name']}",
                        "status": "skipped" if preset == "skipped" else "failed",
                        "reason": cell_text(unit.get("reason")),
                    }
                )
                continue
            for clip in meta["clips"]:
                k = clip["k"]
                done = record.get("clips", {}).get(str(k), {})
                issues = [meta["known_issue"]] if meta["known_issue"] and clip["crop"] else []
                if done.get("clamped"):
                    issues.append("crop box clamped to the downloaded frame")
                section_s = done.get("section_s")
                length = clip["end_s"] - clip["start_s"]
                if section_s is not None and section_s < length - SHORT_TOLERANCE_S:
                    issues.append(
                        f"video ends early: {section_s:.2f} s of a {length:.0f} s interval"
                    )
                out = self.clip_path(ctx, meta["subset"], meta["name"], k)
                row = {
                    **base,
                    "clip_id": f"{meta['subset']}_{meta['name']}_{k}",
                    "path": ctx.rel(out) if clip["crop"] else None,
                    "interval": k,
                    "start_s": clip["start_s"],
                    "end_s": clip["end_s"],
                    "crop_box": clip["crop"] or "",
                    "crop_ratio": clip["crop_ratio"],
                    "applied_crop": done.get("applied_crop", ""),
                    "download_height": done.get("download_height"),
                    "known_issue": "; ".join(issues),
                }
                failure = self._clip_failure(unit, clip, record, out)
                if failure is None:
                    items.append({**row, "_abs_path": out})
                else:
                    rows.append({**row, **failure})
        if items:
            rows += describe_clips(items, ctx)
        return rows

    @staticmethod
    def _clip_failure(
        unit: Mapping[str, Any], clip: Mapping[str, Any], record: Mapping[str, Any], out: Path
    ) -> dict[str, str] | None:
        """Status and reason of a clip that has no file to describe (None when it has one)."""
        subset = unit_meta(unit)["subset"]
        if not clip["crop"]:
            return {"status": "skipped", "reason": f"no crop box in {subset}_crop_wh.txt"}
        if out.exists():
            return None
        preset = cell_text(unit.get("status"))
        if preset in ("skipped", "failed"):
            return {"status": preset, "reason": cell_text(unit.get("reason"))}
        error = record.get("errors", {}).get(str(clip["k"]))
        if error:
            return {"status": "failed", "reason": error}
        downloaded = cell_text(unit.get("download_status"))
        if downloaded == "failed":
            return {"status": "failed", "reason": cell_text(unit.get("download_reason"))}
        if not downloaded:
            return {"status": "failed", "reason": "not downloaded (download stage did not run)"}
        return None

    # -- statistics ----------------------------------------------------------------------------

    def statistics(self, manifest: pd.DataFrame) -> dict[str, Any]:
        """Hours of ok clips, distinct speakers, ok clips as utterances, and their videos."""
        stats = super().statistics(manifest)
        ok = manifest[manifest["status"] == "ok"]
        if "youtube_id" in ok.columns:
            stats["videos"] = int(ok["youtube_id"].nunique())
        return stats
