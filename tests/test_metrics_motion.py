"""Head-motion metrics: diversity and Beat Align on Hopenet / dlib head poses."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
import torch

from metric_media import carphone_frames, to_tensor
from random_weights import random_hopenet
from talking_heads import weights
from talking_heads.metrics import build_metric
from talking_heads.metrics.motion import (
    FACE_MODEL_POINTS,
    BeatAlignDlib,
    HeadMotionDiversity,
    HeadMotionDiversityDlib,
    audio_beats,
    beat_align_score,
    dlib_head_pose,
    head_motion_diversity,
    hopenet_crop_box,
    motion_beats,
)
from talking_heads.nets.hopenet import Hopenet
from talking_heads.preprocess.audio import write_wav


def _bailando_ba(music_beats: np.ndarray, motion_beats: tuple[np.ndarray]) -> float:
    """Bailando utils/beat_align_score.py ``BA``, transliterated."""
    ba = 0
    for bb in music_beats:
        ba += np.exp(-np.min((motion_beats[0] - bb) ** 2) / 2 / 9)
    return ba / len(music_beats)


def _bailando_calc_db(keypoints: np.ndarray, joints: int) -> np.ndarray:
    """Bailando ``calc_db`` (for ``joints`` joints instead of its 24), transliterated."""
    from scipy.ndimage import gaussian_filter as G
    from scipy.signal import argrelextrema

    keypoints = np.array(keypoints).reshape(-1, joints, 3)
    kinetic_vel = np.mean(np.sqrt(np.sum((keypoints[1:] - keypoints[:-1]) ** 2, axis=2)), axis=1)
    kinetic_vel = G(kinetic_vel, 5)
    return argrelextrema(kinetic_vel, np.less)[0]


def test_coincident_beats_score_one() -> None:
    beats = np.array([3, 15, 40, 77])
    assert beat_align_score(beats, beats) == 1.0
    assert beat_align_score(beats, np.array([0, 3, 9, 15, 40, 60, 77, 90])) == 1.0


def test_hand_computed_example() -> None:
    music, motion = np.array([10, 20]), np.array([12, 30])
    # nearest motion beats: 12 (d = 2) and 12 or 30 (d = 8 vs 10 -> 8)
    expected = (math.exp(-4 / 18) + math.exp(-64 / 18)) / 2
    assert beat_align_score(music, motion) == pytest.approx(expected, rel=1e-15)
    assert beat_align_score(music, motion) == pytest.approx(
        _bailando_ba(music, (motion,)), rel=1e-15
    )
    assert math.isnan(beat_align_score(np.array([]), motion))
    assert math.isnan(beat_align_score(music, np.array([])))


def test_shifting_motion_beats_away_lowers_ba() -> None:
    music = np.arange(10, 200, 25)
    scores = [beat_align_score(music, music + shift) for shift in range(0, 13)]
    assert scores[0] == 1.0
    assert all(a > b for a, b in itertools.pairwise(scores))


@pytest.mark.parity("beat_align")
def test_motion_beats_match_bailando() -> None:
    t = np.arange(150)
    rng = np.random.default_rng(0)
    angles = np.stack([10 * np.sin(2 * np.pi * t / 25), 4 * np.sin(2 * np.pi * t / 40), 0 * t], 1)
    angles = angles + rng.normal(0, 0.3, angles.shape)
    ours = motion_beats(angles)
    np.testing.assert_array_equal(ours, _bailando_calc_db(angles, joints=1))
    # a yaw nod of period 25 frames pauses every 12.5 frames
    clean = motion_beats(np.stack([10 * np.sin(2 * np.pi * t / 25), 0 * t, 0 * t], 1))
    assert np.all(np.abs(np.diff(clean)[:-1] - 12.5) <= 0.5)


def test_audio_beats_follow_a_click_track() -> None:
    import librosa

    sr, fps = 16000, 25.0
    clicks = librosa.clicks(times=np.arange(0.5, 8.0, 0.5), sr=sr, length=8 * sr)
    beats = audio_beats(clicks, sr, fps)
    assert len(beats) >= 10
    # 120 bpm at 25 fps: one beat every 12.5 frames, on the clicks (every 0.5 s)
    assert np.all(np.abs(np.diff(beats) - 12.5) <= 0.5)
    assert np.all(np.abs(beats / fps * 2 - np.round(beats / fps * 2)) <= 0.1)


def test_head_motion_diversity_statistic() -> None:
    angles = np.array([[0.0, 1.0, 2.0], [2.0, 1.0, 6.0], [np.nan, 0.0, 0.0], [4.0, 1.0, 4.0]])
    posed = angles[[0, 1, 3]]
    expected = np.mean([np.std(posed[:, j]) for j in range(3)])
    assert head_motion_diversity(angles) == pytest.approx(expected, rel=1e-15)
    assert math.isnan(head_motion_diversity(angles[:1]))
    assert head_motion_diversity(np.zeros((5, 3))) == 0.0


def test_hopenet_crop_box_matches_upstream() -> None:
    # dlib rect left/top/right/bottom (inclusive) -> our exclusive box
    left, top, right, bottom = 59, 38, 106, 86
    box = np.array([left, top, right + 1, bottom + 1, 1.0])
    w, h = right - left, bottom - top
    expected = (
        int(max(left - 2 * w / 4, 0)),
        int(max(top - 3 * h / 4, 0)),
        int(min(176, right + 2 * w / 4)),
        int(min(144, bottom + h / 4)),
    )
    assert hopenet_crop_box(box, 176, 144) == expected


@pytest.fixture(scope="module")
def hopenet() -> Hopenet:
    return random_hopenet()


@pytest.mark.parity("head_motion_diversity")
def test_hopenet_pipeline_matches_deep_head_pose(hopenet: Hopenet) -> None:
    from PIL import Image
    from torchvision import transforms

    frames = carphone_frames(4)
    metric = HeadMotionDiversity(network=hopenet)
    ours = metric.poses(to_tensor(frames).float())
    # deep-head-pose test_on_video_dlib.py, one face at a time
    transformations = transforms.Compose(
        [
            transforms.Resize(224),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ]
    )
    idx_tensor = torch.arange(66, dtype=torch.float32)
    for frame, pose in zip(frames, ours, strict=True):
        box = metric.detector(frame)[0][0]
        x_min, y_min, x_max, y_max = box[0], box[1], box[2] - 1, box[3] - 1
        bw, bh = abs(x_max - x_min), abs(y_max - y_min)
        x_min, x_max = max(x_min - 2 * bw / 4, 0), min(176, x_max + 2 * bw / 4)
        y_min, y_max = max(y_min - 3 * bh / 4, 0), min(144, y_max + bh / 4)
        img = Image.fromarray(frame[int(y_min) : int(y_max), int(x_min) : int(x_max)])
        img = transformations(img).unsqueeze(0)
        with torch.no_grad():
            yaw, pitch, roll = hopenet(img)
        expected = [
            (torch.softmax(a, 1)[0] * idx_tensor).sum().item() * 3 - 99 for a in (yaw, pitch, roll)
        ]
        np.testing.assert_allclose(pose, expected, rtol=0, atol=1e-3)
    value = metric.compute_video(to_tensor(frames).float(), None)["head_motion_diversity"]
    assert value == pytest.approx(head_motion_diversity(ours), rel=1e-12)
    assert value > 0


def test_solvepnp_pose_recovers_a_rotation() -> None:
    import cv2

    width, height = 256, 256
    model = np.array(list(FACE_MODEL_POINTS.values())) * (1.0, -1.0, -1.0)
    camera = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], np.float64)
    for yaw, pitch, roll in ((0.0, 0.0, 0.0), (20.0, 0.0, 0.0), (0.0, -10.0, 0.0), (5, 8, -12)):
        rotation = cv2.Rodrigues(np.zeros(3))[0]
        for axis, angle in ((0, pitch), (1, yaw), (2, roll)):
            vec = np.zeros(3)
            vec[axis] = np.radians(angle)
            rotation = rotation @ cv2.Rodrigues(vec)[0]
        image_points, _ = cv2.projectPoints(
            model, cv2.Rodrigues(rotation)[0], np.array([0.0, 0.0, 1500.0]), camera, np.zeros(4)
        )
        landmarks = np.zeros((68, 2))
        landmarks[list(FACE_MODEL_POINTS)] = image_points[:, 0]
        expected = np.array(cv2.RQDecomp3x3(rotation)[0])[[1, 0, 2]]
        np.testing.assert_allclose(
            dlib_head_pose(np.zeros((height, width, 3), np.uint8), landmarks), expected, atol=1e-3
        )
    assert expected[0] == pytest.approx(5.0, abs=2.0)  # yaw stays the first angle


@pytest.mark.parity("head_motion_diversity_dlib", "beat_align_dlib")
def test_dlib_variants_on_real_frames(tmp_path) -> None:
    import librosa

    frames = to_tensor(carphone_frames(30)).float()
    diversity = HeadMotionDiversityDlib()
    value = diversity.compute_video(frames, None)["head_motion_diversity_dlib"]
    assert math.isfinite(value) and value > 0
    still = frames[:1].expand(10, -1, -1, -1)
    assert diversity.compute_video(still, None)["head_motion_diversity_dlib"] == pytest.approx(
        0, abs=1e-9
    )
    sr = 16000
    clicks = librosa.clicks(times=np.arange(0.1, 1.2, 0.24), sr=sr, length=int(1.2 * sr))
    wav = write_wav(tmp_path / "clicks.wav", clicks, sr)
    ba = BeatAlignDlib()
    poses = ba.poses(frames)
    result = ba.compute_video(frames, None, audio_path=wav, fps=25.0)["beat_align_dlib"]
    music = audio_beats(clicks, sr, 25.0)
    expected = beat_align_score(music[music < len(frames) - 1], motion_beats(poses))
    assert result == pytest.approx(expected, rel=1e-12)
    assert 0.0 <= result <= 1.0
    with pytest.raises(ValueError, match="audio"):
        ba.compute_video(frames, None)


def test_missing_hopenet_weights(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path))
    for name in ("head_motion_diversity", "beat_align"):
        with pytest.raises(
            weights.MissingWeightsError, match=re.escape("hopenet_robust_alpha1.pkl")
        ) as err:
            build_metric(name)
        assert f"{name}_dlib" in str(err.value)
