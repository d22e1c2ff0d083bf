"""Perceptual metrics: LPIPS (per frame), FID, IS and offline FID-dlib (per frame set).

- ``lpips``: ``lpips`` 0.1.4 ``LPIPS(net='alex', version='0.1')`` (richzhang/
  PerceptualSimilarity): frames mapped from [0, 1] to [-1, 1], the v0.1 scaling layer
  (shift [-.030, -.088, -.188], scale [.458, .448, .450]), AlexNet's five ReLU outputs, each
  unit-normalised over channels (eps 1e-10), squared differences weighted by the 1x1 linear
  heads (no bias), spatially averaged and summed. Backbone: torchvision's ImageNet AlexNet
  ``alexnet-owt-7be5be79.pth`` from the weights directory (what ``lpips`` downloads through
  ``tv.alexnet(pretrained=True)``); heads: the v0.1 ``alex.pth`` that torchmetrics ships
  (byte-identical to the one inside the ``lpips`` wheel; sha256 checked).
- ``fid``: pytorch-fid 0.3.0: its FID Inception (torchvision's Inception v3 with pytorch-fid's
  ``FIDInceptionA/C/E_1/E_2`` blocks, 1008 classes) loading ``pt_inception-2015-12-05-
  6726825d.pth`` from the weights directory, inputs resized to 299x299 (bilinear,
  ``align_corners=False``) and mapped to [-1, 1], 2048-d pool3 features, and
  ``pytorch_fid.fid_score.calculate_frechet_distance`` (its steps, see
  :func:`frechet_distance`) on their means and ``np.cov`` covariances. Generated frames
  against reference frames; the frame counts are reported (fewer than 2,048 frames give
  rank-deficient covariances: the value is then only indicative, and is flagged).
- ``is``: the Inception Score as torch-fidelity 0.4.0 computes it (``isc_features_to_metric``:
  ``logits_unbiased`` = pool3 · fcᵀ without bias over the 1008 classes, rows shuffled with
  ``RandomState(2020)``, 10 splits, exp of the mean KL per split; mean and std) on its
  feature extractor's input path: the same Inception weights, frames quantised to uint8,
  TensorFlow 1's bilinear resize to 299 and ``(x - 128) / 128``
  (:meth:`FIDInception.forward_tf1`; ``fid`` keeps pytorch-fid's float resize, so the two
  metrics run the network separately).
- ``fid_dlib``: the offline variant of ``fid`` (see :class:`FIDDlib`).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from talking_heads.metrics.base import METRICS, Metric, SetMetric
from talking_heads.nets.inception import FIDInception, load_fid_inception, resize_bilinear_tf1
from talking_heads.nets.lpips import LPIPSNet, load_lpips, lpips_heads_path

__all__ = [
    "FID",
    "LPIPS",
    "FIDDlib",
    "FIDInception",
    "InceptionScore",
    "LPIPSNet",
    "frechet_distance",
    "inception_score",
    "load_fid_inception",
    "lpips_heads_path",
    "resize_bilinear_tf1",
]


@METRICS.register("lpips")
class LPIPS(Metric):
    """LPIPS (AlexNet, v0.1) per frame, as the ``lpips`` package computes it."""

    name: ClassVar[str] = "lpips"
    higher_is_better: ClassVar[bool] = False
    reference: ClassVar[str] = (
        "lpips 0.1.4 LPIPS(net='alex', version='0.1') on frames mapped to [-1, 1] "
        "(normalize=True): scaling layer, 5 AlexNet ReLU layers unit-normalised, squared "
        "difference, linear heads, spatial mean, sum; torchvision alexnet-owt-7be5be79.pth"
    )

    def __init__(self, network: LPIPSNet | None = None) -> None:
        if network is None:
            network = load_lpips()
        self.network = network.eval().requires_grad_(False)

    def to(self, device: torch.device | str) -> LPIPS:
        self.network.to(device)
        return self

    def __call__(self, generated: Tensor, reference: Tensor | None, **inputs: Any) -> Tensor:
        """Per-frame LPIPS (computed in float32, as the reference runs)."""
        self.check_pair(generated, reference)  # type: ignore[arg-type]
        out = self.network(generated.float(), reference.float())  # type: ignore[union-attr]
        return out.to(generated.dtype)


class _InceptionFeatures(SetMetric):
    """Accumulates FID-Inception pool3 features and logits over batches."""

    #: ``pytorch-fid`` (:meth:`FIDInception.forward`) or ``torch-fidelity``
    #: (:meth:`FIDInception.forward_tf1`)
    input_path: ClassVar[str] = "pytorch-fid"

    def __init__(self, network: FIDInception | None = None, batch_size: int = 50) -> None:
        self.network = (network or load_fid_inception()).eval().requires_grad_(False)
        self.batch_size = int(batch_size)
        self.device = torch.device("cpu")
        self.reset()

    def to(self, device: torch.device | str) -> _InceptionFeatures:
        self.device = torch.device(device)
        self.network.to(self.device)
        return self

    def reset(self) -> None:
        self._pool: dict[str, list[np.ndarray]] = {"generated": [], "reference": []}
        self._logits: list[np.ndarray] = []

    def _features(self, frames: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Pool3 features and logits of ``frames`` on this metric's input path."""
        forward = self.network.forward_tf1 if self.input_path == "torch-fidelity" else self.network
        pools, logits = [], []
        for start in range(0, len(frames), self.batch_size):
            pool, logit = forward(frames[start : start + self.batch_size].float())
            pools.append(pool.double().cpu().numpy())
            logits.append(logit.double().cpu().numpy())
        return np.concatenate(pools), np.concatenate(logits)


def frechet_distance(first: np.ndarray, second: np.ndarray, eps: float = 1e-6) -> float:
    """pytorch-fid's ``calculate_frechet_distance`` of two feature sets ``(N, D)``.

    The same steps as pytorch-fid 0.3.0 (means, ``np.cov``, ``scipy.linalg.sqrtm`` of the
    covariance product, ``eps`` on the diagonals when that is not finite, an error when the
    diagonal's imaginary part exceeds 1e-3, else its real part), written out because
    pytorch-fid passes ``sqrtm(..., disp=False)``, deprecated in SciPy 1.16 and removed in
    1.18; ``sqrtm`` without it returns the same matrix.
    """
    from scipy import linalg

    mu1, mu2 = first.mean(axis=0), second.mean(axis=0)
    sigma1, sigma2 = np.cov(first, rowvar=False), np.cov(second, rowvar=False)
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        warnings.warn(
            f"FID: singular covariance product; adding {eps} to the diagonals", stacklevel=2
        )
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"FID: imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


@METRICS.register("fid")
class FID(_InceptionFeatures):
    """Fréchet Inception Distance of generated vs reference frames (pytorch-fid)."""

    name: ClassVar[str] = "fid"
    higher_is_better: ClassVar[bool] = False
    reference: ClassVar[str] = (
        "pytorch-fid 0.3.0: FID Inception pt_inception-2015-12-05-6726825d.pth, 299x299 "
        "bilinear resize, [-1, 1], 2048-d pool3, np.cov, calculate_frechet_distance "
        "(scipy sqrtm, eps 1e-6 fallback); all generated vs all reference frames"
    )

    def update(self, generated: Tensor, reference: Tensor | None, **inputs: Any) -> None:
        if reference is None:
            raise ValueError("FID compares generated frames with reference frames")
        self._pool["generated"].append(self._features(generated)[0])
        self._pool["reference"].append(self._features(reference)[0])

    def compute(self) -> dict[str, float]:
        generated = np.concatenate(self._pool["generated"]) if self._pool["generated"] else None
        reference = np.concatenate(self._pool["reference"]) if self._pool["reference"] else None
        if generated is None or reference is None or min(len(generated), len(reference)) < 2:
            return {"fid": float("nan"), "num_generated": 0, "num_reference": 0}
        dims = generated.shape[1]
        full_rank = min(len(generated), len(reference)) > dims
        if not full_rank:
            warnings.warn(
                f"FID on {len(generated)} generated / {len(reference)} reference frames: fewer "
                f"than {dims + 1}, the covariances are rank-deficient (value only indicative)",
                stacklevel=2,
            )
        return {
            "fid": frechet_distance(generated, reference),
            "num_generated": len(generated),
            "num_reference": len(reference),
            "full_rank_covariance": full_rank,
        }


def inception_score(
    logits: np.ndarray, splits: int = 10, shuffle: bool = True, seed: int = 2020
) -> tuple[float, float]:
    """torch-fidelity's ``isc_features_to_metric``: mean and std of exp(E KL(p(y|x) || p(y)))."""
    features = torch.as_tensor(logits)
    count = features.shape[0]
    if shuffle:
        features = features[np.random.RandomState(seed).permutation(count), :]
    features = features.double()
    p, log_p = features.softmax(dim=1), features.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        chunk = slice(i * count // splits, (i + 1) * count // splits)
        q = p[chunk].mean(dim=0, keepdim=True)
        kl = p[chunk] * (log_p[chunk] - q.log())
        scores.append(kl.sum(dim=1).mean().exp().item())
    return float(np.mean(scores)), float(np.std(scores))


@METRICS.register("is")
class InceptionScore(_InceptionFeatures):
    """Inception Score of the generated frames (torch-fidelity's definition)."""

    name: ClassVar[str] = "is"
    higher_is_better: ClassVar[bool] = True
    needs_reference: ClassVar[bool] = False
    outputs: ClassVar[tuple[str, ...]] = ("is", "is_std")
    reference: ClassVar[str] = (
        "torch-fidelity 0.4.0 isc_features_to_metric: logits_unbiased (pool3 @ fc.T, 1008 "
        "classes), RandomState(2020) shuffle, 10 splits, mean/std of exp(mean KL); features "
        "from torch-fidelity's InceptionV3 input path (uint8, TF1 bilinear resize to 299, "
        "(x - 128) / 128) on the FID Inception weights"
    )
    input_path: ClassVar[str] = "torch-fidelity"

    def update(self, generated: Tensor, reference: Tensor | None, **inputs: Any) -> None:
        self._logits.append(self._features(generated)[1])

    def compute(self) -> dict[str, float]:
        if not self._logits:
            return {"is": float("nan"), "is_std": float("nan"), "num_generated": 0}
        logits = np.concatenate(self._logits)
        if len(logits) < 10:  # torch-fidelity's 10 splits would hold empty ones
            warnings.warn(f"IS needs at least 10 frames, got {len(logits)}", stacklevel=2)
            return {"is": float("nan"), "is_std": float("nan"), "num_generated": len(logits)}
        mean, std = inception_score(logits)
        return {"is": mean, "is_std": std, "num_generated": len(logits)}


@METRICS.register("fid_dlib")
class FIDDlib(SetMetric):
    """Offline distribution distance: FID's Fréchet distance between dlib's 128-D face
    descriptors (face-recognition-models' ``dlib_face_recognition_resnet_model_v1.dat``) of
    the generated and the reference frames.

    Not the survey's FID: a face-identity embedding instead of ImageNet Inception features,
    so it sees identity and face shape, not texture or background, and its values are on
    another scale (descriptors of one person lie within about 0.6 of each other). It ranks
    methods within one report when the Inception weights are absent. Frames where dlib finds
    no face are left out and counted (``skipped_frames``: generated frames without a face).
    """

    name: ClassVar[str] = "fid_dlib"
    higher_is_better: ClassVar[bool] = False
    reference: ClassVar[str] = (
        "NOT the survey FID: pytorch-fid's calculate_frechet_distance on dlib "
        "face_recognition_model_v1 128-D descriptors (face_recognition.face_encodings: HOG "
        "detector upsample 1, 5-point shape predictor, num_jitters 1) of all generated vs all "
        "reference frames with a face"
    )

    def __init__(self) -> None:
        from talking_heads.metrics.identity import DlibDescriptor

        self.descriptor = DlibDescriptor()
        self.reset()

    def to(self, device: torch.device | str) -> FIDDlib:
        """dlib runs on the CPU whatever the device."""
        return self

    def reset(self) -> None:
        self._rows: dict[str, list[np.ndarray]] = {"generated": [], "reference": []}

    def update(self, generated: Tensor, reference: Tensor | None, **inputs: Any) -> None:
        from talking_heads.metrics.faces import to_uint8

        if reference is None:
            raise ValueError("fid_dlib compares generated frames with reference frames")
        for side, frames in (("generated", generated), ("reference", reference)):
            self._rows[side].append(self.descriptor(to_uint8(frames)).numpy())

    def compute(self) -> dict[str, float]:
        sides = {
            side: np.concatenate(rows) if rows else np.zeros((0, 128))
            for side, rows in self._rows.items()
        }
        found = {side: rows[~np.isnan(rows).any(axis=1)] for side, rows in sides.items()}
        counts = {
            "num_generated": len(found["generated"]),
            "num_reference": len(found["reference"]),
            "skipped_frames": len(sides["generated"]) - len(found["generated"]),
            "skipped_reference_frames": len(sides["reference"]) - len(found["reference"]),
        }
        if min(len(rows) for rows in found.values()) < 2:
            return {"fid_dlib": float("nan"), **counts}
        return {
            "fid_dlib": frechet_distance(found["generated"], found["reference"]),
            **counts,
            "full_rank_covariance": min(len(rows) for rows in found.values()) > 128,
        }
