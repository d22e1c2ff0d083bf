"""The lineage's multi-scale patch discriminator (first-order-model ``modules/discriminator.py``),
used by FOMM, DaGAN and face-vid2vid with upstream's keys (``discs.<scale>``, spectral-norm
``weight_orig``/``weight_u``/``weight_v``), optionally conditioned on keypoint heatmaps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from talking_heads.models.motion.blocks import kp2gaussian

__all__ = ["Discriminator", "DiscriminatorDownBlock", "MultiScaleDiscriminator"]

Keypoints = dict[str, torch.Tensor]


class DiscriminatorDownBlock(nn.Module):
    """4×4 conv (optionally spectral-normed), InstanceNorm, LeakyReLU 0.2, optional pooling."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        norm: bool = False,
        kernel_size: int = 4,
        pool: bool = False,
        sn: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size)
        if sn:
            self.conv = nn.utils.spectral_norm(self.conv)
        self.norm = nn.InstanceNorm2d(out_features, affine=True) if norm else None
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        if self.norm is not None:
            out = self.norm(out)
        out = F.leaky_relu(out, 0.2)
        return F.avg_pool2d(out, (2, 2)) if self.pool else out


class Discriminator(nn.Module):
    """pix2pix-style patch discriminator, optionally conditioned on keypoint heatmaps."""

    def __init__(
        self,
        num_channels: int = 3,
        block_expansion: int = 64,
        num_blocks: int = 4,
        max_features: int = 512,
        sn: bool = False,
        use_kp: bool = False,
        num_kp: int = 10,
        kp_variance: float = 0.01,
        **_: object,
    ) -> None:
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DiscriminatorDownBlock(
                num_channels + num_kp * use_kp
                if i == 0
                else min(max_features, block_expansion * 2**i),
                min(max_features, block_expansion * 2 ** (i + 1)),
                norm=i != 0,
                kernel_size=4,
                pool=i != num_blocks - 1,
                sn=sn,
            )
            for i in range(num_blocks)
        )
        last = self.down_blocks[-1].conv
        self.conv = nn.Conv2d(last.out_channels, 1, kernel_size=1)
        if sn:
            self.conv = nn.utils.spectral_norm(self.conv)
        self.use_kp = use_kp
        self.kp_variance = kp_variance

    def forward(
        self, x: torch.Tensor, kp: Keypoints | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        out = x
        if self.use_kp:
            out = torch.cat([out, kp2gaussian(kp["value"], x.shape[2:], self.kp_variance)], dim=1)
        feature_maps = []
        for block in self.down_blocks:
            out = block(out)
            feature_maps.append(out)
        return feature_maps, self.conv(out)


class MultiScaleDiscriminator(nn.Module):
    """One discriminator per pyramid scale; keys ``discs.<scale>`` as upstream."""

    def __init__(self, scales: Sequence[float] = (), **kwargs: object) -> None:
        super().__init__()
        self.scales = list(scales)
        self.discs = nn.ModuleDict(
            {str(scale).replace(".", "-"): Discriminator(**kwargs) for scale in scales}
        )

    def forward(
        self, pyramid: dict[str, torch.Tensor], kp: Keypoints | None = None
    ) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, disc in self.discs.items():
            scale = key.replace("-", ".")
            feature_maps, prediction = disc(pyramid["prediction_" + scale], kp)
            out["feature_maps_" + scale] = feature_maps
            out["prediction_map_" + scale] = prediction
        return out
