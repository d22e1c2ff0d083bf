"""The ``sfd`` detector and ``fan68`` landmarks against face_alignment 1.5.0.

Both sides run IDENTICAL randomly initialised weights: face_alignment's own ``s3fd`` and
``FAN`` modules are seeded, their state dicts saved under the upstream file names into a
temporary weights directory, and our backends load them from there (checksum verification is
skipped with the test opt-in). Random weights give arbitrary but deterministic outputs, so
raw network outputs, boxes and landmarks must agree.

face_alignment's heatmap decoding (``_get_preds_fromhm``, ``transform_np``) is numba-jitted;
compiling it takes about 10 s on two cores, so the tests run the same upstream source
uncompiled (the dispatchers' ``py_func``).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("face_alignment")
import skimage.data
from face_alignment import models as fa_models
from face_alignment import utils as fa_utils
from face_alignment.api import FaceAlignment, LandmarksType
from face_alignment.detection.sfd.net_s3fd import s3fd as UpstreamS3FD
from face_alignment.detection.sfd.sfd_detector import SFDDetector as UpstreamSFD

from talking_heads import weights
from talking_heads.nets.fan import (
    MIRROR,
    center_scale,
    crop_face,
    heatmap_points,
    to_frame,
)
from talking_heads.nets.s3fd import preprocess
from talking_heads.preprocess.detect import DETECTORS, SFDDetector
from talking_heads.preprocess.landmarks import LANDMARKERS, FAN68Landmarks

S3FD_FILE = "s3fd-619a316812.pth"
FAN_FILE = "2DFAN4-11f355bf06.pth.tar"
# Two face boxes in the astronaut image: around the face, and one reaching past the border.
FACE_BOXES = np.array([[181.3, 27.6, 301.9, 196.2], [-41.7, 352.2, 97.4, 533.8]])


@pytest.fixture(autouse=True)
def _uncompiled_upstream_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstream's jitted heatmap decoding as plain Python (the same source, no JIT)."""
    for name in ("_get_preds_fromhm", "transform_np"):
        monkeypatch.setattr(fa_utils, name, getattr(fa_utils, name).py_func)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """skimage's 512x512 RGB astronaut."""
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def frames(image: np.ndarray) -> np.ndarray:
    """Two small non-square frames (96x128) cut from the astronaut."""
    return np.ascontiguousarray(np.stack([image[0:288:3, 40:424:3], image[96:384:3, 128:512:3]]))


@pytest.fixture(scope="module")
def upstream_s3fd() -> torch.nn.Module:
    """face_alignment's S3FD module, seeded random weights."""
    torch.manual_seed(0)
    return UpstreamS3FD().eval()


@pytest.fixture(scope="module")
def upstream_fan() -> torch.nn.Module:
    """face_alignment's 2D-FAN-4 module, seeded random weights and BatchNorm statistics."""
    torch.manual_seed(1)
    net = fa_models.FAN(4)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.1, 0.1)
    return net.eval()


@pytest.fixture(scope="module")
def weights_dir(
    tmp_path_factory: pytest.TempPathFactory,
    upstream_s3fd: torch.nn.Module,
    upstream_fan: torch.nn.Module,
) -> Path:
    """A weights directory holding the upstream modules' state dicts under upstream names."""
    folder = tmp_path_factory.mktemp("weights")
    torch.save(upstream_s3fd.state_dict(), folder / S3FD_FILE)
    torch.save(upstream_fan.state_dict(), folder / FAN_FILE)
    return folder


@pytest.fixture(scope="module")
def unverified_env(weights_dir: Path) -> Iterator[Path]:
    """``$TALKING_HEADS_WEIGHTS`` → the random weights, checksums skipped (test opt-in)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(weights.WEIGHTS_ENV, str(weights_dir))
        patch.setenv(weights.ALLOW_UNVERIFIED_ENV, "1")
        yield weights_dir


@pytest.fixture(scope="module")
def sfd(unverified_env: Path) -> SFDDetector:
    """Our ``sfd`` detector on the CPU with the upstream module's weights."""
    with pytest.warns(UserWarning, match="UNVERIFIED WEIGHTS"):
        return SFDDetector(device="cpu")


@pytest.fixture(scope="module")
def fan68(unverified_env: Path) -> FAN68Landmarks:
    """Our ``fan68`` landmarker on the CPU with the upstream module's weights."""
    with pytest.warns(UserWarning, match="UNVERIFIED WEIGHTS"):
        return FAN68Landmarks(device="cpu")


def test_backends_are_registered_with_recipe_options() -> None:
    assert DETECTORS.get("sfd") is SFDDetector
    assert LANDMARKERS.get("fan68") is FAN68Landmarks
    sfd_options = inspect.signature(SFDDetector.__init__).parameters
    assert sfd_options["threshold"].default == 0.5
    assert sfd_options["device"].default == "auto"
    assert "upsample" not in sfd_options
    assert inspect.signature(FAN68Landmarks.__init__).parameters["device"].default == "auto"
    assert weights.WEIGHTS.get("s3fd").sha256.startswith("619a316812")
    assert weights.WEIGHTS.get("fan68").sha256.startswith("11f355bf06")


@pytest.mark.parametrize(
    ("backend", "filename"), [(SFDDetector, S3FD_FILE), (FAN68Landmarks, FAN_FILE)]
)
def test_missing_weights_fail_at_construction(
    backend: type, filename: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(weights.MissingWeightsError) as error:
        backend(device="cpu")
    message = str(error.value)
    assert filename in message
    assert f"https://www.adrianbulat.com/downloads/python-fan/{filename}" in message
    assert str(tmp_path) in message


def test_weights_are_checksum_verified(weights_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(weights_dir))
    monkeypatch.delenv(weights.ALLOW_UNVERIFIED_ENV, raising=False)
    with pytest.raises(weights.ChecksumMismatchError, match=S3FD_FILE):
        SFDDetector(device="cpu")


def test_strict_loading_rejects_a_missing_key(
    upstream_s3fd: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = upstream_s3fd.state_dict()
    del state["fc7.weight"]
    torch.save(state, tmp_path / S3FD_FILE)
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, tmp_path / FAN_FILE)
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path))
    monkeypatch.setenv(weights.ALLOW_UNVERIFIED_ENV, "1")
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match=r"Missing key.*fc7\.weight"):
        SFDDetector(device="cpu")
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="Missing key"):
        FAN68Landmarks(device="cpu")


def test_s3fd_network_matches_upstream(
    sfd: SFDDetector, upstream_s3fd: torch.nn.Module, frames: np.ndarray
) -> None:
    batch = preprocess(frames[:1], "cpu")
    with torch.no_grad():
        ours = [t for pair in sfd._net(batch) for t in pair]
        theirs = upstream_s3fd(batch.clone())
    assert len(ours) == len(theirs) == 12
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_sfd_detections_match_upstream(
    sfd: SFDDetector, upstream_s3fd: torch.nn.Module, frames: np.ndarray
) -> None:
    upstream = UpstreamSFD.__new__(UpstreamSFD)
    upstream.device, upstream.verbose = "cpu", False
    upstream.filter_threshold = sfd.threshold
    upstream.face_detector = upstream_s3fd
    ours = sfd.detect(frames)
    batched = upstream.detect_from_batch(torch.from_numpy(frames).permute(0, 3, 1, 2))
    for frame, mine, theirs_batched in zip(frames, ours, batched, strict=True):
        theirs = np.array(upstream.detect_from_image(frame.copy())).reshape(-1, 5)
        assert mine.dtype == np.float32 and mine.shape[1] == 5
        assert len(mine) > 10  # random weights: plenty of arbitrary boxes above 0.5
        assert np.all(np.diff(mine[:, 4]) <= 0)
        np.testing.assert_allclose(mine, theirs, atol=1e-4, rtol=0)
        np.testing.assert_allclose(mine, np.array(theirs_batched), atol=1e-4, rtol=0)


def test_fan_network_matches_upstream(
    fan68: FAN68Landmarks, upstream_fan: torch.nn.Module, image: np.ndarray
) -> None:
    center, scale = center_scale(FACE_BOXES[0])
    crop = crop_face(image, center, scale).transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    batch = torch.from_numpy(crop)
    with torch.no_grad():
        ours, theirs = fan68._net(batch), upstream_fan(batch)
    assert len(ours) == len(theirs) == 4
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == (1, 68, 64, 64)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_fan68_landmarks_match_upstream(
    fan68: FAN68Landmarks, upstream_fan: torch.nn.Module, image: np.ndarray
) -> None:
    upstream = FaceAlignment.__new__(FaceAlignment)
    upstream.face_detector = UpstreamSFD.__new__(UpstreamSFD)  # only its reference_scale
    upstream.face_alignment_net = upstream_fan
    upstream.device, upstream.dtype = "cpu", torch.float32
    upstream.flip_input, upstream.landmarks_type = True, LandmarksType.TWO_D
    upstream.max_batch_size = len(FACE_BOXES)
    theirs = np.stack(upstream.get_landmarks_from_image(image, detected_faces=list(FACE_BOXES)))
    ours = fan68.detect(image, FACE_BOXES)
    assert ours.shape == (2, 68, 2) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() <= 1e-3
    assert fan68.detect(image, np.zeros((0, 5), np.float32)).shape == (0, 68, 2)


def test_heatmap_decoding_matches_get_preds_fromhm() -> None:
    rng = np.random.default_rng(0)
    heatmaps = rng.normal(size=(2, 68, 64, 64)).astype(np.float32)
    heatmaps[0, 0, 0, 5] = heatmaps[0, 1, 63, 63] = heatmaps[1, 2, 10, 0] = 50.0  # borders
    heatmaps[1, 3, 20, 19:22] = 50.0  # a plateau: the first maximum wins
    center, scale = np.array([211.7, 140.3]), 1.613
    theirs, theirs_frame, _ = fa_utils.get_preds_fromhm(heatmaps.copy(), center, scale)
    ours = heatmap_points(heatmaps)
    np.testing.assert_array_equal(ours, theirs)
    for b in range(2):
        frame = to_frame(ours[b], center, scale)
        np.testing.assert_allclose(frame, theirs_frame[b], atol=1e-3, rtol=0)
        subpixel = to_frame(ours[b], center, scale, integer=False)
        assert np.abs(subpixel - theirs_frame[b]).max() < 1
        np.testing.assert_array_equal(np.trunc(subpixel), theirs_frame[b])


@pytest.mark.parametrize(
    "box",
    [FACE_BOXES[0], FACE_BOXES[1], np.array([-300.0, -250.0, 900.0, 800.0])],
    ids=["inside", "border", "larger-than-frame"],
)
def test_face_crop_matches_upstream(image: np.ndarray, box: np.ndarray) -> None:
    center, scale = center_scale(box)
    np.testing.assert_array_equal(
        crop_face(image, center, scale), fa_utils.crop(image, center, scale)
    )


def test_mirror_order_matches_upstream() -> None:
    assert fa_utils.shuffle_lr(torch.arange(68)[:, None, None]).flatten().tolist() == MIRROR


@pytest.mark.gpu
def test_cuda_backends_match_the_cpu(
    sfd: SFDDetector, fan68: FAN68Landmarks, frames: np.ndarray, image: np.ndarray
) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    with pytest.warns(UserWarning, match="UNVERIFIED WEIGHTS"):
        cuda_sfd, cuda_fan = SFDDetector(device="cuda"), FAN68Landmarks(device="cuda")
    with torch.no_grad():
        tf32 = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = False
        try:
            on_cpu = sfd._net(preprocess(frames, "cpu"))
            on_gpu = cuda_sfd._net(preprocess(frames, "cuda"))
            fan_cpu = fan68._net(
                torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0))
            )
            fan_gpu = cuda_fan._net(
                torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0)).cuda()
            )
        finally:
            torch.backends.cudnn.allow_tf32 = tf32
    for (a, b), (c, d) in zip(on_cpu, on_gpu, strict=True):
        torch.testing.assert_close(c.cpu(), a, atol=1e-3, rtol=1e-3)
        torch.testing.assert_close(d.cpu(), b, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(fan_gpu[-1].cpu(), fan_cpu[-1], atol=1e-3, rtol=1e-3)
    boxes = cuda_sfd.detect(frames)
    assert len(boxes) == len(frames) and all(b.dtype == np.float32 for b in boxes)
    assert cuda_fan.detect(image, FACE_BOXES).shape == (2, 68, 2)
