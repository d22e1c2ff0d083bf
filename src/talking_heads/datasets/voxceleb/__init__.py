"""VoxCeleb1 and VoxCeleb2 (Nagrani et al., Interspeech 2017; Chung et al., Interspeech 2018).

The dataset's ``source`` picks one acquisition route (:class:`~.route.Route`):

* ``official``, ``kaist``, ``hf``: the published archives (:mod:`.archives`: Oxford VGG with
  basic auth, the KAIST mirror with a key in the URL, the Hugging Face copy), multi-part zips
  joined and verified in the assemble stage;
* ``youtube``: the original YouTube videos, fetched with yt-dlp and cut into one clip per face
  track (``txt`` archives, :mod:`.tracks`) or per FOMM chunk (``vox-metadata.csv``,
  :mod:`.metadata`) (:mod:`.youtube`). The ``txt`` archives this route needs come from ``hf``.

Every route also fetches the ``meta`` subset (speaker metadata, VoxCeleb1's identification
split) and gets the speaker columns added to its rows.

Splits: VoxCeleb1 follows ``iden_split.txt`` (1/2/3 = train/val/test, 138,361 / 6,904 /
8,251) when the ``meta`` subset brought it, else dev/test by archive (the verification test
identities are id10270-id10309); VoxCeleb2 is dev/test by archive (the 118 test identities of
:data:`VOX2_TEST_IDS`). ``archive_split`` always holds dev/test. FOMM chunk clips (VoxCeleb1
subset ``fomm``, source ``youtube``) have the ids ``fomm/<partition>/<chunk>`` and their
partition as split.

Statistics: hours are the summed durations of ok clips, speakers the distinct identities and
utterances the ok clips (VoxCeleb utterances; FOMM chunks only when no utterance was acquired).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import pandas as pd

from talking_heads.datasets.base import AcquireContext, Dataset, describe_clips
from talking_heads.datasets.voxceleb.archives import (
    CHECKSUM_LISTS,
    NO_PUBLISHED_MD5,
    PUBLISHED_MD5,
    Archive,
    ArchiveRoute,
    archive_parts,
    parse_md5_list,
)
from talking_heads.datasets.voxceleb.metadata import (
    FOMM_COLUMNS,
    FOMM_EXPECTED_COUNTS,
    FOMM_SIZE,
    fomm_chunk_name,
    fomm_chunks,
    fomm_test_chunks,
    load_fomm_metadata,
    read_iden_split,
    read_speaker_meta,
    rescale_fomm_bbox,
)
from talking_heads.datasets.voxceleb.route import Route
from talking_heads.datasets.voxceleb.tracks import (
    FPS,
    VOX1_REF_HEIGHT,
    FaceTrack,
    parse_track,
    read_track,
)
from talking_heads.datasets.voxceleb.youtube import YouTubeRoute

log = logging.getLogger(__name__)

__all__ = [
    "CHECKSUM_LISTS",
    "FOMM_COLUMNS",
    "FOMM_EXPECTED_COUNTS",
    "FOMM_SIZE",
    "FPS",
    "NO_PUBLISHED_MD5",
    "PUBLISHED_MD5",
    "ROUTES",
    "VOX1_REF_HEIGHT",
    "VOX1_TEST_IDS",
    "VOX2_TEST_IDS",
    "Archive",
    "ArchiveRoute",
    "FaceTrack",
    "Route",
    "VoxCeleb1",
    "VoxCeleb2",
    "VoxCelebBase",
    "YouTubeRoute",
    "fomm_chunk_name",
    "fomm_chunks",
    "fomm_test_chunks",
    "load_fomm_metadata",
    "parse_md5_list",
    "parse_track",
    "read_iden_split",
    "read_speaker_meta",
    "read_track",
    "rescale_fomm_bbox",
]

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

#: the acquisition route of each source
ROUTES: dict[str, type[Route]] = {
    "official": ArchiveRoute,
    "kaist": ArchiveRoute,
    "hf": ArchiveRoute,
    "youtube": YouTubeRoute,
}


class VoxCelebBase(Dataset):
    """What VoxCeleb1 and VoxCeleb2 share: sources, metadata, splits; the route does the rest."""

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

    def route(self, ctx: AcquireContext) -> Route:
        """The acquisition route of the context's source."""
        source = self.source_of(ctx)
        return ROUTES[source](self, source)

    def selected_subsets(self, ctx: AcquireContext) -> tuple[str, ...]:
        if not ctx.subsets and (defaults := self.route(ctx).default_subsets()):
            return defaults
        return super().selected_subsets(ctx)

    def archive(self, subset: str) -> Archive | None:
        """The published archive of ``subset`` (None for ``meta`` / ``fomm``)."""
        return next((a for a in self.archives if a.subset == subset), None)

    def split_of(self, clip_id: str, archive_split: str, iden: Mapping[str, str]) -> str:
        """A clip's split: from ``iden_split.txt`` where it lists the clip, else its archive's."""
        return iden.get(clip_id, archive_split)

    def box_format(self) -> str:
        """How the face-track boxes are given (``track`` column)."""
        return "fraction" if self.version == 2 else f"pixels@{VOX1_REF_HEIGHT}p"

    # -- the pipeline stages -------------------------------------------------------------------

    def index(self, ctx: AcquireContext) -> list[dict[str, Any]]:
        subsets = self.selected_subsets(ctx)
        route = self.route(ctx)
        route.check_subsets(subsets)
        units = route.units(ctx, subsets)
        if "meta" in subsets:
            units += [self._meta_unit(ctx, name) for name in self.meta_files]
        return units

    def fetch(self, ctx: AcquireContext, unit: Mapping[str, Any], session: Any) -> dict:
        return self.route(ctx).fetch(ctx, unit, session)

    def after_fetch(self, ctx: AcquireContext, unit: Mapping[str, Any]) -> None:
        self.route(ctx).after_fetch(ctx, unit)

    def assemble(self, ctx: AcquireContext, downloads: pd.DataFrame) -> dict:
        return self.route(ctx).assemble(ctx, downloads)

    def scan(self, ctx: AcquireContext, shard: int, units: pd.DataFrame) -> list[dict]:
        records = units.to_dict("records")
        speakers = self._speaker_meta(ctx)
        described, failed = self.route(ctx).scan(ctx, shard, records, self._iden_split(ctx))
        for item in described + failed:
            item.update(speakers.get(str(item.get("speaker")), {}))
        return describe_clips(described, ctx) + failed

    # -- statistics ----------------------------------------------------------------------------

    def statistics(self, manifest: pd.DataFrame) -> dict[str, Any]:
        """Table 1 figures from ok rows: VoxCeleb utterances (FOMM chunks only if none)."""
        ok = manifest[manifest["status"] == "ok"]
        if "protocol" in ok.columns and (ok["protocol"] == "voxceleb").any():
            ok = ok[ok["protocol"] == "voxceleb"]
        return super().statistics(ok)

    # -- metadata ------------------------------------------------------------------------------

    def _meta_unit(self, ctx: AcquireContext, name: str) -> dict[str, Any]:
        return {
            "unit_id": name,
            "group": name,
            "subset": "meta",
            "kind": "metadata",
            "url": self._meta_url(ctx, name),
            "dest": f"meta/{name}",
            "meta": {"file": name},
        }

    def _meta_url(self, ctx: AcquireContext, name: str) -> str:
        if name.endswith("_meta.csv") and self.source_of(ctx) in ("hf", "youtube"):
            return f"{self.base_url(ctx, 'hf')}/vox{self.version}/{name}"
        return f"{self.base_url(ctx, 'meta')}/{name}"

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


class VoxCeleb1(VoxCelebBase):
    """VoxCeleb1: audio archives, face tracks, metadata; video from YouTube (tracks, FOMM).

    Default subsets: the test audio (1.07 GB) with both track archives and the metadata. The
    dev audio (four parts, 32.6 GB) is opt-in (``dev_wav``); the track archives are what a
    YouTube re-crop needs and the metadata carries the identification split.
    """

    name = "voxceleb1"
    fixture_test = "tests/test_dataset_voxceleb.py"
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
        Archive("dev_wav", "vox1_dev_wav.zip", archive_parts("vox1_dev_wav", 4), "audio", "dev"),
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
    fixture_test = "tests/test_dataset_voxceleb.py"
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
        Archive("dev_mp4", "vox2_dev_mp4.zip", archive_parts("vox2_dev_mp4", 9), "video", "dev"),
        Archive("test_mp4", "vox2_test_mp4.zip", (), "video", "test"),
        Archive("dev_aac", "vox2_dev_aac.zip", archive_parts("vox2_dev_aac", 8), "audio", "dev"),
        Archive("test_aac", "vox2_test_aac.zip", (), "audio", "test"),
        Archive("dev_txt", "vox2_dev_txt.zip", (), "track", "dev"),
        Archive("test_txt", "vox2_test_txt.zip", (), "track", "test"),
    )
    meta_files: ClassVar[tuple[str, ...]] = ("vox2_meta.csv",)
    test_ids = VOX2_TEST_IDS
