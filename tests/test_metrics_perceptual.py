"""LPIPS, FID and IS: equal to lpips / pytorch-fid / torch-fidelity's formula on real frames,
with identical randomly initialised backbones (no pretrained file is reachable offline)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from metric_media import astronaut_crop, carphone_frames, to_tensor
from random_weights import calibrated_fid_state, random_fid_state
from talking_heads import weights
from talking_heads.metrics import build_metric
from talking_heads.metrics.perceptual import (
    FID,
    LPIPS,
    FIDDlib,
    FIDInception,
    InceptionScore,
    LPIPSNet,
    frechet_distance,
    inception_score,
    lpips_heads_path,
    resize_bilinear_tf1,
)


@pytest.fixture(scope="module")
def frames() -> tuple[torch.Tensor, torch.Tensor]:
    pristine = to_tensor(carphone_frames(4, start=10), torch.float32)
    distorted = to_tensor(carphone_frames(4, start=10, distorted=True), torch.float32)
    return distorted, pristine


@pytest.mark.parity("lpips")
def test_lpips_equals_the_lpips_package(frames) -> None:
    import lpips

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False).eval()
    # the package's random AlexNet, as torchvision's features.<i> keys, into ours
    alexnet = {
        f"features.{key.split('.')[2]}.{key.split('.')[3]}": value
        for key, value in reference.state_dict().items()
        if key.startswith("net.slice")
    }
    network = LPIPSNet()
    network.load_alexnet(alexnet)
    network.load_heads(torch.load(lpips_heads_path(), map_location="cpu", weights_only=True))
    generated, target = frames
    ours = LPIPS(network)(generated, target)
    with torch.no_grad():
        theirs = reference(generated, target, normalize=True).flatten()
    assert ours.shape == (4,) and (ours > 0).all()
    assert ours.double().numpy() == pytest.approx(theirs.double().numpy(), rel=1e-5)
    assert LPIPS(network)(target, target).abs().max() < 1e-7


@pytest.mark.parity("fid")
def test_fid_features_equal_pytorch_fid(frames, monkeypatch) -> None:
    import pytorch_fid.inception as reference

    state = random_fid_state()
    monkeypatch.setattr(reference, "load_state_dict_from_url", lambda *a, **k: state)
    theirs_net = reference.InceptionV3([reference.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    ours_net = FIDInception().eval()
    ours_net.inception.load_state_dict(state)
    generated, target = frames
    inputs = torch.cat([generated[:2], target[2:].flip(-1)])
    with torch.no_grad():
        theirs = theirs_net(inputs)[0].flatten(1).double().numpy()
        ours, logits = ours_net(inputs)
    # the features depend on the frames (else this comparison would prove little)
    assert (ours.std(dim=0).mean() > 0.05 * ours.abs().mean()).item()
    assert ours.double().numpy() == pytest.approx(theirs, rel=1e-5, abs=1e-6)
    # the logits are pool3 @ fc.weight.T, without the bias (torch-fidelity's logits_unbiased)
    expected = ours @ ours_net.inception.fc.weight.T
    assert torch.allclose(logits, expected)


class PooledColours(torch.nn.Module):
    """A cheap stand-in for the Inception: 4x4-pooled colours as 48 features and logits."""

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pool = torch.nn.functional.adaptive_avg_pool2d(frames, 4).flatten(1)
        return pool, 20 * (pool - pool.mean(1, keepdim=True))

    forward_tf1 = forward


def test_fid_metric_and_frame_counts(frames) -> None:
    network = PooledColours()
    metric = FID(network, batch_size=3)  # type: ignore[arg-type]
    generated, target = frames
    metric.reset()
    metric.update(generated, target)
    metric.update(generated.flip(-1), target)
    with pytest.warns(UserWarning, match="rank-deficient"):
        result = metric.compute()
    assert (result["num_generated"], result["num_reference"]) == (8, 8)
    assert result["full_rank_covariance"] is False

    def pool(x: torch.Tensor) -> np.ndarray:
        return network(x)[0].double().numpy()

    expected = frechet_distance(
        np.concatenate([pool(generated), pool(generated.flip(-1))]),
        np.concatenate([pool(target), pool(target)]),
    )
    assert result["fid"] == pytest.approx(expected, rel=1e-9)
    assert result["fid"] > 0


def test_frechet_distance_of_shifted_features_is_the_squared_shift() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 8))
    shift = np.arange(8) / 4
    # equal covariances: Tr(S + S - 2 (S S)^1/2) = 0, so FID = |shift|^2
    assert frechet_distance(features, features + shift) == pytest.approx((shift**2).sum(), rel=1e-6)
    assert frechet_distance(features, features) == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize("count", [40, 300])
def test_frechet_distance_equals_pytorch_fid(count: int) -> None:
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(count)
    mixing = rng.normal(size=(64, 64)) / 8
    first = rng.normal(size=(count, 64)) @ mixing
    second = rng.normal(size=(count, 64)) @ (mixing + 0.05) + 0.1
    with warnings.catch_warnings():  # pytorch-fid's sqrtm(disp=False) is deprecated in SciPy
        warnings.simplefilter("ignore")
        expected = calculate_frechet_distance(
            first.mean(0), np.cov(first, rowvar=False), second.mean(0), np.cov(second, rowvar=False)
        )
        ours = frechet_distance(first, second)  # 40 < 64: rank-deficient covariances too
    assert ours == pytest.approx(expected, rel=1e-9) and ours > 0


def test_inception_score_formula() -> None:
    # uniform predictions: p(y|x) = p(y), KL 0, IS 1
    mean, std = inception_score(np.zeros((40, 1008)))
    assert (mean, std) == (pytest.approx(1.0), pytest.approx(0.0))
    # confident, evenly spread over 8 classes: IS = 8 in every split (5 of each class per split)
    logits = np.full((80, 1008), -40.0)
    logits[np.arange(80), np.tile(np.arange(8), 10)] = 0
    mean, _ = inception_score(logits, shuffle=False)
    assert mean == pytest.approx(8.0, rel=1e-9)  # leakage 1000 e^-40 is far below
    # against the definition written out with numpy, one split
    rng = np.random.default_rng(1)
    random_logits = rng.normal(size=(50, 1008)) * 3
    p = np.exp(random_logits - random_logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    kl = (p * (np.log(p) - np.log(p.mean(0, keepdims=True)))).sum(1)
    assert inception_score(random_logits, splits=1)[0] == pytest.approx(np.exp(kl.mean()), rel=1e-9)


def test_inception_score_metric_outputs(frames) -> None:
    network = PooledColours()
    metric = InceptionScore(network)  # type: ignore[arg-type]
    metric.reset()
    metric.update(frames[0][:3], None)
    with pytest.warns(UserWarning, match="at least 10 frames"):
        assert np.isnan(metric.compute()["is"])  # fewer frames than the 10 splits
    for _ in range(4):
        metric.update(frames[0], None)
    result = metric.compute()
    assert set(result) == {"is", "is_std", "num_generated"} and result["num_generated"] == 19
    logits = np.concatenate(
        [network(frames[0][:3])[1].double().numpy()] + [network(frames[0])[1].double().numpy()] * 4
    )
    assert result["is"] == pytest.approx(inception_score(logits)[0], rel=1e-12)
    assert 1.0 < result["is"] < 4.0  # at most the number of distinct frames


def test_resize_bilinear_tf1_equals_torch_fidelity() -> None:
    from torch_fidelity.interpolate_compat_tensorflow import (
        interpolate_bilinear_2d_like_tensorflow1x,
    )

    images = torch.from_numpy(carphone_frames(2)).permute(0, 3, 1, 2).float()
    for size in ((299, 299), (64, 80), (144, 176)):
        theirs = interpolate_bilinear_2d_like_tensorflow1x(images, size=size, align_corners=False)
        assert torch.equal(resize_bilinear_tf1(images, *size), theirs)


@pytest.mark.parity("is")
def test_is_features_equal_torch_fidelity(frames, tmp_path, monkeypatch) -> None:
    """IS's logits are torch-fidelity's InceptionV3 ``logits_unbiased`` on identical weights
    (the FID Inception file, which torch-fidelity loads under the same names)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    state = calibrated_fid_state()
    torch.save(state, tmp_path / "inception.pth")
    theirs = FeatureExtractorInceptionV3(
        "inception-v3-compat",
        ["2048", "logits_unbiased"],
        feature_extractor_weights_path=str(tmp_path / "inception.pth"),
    ).eval()
    network = FIDInception().eval()
    network.inception.load_state_dict(state)
    generated = frames[0].float()
    uint8 = (generated * 255).round().to(torch.uint8)
    with torch.no_grad():
        pool, logits = network.forward_tf1(generated)
        their_pool, their_logits = theirs(uint8)
    torch.testing.assert_close(pool, their_pool, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits, their_logits, rtol=1e-5, atol=1e-6)
    assert their_logits.std(0).mean() > 1e-3  # the features depend on the frame
    metric = InceptionScore(network)
    metric.update(generated, None)
    np.testing.assert_allclose(
        np.concatenate(metric._logits), their_logits.double().numpy(), rtol=1e-5, atol=1e-6
    )


def test_missing_weights_name_the_files(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(weights.MissingWeightsError, match=r"alexnet-owt-7be5be79\.pth"):
        build_metric("lpips")
    with pytest.raises(weights.MissingWeightsError, match=r"pt_inception-2015-12-05-6726825d"):
        build_metric("fid")


def _face_recognition_descriptors(images: np.ndarray) -> np.ndarray:
    """face_recognition.face_encodings' steps with dlib directly: HOG faces with one
    upsampling, the 5-point shape of the first face, one-jitter descriptor."""
    import dlib
    import face_recognition_models as models

    detector = dlib.get_frontal_face_detector()
    shape5 = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    encoder = dlib.face_recognition_model_v1(models.face_recognition_model_location())
    rows = []
    for image in images:
        faces = detector(image, 1)
        if len(faces):
            shape = shape5(image, faces[0])
            rows.append(np.array(encoder.compute_face_descriptor(image, shape, 1)))
    return np.stack(rows)


@pytest.mark.parity("fid_dlib")
def test_fid_dlib_is_the_frechet_distance_of_dlib_face_descriptors() -> None:
    reference = carphone_frames(12)
    later = carphone_frames(12, start=40)
    faceless = np.full((2, *later.shape[1:]), 128, np.uint8)
    metric = FIDDlib()
    metric.update(to_tensor(np.concatenate([later, faceless])).float(), to_tensor(reference))
    result = metric.compute()
    expected = frechet_distance(
        _face_recognition_descriptors(later), _face_recognition_descriptors(reference)
    )
    assert result["fid_dlib"] == pytest.approx(expected, rel=1e-9)
    assert (result["num_generated"], result["skipped_frames"]) == (12, 2)
    assert result["num_reference"] == 12 and result["skipped_reference_frames"] == 0
    metric.reset()
    metric.update(to_tensor(reference), to_tensor(reference))
    assert abs(metric.compute()["fid_dlib"]) < 1e-6
    # another person is farther from the reference than the same person later in the clip
    rng = np.random.default_rng(0)
    other = np.clip(
        astronaut_crop()[None].astype(int) + rng.integers(-8, 9, (12, 144, 176, 3)), 0, 255
    ).astype(np.uint8)
    metric.reset()
    metric.update(to_tensor(other), to_tensor(reference))
    assert metric.compute()["fid_dlib"] > 2 * expected
