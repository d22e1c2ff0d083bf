"""Identity metrics: CSIM (ArcFace), AED (OpenFace) and their dlib variants on real frames."""

from __future__ import annotations

import re
import warnings

import cv2
import numpy as np
import pytest
import torch

from metric_media import astronaut_crop, carphone_frames, to_tensor
from random_weights import randomise
from talking_heads import weights
from talking_heads.metrics import build_metric
from talking_heads.metrics.identity import (
    AED,
    ARCFACE_SRC,
    CSIM,
    AEDDlib,
    CSIMDlib,
    IResNet,
    OpenFaceNet,
    five_points,
    legacy_cross_map_lrn,
    norm_crop,
    similarity_transform,
)
from talking_heads.preprocess.detect import make_detector
from talking_heads.preprocess.landmarks import LANDMARKERS


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return carphone_frames(6)


def test_alignment_matches_skimage_and_cv2(frames: np.ndarray) -> None:
    from skimage.transform import SimilarityTransform

    detector, landmarker = make_detector("dlib_hog"), LANDMARKERS.get("dlib68")()
    for frame in frames[:3]:
        box = detector(frame)[0][:1]
        points = five_points(landmarker.detect(frame, box)[0]).astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # estimate() is deprecated in recent releases
            tform = SimilarityTransform()
            tform.estimate(points, ARCFACE_SRC)
        expected = tform.params[:2]
        np.testing.assert_allclose(similarity_transform(points), expected, rtol=1e-6, atol=1e-6)
        direct = cv2.warpAffine(frame, expected, (112, 112), borderValue=0.0)
        ours = norm_crop(frame, points)
        assert ours.shape == (112, 112, 3)
        assert np.abs(ours.astype(int) - direct.astype(int)).max() <= 1
        assert (ours == direct).mean() > 0.999


def test_similarity_transform_recovers_a_known_map() -> None:
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -3.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = (ARCFACE_SRC.astype(np.float64) - shift) @ np.linalg.inv(rot).T
    np.testing.assert_allclose(similarity_transform(src)[:, :2], rot, atol=1e-9)


def test_five_points_from_68() -> None:
    lm = np.arange(136, dtype=np.float64).reshape(68, 2)
    expected = [(lm[36] + lm[39]) / 2, (lm[42] + lm[45]) / 2, lm[30], lm[48], lm[54]]
    np.testing.assert_array_equal(five_points(lm), np.stack(expected))


def _arcface_torch_keys(layers: tuple[int, ...]) -> list[str]:
    """Parameter names of arcface_torch backbones/iresnet.py's IResNet(IBasicBlock, layers)."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = ["conv1.weight", *(f"bn1.{s}" for s in bn), "prelu.weight"]
    for stage, blocks in enumerate(layers, start=1):
        for block in range(blocks):
            p = f"layer{stage}.{block}"
            keys += [*(f"{p}.bn1.{s}" for s in bn), f"{p}.conv1.weight"]
            keys += [*(f"{p}.bn2.{s}" for s in bn), f"{p}.prelu.weight", f"{p}.conv2.weight"]
            keys += [f"{p}.bn3.{s}" for s in bn]
            if block == 0:
                keys += [f"{p}.downsample.0.weight", *(f"{p}.downsample.1.{s}" for s in bn)]
    keys += [*(f"bn2.{s}" for s in bn), "fc.weight", "fc.bias", *(f"features.{s}" for s in bn)]
    return keys


@pytest.mark.parametrize("depth,layers", [("r50", (3, 4, 14, 3)), ("r100", (3, 13, 30, 3))])
def test_iresnet_key_layout(depth: str, layers: tuple[int, ...]) -> None:
    state = IResNet(depth).state_dict()
    assert sorted(state) == sorted(_arcface_torch_keys(layers))
    assert state["fc.weight"].shape == (512, 512 * 7 * 7)
    assert state["layer1.0.downsample.0.weight"].shape == (64, 64, 1, 1)
    assert state["layer4.0.conv2.weight"].shape == (512, 512, 3, 3)


@pytest.fixture(scope="module")
def csim() -> CSIM:
    torch.manual_seed(0)
    return CSIM(network=randomise(IResNet("r50")))


@pytest.mark.parity("csim")
def test_csim_random_weights_on_real_frames(csim: CSIM, frames: np.ndarray) -> None:
    gen = to_tensor(frames).float()
    values = csim(gen, None, source=gen[:1])
    assert values.shape == (len(frames),)
    assert values[0].item() == pytest.approx(1.0, abs=1e-6)  # a frame against itself
    assert torch.isfinite(values).all() and (values[1:] < 1 - 1e-6).all()
    # the embedding is insightface's get_feat on the aligned crop, computed directly
    crops, found = csim.crops(gen[:2])
    assert found.all()
    blob = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5)
    with torch.no_grad():
        direct = csim.network(blob).double()
    ours = csim.embed(gen[:2])
    # equal up to float32 rounding of the two normalisation formulas
    torch.testing.assert_close(ours, direct, rtol=0, atol=1e-5 * direct.abs().max().item())
    cosine = (direct[0] @ direct[1]) / (direct[0].norm() * direct[1].norm())
    assert values[1].item() == pytest.approx(cosine.item(), abs=1e-6)


def test_csim_per_frame_source_and_missing_face(csim: CSIM, frames: np.ndarray) -> None:
    gen = to_tensor(frames[:3]).float()
    torch.testing.assert_close(csim(gen, None, source=gen), torch.ones(3, dtype=torch.float64))
    blank = torch.full_like(gen[:1], 0.5)
    assert torch.isnan(csim(torch.cat([gen[:1], blank]), None, source=gen[:1]))[1]
    assert torch.isnan(csim(gen, None, source=blank)).all()
    with pytest.raises(ValueError, match="source"):
        csim(gen, None)


def _openface_keys() -> list[str]:
    """Parameter names of OpenFacePytorch loadOpenFace.py's netOpenFace."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    conv = ("weight", "bias")
    keys = [f"layer{i}.{s}" for i in (1, 6, 9, 25) for s in conv]
    keys += [f"layer{i}.{s}" for i in (2, 7, 10) for s in bn]
    # (layer, number of nxn branches, pool branch has a 1x1 conv, reduce branch exists)
    for layer, nxn, pool_conv, reduce in (
        (14, 2, True, True),
        (15, 2, True, True),
        (16, 2, False, False),
        (17, 2, True, True),
        (18, 2, False, False),
        (19, 1, True, True),
        (21, 1, True, True),
    ):
        p = f"layer{layer}.seq_list"
        for b in range(nxn):
            keys += [f"{p}.{b}.{m}.{s}" for m in ("1_conv", "4_conv") for s in conv]
            keys += [f"{p}.{b}.{m}.{s}" for m in ("2_bn", "5_bn") for s in bn]
        if pool_conv:
            keys += [f"{p}.{nxn}.2_conv.{s}" for s in conv]
            keys += [f"{p}.{nxn}.3_bn.{s}" for s in bn]
        if reduce:
            keys += [f"{p}.{nxn + 1}.1_conv.{s}" for s in conv]
            keys += [f"{p}.{nxn + 1}.2_bn.{s}" for s in bn]
    return keys


def test_openface_key_layout() -> None:
    state = OpenFaceNet().state_dict()
    assert sorted(state) == sorted(_openface_keys())
    assert state["layer25.weight"].shape == (128, 736)
    assert state["layer19.seq_list.0.4_conv.weight"].shape == (384, 96, 3, 3)


def _legacy_lrn_loop(x: torch.Tensor, size: int, alpha: float, beta: float, k: float):
    """OpenFacePytorch SpatialCrossMapLRN_temp.updateOutput, transliterated."""
    channels = x.shape[1]
    square = x.pow(2)
    scale = torch.zeros_like(x)
    pre_pad = int((size - 1) / 2 + 1)
    for c in range(channels if pre_pad > channels else pre_pad):
        scale[:, 0] += square[:, c]
    for c in range(1, channels):
        scale[:, c] = scale[:, c - 1]
        if c < channels - pre_pad + 1:
            scale[:, c] += square[:, c + pre_pad - 1]
        if c > pre_pad:
            scale[:, c] -= square[:, c - pre_pad]
    return scale.mul(alpha / size).add(k).pow(-beta).mul(x)


def test_legacy_lrn_matches_openface_port() -> None:
    x = torch.randn(2, 12, 5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected = _legacy_lrn_loop(x, 5, 1e-4, 0.75, 1.0)
    torch.testing.assert_close(legacy_cross_map_lrn(x), expected, rtol=1e-12, atol=1e-12)
    # the port differs from a true LRN (it never drops channel 0 from its running window)
    true_lrn = torch.nn.functional.local_response_norm(x, 5, 1e-4, 0.75, 1.0)
    assert not torch.allclose(expected, true_lrn, rtol=0, atol=1e-12)


@pytest.mark.parity("aed")
def test_aed_random_weights(frames: np.ndarray) -> None:
    from skimage.transform import resize

    torch.manual_seed(0)
    aed = AED(network=randomise(OpenFaceNet(), seed=1))
    gen, ref = to_tensor(frames[:3]).float(), to_tensor(frames[3:6]).float()
    x = aed.preprocess(gen[:1])
    direct = resize(frames[0][..., ::-1], (96, 96)).transpose(2, 0, 1).astype(np.float32)
    np.testing.assert_array_equal(x[0].numpy(), direct)
    emb = aed.embed(gen)
    assert emb.shape == (3, 128)
    # unit norm up to upstream's 1e-6 inside the square root
    ones = torch.ones(3, dtype=torch.float64)
    torch.testing.assert_close(emb.norm(dim=1), ones, rtol=0, atol=1e-5)
    torch.testing.assert_close(aed(gen, gen), torch.zeros(3, dtype=torch.float64))
    values = aed(gen, ref)
    torch.testing.assert_close(values, (aed.embed(ref) - emb).square().sum(1))
    assert (values > 0).all()


@pytest.mark.parity("csim_dlib", "aed_dlib")
def test_dlib_variants_separate_identities(frames: np.ndarray) -> None:
    own = to_tensor(frames[:1]).float()
    other = to_tensor(astronaut_crop()[None]).float()
    gen = to_tensor(carphone_frames(3, start=40)).float()
    csim = CSIMDlib()
    same, different = csim(gen, None, source=own), csim(gen, None, source=other)
    assert torch.isfinite(same).all() and torch.isfinite(different).all()
    assert (same > different).all()
    aed = AEDDlib()
    near, far = aed(gen, own.expand_as(gen)), aed(gen, other.expand_as(gen))
    assert (near < far).all() and (near > 0).all()
    assert torch.isnan(aed(gen[:1], torch.full_like(gen[:1], 0.5))).all()


def test_missing_and_unverified_weights(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path))
    monkeypatch.delenv(weights.ALLOW_UNVERIFIED_ENV, raising=False)
    with pytest.raises(
        weights.MissingWeightsError, match=re.escape("ms1mv3_arcface_r100_fp16/backbone.pth")
    ):
        build_metric("csim")
    with pytest.raises(weights.MissingWeightsError, match=re.escape("1drv.ms")):
        CSIM(model="arcface_r50")
    with pytest.raises(KeyError, match="unknown ArcFace model"):
        CSIM(model="arcface_r7")
    with pytest.raises(weights.MissingWeightsError, match=re.escape("openface.pth")):
        build_metric("aed")
    torch.save(OpenFaceNet().state_dict(), tmp_path / "openface.pth")
    with pytest.raises(weights.ChecksumMismatchError, match="no published sha256"):
        build_metric("aed")
    monkeypatch.setenv(weights.ALLOW_UNVERIFIED_ENV, "1")
    with pytest.warns(UserWarning, match="UNVERIFIED WEIGHTS"):
        metric = build_metric("aed")
    assert isinstance(metric, AED)
