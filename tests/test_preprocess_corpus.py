"""The bad-input corpus through the ``fomm`` and ``wav2lip`` recipes: every item's recorded
status, reason and notes (one bad item never stops a shard)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from talking_heads.manifest import read_manifest
from talking_heads.preprocess.recipes import run_shard

FOMM = {"resolution": 64, "min_frames": 32, "min_size": 32}
WAV2LIP = {"stride": 5}

#: item -> (status, pattern the reason (skipped) or the notes (ok) must match)
EXPECTED: dict[str, dict[str, tuple[str, str]]] = {
    "fomm": {
        "good": ("ok", r"^kept frames 0-\d+ of 120$"),
        "distorted": ("skipped", r"^no face detected in any sampled frame \(25 sampled\)$"),
        "no_face": ("skipped", r"^no face track of at least 32 frames \(longest track \d+ frames"),
        "several_faces": (
            "ok",
            r"^several faces: 2 face tracks, two overlapping over frames 0-\d+; kept the longest",
        ),
        "face_leaves": (
            "skipped",
            r"^no face track of at least 32 frames .*ends: face left the frame$",
        ),
        "too_short": ("skipped", r"^too short: 10 frames < min_frames 32$"),
        "zero_byte": ("skipped", r"^empty file \(0 bytes\)$"),
        "truncated_index": ("skipped", r"^cannot decode: moov atom not found$"),
        "truncated_tail": (
            "ok",
            r"^decoded with ffmpeg: decord cannot open it .*; truncated: decoded 2\.\d\d s of the "
            r"4\.00 s the container declares",
        ),
        "no_audio": ("ok", r"; no audio stream$"),
        "silent_audio": ("ok", r"; silent audio \(below -60 dBFS\)$"),
        "low_rate_audio": ("ok", r"; audio resampled from 8000 Hz to 16000 Hz$"),
        "vfr": (
            "ok",
            r"^variable frame rate \(frame intervals 50-100 ms\); resampled 15\.000 -> 20 fps",
        ),
    },
    "wav2lip": {
        "good": ("ok", r"^resampled 29\.970 -> 25 fps$"),
        "distorted": ("skipped", r"^no face detected in any sampled frame \(21 sampled\)$"),
        "no_face": ("skipped", r"^no face track of at least 16 frames \(longest track \d+ frames"),
        "several_faces": ("skipped", r"^several faces: 2 face tracks, two overlapping"),
        "face_leaves": ("skipped", r"^no face track of at least 16 frames .*face left the frame"),
        "too_short": ("skipped", r"^too short: 8 frames < min_frames 16$"),
        "zero_byte": ("skipped", r"^empty file \(0 bytes\)$"),
        "truncated_index": ("skipped", r"^cannot decode: moov atom not found$"),
        "truncated_tail": ("ok", r"resampled 29\.970 -> 25 fps; truncated: decoded 2\.\d\d s"),
        "no_audio": ("skipped", r"^no audio stream$"),
        "silent_audio": ("skipped", r"^silent audio \(below -60 dBFS\)$"),
        "low_rate_audio": ("ok", r"; audio resampled from 8000 Hz to 16000 Hz$"),
        "vfr": (
            "ok",
            r"^variable frame rate \(frame intervals 50-100 ms\); resampled 15\.000 -> 25 fps$",
        ),
    },
}


@pytest.fixture(scope="module")
def corpus_manifest(demo_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from preprocess_corpus import build_corpus

    return build_corpus(demo_manifest.parent, tmp_path_factory.mktemp("bad-inputs"))


@pytest.fixture(scope="module")
def shards(corpus_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("bad-input-shards")
    return {
        "fomm": run_shard(corpus_manifest, "fomm", FOMM, 0, 1, out / "fomm"),
        "wav2lip": run_shard(corpus_manifest, "wav2lip", WAV2LIP, 0, 1, out / "wav2lip"),
    }


@pytest.mark.parametrize("recipe", ["fomm", "wav2lip"])
def test_every_corpus_item_records_its_reason(shards: dict[str, Path], recipe: str) -> None:
    from preprocess_corpus import ITEMS

    table = read_manifest(shards[recipe] / "manifest.parquet").set_index("clip_id")
    assert sorted(table.index) == sorted(ITEMS) == sorted(EXPECTED[recipe])
    for item, (status, pattern) in EXPECTED[recipe].items():
        row = table.loc[item]
        recorded = row.reason if status == "skipped" else row.notes
        assert row.status == status, f"{item}: {row.status} ({row.reason})"
        assert re.search(pattern, recorded), f"{item}: {recorded!r} !~ {pattern!r}"
        if status == "skipped":
            assert pd.isna(row.path) or row.path == "", item
        else:
            assert (shards[recipe] / row.path).is_file(), item


def test_kept_items_have_their_outputs_and_the_summary_counts_reasons(
    shards: dict[str, Path],
) -> None:
    import json

    wav2lip = read_manifest(shards["wav2lip"] / "manifest.parquet").set_index("clip_id")
    # the truncated clip keeps the frames ffmpeg could decode, at 25 fps, with its audio
    tail = wav2lip.loc["truncated_tail"]
    assert 50 <= tail.num_frames < 100 and tail.fps == 25
    assert tail.mel_frames > 0 and (shards["wav2lip"] / tail.audio_path).is_file()
    # the 8 kHz speech was brought to 16 kHz before the features
    assert wav2lip.loc["low_rate_audio"].audio_rate == 16000
    summary = json.loads((shards["wav2lip"] / "summary.json").read_text())
    assert summary["by_status"] == {"skipped": 9, "ok": 4}
    assert summary["by_reason"]["no audio stream"] == 1
    assert sum(summary["by_reason"].values()) == 9
