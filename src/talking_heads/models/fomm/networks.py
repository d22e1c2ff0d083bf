"""FOMM networks with the official module and parameter names (first-order-model ``modules/``).

The keypoint detector, dense-motion network and occlusion-aware generator live in
:mod:`talking_heads.models.motion.keypoint_networks` and the discriminator in
:mod:`talking_heads.models.motion.discriminator` (DaGAN and face-vid2vid build on them);
:func:`build_networks` makes FOMM's three from a ``model_params`` dict laid out as
``config/vox-256.yaml`` (``configs/model/fomm.yaml``), so the released ``vox-cpk.pth.tar``
sub-dicts load without renaming.
"""

from __future__ import annotations

from talking_heads.models.motion.discriminator import MultiScaleDiscriminator
from talking_heads.models.motion.keypoint_networks import (
    DenseMotionNetwork,
    Keypoints,
    KPDetector,
    OcclusionAwareGenerator,
)

__all__ = [
    "DenseMotionNetwork",
    "KPDetector",
    "Keypoints",
    "MultiScaleDiscriminator",
    "OcclusionAwareGenerator",
    "build_networks",
]


def build_networks(
    model_params: dict,
) -> tuple[KPDetector, OcclusionAwareGenerator, MultiScaleDiscriminator]:
    """The three networks from a ``model_params`` dict laid out as upstream's YAML."""
    common = model_params["common_params"]
    kp_detector = KPDetector(**model_params["kp_detector_params"], **common)
    generator = OcclusionAwareGenerator(**model_params["generator_params"], **common)
    discriminator = MultiScaleDiscriminator(**model_params["discriminator_params"], **common)
    return kp_detector, generator, discriminator
