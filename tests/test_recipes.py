"""The wav2lip, emotion and hdtf recipes on real media, and resuming complete shards."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from talking_heads.manifest import read_manifest, sha256_file, write_manifest
from talking_heads.preprocess.audio import (
    mel_windows,
    melspectrogram,
    num_mel_frames,
    read_wav,
    syncnet_mfcc,
)
from talking_heads.preprocess.recipes import RECIPES, Wav2LipParams, load_features, run_shard
from talking_heads.utils.media import ffmpeg_exe, read_video, write_video

WAV2LIP_DEMO = {"detector": "dlib_hog", "stride": 5}


def _frames_at_25fps(path: Path) -> int:
    """Frames ffmpeg's ``fps=25`` filter produces (the rate conversion of the references)."""
    result = subprocess.run(
        [
            ffmpeg_exe(),
            "-nostdin",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-vf",
            "fps=25",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stderr.rsplit("frame=", 1)[1].split()[0])


@pytest.fixture(scope="module")
def wav2lip_shard(demo_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wav2lip") / "shard-000"
    return run_shard(demo_manifest, "wav2lip", WAV2LIP_DEMO, 0, 1, out)


def test_recipe_registry_names_the_four_recipes() -> None:
    assert {"fomm", "wav2lip", "hdtf", "emotion"} <= set(RECIPES.names())
    params = Wav2LipParams.from_dict({"pads": "0,20,0,0", "fps": "None", "smooth": "1"})
    assert params.pads == (0, 20, 0, 0) and params.fps is None and params.smooth == 1
    defaults = Wav2LipParams()
    assert (defaults.resolution, defaults.fps, defaults.pads, defaults.smooth) == (
        96,
        25.0,
        (0, 10, 0, 0),
        5,
    )
    with pytest.raises(ValueError, match="pads takes four values"):
        Wav2LipParams.from_dict({"pads": "1,2"})


def test_wav2lip_crops_carphone_at_25fps_with_its_audio(
    wav2lip_shard: Path, demo_manifest: Path
) -> None:
    table = read_manifest(wav2lip_shard / "manifest.parquet").set_index("clip_id")
    carphone = table.loc["carphone"]
    expected = _frames_at_25fps(demo_manifest.parent / "videos" / "carphone.mp4")
    assert carphone.status == "ok", carphone.reason
    frames, fps = read_video(wav2lip_shard / carphone.path)
    assert fps == pytest.approx(25.0) and carphone.fps == pytest.approx(25.0)
    assert frames.shape == (expected, 96, 96, 3) == (carphone.num_frames, 96, 96, 3)
    assert (carphone.start_frame, carphone.end_frame) == (0, expected)
    assert sha256_file(wav2lip_shard / carphone.path) == carphone.sha256
    # the audio under those frames, and its features
    info = soundfile.info(str(wav2lip_shard / carphone.audio_path))
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, expected * 640)
    features = load_features(wav2lip_shard, "carphone")
    assert set(features) == {"mel", "mfcc", "boxes", "landmarks"}
    wav, _ = read_wav(wav2lip_shard / carphone.audio_path)
    np.testing.assert_array_equal(features["mel"], melspectrogram(wav))
    assert features["mel"].shape == (80, num_mel_frames(info.frames)) == (80, carphone.mel_frames)
    np.testing.assert_allclose(features["mfcc"], syncnet_mfcc(wav), rtol=1e-6, atol=1e-4)
    assert features["mfcc"].shape[1] == carphone.mfcc_frames
    windows = mel_windows(features["mel"], expected, 25.0)
    assert windows.shape == (expected, 80, 16)
    # one smoothed box per frame; the crop is that box padded 10 px down, clamped to the frame
    boxes = features["boxes"]
    assert boxes.shape == (expected, 4) and np.isfinite(boxes).all()
    assert np.abs(np.diff(boxes, axis=0)).max() < 6  # smoothed: no jumps between frames
    left, _, _, bot = map(int, carphone.bbox.split("-"))
    assert left <= boxes[:, 0].min() + 1 and bot >= min(144, boxes[:, 3].max() + 9)
    # landmarks in crop pixels, on the face: eyes above the mouth in every frame
    points = features["landmarks"]
    assert points.shape == (expected, 68, 2)
    assert np.nanmin(points) > -10 and np.nanmax(points) < 106
    assert (points[:, 36:48, 1].mean(axis=1) < points[:, 48:68, 1].mean(axis=1)).all()


def test_wav2lip_skips_what_it_cannot_use(wav2lip_shard: Path) -> None:
    table = read_manifest(wav2lip_shard / "manifest.parquet").set_index("clip_id")
    assert table.loc["bikes", "status"] == "skipped"
    assert "no face" in table.loc["bikes", "reason"]
    assert table.loc["astronaut", "status"] == "skipped"
    assert table.loc["astronaut", "reason"].startswith("not a video (image)")
    summary = json.loads((wav2lip_shard / "summary.json").read_text())
    assert summary["by_status"] == {"ok": 1, "skipped": 2}
    assert summary["params"]["pads"] == [0, 10, 0, 0] and summary["frames_per_s"] > 0


def test_a_complete_shard_is_not_recomputed(demo_manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "shard-000"
    params = {**WAV2LIP_DEMO, "landmarks": "none"}
    run_shard(demo_manifest, "wav2lip", params, 0, 1, out)
    stamp = (out / "manifest.parquet").stat().st_mtime_ns
    run_shard(demo_manifest, "wav2lip", params, 0, 1, out)
    assert (out / "manifest.parquet").stat().st_mtime_ns == stamp
    run_shard(demo_manifest, "wav2lip", {**params, "smooth": 1}, 0, 1, out)
    assert (out / "manifest.parquet").stat().st_mtime_ns != stamp
    assert json.loads((out / "summary.json").read_text())["params"]["smooth"] == 1
    stamp = (out / "manifest.parquet").stat().st_mtime_ns
    run_shard(demo_manifest, "wav2lip", {**params, "smooth": 1}, 0, 1, out, force=True)
    assert (out / "manifest.parquet").stat().st_mtime_ns != stamp


def test_emotion_keeps_the_labels(demo_manifest: Path, tmp_path: Path) -> None:
    table = read_manifest(demo_manifest)
    table = table[table["clip_id"] == "carphone"].copy()
    table["path"] = [str(demo_manifest.parent / p) for p in table["path"]]
    table["emotion"], table["level"], table["sentence"] = "happy", 3, 12
    manifest = write_manifest(table, tmp_path / "manifest.parquet")
    out = run_shard(
        manifest, "emotion", {**WAV2LIP_DEMO, "landmarks": "none"}, 0, 1, tmp_path / "s"
    )
    row = read_manifest(out / "manifest.parquet").iloc[0]
    assert row.status == "ok" and row.fps == pytest.approx(25.0)
    assert (row.emotion, row.level, row.sentence) == ("happy", "3", "12")
    assert "view" not in read_manifest(out / "manifest.parquet").columns


def test_hdtf_writes_each_resolution_and_rejects_non_square_clips(
    demo_manifest: Path, tmp_path: Path
) -> None:
    frames, fps = read_video(demo_manifest.parent / "videos" / "carphone.mp4")
    square = write_video(tmp_path / "RD_Radio1_0.mp4", frames[:, 8:136, 24:152], fps)
    audio = tmp_path / "speech.wav"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-nostdin",
            "-y",
            "-v",
            "error",
            "-i",
            str(demo_manifest.parent / "videos" / "carphone.mp4"),
            "-vn",
            str(audio),
        ],
        check=True,
    )
    with_audio = tmp_path / "RD_Radio2_0.mp4"
    write_video(with_audio, frames[:, 8:136, 24:152], fps, audio=audio)
    rows = [
        {"clip_id": "RD_Radio1_0", "kind": "video", "path": str(square)},
        {"clip_id": "RD_Radio2_0", "kind": "video", "path": str(with_audio)},
        {
            "clip_id": "wide",
            "kind": "video",
            "path": str(demo_manifest.parent / "videos" / "carphone.mp4"),
        },
    ]
    table = pd.DataFrame(
        [{**r, "speaker": "s", "split": "test", "status": "ok", "reason": ""} for r in rows]
    )
    manifest = write_manifest(table, tmp_path / "manifest.parquet")
    params = {
        "resolutions": "128,64",
        "min_frames": 25,
        "landmarks": "none",
        "detector": "dlib_hog",
    }
    out = run_shard(manifest, "hdtf", params, 0, 1, tmp_path / "shard")
    result = read_manifest(out / "manifest.parquet").set_index("clip_id")
    clip = result.loc["RD_Radio2_0"]
    assert clip.status == "ok" and clip.path == "clips/RD_Radio2_0.mp4"
    assert clip.variants == "128=clips/RD_Radio2_0.mp4;64=clips_64/RD_Radio2_0.mp4"
    large, _ = read_video(out / "clips/RD_Radio2_0.mp4")
    small, _ = read_video(out / "clips_64/RD_Radio2_0.mp4")
    assert large.shape == (120, 128, 128, 3) and small.shape == (120, 64, 64, 3)
    assert clip.audio_rate == 16000 and clip.mel_frames > 0
    # no audio track: the hdtf recipe keeps the clip (require_audio is off) and notes it
    silent = result.loc["RD_Radio1_0"]
    assert silent.status == "ok" and silent.notes == "no audio stream"
    assert result.loc["wide", "status"] == "skipped"
    assert result.loc["wide", "reason"] == "not an HDTF crop: 176x144 frames are not square"
