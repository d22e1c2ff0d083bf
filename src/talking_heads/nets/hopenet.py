"""Hopenet (Ruiz et al., 2018): face-vid2vid's frozen head-pose teacher and the head poses of
the head-motion metrics (``head_motion_diversity``, ``beat_align``).

face-vid2vid's official training (``modules/model.py``) builds deep-head-pose's ``Hopenet``
(torchvision ResNet-50 bottlenecks, 66 bins of 3° for yaw, pitch and roll) and loads
``hopenet_robust_alpha1.pkl`` (300W-LP, alpha 1, "robust to image quality"), a plain state
dict. This module rebuilds that network with the same keys (``conv1``, ``bn1``, ``layer1-4``,
``fc_yaw``, ``fc_pitch``, ``fc_roll`` and the unused ``fc_finetune``).

deep-head-pose publishes no checksum of the file and none is registered here
(:data:`talking_heads.weights.WEIGHTS` ``"hopenet"`` has an empty sha256), so
:func:`load_hopenet` loads it only with the explicit opt-in
``TALKING_HEADS_ALLOW_UNVERIFIED_WEIGHTS=1`` and logs the file's sha256.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

log = logging.getLogger(__name__)

#: ImageNet normalisation applied to the 224² input (``transforms.Normalize`` upstream)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Hopenet(torchvision.models.ResNet):
    """ResNet-50 trunk with three 66-bin angle classifiers (deep-head-pose's keys)."""

    def __init__(self, num_bins: int = 66) -> None:
        super().__init__(torchvision.models.resnet.Bottleneck, [3, 4, 6, 3])
        del self.fc
        features = 512 * torchvision.models.resnet.Bottleneck.expansion
        self.fc_yaw = nn.Linear(features, num_bins)
        self.fc_pitch = nn.Linear(features, num_bins)
        self.fc_roll = nn.Linear(features, num_bins)
        self.fc_finetune = nn.Linear(features + 3, 3)  # vestigial upstream, kept for the keys

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Yaw, pitch and roll bin logits of ImageNet-normalised 224² faces."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = F.avg_pool2d(x, 7).flatten(1)
        return self.fc_yaw(x), self.fc_pitch(x), self.fc_roll(x)


def hopenet_input(frames: torch.Tensor) -> torch.Tensor:
    """Frames in [0, 1] resized to 224² and ImageNet-normalised, as upstream's
    ``transforms.Compose([Resize((224, 224)), Normalize(...)])`` on tensors.

    The resize is bilinear without antialiasing: what torchvision's tensor ``Resize`` did at
    the time of the official code (torchvision < 0.17; it antialiases by default since).
    """
    out = F.interpolate(
        frames, size=(224, 224), mode="bilinear", align_corners=False, antialias=False
    )
    mean = torch.tensor(IMAGENET_MEAN, dtype=out.dtype, device=out.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=out.dtype, device=out.device).view(1, 3, 1, 1)
    return (out - mean) / std


def load_hopenet(snapshot: str | Path | bool | None) -> Hopenet:
    """The frozen teacher in eval mode from ``snapshot`` (a path; ``True``/``None``: the
    registered ``hopenet_robust_alpha1.pkl`` in the weights directory).

    Raises :class:`~talking_heads.weights.MissingWeightsError` when the file is absent and
    :class:`~talking_heads.weights.ChecksumMismatchError` when it cannot be verified (no
    registered sha256) and unverified loading was not opted into.
    """
    from talking_heads import weights

    spec = weights.WEIGHTS.get("hopenet")
    path = (
        weights.weights_dir() / spec.filename
        if snapshot is True or snapshot is None
        else Path(snapshot)
    )
    if not path.is_file():
        raise weights.MissingWeightsError(
            f"Hopenet weights for the headpose loss not found at {path}. Download "
            f"{spec.filename} from {spec.url} into {weights.weights_dir()}/, or set "
            "model.train_params.loss_weights.headpose=0 to train without the headpose loss."
        )
    if spec.sha256:
        digest = weights.verify_sha256(path, spec.sha256)
    else:
        digest = weights.sha256_file(path)
        message = f"{path}: sha256 {digest}; no published checksum of {spec.filename} is registered"
        if not weights.unverified_allowed():
            raise weights.ChecksumMismatchError(
                f"{message}. Set {weights.ALLOW_UNVERIFIED_ENV}=1 to load it unverified."
            )
        warnings.warn(
            f"UNVERIFIED WEIGHTS ({weights.ALLOW_UNVERIFIED_ENV} is set): {message}", stacklevel=2
        )
    log.info("Hopenet teacher %s (sha256 %s)", path, digest)
    network = Hopenet()
    network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return network.eval().requires_grad_(False)
