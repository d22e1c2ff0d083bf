"""LRS3-TED (Afouras, Chung & Zisserman, "LRS3-TED: a large-scale dataset for visual speech
recognition", arXiv:1809.00496, 2018): sentences from TED and TEDx talks, 25 fps, 160x160
face-centred clips with audio and a transcript each.

**Source.** Oxford VGG distributed LRS3 to applicants (the TED videos are CC BY-NC-ND 4.0,
non-commercial research use) with a user name and password, read here from ``LRS3_USER``
and ``LRS3_PASSWORD`` (never logged). Archives under
``https://thor.robots.ox.ac.uk/~vgg/data/lip_reading/data3/``: ``lrs3_pretrain.zip`` as
byte-split parts ``lrs3_pretrain_parta{a..g}``, ``lrs3_trainval.zip`` and
``lrs3_test_v0.4.zip`` whole. Archives placed in ``<raw>/archives/`` are used without
credentials or network; without either, each missing archive is a failed row naming the two
variables and the file to supply, and the run goes on. **No checksums are published**; each
archive's md5 is recorded. The archive names, part count and URLs follow public download
scripts; they could not be checked against the live, password-protected server, so
supplying the archives is the dependable path.

**Layout and splits.** ``pretrain/<speaker_id>/<utt>.mp4``, ``trainval/<speaker_id>/...``
and ``test/<speaker_id>/...`` with a ``.txt`` each (``Text:  <SENTENCE>`` is the
``transcript``); the split is the top folder. Published sizes: pretrain 118,516, trainval
31,982, test 1,321 utterances; test speakers are disjoint from the others. Subsets
``pretrain``, ``trainval``, ``test`` fetch and extract only their archive; the default is
``trainval`` and ``test``. A clip whose ``.txt`` is missing or malformed is a failed row.
**Wav2Lip** (Prajwal et al., ACM MM 2020) does not train on LRS3; it evaluates on the LRS3
``test`` clips.

**Speakers.** ``speaker`` is the ``speaker_id`` folder (a TED speaker's talk id); clips are
sharded by it (``stable_shard(speaker_id, n)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import ClassVar

from talking_heads.datasets.base import AcquireContext
from talking_heads.datasets.lrs import Clip, LipReadingSentences

ARCHIVES: dict[str, str] = {
    "pretrain": "lrs3_pretrain.zip",
    "trainval": "lrs3_trainval.zip",
    "test": "lrs3_test_v0.4.zip",
}
PRETRAIN_PARTS: tuple[str, ...] = tuple(f"lrs3_pretrain_parta{c}" for c in "abcdefg")


def split_of(member: str) -> str | None:
    """Split folder of an archive member ``<split>/<speaker_id>/<file>`` (else None)."""
    parts = PurePosixPath(member).parts
    return parts[0] if len(parts) >= 3 and parts[0] in ARCHIVES else None


class LRS3(LipReadingSentences):
    """LRS3-TED: one licensed zip per split (pretrain byte-split), split = top folder."""

    name = "lrs3"
    fixture_test = "tests/test_dataset_lrs2.py"
    survey_name = ""  # not a row of the survey's Table 1
    description = (
        "LRS3-TED: TED/TEDx sentences, 160x160 face-centred 25 fps clips with transcripts "
        "(Wav2Lip evaluates on its test split)"
    )
    homepage = "https://www.robots.ox.ac.uk/~vgg/data/lip_reading/lrs3.html"
    licence = "CC BY-NC-ND 4.0 (TED videos), research use; credentials required"
    subsets: ClassVar[dict[str, str]] = {
        "pretrain": "lrs3_pretrain.zip: pretrain/ (118,516 utterances)",
        "trainval": "lrs3_trainval.zip: trainval/ (31,982 utterances)",
        "test": "lrs3_test_v0.4.zip: test/ (1,321 utterances, unseen speakers)",
    }
    default_subsets: ClassVar[tuple[str, ...]] = ("trainval", "test")
    sources: ClassVar[dict[str, str]] = {
        "official": "Oxford VGG (thor.robots.ox.ac.uk), basic auth from LRS3_USER/LRS3_PASSWORD",
    }
    credentials: ClassVar[dict[str, tuple[str, ...]]] = {
        "official": ("LRS3_USER", "LRS3_PASSWORD"),
    }
    url_bases: ClassVar[dict[str, str]] = {
        "official": "https://thor.robots.ox.ac.uk/~vgg/data/lip_reading/data3",
    }
    archives: ClassVar[dict[str, tuple[str, ...]]] = {
        ARCHIVES["pretrain"]: PRETRAIN_PARTS,
        ARCHIVES["trainval"]: (),
        ARCHIVES["test"]: (),
    }
    speakers_note = "speaker ids are LRS3's folders; trainval and pretrain share speakers"

    def archives_for(self, ctx: AcquireContext) -> list[str]:
        return [ARCHIVES[s] for s in self.selected_subsets(ctx)]

    def member_filter(self, ctx: AcquireContext) -> Callable[[str], bool]:
        splits = set(self.selected_subsets(ctx))
        return lambda member: split_of(member) in splits

    def clips(self, ctx: AcquireContext, archive: str) -> Iterator[Clip]:
        split = next(s for s, a in ARCHIVES.items() if a == archive)
        root = ctx.raw_root / split
        speakers = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        for speaker in speakers:
            for video in sorted((root / speaker).glob("*.mp4")):
                yield Clip(f"{split}/{speaker}/{video.stem}", speaker, split, video)
