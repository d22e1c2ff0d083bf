"""LRS2-BBC (Afouras, Chung, Senior, Vinyals & Zisserman, "Deep Audio-Visual Speech
Recognition", IEEE TPAMI 2018): sentences from BBC television, 25 fps, 160x160 face-centred
clips with audio and a transcript each.

**Source.** Oxford VGG distributes LRS2 under the BBC's research licence (non-commercial,
signed by permanent staff); applicants receive a user name and password, read here from
``LRS2_USER`` and ``LRS2_PASSWORD`` (never logged). The archive is published as byte-split
parts ``https://thor.robots.ox.ac.uk/~vgg/data/lip_reading/data2/lrs2_v1_parta{a..e}``
(``cat lrs2_v1_parta* > lrs2_v1.tar``) beside the split lists ``train.txt``, ``val.txt``,
``test.txt`` and ``pretrain.txt``. A joined ``lrs2_v1.tar`` and the lists placed in
``<raw>/archives/`` are used without credentials or network; without either, every unit is a
failed row naming the two variables and the file to supply, and the run goes on. **No
checksums are published**: the md5 of the joined archive is recorded (``assembled.json``
and each clip's ``archive_md5``). The part count and URLs follow the public download scripts;
they could not be checked against the live, password-protected server.

**Layout and splits.** ``mvlrs_v1/main/<video_id>/<utt>.mp4`` (+ ``.txt``, first line
``Text:  <SENTENCE>``, the ``transcript``) and ``mvlrs_v1/pretrain/<video_id>/<utt>.mp4``.
Lines of the split lists are ``<video_id>/<utt>``; ``test.txt`` lines may carry a trailing
``NF``/``MV`` token, ignored. Subsets ``train``, ``val``, ``test`` (published: 45,839 /
1,082 / 1,243 utterances, all in ``main``) and ``pretrain`` (96,318) extract only the
listed clips; a listed clip absent from the archive is a failed row, a clip whose ``.txt``
is missing or has no ``Text:`` line too. **Wav2Lip** (Prajwal et al., ACM MM 2020) trains and
validates on ``main`` with ``train.txt``/``val.txt`` and evaluates on ``test.txt``: the
default subsets.

**Speakers.** LRS2 does not identify speakers; ``speaker`` is the ``video_id`` (one BBC
broadcast segment) and clips are sharded by it (``stable_shard(video_id, n)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar

from talking_heads.datasets.base import AcquireContext
from talking_heads.datasets.lrs import Clip, LipReadingSentences, stem_of

ARCHIVE = "lrs2_v1.tar"
PARTS: tuple[str, ...] = tuple(f"lrs2_v1_parta{c}" for c in "abcde")
SPLITS: tuple[str, ...] = ("train", "val", "test")


def parse_split_list(text: str) -> list[str]:
    """``<video_id>/<utt>`` keys of a split list (trailing ``NF``/``MV`` tokens dropped)."""
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def folder_of(subset: str) -> str:
    """The ``mvlrs_v1`` folder a subset's clips are in."""
    return "pretrain" if subset == "pretrain" else "main"


class LRS2(LipReadingSentences):
    """LRS2-BBC: licensed byte-split tar and split lists, listed clips extracted."""

    name = "lrs2"
    fixture_test = "tests/test_dataset_lrs2.py"
    survey_name = ""  # not a row of the survey's Table 1
    description = (
        "LRS2-BBC: BBC TV sentences, 160x160 face-centred 25 fps clips with transcripts "
        "(Wav2Lip trains on main with train/val lists, tests on test.txt)"
    )
    homepage = "https://www.robots.ox.ac.uk/~vgg/data/lip_reading/lrs2.html"
    licence = "BBC research licence, non-commercial (credentials required)"
    subsets: ClassVar[dict[str, str]] = {
        "train": "main clips listed in train.txt (45,839)",
        "val": "main clips listed in val.txt (1,082)",
        "test": "main clips listed in test.txt (1,243)",
        "pretrain": "pretrain clips listed in pretrain.txt (96,318)",
    }
    default_subsets: ClassVar[tuple[str, ...]] = SPLITS
    sources: ClassVar[dict[str, str]] = {
        "official": "Oxford VGG (thor.robots.ox.ac.uk), basic auth from LRS2_USER/LRS2_PASSWORD",
    }
    credentials: ClassVar[dict[str, tuple[str, ...]]] = {
        "official": ("LRS2_USER", "LRS2_PASSWORD"),
    }
    url_bases: ClassVar[dict[str, str]] = {
        "official": "https://thor.robots.ox.ac.uk/~vgg/data/lip_reading/data2",
    }
    archives: ClassVar[dict[str, tuple[str, ...]]] = {ARCHIVE: PARTS}
    speakers_note = "LRS2 does not identify speakers; counted are BBC video ids"

    def archives_for(self, ctx: AcquireContext) -> list[str]:
        return [ARCHIVE]

    def lists_for(self, ctx: AcquireContext) -> list[str]:
        return [f"{s}.txt" for s in self.selected_subsets(ctx)]

    def listed(self, ctx: AcquireContext) -> dict[str, list[str]]:
        """Selected subset -> its split list's keys (read from ``<raw>/archives/``)."""
        return {
            s: parse_split_list((self.supplied_dir(ctx) / f"{s}.txt").read_text("utf-8"))
            for s in self.selected_subsets(ctx)
        }

    def member_filter(self, ctx: AcquireContext) -> Callable[[str], bool]:
        keep = {
            f"mvlrs_v1/{folder_of(s)}/{key}" for s, keys in self.listed(ctx).items() for key in keys
        }
        return lambda member: stem_of(member) in keep

    def clips(self, ctx: AcquireContext, archive: str) -> Iterator[Clip]:
        seen: set[str] = set()
        for subset, keys in self.listed(ctx).items():
            for key in keys:
                clip_id = f"{folder_of(subset)}/{key}"
                if clip_id not in seen:
                    seen.add(clip_id)
                    video = ctx.raw_root / "mvlrs_v1" / f"{clip_id}.mp4"
                    yield Clip(clip_id, key.split("/")[0], subset, video)
