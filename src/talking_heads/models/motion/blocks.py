"""Building blocks of the FOMM lineage, with the official modules' parameter names.

Follows first-order-model's ``modules/util.py`` and ``modules/model.py``: coordinate grids in
[-1, 1] ordered (x, y), Gaussian keypoint heatmaps (variance 0.01), pre-activation residual
blocks, the U-Net hourglass and the anti-aliased downsampling whose Gaussian kernel is a
registered buffer ``weight`` (present in the official state dicts). ``torch.nn.BatchNorm2d``
replaces ``SynchronizedBatchNorm2d`` (same state-dict keys); ``norm="instance"`` gives TPSM's
InstanceNorm2d (affine, no running statistics).

``grid_sample`` uses ``align_corners=False`` by default: that is what the official code does
(it calls ``F.grid_sample`` without the argument) under every torch since 1.3, including the
torch 1.12.1 first-order-model pins, so our outputs match the official implementation's on the
same weights. The released FOMM checkpoints were trained with torch 1.0, whose only behaviour
was ``align_corners=True``; :func:`grid_sample` takes ``align_corners`` for a method whose
official code passes it explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import grad

ALIGN_CORNERS = False


def make_coordinate_grid(
    spatial_size: Sequence[int],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """An ``(H, W, 2)`` grid of (x, y) coordinates in [-1, 1]."""
    h, w = int(spatial_size[0]), int(spatial_size[1])
    x = torch.arange(w, dtype=dtype, device=device)
    y = torch.arange(h, dtype=dtype, device=device)
    x = 2 * (x / (w - 1)) - 1
    y = 2 * (y / (h - 1)) - 1
    yy = y.view(-1, 1).repeat(1, w)
    xx = x.view(1, -1).repeat(h, 1)
    return torch.stack([xx, yy], dim=2)


def kp2gaussian(
    kp: dict[str, torch.Tensor] | torch.Tensor, spatial_size: Sequence[int], kp_variance: float
) -> torch.Tensor:
    """Isotropic Gaussians ``(..., H, W)`` centred on keypoints ``(..., 2)``.

    ``kp`` is a keypoint dict (its ``"value"`` is used, as upstream) or the values themselves.
    """
    kp_value = kp["value"] if isinstance(kp, dict) else kp
    grid = make_coordinate_grid(spatial_size, kp_value.dtype, kp_value.device)
    leading = kp_value.shape[:-1]
    grid = grid.view(*((1,) * len(leading)), *grid.shape)
    mean = kp_value.view(*leading, 1, 1, 2)
    return torch.exp(-0.5 * ((grid - mean) ** 2).sum(-1) / kp_variance)


def grid_sample(
    inp: torch.Tensor, grid: torch.Tensor, align_corners: bool = ALIGN_CORNERS, **kwargs
) -> torch.Tensor:
    """``F.grid_sample`` with the official code's corner convention (see the module doc)."""
    return F.grid_sample(inp, grid, align_corners=align_corners, **kwargs)


def make_norm(kind: str, features: int) -> nn.Module:
    """``batch`` (FOMM, MRAA, DaGAN) or ``instance`` (TPSM) normalisation, affine."""
    if kind == "batch":
        return nn.BatchNorm2d(features, affine=True)
    if kind == "instance":
        return nn.InstanceNorm2d(features, affine=True)
    raise ValueError(f"unknown norm {kind!r} (batch or instance)")


class ResBlock2d(nn.Module):
    """Pre-activation residual block: norm-ReLU-conv twice, plus the input."""

    def __init__(
        self, in_features: int, kernel_size: int = 3, padding: int = 1, norm: str = "batch"
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_features, in_features, kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(in_features, in_features, kernel_size, padding=padding)
        self.norm1 = make_norm(norm, in_features)
        self.norm2 = make_norm(norm, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class _ConvNorm(nn.Module):
    """A convolution followed by a normalisation (keys ``conv.*``, ``norm.*`` as upstream)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int = 3,
        padding: int = 1,
        groups: int = 1,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_features, out_features, kernel_size, padding=padding, groups=groups
        )
        self.norm = make_norm(norm, out_features)

    def conv_norm_relu(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class UpBlock2d(_ConvNorm):
    """Nearest ×2 upsampling, conv, norm, ReLU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_norm_relu(F.interpolate(x, scale_factor=2))


class DownBlock2d(_ConvNorm):
    """Conv, norm, ReLU, 2×2 average pooling."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv_norm_relu(x), kernel_size=(2, 2))


class SameBlock2d(_ConvNorm):
    """Conv, norm, ReLU at the same resolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_norm_relu(x)


def level_channels(block_expansion: int, max_features: int, level: int) -> int:
    """The hourglass width at ``level``: ``block_expansion``·2^level, at most ``max_features``."""
    return min(max_features, block_expansion * (2**level))


class Encoder(nn.Module):
    """Hourglass encoder: ``num_blocks`` DownBlocks (:meth:`make_block`); returns every level's
    features."""

    def __init__(
        self,
        block_expansion: int,
        in_features: int,
        num_blocks: int = 3,
        max_features: int = 256,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        self.down_blocks = nn.ModuleList(
            self.make_block(
                in_features if i == 0 else level_channels(block_expansion, max_features, i),
                level_channels(block_expansion, max_features, i + 1),
                norm,
            )
            for i in range(num_blocks)
        )

    @staticmethod
    def make_block(in_features: int, out_features: int, norm: str) -> nn.Module:
        """One level's downsampling block."""
        return DownBlock2d(in_features, out_features, norm=norm)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    """Hourglass decoder: UpBlocks (:meth:`make_block`) with U-Net concatenation of the
    encoder's features."""

    def __init__(
        self,
        block_expansion: int,
        in_features: int,
        num_blocks: int = 3,
        max_features: int = 256,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            multiplier = 1 if i == num_blocks - 1 else 2
            blocks.append(
                self.make_block(
                    multiplier * level_channels(block_expansion, max_features, i + 1),
                    level_channels(block_expansion, max_features, i),
                    norm,
                )
            )
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features

    @staticmethod
    def make_block(in_features: int, out_features: int, norm: str) -> nn.Module:
        """One level's upsampling block."""
        return UpBlock2d(in_features, out_features, norm=norm)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        features = list(features)
        out = features.pop()
        for block in self.up_blocks:
            out = torch.cat([block(out), features.pop()], dim=1)
        return out


class WarpingGenerator(nn.Module):
    """Base of the FOMM-style generators (FOMM's ``OcclusionAwareGenerator``, MRAA's
    ``Generator``): the Johnson-style encoder-decoder trunk and the flow warp.

    A subclass registers its motion network first, then calls :meth:`build_trunk`, which adds
    ``first``, ``down_blocks``, ``up_blocks``, ``bottleneck`` (``r0`` ...) and ``final`` in the
    official parameter names and order.
    """

    def build_trunk(
        self,
        num_channels: int,
        block_expansion: int,
        max_features: int,
        num_down_blocks: int,
        num_bottleneck_blocks: int,
    ) -> None:
        """Add the encoder (``first`` + down blocks), the residual bottleneck, the decoder (up
        blocks) and the 7×7 ``final`` convolution."""
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=7, padding=3)
        self.down_blocks = self.down_path(block_expansion, max_features, num_down_blocks)
        self.up_blocks = nn.ModuleList(
            UpBlock2d(
                min(max_features, block_expansion * 2 ** (num_down_blocks - i)),
                min(max_features, block_expansion * 2 ** (num_down_blocks - i - 1)),
            )
            for i in range(num_down_blocks)
        )
        self.bottleneck = nn.Sequential()
        features = min(max_features, block_expansion * 2**num_down_blocks)
        for i in range(num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResBlock2d(features))
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=7, padding=3)
        self.num_channels = num_channels

    @staticmethod
    def down_path(block_expansion: int, max_features: int, num_down_blocks: int) -> nn.ModuleList:
        """The encoder's DownBlocks after ``first``: ``block_expansion``·2^i channels, at most
        ``max_features``."""
        return nn.ModuleList(
            DownBlock2d(
                level_channels(block_expansion, max_features, i),
                level_channels(block_expansion, max_features, i + 1),
            )
            for i in range(num_down_blocks)
        )

    @staticmethod
    def deform_input(inp: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
        """Warp ``inp`` by a flow field, resizing the flow (bilinear) to ``inp``'s size."""
        h, w = inp.shape[2:]
        if deformation.shape[1:3] != (h, w):
            deformation = F.interpolate(
                deformation.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=False
            ).permute(0, 2, 3, 1)
        return grid_sample(inp, deformation)


class Hourglass(nn.Module):
    """U-Net hourglass; ``out_filters`` = block_expansion + in_features."""

    def __init__(
        self,
        block_expansion: int,
        in_features: int,
        num_blocks: int = 3,
        max_features: int = 256,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features, norm)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features, norm)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class AntiAliasInterpolation2d(nn.Module):
    """Gaussian blur (σ = (1/scale − 1)/2, kernel 2·round(4σ)+1) then subsampling by 1/scale.

    The depthwise kernel is the buffer ``weight`` (``(C, 1, k, k)``), as in the official
    state dicts; ``persistent=False`` keeps it out of state dicts (image pyramids of the
    losses). Subsampling keeps every ``int(1/scale)``-th pixel, as upstream. At scale 1 the
    module is the identity; its ``(C, 1, 1, 1)`` buffer holds ones (upstream's holds the NaN
    of a zero-σ Gaussian, never used).
    """

    def __init__(self, channels: int, scale: float, *, persistent: bool = True) -> None:
        super().__init__()
        self.scale = scale
        self.groups = channels
        if scale == 1:
            self.register_buffer("weight", torch.ones(channels, 1, 1, 1), persistent=persistent)
            self.ka = self.kb = 0
            self.step = 1
            return
        sigma = (1 / scale - 1) / 2
        kernel_size = 2 * round(sigma * 4) + 1
        self.ka = kernel_size // 2
        self.kb = self.ka - 1 if kernel_size % 2 == 0 else self.ka
        coords = torch.arange(kernel_size, dtype=torch.float32)
        mean = (kernel_size - 1) / 2
        gauss = torch.exp(-((coords - mean) ** 2) / (2 * sigma**2))
        kernel = gauss[:, None] * gauss[None, :]
        kernel = (kernel / kernel.sum()).view(1, 1, kernel_size, kernel_size)
        self.register_buffer("weight", kernel.repeat(channels, 1, 1, 1), persistent=persistent)
        self.step = int(1 / scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1:
            return x
        out = F.pad(x, (self.ka, self.kb, self.ka, self.kb))
        out = F.conv2d(out, weight=self.weight.to(out.dtype), groups=self.groups)
        return out[:, :, :: self.step, :: self.step]


class ImagePyramide(nn.Module):
    """Anti-aliased image pyramid: ``{"prediction_<scale>": image at that scale}``."""

    def __init__(self, scales: Sequence[float], num_channels: int) -> None:
        super().__init__()
        self.downs = nn.ModuleDict(
            {
                str(scale).replace(".", "-"): AntiAliasInterpolation2d(
                    num_channels, scale, persistent=False
                )
                for scale in scales
            }
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"prediction_" + key.replace("-", "."): down(x) for key, down in self.downs.items()}


class Transform:
    """Random affine + thin-plate-spline warp for the equivariance losses (upstream)."""

    def __init__(
        self,
        batch_size: int,
        *,
        sigma_affine: float,
        sigma_tps: float | None = None,
        points_tps: int | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        noise = torch.normal(mean=0, std=sigma_affine * torch.ones(batch_size, 2, 3))
        self.theta = (noise + torch.eye(2, 3).view(1, 2, 3)).to(device)
        self.bs = batch_size
        self.tps = sigma_tps is not None and points_tps is not None
        if self.tps:
            self.control_points = make_coordinate_grid(
                (points_tps, points_tps), device=device
            ).unsqueeze(0)
            self.control_params = torch.normal(
                mean=0, std=sigma_tps * torch.ones(batch_size, 1, points_tps**2)
            ).to(device)

    def transform_frame(self, frame: torch.Tensor) -> torch.Tensor:
        h, w = frame.shape[2:]
        grid = make_coordinate_grid((h, w), frame.dtype, frame.device).view(1, h * w, 2)
        grid = self.warp_coordinates(grid).view(self.bs, h, w, 2)
        return grid_sample(frame, grid, padding_mode="reflection")

    def warp_coordinates(self, coordinates: torch.Tensor) -> torch.Tensor:
        theta = self.theta.to(coordinates.dtype).unsqueeze(1)
        transformed = (
            torch.matmul(theta[:, :, :, :2], coordinates.unsqueeze(-1)) + theta[:, :, :, 2:]
        )
        transformed = transformed.squeeze(-1)
        if self.tps:
            control_points = self.control_points.to(coordinates.dtype)
            control_params = self.control_params.to(coordinates.dtype)
            distances = coordinates.view(coordinates.shape[0], -1, 1, 2) - control_points.view(
                1, 1, -1, 2
            )
            distances = torch.abs(distances).sum(-1)
            result = distances**2 * torch.log(distances + 1e-6) * control_params
            transformed = transformed + result.sum(dim=2).view(self.bs, coordinates.shape[1], 1)
        return transformed

    def jacobian(self, coordinates: torch.Tensor) -> torch.Tensor:
        """d(warp)/d(coordinates) by autograd, ``(B, K, 2, 2)``."""
        new = self.warp_coordinates(coordinates)
        grad_x = grad(new[..., 0].sum(), coordinates, create_graph=True)[0]
        grad_y = grad(new[..., 1].sum(), coordinates, create_graph=True)[0]
        return torch.cat([grad_x.unsqueeze(-2), grad_y.unsqueeze(-2)], dim=-2)


def detach_kp(kp: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keypoints with gradients cut."""
    return {key: value.detach() for key, value in kp.items()}


def convex_hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of ``(K, 2)`` points (scipy's ``ConvexHull.volume`` in 2-D)."""
    from scipy.spatial import ConvexHull

    return float(ConvexHull(points).volume)
