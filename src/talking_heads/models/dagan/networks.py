"""DaGAN networks with the official module and parameter names (CVPR2022-DaGAN ``modules/``).

DaGAN keeps FOMM's keypoint detector, dense motion network and keypoint-conditioned
discriminator (upstream's ``keypoint_detector.py``, ``dense_motion.py`` and
``discriminator.py`` are FOMM's files), so those are FOMM's modules here. What is new:

- the keypoint detector sees RGB‖depth, 4 channels (``run.py --rgbd``: upstream overrides
  ``num_channels`` to 4 for the detector only; here it is ``num_channels + 1``);
- :class:`DepthAwareGenerator` (``generator.DepthAwareGenerator``): FOMM's occlusion-aware
  generator plus a source-depth encoder (``src_first``, ``src_down_blocks``) and a
  :class:`DepthAwareAttention` (``AttnModule``) between the warped, occluded source features
  and the bottleneck;
- the frozen face-depth network (:mod:`talking_heads.models.dagan.depth`).

The SPADE variant (``SPADEDepthAwareGenerator``, ``SPADE_DaGAN_vox_adv_256.pth.tar``) is not
implemented.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talking_heads.models.motion.blocks import SameBlock2d
from talking_heads.models.motion.discriminator import MultiScaleDiscriminator
from talking_heads.models.motion.keypoint_networks import (
    Keypoints,
    KPDetector,
    OcclusionAwareGenerator,
)


class DepthAwareAttention(nn.Module):
    """Cross attention from source-depth features (queries) to warped RGB features.

    With q = ReLU(W_q·depth), k = ReLU(W_k·feat), v = ReLU(W_v·feat) over the N = H·W positions,
    ``out = γ · softmax(q kᵀ) v + feat`` (no 1/√d scaling); γ starts at 0, so a fresh module is
    the identity on ``feat``. Computed with ``scaled_dot_product_attention`` (scale 1), which
    does not materialise upstream's N×N attention map (N = 4096 at 256²): the map itself,
    which upstream returns for visualisation only, is not returned.
    """

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.query_conv = nn.Conv2d(in_dim, in_dim // 8, kernel_size=1)
        self.key_conv = nn.Conv2d(in_dim, in_dim // 8, kernel_size=1)
        self.value_conv = nn.Conv2d(in_dim, in_dim, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, source: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        """``source``: depth features ``(B, C, H, W)``; ``feat``: warped features, same shape."""
        b, c, h, w = feat.shape
        query = F.relu(self.query_conv(source)).flatten(2).transpose(1, 2)
        key = F.relu(self.key_conv(feat)).flatten(2).transpose(1, 2)
        value = F.relu(self.value_conv(feat)).flatten(2).transpose(1, 2)
        out = F.scaled_dot_product_attention(query, key, value, scale=1.0)
        return self.gamma * out.transpose(1, 2).reshape(b, c, h, w) + feat


class DepthAwareGenerator(OcclusionAwareGenerator):
    """FOMM's generator with depth-aware attention on the warped source features.

    ``forward(source_image, kp_driving, kp_source, source_depth)``; upstream's unused
    ``driving_depth`` argument is accepted and ignored. ``source_features`` (:meth:`encode`)
    and ``depth_features`` (:meth:`encode_depth`) may be passed to skip the two encoders.
    """

    def __init__(
        self,
        num_channels: int,
        num_kp: int,
        block_expansion: int,
        max_features: int,
        num_down_blocks: int,
        num_bottleneck_blocks: int,
        estimate_occlusion_map: bool = False,
        dense_motion_params: dict | None = None,
        estimate_jacobian: bool = False,
    ) -> None:
        super().__init__(
            num_channels,
            num_kp,
            block_expansion,
            max_features,
            num_down_blocks,
            num_bottleneck_blocks,
            estimate_occlusion_map,
            dense_motion_params,
            estimate_jacobian,
        )
        self.src_first = SameBlock2d(1, block_expansion, kernel_size=7, padding=3)
        self.src_down_blocks = self.down_path(block_expansion, max_features, num_down_blocks)
        self.AttnModule = DepthAwareAttention(
            min(max_features, block_expansion * 2**num_down_blocks)
        )

    def encode_depth(self, source_depth: torch.Tensor) -> torch.Tensor:
        """The source depth's features (``src_first`` + ``src_down_blocks``)."""
        out = self.src_first(source_depth)
        for block in self.src_down_blocks:
            out = block(out)
        return out

    def forward(
        self,
        source_image: torch.Tensor,
        kp_driving: Keypoints,
        kp_source: Keypoints,
        source_depth: torch.Tensor | None = None,
        driving_depth: torch.Tensor | None = None,
        *,
        source_features: torch.Tensor | None = None,
        depth_features: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        out = self.encode(source_image) if source_features is None else source_features
        if depth_features is None:
            if source_depth is None:
                raise ValueError("DepthAwareGenerator needs source_depth or depth_features")
            depth_features = self.encode_depth(source_depth)
        return self.generate(
            source_image, out, kp_driving, kp_source, depth_features=depth_features
        )

    def refine_warped(self, features: torch.Tensor, **context: torch.Tensor) -> torch.Tensor:
        """The depth-aware attention of the source depth's features (``depth_features``) to
        the warped features."""
        return self.AttnModule(context["depth_features"], features)


def build_networks(
    model_params: dict,
) -> tuple[KPDetector, DepthAwareGenerator, MultiScaleDiscriminator]:
    """The keypoint detector (on RGB‖depth), generator and discriminator from a
    ``model_params`` dict laid out as upstream's YAML (``depth_params`` is not used here)."""
    common = model_params["common_params"]
    kp_detector = KPDetector(
        **model_params["kp_detector_params"],
        **{**common, "num_channels": common["num_channels"] + 1},
    )
    generator = DepthAwareGenerator(**model_params["generator_params"], **common)
    discriminator = MultiScaleDiscriminator(**model_params["discriminator_params"], **common)
    return kp_detector, generator, discriminator
