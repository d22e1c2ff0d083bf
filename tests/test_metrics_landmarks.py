"""LMD, AKD and the offline AKD against direct computations and face_alignment on real frames.

AKD runs IDENTICAL randomly initialised S3FD and 2D-FAN-4 weights in our ports and in
face_alignment 1.5.0 (as ``tests/test_face_backends.py`` does): random weights give arbitrary
but deterministic detections and landmarks, so the per-frame values must agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from metric_media import carphone_frames, to_tensor
from random_weights import random_face_states
from talking_heads import weights
from talking_heads.metrics import build_metric
from talking_heads.metrics.faces import FaceFinder
from talking_heads.metrics.landmarks import keypoint_distance, mouth_distance

S3FD_FILE = "s3fd-619a316812.pth"
FAN_FILE = "2DFAN4-11f355bf06.pth.tar"


@pytest.fixture(scope="module")
def frames() -> tuple[np.ndarray, np.ndarray]:
    """Carphone frames upscaled 2x (dlib's HOG window is 80 px): frames 30-33 and 60-63."""
    import cv2

    clip = carphone_frames(4, start=30)
    big = np.stack([cv2.resize(f, (352, 288), interpolation=cv2.INTER_CUBIC) for f in clip])
    later = carphone_frames(4, start=60)
    later = np.stack([cv2.resize(f, (352, 288), interpolation=cv2.INTER_CUBIC) for f in later])
    return big, later


def _dlib_points(images: np.ndarray) -> list[np.ndarray | None]:
    """Direct dlib on RGB frames: HOG detector (upsample 1), best face, shape_predictor_68."""
    import dlib
    import face_recognition_models

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    out = []
    for image in images:
        rects, scores, _ = detector.run(image, 1, 0.0)
        if not rects:
            out.append(None)
            continue
        best = rects[int(np.argmax(scores))]
        out.append(np.array([(p.x, p.y) for p in predictor(image, best).parts()], np.float64))
    return out


def _atvgnet_mouths(images: np.ndarray) -> list[np.ndarray | None]:
    """ATVGnet generating_landmark_lips: cv2 gray, detector(gray, 1), centred mouth points."""
    import cv2
    import dlib
    import face_recognition_models

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    out = []
    for image in images:
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)  # as cv2.imread reads the frame file
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        mouth = None
        for rect in detector(gray, 1):
            shape = np.array([(p.x, p.y) for p in predictor(gray, rect).parts()])
            mouth = shape[48:68].copy()
            mouth = mouth - np.sum(mouth, axis=0) / 20.0
        out.append(mouth)
    return out


@pytest.mark.parity("lmd")
def test_lmd_equals_atvgnet_on_real_frames(frames) -> None:
    reference, generated = frames
    metric = build_metric("lmd")
    values = metric(to_tensor(generated), to_tensor(reference)).numpy()
    expected = []
    for r, f in zip(_atvgnet_mouths(reference), _atvgnet_mouths(generated), strict=True):
        # compare_landmarks: sum over points of the Euclidean distance
        expected.append(np.sum(np.sqrt(np.sum((r - f) ** 2, axis=1)), axis=0))
    assert values == pytest.approx(expected, rel=1e-12)
    assert (values > 0).all()
    assert metric(to_tensor(reference), to_tensor(reference)).tolist() == [0.0] * 4
    # dlib on the RGB frames places some mouth points differently: the gray input matters
    rgb_values = [
        mouth_distance(r, g)
        for r, g in zip(_dlib_points(reference), _dlib_points(generated), strict=True)
    ]
    assert not np.allclose(rgb_values, values)


@pytest.mark.parity("akd_dlib")
def test_akd_dlib_is_the_mean_absolute_coordinate_difference_at_256(frames) -> None:
    reference, generated = frames
    values = build_metric("akd_dlib")(to_tensor(generated), to_tensor(reference)).numpy()
    # pose-evaluation reads frames at 256x256; ours resizes by area averaging (downscale)
    small = [to_tensor(x, torch.float32).clamp(0, 1) for x in (reference, generated)]
    resized = [torch.nn.functional.interpolate(x, size=(256, 256), mode="area") for x in small]
    images = [(r.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy() for r in resized]
    ref_points, gen_points = _dlib_points(images[0]), _dlib_points(images[1])
    expected = [
        np.nan if r is None or g is None else np.mean(np.abs(r - g))
        for r, g in zip(ref_points, gen_points, strict=True)
    ]
    assert values == pytest.approx(expected, rel=1e-9, nan_ok=True)
    assert (values[np.isfinite(values)] > 0).sum() >= 2


def test_undetected_frames_are_nan_and_formulas_handle_none() -> None:
    blank = torch.zeros(2, 3, 256, 256, dtype=torch.float64)
    values = build_metric("lmd")(blank, blank)
    assert torch.isnan(values).all()
    assert np.isnan(keypoint_distance(None, np.zeros((68, 2))))
    assert np.isnan(mouth_distance(np.zeros((68, 2)), None))
    points = np.arange(136, dtype=np.float64).reshape(68, 2)
    assert keypoint_distance(points, points + np.array([3, -1])) == 2.0  # L1 per coordinate, not L2
    assert mouth_distance(points, points + 5) == 0.0  # each mouth centred on its centroid


def test_face_finder_detects_each_frame_once(frames, monkeypatch) -> None:
    finder = FaceFinder("dlib_hog", "dlib68")
    calls = []
    detect = finder.detector.detect
    monkeypatch.setattr(finder.detector, "detect", lambda x: calls.append(len(x)) or detect(x))
    reference, _ = frames
    first = finder(reference[:2])
    second = FaceFinder("dlib_hog", "dlib68")(reference[:2])  # another metric, same frames
    finder(reference[:3])
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert sum(calls) <= 3  # at most the first two frames once and the third once


def test_akd_without_its_weights_names_the_files(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(weights.MissingWeightsError, match=r"s3fd-619a316812\.pth"):
        build_metric("akd")


@pytest.fixture(scope="module")
def random_face_weights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Seeded random S3FD and 2D-FAN-4 (face_alignment 1.5 layouts) under the upstream names;
    ``$TALKING_HEADS_WEIGHTS`` points there, checksums skipped (test opt-in)."""
    folder = tmp_path_factory.mktemp("face_weights")
    states = random_face_states()
    torch.save(states["s3fd"], folder / S3FD_FILE)
    torch.save(states["fan68"], folder / FAN_FILE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(weights.WEIGHTS_ENV, str(folder))
        patch.setenv(weights.ALLOW_UNVERIFIED_ENV, "1")
        yield folder


def _pose_evaluation_landmarks(folder: Path, images: np.ndarray) -> list[np.ndarray | None]:
    """pose-evaluation extract_face_pose: FaceAlignment(_2D, flip_input=False), first face."""
    from face_alignment import models as fa_models
    from face_alignment import utils as fa_utils
    from face_alignment.api import FaceAlignment, LandmarksType
    from face_alignment.detection.sfd.sfd_detector import SFDDetector

    fan = fa_models.FAN(4)
    fan.load_state_dict(torch.load(folder / FAN_FILE, weights_only=True))
    fa = FaceAlignment.__new__(FaceAlignment)  # the constructor downloads; same attributes
    fa.face_detector = SFDDetector("cpu", path_to_detector=str(folder / S3FD_FILE))
    fa.face_alignment_net = fan.eval()
    fa.device, fa.dtype, fa.max_batch_size = "cpu", torch.float32, 1
    fa.flip_input, fa.landmarks_type = False, LandmarksType.TWO_D
    out = []
    with pytest.MonkeyPatch.context() as patch:
        # the numba-jitted heatmap decoding as plain Python (same source, no 10 s compile)
        for name in ("_get_preds_fromhm", "transform_np"):
            patch.setattr(fa_utils, name, getattr(fa_utils, name).py_func)
        for frame in images:
            # = get_landmarks(frame)[0]: faces are independent, and random weights find
            # hundreds of them, so only the first goes through FAN
            faces = fa.face_detector.detect_from_image(frame.copy())
            kp = fa.get_landmarks(frame, detected_faces=faces[:1]) if len(faces) else None
            out.append(None if kp is None else kp[0])
    return out


@pytest.mark.parity("akd")
def test_akd_equals_pose_evaluation_with_face_alignment(random_face_weights, frames) -> None:
    import cv2

    # one frame pair: with random weights each frame costs seconds on both sides
    reference, generated = (
        cv2.resize(x[0], (256, 256), interpolation=cv2.INTER_AREA)[None] for x in frames
    )
    with pytest.warns(UserWarning, match="UNVERIFIED WEIGHTS"):
        metric = build_metric("akd")
    values = metric(to_tensor(generated), to_tensor(reference)).numpy()
    gt = _pose_evaluation_landmarks(random_face_weights, reference)
    gen = _pose_evaluation_landmarks(random_face_weights, generated)
    assert all(kp is not None for kp in gt + gen)  # random weights: boxes everywhere
    # cmp_kp.py: np.mean(np.abs(gt - gen)) per frame with a generated detection
    expected = [np.mean(np.abs(g - f).astype(float)) for g, f in zip(gt, gen, strict=True)]
    assert values == pytest.approx(expected, rel=1e-6, abs=1e-4)
    assert (values > 0).all()
    assert metric(to_tensor(reference), to_tensor(reference)).tolist() == [0.0]
