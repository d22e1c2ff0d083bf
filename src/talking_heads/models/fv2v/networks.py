"""face-vid2vid networks with the official module and parameter names.

Follows zhanglonghao1992/One-Shot_Free-View_Neural_Talking_Head_Synthesis (``modules/``):
``KPDetector`` (canonical 3-D keypoints from a 2-D encoder reshaped into a 3-D volume),
``HEEstimator`` (head pose as 66-bin yaw/pitch/roll classifiers, translation, expression
deltas), the 3-D ``DenseMotionNetwork``, ``OcclusionAwareGenerator`` (``--gen original``) and
``OcclusionAwareSPADEGenerator`` (``--gen spade``, the demo's default), and the keypoint
transformation kp = R(yaw, pitch, roll)·kp_c + t + δ. State dicts use the official keys, so the
released checkpoints' sub-dicts load without renaming; the discriminator is FOMM's
(:class:`talking_heads.models.motion.discriminator.MultiScaleDiscriminator`, identical keys).

``torch.nn.BatchNorm2d/3d`` replace ``SynchronizedBatchNorm2d/3d`` (same keys). Two widths that
the official code hard-codes are derived from the configuration instead, so that narrow demo
networks can be built; both equal the official values for the vox-256 configurations:

- ``HEEstimator``: the four stage widths are ``max_features`` / 8, / 4, / 2, / 1 (official:
  256, 512, 1024, 2048, with ``max_features: 2048`` in the config, where it is otherwise unused);
- ``SPADEDecoder``: its input width is the generator's ``block_expansion · 2^num_down_blocks``,
  its output width ``block_expansion`` and the hidden width of its SPADE layers
  ``2 · block_expansion`` (official: 256, 64 and 128).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from talking_heads.models.motion.blocks import (
    AntiAliasInterpolation2d,
    Decoder,
    DownBlock2d,
    Encoder,
    ResBlock2d,
    SameBlock2d,
    UpBlock2d,
    WarpingGenerator,
    grid_sample,
    level_channels,
)
from talking_heads.models.motion.discriminator import MultiScaleDiscriminator

Keypoints = dict[str, torch.Tensor]


#: the two generators of the official code (``demo.py``/``run.py --gen``)
GENERATOR_TYPES = ("spade", "original")

#: upstream converts degrees to radians as ``x / 180 * 3.14`` (π ≈ 3.14); the released
#: checkpoints were trained with it, so it is kept
PI_APPROXIMATION = 3.14


# -- coordinates and heatmaps ------------------------------------------------------------------
def make_coordinate_grid_3d(
    spatial_size: Sequence[int],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A ``(D, H, W, 3)`` grid of (x, y, z) coordinates in [-1, 1]."""
    d, h, w = (int(s) for s in spatial_size)

    def axis(n: int) -> torch.Tensor:
        values = torch.arange(n, dtype=dtype, device=device)
        return 2 * (values / (n - 1)) - 1

    z, y, x = torch.meshgrid(axis(d), axis(h), axis(w), indexing="ij")
    return torch.stack([x, y, z], dim=3)


def kp2gaussian_3d(
    kp_value: torch.Tensor, spatial_size: Sequence[int], kp_variance: float
) -> torch.Tensor:
    """Isotropic 3-D Gaussians ``(..., D, H, W)`` centred on keypoints ``(..., 3)``."""
    grid = make_coordinate_grid_3d(spatial_size, kp_value.dtype, kp_value.device)
    leading = kp_value.shape[:-1]
    grid = grid.view(*((1,) * len(leading)), *grid.shape)
    mean = kp_value.view(*leading, 1, 1, 1, 3)
    return torch.exp(-0.5 * ((grid - mean) ** 2).sum(-1) / kp_variance)


# -- blocks --------------------------------------------------------------------------------------
class ResBlock3d(nn.Module):
    """Pre-activation 3-D residual block: BN-ReLU-conv twice, plus the input."""

    def __init__(self, in_features: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_features, in_features, kernel_size, padding=padding)
        self.conv2 = nn.Conv3d(in_features, in_features, kernel_size, padding=padding)
        self.norm1 = nn.BatchNorm3d(in_features, affine=True)
        self.norm2 = nn.BatchNorm3d(in_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class _ConvNorm3d(nn.Module):
    """A 3-D convolution followed by BatchNorm3d (keys ``conv.*``, ``norm.*``)."""

    def __init__(
        self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1
    ) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size, padding=padding)
        self.norm = nn.BatchNorm3d(out_features, affine=True)

    def conv_norm_relu(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class UpBlock3d(_ConvNorm3d):
    """Nearest ×2 upsampling of height and width (not depth), conv, norm, ReLU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_norm_relu(F.interpolate(x, scale_factor=(1, 2, 2)))


class DownBlock3d(_ConvNorm3d):
    """Conv, norm, ReLU, then 1×2×2 average pooling (depth kept)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool3d(self.conv_norm_relu(x), kernel_size=(1, 2, 2))


class LeakySameBlock2d(SameBlock2d):
    """Conv, norm, LeakyReLU (slope 0.01): upstream's ``SameBlock2d(..., lrelu=True)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.norm(self.conv(x)), 0.01)


class ResBottleneck(nn.Module):
    """ResNet bottleneck (1×1 → 3×3 → 1×1, width/4) with a 1×1 strided skip when downsampling."""

    def __init__(self, in_features: int, stride: int) -> None:
        super().__init__()
        middle = in_features // 4
        self.conv1 = nn.Conv2d(in_features, middle, kernel_size=1)
        self.conv2 = nn.Conv2d(middle, middle, kernel_size=3, padding=1, stride=stride)
        self.conv3 = nn.Conv2d(middle, in_features, kernel_size=1)
        self.norm1 = nn.BatchNorm2d(middle, affine=True)
        self.norm2 = nn.BatchNorm2d(middle, affine=True)
        self.norm3 = nn.BatchNorm2d(in_features, affine=True)
        self.stride = stride
        if stride != 1:
            self.skip = nn.Conv2d(in_features, in_features, kernel_size=1, stride=stride)
            self.norm4 = nn.BatchNorm2d(in_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        out = F.relu(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        if self.stride != 1:
            x = self.norm4(self.skip(x))
        return F.relu(out + x)


class Encoder3d(Encoder):
    """3-D hourglass encoder (``down_blocks``); returns every level's features."""

    def __init__(
        self, block_expansion: int, in_features: int, num_blocks: int, max_features: int
    ) -> None:
        super().__init__(block_expansion, in_features, num_blocks, max_features)

    @staticmethod
    def make_block(in_features: int, out_features: int, norm: str) -> nn.Module:
        """One level's :class:`DownBlock3d` (always BatchNorm3d)."""
        return DownBlock3d(in_features, out_features)


class Decoder3d(Decoder):
    """3-D hourglass decoder: U-Net UpBlocks, then a final conv-BN-ReLU (``conv``, ``norm``)."""

    def __init__(
        self, block_expansion: int, in_features: int, num_blocks: int, max_features: int
    ) -> None:
        super().__init__(block_expansion, in_features, num_blocks, max_features)
        self.conv = nn.Conv3d(self.out_filters, self.out_filters, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(self.out_filters, affine=True)

    @staticmethod
    def make_block(in_features: int, out_features: int, norm: str) -> nn.Module:
        """One level's :class:`UpBlock3d` (always BatchNorm3d)."""
        return UpBlock3d(in_features, out_features)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return F.relu(self.norm(self.conv(super().forward(features))))


class Hourglass3d(nn.Module):
    """3-D U-Net hourglass of the dense motion network; ``out_filters`` = be + in_features."""

    def __init__(
        self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256
    ) -> None:
        super().__init__()
        self.encoder = Encoder3d(block_expansion, in_features, num_blocks, max_features)
        self.decoder = Decoder3d(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class KPHourglass(nn.Module):
    """2-D encoder → 1×1 conv to ``reshape_features`` → reshape to a volume of depth
    ``reshape_depth`` → 3-D decoder without skips (keys ``down_blocks.down<i>``, ``conv``,
    ``up_blocks.up<i>``)."""

    def __init__(
        self,
        block_expansion: int,
        in_features: int,
        reshape_features: int,
        reshape_depth: int,
        num_blocks: int = 3,
        max_features: int = 256,
    ) -> None:
        super().__init__()
        self.down_blocks = nn.Sequential()
        for i in range(num_blocks):
            self.down_blocks.add_module(
                f"down{i}",
                DownBlock2d(
                    in_features if i == 0 else level_channels(block_expansion, max_features, i),
                    level_channels(block_expansion, max_features, i + 1),
                ),
            )
        bottom = level_channels(block_expansion, max_features, num_blocks)
        self.conv = nn.Conv2d(bottom, reshape_features, kernel_size=1)
        self.up_blocks = nn.Sequential()
        for i in range(num_blocks):
            self.up_blocks.add_module(
                f"up{i}",
                UpBlock3d(
                    level_channels(block_expansion, max_features, num_blocks - i),
                    level_channels(block_expansion, max_features, num_blocks - i - 1),
                ),
            )
        self.reshape_depth = reshape_depth
        self.out_filters = level_channels(block_expansion, max_features, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(self.down_blocks(x))
        bs, c, h, w = out.shape
        out = out.view(bs, c // self.reshape_depth, self.reshape_depth, h, w)
        return self.up_blocks(out)


# -- keypoints and head pose -------------------------------------------------------------------
class KPDetector(nn.Module):
    """Canonical 3-D keypoints: soft-argmax (temperature) of volumetric heatmaps.

    With ``estimate_jacobian`` a 3×3 Jacobian per keypoint is the heatmap-weighted output of
    an identity-initialised head (absent from the vox-256 configurations).
    """

    def __init__(
        self,
        block_expansion: int,
        feature_channel: int,
        num_kp: int,
        image_channel: int,
        max_features: int,
        reshape_channel: int,
        reshape_depth: int,
        num_blocks: int,
        temperature: float,
        estimate_jacobian: bool = False,
        scale_factor: float = 1,
        single_jacobian_map: bool = False,
    ) -> None:
        super().__init__()
        self.predictor = KPHourglass(
            block_expansion,
            in_features=image_channel,
            max_features=max_features,
            reshape_features=reshape_channel,
            reshape_depth=reshape_depth,
            num_blocks=num_blocks,
        )
        self.kp = nn.Conv3d(self.predictor.out_filters, num_kp, kernel_size=3, padding=1)
        if estimate_jacobian:
            self.num_jacobian_maps = 1 if single_jacobian_map else num_kp
            self.jacobian = nn.Conv3d(
                self.predictor.out_filters, 9 * self.num_jacobian_maps, kernel_size=3, padding=1
            )
            with torch.no_grad():
                self.jacobian.weight.zero_()
                identity = [1.0, 0, 0, 0, 1, 0, 0, 0, 1] * self.num_jacobian_maps
                self.jacobian.bias.copy_(torch.tensor(identity))
        else:
            self.jacobian = None
        self.temperature = temperature
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(image_channel, scale_factor)

    @staticmethod
    def gaussian2kp(heatmap: torch.Tensor) -> torch.Tensor:
        """Expected (x, y, z) under each normalised heatmap ``(B, K, D, H, W)`` → ``(B, K, 3)``."""
        grid = make_coordinate_grid_3d(heatmap.shape[2:], heatmap.dtype, heatmap.device)
        return (heatmap.unsqueeze(-1) * grid[None, None]).sum(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> Keypoints:
        if self.scale_factor != 1:
            x = self.down(x)
        feature_map = self.predictor(x)
        prediction = self.kp(feature_map)
        b, k, d, h, w = prediction.shape
        heatmap = F.softmax(prediction.view(b, k, -1) / self.temperature, dim=2)
        heatmap = heatmap.view(b, k, d, h, w)
        out = {"value": self.gaussian2kp(heatmap)}
        if self.jacobian is not None:
            jacobian_map = self.jacobian(feature_map).reshape(b, self.num_jacobian_maps, 9, d, h, w)
            jacobian = (heatmap.unsqueeze(2) * jacobian_map).view(b, k, 9, -1).sum(dim=-1)
            out["jacobian"] = jacobian.view(b, k, 3, 3)
        return out


class HEEstimator(nn.Module):
    """Head pose and expression: a ResNet-50-like bottleneck network, then linear heads.

    Returns logits over ``num_bins`` 3° bins for ``yaw``, ``pitch`` and ``roll``, the
    translation ``t`` ``(B, 3)`` and the expression deltas ``exp`` ``(B, 3K)``. As upstream,
    ``yaw`` comes from the layer named ``fc_roll`` and ``roll`` from ``fc_yaw`` (the names are
    swapped in the official forward; the checkpoints were trained that way).
    """

    def __init__(
        self,
        block_expansion: int,
        feature_channel: int,
        num_kp: int,
        image_channel: int,
        max_features: int,
        num_bins: int = 66,
        estimate_jacobian: bool = True,
    ) -> None:
        super().__init__()
        widths = [max_features // 8, max_features // 4, max_features // 2, max_features]
        self.conv1 = nn.Conv2d(image_channel, block_expansion, kernel_size=7, padding=3, stride=2)
        self.norm1 = nn.BatchNorm2d(block_expansion, affine=True)
        self.conv2 = nn.Conv2d(block_expansion, widths[0], kernel_size=1)
        self.norm2 = nn.BatchNorm2d(widths[0], affine=True)
        self.block1 = self._stage("b1", widths[0], 3)
        self.conv3 = nn.Conv2d(widths[0], widths[1], kernel_size=1)
        self.norm3 = nn.BatchNorm2d(widths[1], affine=True)
        self.block2 = ResBottleneck(widths[1], stride=2)
        self.block3 = self._stage("b3", widths[1], 3)
        self.conv4 = nn.Conv2d(widths[1], widths[2], kernel_size=1)
        self.norm4 = nn.BatchNorm2d(widths[2], affine=True)
        self.block4 = ResBottleneck(widths[2], stride=2)
        self.block5 = self._stage("b5", widths[2], 5)
        self.conv5 = nn.Conv2d(widths[2], widths[3], kernel_size=1)
        self.norm5 = nn.BatchNorm2d(widths[3], affine=True)
        self.block6 = ResBottleneck(widths[3], stride=2)
        self.block7 = self._stage("b7", widths[3], 2)
        self.fc_roll = nn.Linear(widths[3], num_bins)
        self.fc_pitch = nn.Linear(widths[3], num_bins)
        self.fc_yaw = nn.Linear(widths[3], num_bins)
        self.fc_t = nn.Linear(widths[3], 3)
        self.fc_exp = nn.Linear(widths[3], 3 * num_kp)

    @staticmethod
    def _stage(prefix: str, features: int, blocks: int) -> nn.Sequential:
        stage = nn.Sequential()
        for i in range(blocks):
            stage.add_module(f"{prefix}_{i}", ResBottleneck(features, stride=1))
        return stage

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = F.relu(self.norm1(self.conv1(x)))
        out = F.max_pool2d(out, kernel_size=3, stride=2, padding=1)
        out = F.relu(self.norm2(self.conv2(out)))
        out = self.block1(out)
        out = F.relu(self.norm3(self.conv3(out)))
        out = self.block3(self.block2(out))
        out = F.relu(self.norm4(self.conv4(out)))
        out = self.block5(self.block4(out))
        out = F.relu(self.norm5(self.conv5(out)))
        out = self.block7(self.block6(out))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return {
            "yaw": self.fc_roll(out),
            "pitch": self.fc_pitch(out),
            "roll": self.fc_yaw(out),
            "t": self.fc_t(out),
            "exp": self.fc_exp(out),
        }


def headpose_pred_to_degree(logits: torch.Tensor) -> torch.Tensor:
    """Degrees from 3° bin logits ``(B, bins)``: 3·E[bin] − 99 under the softmax."""
    bins = torch.arange(logits.shape[1], dtype=logits.dtype, device=logits.device)
    return (F.softmax(logits, dim=1) * bins).sum(dim=1) * 3 - 99


def rotation_matrix(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """``(B, 3, 3)`` rotation R = R_x(pitch) · R_y(yaw) · R_z(roll) from angles in degrees.

    Degrees are converted with π ≈ 3.14, as upstream (:data:`PI_APPROXIMATION`).
    """
    yaw, pitch, roll = (angle / 180 * PI_APPROXIMATION for angle in (yaw, pitch, roll))
    one, zero = torch.ones_like(pitch), torch.zeros_like(pitch)

    def matrix(*entries: torch.Tensor) -> torch.Tensor:
        return torch.stack(entries, dim=1).view(-1, 3, 3)

    pitch_mat = matrix(
        one, zero, zero, zero, pitch.cos(), -pitch.sin(), zero, pitch.sin(), pitch.cos()
    )
    yaw_mat = matrix(yaw.cos(), zero, yaw.sin(), zero, one, zero, -yaw.sin(), zero, yaw.cos())
    roll_mat = matrix(roll.cos(), -roll.sin(), zero, roll.sin(), roll.cos(), zero, zero, zero, one)
    return pitch_mat @ yaw_mat @ roll_mat


def keypoint_transformation(
    kp_canonical: Keypoints,
    he: Mapping[str, torch.Tensor],
    estimate_jacobian: bool = False,
    *,
    yaw: float | None = None,
    pitch: float | None = None,
    roll: float | None = None,
) -> Keypoints:
    """Keypoints of a frame: kp = R·kp_c + t + δ (and Jacobians R·J_c).

    ``he`` is an :class:`HEEstimator` output; ``yaw``/``pitch``/``roll`` in degrees replace
    the estimated angles (the demo's ``--free_view``; ``None`` keeps the estimate).
    ``kp_canonical`` may have batch 1 for a batch of head poses.
    """
    value = kp_canonical["value"]
    angles = []
    for name, fixed in (("yaw", yaw), ("pitch", pitch), ("roll", roll)):
        estimated = headpose_pred_to_degree(he[name])
        angles.append(estimated if fixed is None else torch.full_like(estimated, float(fixed)))
    rot = rotation_matrix(*angles)
    batch = rot.shape[0]
    value = value.expand(batch, *value.shape[1:])
    kp = torch.einsum("bmp,bkp->bkm", rot, value) + he["t"].unsqueeze(1)
    kp = kp + he["exp"].view(batch, -1, 3)
    out = {"value": kp}
    if estimate_jacobian:
        jacobian = kp_canonical["jacobian"]
        jacobian = jacobian.expand(batch, *jacobian.shape[1:])
        out["jacobian"] = torch.einsum("bmp,bkps->bkms", rot, jacobian)
    return out


# -- motion and generation ---------------------------------------------------------------------
class DenseMotionNetwork(nn.Module):
    """3-D flow and 2-D occlusion from K+1 sparse motions of a compressed feature volume."""

    def __init__(
        self,
        block_expansion: int,
        num_blocks: int,
        max_features: int,
        num_kp: int,
        feature_channel: int,
        reshape_depth: int,
        compress: int,
        estimate_occlusion_map: bool = False,
        kp_variance: float = 0.01,
    ) -> None:
        super().__init__()
        self.hourglass = Hourglass3d(
            block_expansion,
            in_features=(num_kp + 1) * (compress + 1),
            max_features=max_features,
            num_blocks=num_blocks,
        )
        self.mask = nn.Conv3d(self.hourglass.out_filters, num_kp + 1, kernel_size=7, padding=3)
        self.compress = nn.Conv3d(feature_channel, compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(compress, affine=True)
        self.occlusion = (
            nn.Conv2d(self.hourglass.out_filters * reshape_depth, 1, kernel_size=7, padding=3)
            if estimate_occlusion_map
            else None
        )
        self.num_kp = num_kp
        self.kp_variance = kp_variance

    def create_sparse_motions(
        self, feature: torch.Tensor, kp_driving: Keypoints, kp_source: Keypoints
    ) -> torch.Tensor:
        """``(B, K+1, D, H, W, 3)``: identity, then J_s·J_d⁻¹·(z − kp_d) + kp_s per keypoint."""
        bs, _, d, h, w = feature.shape
        identity = make_coordinate_grid_3d((d, h, w), kp_source["value"].dtype, feature.device)
        identity = identity.view(1, 1, d, h, w, 3)
        grid = identity - kp_driving["value"].view(bs, self.num_kp, 1, 1, 1, 3)
        if kp_driving.get("jacobian") is not None:
            jacobian = torch.matmul(kp_source["jacobian"], torch.inverse(kp_driving["jacobian"]))
            jacobian = jacobian.view(bs, self.num_kp, 1, 1, 1, 3, 3)
            grid = torch.matmul(jacobian, grid.unsqueeze(-1)).squeeze(-1)
        driving_to_source = grid + kp_source["value"].view(bs, self.num_kp, 1, 1, 1, 3)
        return torch.cat([identity.expand(bs, 1, d, h, w, 3), driving_to_source], dim=1)

    def create_deformed_feature(
        self, feature: torch.Tensor, sparse_motions: torch.Tensor
    ) -> torch.Tensor:
        """The feature volume warped by each sparse motion, ``(B, K+1, C, D, H, W)``."""
        bs, c, d, h, w = feature.shape
        repeated = feature.unsqueeze(1).expand(bs, self.num_kp + 1, c, d, h, w)
        repeated = repeated.reshape(bs * (self.num_kp + 1), c, d, h, w)
        motions = sparse_motions.reshape(bs * (self.num_kp + 1), d, h, w, 3)
        return grid_sample(repeated, motions).view(bs, self.num_kp + 1, c, d, h, w)

    def create_heatmap_representations(
        self, feature: torch.Tensor, kp_driving: Keypoints, kp_source: Keypoints
    ) -> torch.Tensor:
        """Gaussian(kp_d) − Gaussian(kp_s), background zeros first: ``(B, K+1, 1, D, H, W)``."""
        size = feature.shape[3:]
        heatmap = kp2gaussian_3d(kp_driving["value"], size, self.kp_variance) - kp2gaussian_3d(
            kp_source["value"], size, self.kp_variance
        )
        zeros = torch.zeros(heatmap.shape[0], 1, *size, dtype=heatmap.dtype, device=heatmap.device)
        return torch.cat([zeros, heatmap], dim=1).unsqueeze(2)

    def forward(
        self, feature: torch.Tensor, kp_driving: Keypoints, kp_source: Keypoints
    ) -> dict[str, torch.Tensor]:
        bs, _, d, h, w = feature.shape
        feature = F.relu(self.norm(self.compress(feature)))
        sparse_motion = self.create_sparse_motions(feature, kp_driving, kp_source)
        deformed = self.create_deformed_feature(feature, sparse_motion)
        heatmap = self.create_heatmap_representations(deformed, kp_driving, kp_source)
        prediction = self.hourglass(torch.cat([heatmap, deformed], dim=2).view(bs, -1, d, h, w))
        mask = F.softmax(self.mask(prediction), dim=1)
        deformation = (sparse_motion.permute(0, 1, 5, 2, 3, 4) * mask.unsqueeze(2)).sum(dim=1)
        out = {"mask": mask, "deformation": deformation.permute(0, 2, 3, 4, 1)}
        if self.occlusion is not None:
            flat = prediction.reshape(bs, -1, h, w)
            out["occlusion_map"] = torch.sigmoid(self.occlusion(flat))
        return out


class SPADE(nn.Module):
    """Parameter-free InstanceNorm modulated by γ, β predicted from a (resized) feature map."""

    def __init__(self, norm_nc: int, label_nc: int, hidden: int = 128) -> None:
        super().__init__()
        self.param_free_norm = nn.InstanceNorm2d(norm_nc, affine=False)
        self.mlp_shared = nn.Sequential(
            nn.Conv2d(label_nc, hidden, kernel_size=3, padding=1), nn.ReLU()
        )
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, kernel_size=3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        normalized = self.param_free_norm(x)
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    """SPADE residual block with spectral-normed convolutions (``norm_G`` =
    'spadespectralinstance' upstream) and a learned 1×1 shortcut when the width changes."""

    def __init__(
        self, fin: int, fout: int, label_nc: int, dilation: int = 1, hidden: int = 128
    ) -> None:
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        sn = nn.utils.spectral_norm
        self.conv_0 = sn(nn.Conv2d(fin, fmiddle, 3, padding=dilation, dilation=dilation))
        self.conv_1 = sn(nn.Conv2d(fmiddle, fout, 3, padding=dilation, dilation=dilation))
        if self.learned_shortcut:
            self.conv_s = sn(nn.Conv2d(fin, fout, kernel_size=1, bias=False))
        self.norm_0 = SPADE(fin, label_nc, hidden)
        self.norm_1 = SPADE(fmiddle, label_nc, hidden)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, label_nc, hidden)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return shortcut + dx


class SPADEDecoder(nn.Module):
    """fc → 6 SPADE blocks → (×2, SPADE block) twice → conv → sigmoid, modulated by its input.

    ``in_features`` / ``out_features`` / ``hidden`` (the SPADE layers' width) are 256 / 64 /
    128 upstream (hard-coded there).
    """

    def __init__(
        self,
        in_features: int = 256,
        out_features: int = 64,
        image_channel: int = 3,
        hidden: int = 128,
    ) -> None:
        super().__init__()
        ic, oc, label_nc = in_features, out_features, in_features
        self.fc = nn.Conv2d(ic, 2 * ic, 3, padding=1)
        for i in range(6):
            self.add_module(
                f"G_middle_{i}", SPADEResnetBlock(2 * ic, 2 * ic, label_nc, hidden=hidden)
            )
        self.up_0 = SPADEResnetBlock(2 * ic, ic, label_nc, hidden=hidden)
        self.up_1 = SPADEResnetBlock(ic, oc, label_nc, hidden=hidden)
        self.conv_img = nn.Conv2d(oc, image_channel, 3, padding=1)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        seg = feature
        x = self.fc(feature)
        for i in range(6):
            x = getattr(self, f"G_middle_{i}")(x, seg)
        x = self.up_0(F.interpolate(x, scale_factor=2), seg)
        x = self.up_1(F.interpolate(x, scale_factor=2), seg)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))


class OcclusionAwareGenerator(nn.Module):
    """2-D encoder → feature volume → 3-D ResBlocks → 3-D warp → flatten → occlusion →
    2-D decoder (``--gen original``); ``spade=True`` gives ``OcclusionAwareSPADEGenerator``
    (``--gen spade``: 3×3 ``first`` conv and the SPADE decoder instead of 2-D ResBlocks and
    UpBlocks)."""

    def __init__(
        self,
        image_channel: int,
        feature_channel: int,
        num_kp: int,
        block_expansion: int,
        max_features: int,
        num_down_blocks: int,
        reshape_channel: int,
        reshape_depth: int,
        num_resblocks: int,
        estimate_occlusion_map: bool = False,
        dense_motion_params: dict | None = None,
        estimate_jacobian: bool = False,
        spade: bool = False,
    ) -> None:
        super().__init__()
        self.dense_motion_network = (
            DenseMotionNetwork(
                num_kp=num_kp,
                feature_channel=feature_channel,
                estimate_occlusion_map=estimate_occlusion_map,
                **dense_motion_params,
            )
            if dense_motion_params is not None
            else None
        )
        first_kernel = 3 if spade else 7
        self.first = SameBlock2d(
            image_channel, block_expansion, kernel_size=first_kernel, padding=first_kernel // 2
        )
        self.down_blocks = WarpingGenerator.down_path(
            block_expansion, max_features, num_down_blocks
        )
        encoded = level_channels(block_expansion, max_features, num_down_blocks)
        self.second = nn.Conv2d(encoded, max_features, kernel_size=1)
        self.reshape_channel = reshape_channel
        self.reshape_depth = reshape_depth
        self.resblocks_3d = nn.Sequential()
        for i in range(num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(reshape_channel))
        out_features = block_expansion * (2**num_down_blocks)
        self.third = LeakySameBlock2d(max_features, out_features)
        self.fourth = nn.Conv2d(out_features, out_features, kernel_size=1)
        self.spade = spade
        if spade:
            if num_down_blocks != 2:
                raise ValueError("the SPADE decoder upsamples ×4: it needs num_down_blocks 2")
            self.decoder = SPADEDecoder(
                out_features, block_expansion, image_channel, hidden=2 * block_expansion
            )
        else:
            self.resblocks_2d = nn.Sequential()
            for i in range(num_resblocks):
                self.resblocks_2d.add_module(f"2dr{i}", ResBlock2d(out_features))
            self.up_blocks = nn.ModuleList(
                UpBlock2d(
                    max(block_expansion, block_expansion * (2 ** (num_down_blocks - i))),
                    max(block_expansion, block_expansion * (2 ** (num_down_blocks - i - 1))),
                )
                for i in range(num_down_blocks)
            )
            self.final = nn.Conv2d(block_expansion, image_channel, kernel_size=7, padding=3)
        self.estimate_occlusion_map = estimate_occlusion_map
        self.image_channel = image_channel

    def encode(self, source_image: torch.Tensor) -> torch.Tensor:
        """The source's feature volume ``(B, reshape_channel, reshape_depth, H/4, W/4)``."""
        out = self.first(source_image)
        for block in self.down_blocks:
            out = block(out)
        out = self.second(out)
        bs, _, h, w = out.shape
        out = out.view(bs, self.reshape_channel, self.reshape_depth, h, w)
        return self.resblocks_3d(out)

    @staticmethod
    def deform_input(inp: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
        """Warp a volume by a 3-D flow, resizing the flow (trilinear) to the volume's size."""
        if deformation.shape[1:4] != inp.shape[2:]:
            deformation = F.interpolate(
                deformation.permute(0, 4, 1, 2, 3),
                size=inp.shape[2:],
                mode="trilinear",
                align_corners=False,
            ).permute(0, 2, 3, 4, 1)
        return grid_sample(inp, deformation)

    def decode(self, out: torch.Tensor) -> torch.Tensor:
        """The image from the warped, occluded 2-D features."""
        if self.spade:
            return self.decoder(out)
        out = self.resblocks_2d(out)
        for block in self.up_blocks:
            out = block(out)
        return torch.sigmoid(self.final(out))

    def forward(
        self,
        source_image: torch.Tensor,
        kp_driving: Keypoints,
        kp_source: Keypoints,
        source_features: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Generate the driving frame; ``source_features`` = ``encode(source)`` may be passed
        to skip the encoder (one source, many driving frames)."""
        feature_3d = self.encode(source_image) if source_features is None else source_features
        output: dict[str, torch.Tensor] = {}
        out = feature_3d
        if self.dense_motion_network is not None:
            motion = self.dense_motion_network(
                feature=feature_3d, kp_driving=kp_driving, kp_source=kp_source
            )
            output["mask"] = motion["mask"]
            out = self.deform_input(feature_3d, motion["deformation"])
            bs, c, d, h, w = out.shape
            out = self.fourth(self.third(out.reshape(bs, c * d, h, w)))
            occlusion = motion.get("occlusion_map")
            if occlusion is not None:
                output["occlusion_map"] = occlusion
                if occlusion.shape[2:] != out.shape[2:]:
                    occlusion = F.interpolate(
                        occlusion, size=out.shape[2:], mode="bilinear", align_corners=False
                    )
                out = out * occlusion
        output["prediction"] = self.decode(out)
        return output


def build_generator(model_params: Mapping, generator_type: str = "spade") -> nn.Module:
    """``OcclusionAwareSPADEGenerator`` (``spade``) or ``OcclusionAwareGenerator``."""
    if generator_type not in GENERATOR_TYPES:
        raise ValueError(f"unknown generator_type {generator_type!r} (one of {GENERATOR_TYPES})")
    return OcclusionAwareGenerator(
        **model_params["generator_params"],
        **model_params["common_params"],
        spade=generator_type == "spade",
    )


def build_networks(
    model_params: Mapping, generator_type: str = "spade"
) -> tuple[KPDetector, HEEstimator, OcclusionAwareGenerator, MultiScaleDiscriminator]:
    """The four networks from a ``model_params`` dict laid out as upstream's YAML."""
    common = model_params["common_params"]
    kp_detector = KPDetector(**model_params["kp_detector_params"], **common)
    he_estimator = HEEstimator(**model_params["he_estimator_params"], **common)
    generator = build_generator(model_params, generator_type)
    discriminator = MultiScaleDiscriminator(**model_params["discriminator_params"], **common)
    return kp_detector, he_estimator, generator, discriminator
