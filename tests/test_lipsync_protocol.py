"""The lip-sync evaluation (Wav2Lip's pairs, skip rules recorded), the box interpolation of
``detect_every``, the lip-sync figure and Table 3's paper and ground-truth rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from talking_heads.inference.lipsync_pairs import (
    draw_lipsync_pairs,
    read_filelist,
    run_lipsync_pairs,
)
from talking_heads.inference.protocols import load_protocol
from talking_heads.manifest import write_manifest
from talking_heads.models import METHODS
from talking_heads.models.lipsync.inference import interpolate_boxes
from talking_heads.preprocess.audio import read_wav, write_wav
from talking_heads.utils.media import read_video, write_video

RATE = 16_000


class CopyFace:
    """A lip-sync stand-in: one window per 640 samples (a 25 fps frame), the face returned."""

    resolution = 32

    def __init__(self) -> None:
        self.emotions: list[str | None] = []

    def audio_windows(self, audio, fps: float) -> np.ndarray:
        return np.zeros((len(audio.samples) // 640, 1), np.float32)

    def reconstruct_clip(self, inputs, options, **_: object) -> torch.Tensor:
        self.emotions.append(inputs.emotion)
        count = len(self.audio_windows(inputs.audio, inputs.fps))
        count -= 0 if options.get("audio_tail", True) else 1
        return inputs.face[:count].clone()


@pytest.fixture
def shard(tmp_path: Path) -> Path:
    """Test clips ``a`` (20 frames, 0.8 s speech) and ``b`` (8 frames, 0.2 s speech)."""
    rng = np.random.default_rng(0)
    shard = tmp_path / "shard-000"
    rows = []
    for clip_id, frames, seconds in (("a", 20, 0.8), ("b", 8, 0.2)):
        video = rng.integers(0, 256, size=(frames, 32, 32, 3), dtype=np.uint8)
        write_video(shard / "clips" / f"{clip_id}.mp4", video, 25.0, crf=0)
        speech = (rng.standard_normal(int(seconds * RATE)) * 0.1).astype(np.float32)
        write_wav(shard / "audio" / f"{clip_id}.wav", speech)
        rows.append(
            {
                "clip_id": clip_id,
                "kind": "video",
                "split": "test",
                "status": "ok",
                "path": f"clips/{clip_id}.mp4",
                "num_frames": frames,
                "fps": 25.0,
                "audio_path": f"audio/{clip_id}.wav",
            }
        )
    write_manifest(pd.DataFrame(rows), shard / "manifest.parquet")
    return shard


def test_upstreams_filelist_is_matched_by_its_last_components(tmp_path: Path) -> None:
    filelist = tmp_path / "lrs2.txt"
    filelist.write_text("6339758276407584924/00098 6330311066473698535/00011\nBRING_00018 x/y\n")
    ids = ["main/6339758276407584924/00098", "main/6330311066473698535/00011", "lrw/BRING_00018"]
    pairs = read_filelist(filelist, ids)
    assert pairs.loc[0, ["audio_clip", "face_clip", "status"]].tolist() == [ids[0], ids[1], ""]
    assert pairs.loc[1, "status"] == "skipped"
    assert pairs.loc[1, "reason"] == "not among the evaluation clips: x/y"


def test_drawn_pairs_use_another_clips_speech_or_a_rolled_own() -> None:
    clips = pd.DataFrame({"clip_id": ["a", "b", "c"], "num_frames": [10, 10, 10], "fps": 25.0})
    pairs = draw_lipsync_pairs(clips, num_pairs=10, seed=0)
    assert len(pairs) == 3 and (pairs["audio_clip"] != pairs["face_clip"]).all()
    pd.testing.assert_frame_equal(pairs, draw_lipsync_pairs(clips, 10, 0))
    single = draw_lipsync_pairs(clips.head(1).assign(num_frames=100), 10, 0)
    assert single.loc[0, ["audio_clip", "face_clip", "audio_shift_s"]].tolist() == ["a", "a", 2.0]


def test_a_run_generates_usable_pairs_and_records_upstreams_skips(shard: Path, tmp_path: Path):
    out = tmp_path / "run"
    protocol = load_protocol("lipsync_pairs")
    generator = CopyFace()
    spec = METHODS.get("emogen")  # a method that takes an emotion
    summary = run_lipsync_pairs(generator, protocol, [shard], out, declaration=spec.declaration)
    pairs = pd.read_csv(out / "pairs.csv", dtype={"pair": str}).set_index("face_clip")
    # a's face (20 frames) with b's 0.2 s speech: 5 windows, 4 whole ones
    assert pairs.loc["a", ["audio_clip", "status"]].tolist() == ["b", "ok"]
    # b's face (8 frames) with a's 0.8 s speech: 20 windows, 19 whole ones > 8 frames
    assert pairs.loc["b", "status"] == "skipped"
    assert pairs.loc["b", "reason"] == "video shorter than the audio (8 < 19 frames)"
    assert summary["pairs"] == {
        "listed": 2,
        "generated": 1,
        "skipped": {"video shorter than the audio": 1},
    }
    assert summary["frames"] == 4 and len(read_video(out / "generated" / "00000.mp4")[0]) == 4


def test_generated_reference_and_audio_line_up(shard: Path, tmp_path: Path) -> None:
    filelist = tmp_path / "pairs.txt"
    filelist.write_text("a a\n")  # a's face with its own speech: 20 windows, 19 whole
    out = tmp_path / "run"
    protocol = load_protocol("lipsync_pairs", pairs_csv=str(filelist))
    generator = CopyFace()
    summary = run_lipsync_pairs(
        generator, protocol, [shard], out, declaration=METHODS.get("emogen").declaration
    )
    assert summary["pairs"] == {"listed": 1, "generated": 1, "skipped": {}}
    generated, _ = read_video(out / "generated" / "00000.mp4")
    reference, _ = read_video(out / "reference" / "00000.mp4")
    face, _ = read_video(shard / "clips" / "a.mp4")
    assert len(generated) == len(reference) == 19
    # the same frames, through a lossless (crf 0) H.264 round trip of RGB noise: ±1
    assert np.abs(reference.astype(int) - face[:19]).max() <= 1
    speech, rate = read_wav(out / "audio" / "00000.wav")
    own, _ = read_wav(shard / "audio" / "a.wav")
    assert rate == RATE and len(speech) == 19 * 640
    np.testing.assert_array_equal(speech, own[: 19 * 640])
    assert generator.emotions == ["neutral"]  # the protocol's default where a clip has none
    assert json.loads((out / "score_inputs.json").read_text()) == {
        "reference": [str(out / "reference")],
        "audio": [str(out / "audio")],
    }


def test_sampled_boxes_are_interpolated_and_faceless_samples_kept_apart() -> None:
    boxes = interpolate_boxes({0: (0, 0, 10, 10), 4: (4, 8, 14, 18), 8: None}, 10)
    assert boxes[:5] == [
        (0, 0, 10, 10),
        (1, 2, 11, 12),
        (2, 4, 12, 14),
        (3, 6, 13, 16),
        (4, 8, 14, 18),
    ]
    assert boxes[5:] == [None] * 5
    every = {i: (i, i, i + 1, i + 1) for i in range(3)}
    assert interpolate_boxes(every, 3) == [every[0], every[1], every[2]]


def test_table3_shows_paper_rows_and_our_ground_truth_row(tmp_path: Path) -> None:
    from talking_heads.report.tables import build_table3

    metrics = tmp_path / "gt.json"
    metrics.write_text(json.dumps({"summary": {"fid_dlib": 0.0, "csim_dlib": 0.97}}))
    spec = {
        "method": "Ground truth",
        "metrics_json": str(metrics),
        "data": "demo",
        "protocol": "lipsync_pairs",
        "checkpoint": "real clips",
        "resolution": 96,
        "metric_names": {"fid": "fid_dlib", "csim": "csim_dlib"},
    }
    md, csv_path = build_table3([spec], tmp_path)
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = {row["method"]: row for row in csv.DictReader(handle)}
    assert rows["Wav2Lip"]["lse_d"] == "6.386" and rows["Wav2Lip"]["fid"] == "4.887"
    assert rows["LipGAN"]["lse_c"] == "3.199" and rows["LipGAN"]["year"] == "2019"
    assert rows["LipGAN"]["rating"] == ""  # the paper row has no survey columns
    ours = rows["Ground truth (ours, demo)"]
    assert ours["csim"] == "0.97" and ours["checkpoint"] == "real clips"
    assert "Rows whose source names a paper" in md.read_text(encoding="utf-8")


def test_lipsync_figure_draws_every_row_and_the_waveform(tmp_path: Path) -> None:
    from PIL import Image

    from talking_heads.report.lipsync_figure import lipsync_figure

    ramp = np.linspace(0, 40, 64, dtype=np.uint8)[None, :, None, None]
    frames = np.broadcast_to(ramp, (10, 64, 64, 3)).copy()
    write_video(tmp_path / "real.mp4", frames, 25.0, crf=0)
    write_video(tmp_path / "gen.mp4", frames + 200, 25.0, crf=0)
    write_wav(tmp_path / "speech.wav", np.sin(np.arange(6400) / 5).astype(np.float32) * 0.5)
    out = lipsync_figure(
        tmp_path / "real.mp4",
        tmp_path / "speech.wav",
        {"A": tmp_path / "gen.mp4", "B": tmp_path / "gen.mp4"},
        tmp_path / "fig.png",
        num_frames=4,
    )
    image = np.asarray(Image.open(out).convert("L"))
    width_one = np.asarray(
        Image.open(
            lipsync_figure(
                tmp_path / "real.mp4",
                tmp_path / "speech.wav",
                {"A": tmp_path / "gen.mp4"},
                tmp_path / "one.png",
            )
        )
    )
    assert image.shape[0] > width_one.shape[0]  # one more row of frames
    assert (image > 190).mean() > 0.2 and (image < 30).mean() > 0.02  # bright and dark cells
