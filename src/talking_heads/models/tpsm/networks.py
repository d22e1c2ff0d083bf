"""TPSM networks with the official module and parameter names (Thin-Plate-Spline-Motion-Model
``modules/``).

``KPDetector`` (a torchvision ResNet-18 regressing K groups of 5 control points),
``DenseMotionNetwork`` (K thin-plate-spline warps plus a background affine combined by
contribution maps, and multi-resolution occlusion masks), ``InpaintingNetwork`` (encoder whose
every level is warped and occluded, decoder with skips), ``BGMotionPredictor`` (ResNet-18 on
the source-driving pair → background affine) and ``AVDNetwork`` (animation via
disentanglement) are built from the same hyperparameter dicts as ``config/vox-256.yaml``; their
state dicts use the official keys, so the released ``vox.pth.tar`` sub-dicts load unchanged.

Every normalisation is ``InstanceNorm2d(affine=True)`` as upstream (``norm="instance"`` in the
shared blocks) except the ResNet-18s' and the AVD network's BatchNorms. Upstream passes
``align_corners=True`` to every ``grid_sample`` and flow ``interpolate`` of this method; so do
we.

Mixed precision (ours; upstream has none): the networks that output motion parameters (the
keypoint detector, the background predictor, the AVD network) and the thin-plate-spline solve
and warp run in float32 outside autocast. Control points computed in bf16 are off by up to
0.013 (normalised coordinates), which moves the TPS warps: on the demo the bf16 frames reach
a PSNR of 44.7 dB against fp32, 51.5 dB with these parts in float32, which cost under 2 % of
a frame's FLOPs at 256².
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from talking_heads.models.motion.avd import AVDCore
from talking_heads.models.motion.blocks import (
    AntiAliasInterpolation2d,
    DownBlock2d,
    Hourglass,
    ResBlock2d,
    SameBlock2d,
    UpBlock2d,
    grid_sample,
    kp2gaussian,
    make_coordinate_grid,
)

Keypoints = dict[str, torch.Tensor]

#: control points per thin-plate spline
POINTS_PER_TPS = 5


def _float32(device: torch.device):
    """A context running its body without autocast (float32 thin-plate-spline algebra)."""
    return torch.autocast(device.type, enabled=False)


def tps_kernel(squared_distance: torch.Tensor) -> torch.Tensor:
    """The thin-plate radial basis U = r²·log r², from r² (upstream's ``+1e-9`` inside the log)."""
    return squared_distance * torch.log(squared_distance + 1e-9)


class KeypointTPS:
    """Thin-plate splines mapping driving control points onto source control points (Eq. 2).

    ``kp_driving`` and ``kp_source`` are ``(B, G, n, 2)``: G independent splines of n control
    points each. The spline f(p) = A·[p, 1] + Σ_i w_i·U(|p − c_i|²), c_i the driving points,
    solves [[K, P], [Pᵀ, 0]] + λ·I times [w; A] = [source points; 0] by a matrix inverse as
    upstream, λ = ``regularisation`` (upstream's 0.01 on the whole 8×8 system: a smoothing
    spline, which does not interpolate its control points exactly; λ = 0 does).
    """

    def __init__(
        self, kp_driving: torch.Tensor, kp_source: torch.Tensor, regularisation: float = 0.01
    ) -> None:
        with _float32(kp_driving.device):
            kp_driving = kp_driving.float()
            kp_source = kp_source.float()
            bs, groups, n, _ = kp_driving.shape
            distance = torch.linalg.vector_norm(
                kp_driving[:, :, :, None] - kp_driving[:, :, None, :], dim=-1
            )
            kernel = tps_kernel(distance**2)
            ones = torch.ones(bs, groups, n, 1, dtype=kp_driving.dtype, device=kp_driving.device)
            affine_basis = torch.cat([kp_driving, ones], dim=3)  # (B, G, n, 3)
            zeros = kp_driving.new_zeros(bs, groups, 3, 3)
            system = torch.cat(
                [
                    torch.cat([kernel, affine_basis], dim=3),
                    torch.cat([affine_basis.transpose(2, 3), zeros], dim=3),
                ],
                dim=2,
            )
            system = system + regularisation * torch.eye(n + 3, device=system.device)
            target = torch.cat([kp_source, kp_driving.new_zeros(bs, groups, 3, 2)], dim=2)
            params = torch.matmul(torch.inverse(system), target)
        #: (B, G, 2, 3) affine part; (B, G, n, 2) radial weights; (B, G, n, 2) control points
        self.theta = params[:, :, n:, :].transpose(2, 3)
        self.control_params = params[:, :, :n, :]
        self.control_points = kp_driving
        self.groups = groups

    def warp_coordinates(self, coordinates: torch.Tensor) -> torch.Tensor:
        """Map ``(1 or B, N, 2)`` points through every spline → ``(B, G, N, 2)``."""
        with _float32(coordinates.device):
            coordinates = coordinates.float()
            bs = self.theta.shape[0]
            affine = torch.matmul(self.theta[..., :2], coordinates.transpose(1, 2).unsqueeze(1))
            affine = affine + self.theta[..., 2:]  # (B, G, 2, N)
            offsets = coordinates.view(
                coordinates.shape[0], 1, 1, -1, 2
            ) - self.control_points.view(bs, self.groups, -1, 1, 2)
            radial = tps_kernel((offsets**2).sum(-1))  # (B, G, n, N)
            radial = torch.matmul(radial.transpose(2, 3), self.control_params)
            return affine.transpose(2, 3) + radial

    def transform_frame(self, spatial_size: Sequence[int]) -> torch.Tensor:
        """Sampling grids ``(B, G, H, W, 2)``: for each driving pixel its source position."""
        h, w = int(spatial_size[0]), int(spatial_size[1])
        grid = make_coordinate_grid((h, w), torch.float32, self.theta.device).view(1, h * w, 2)
        return self.warp_coordinates(grid).view(self.theta.shape[0], self.groups, h, w, 2)


class RandomTPS:
    """Random affine + thin-plate-spline warp for the equivariance loss (upstream's
    ``TPS(mode='random')``).

    Differs from :class:`talking_heads.models.motion.blocks.Transform` (FOMM's) in the radial
    basis: upstream TPSM uses r²·log(r² + 1e-9) of the Euclidean distance, FOMM |d|₁²·log(|d|₁ +
    1e-6) of the L1 distance. The parameters draw from torch's global CPU generator (affine
    noise, then spline weights), as upstream.
    """

    def __init__(
        self,
        batch_size: int,
        *,
        sigma_affine: float,
        sigma_tps: float,
        points_tps: int,
        device: torch.device | str = "cpu",
    ) -> None:
        noise = torch.normal(mean=0, std=sigma_affine * torch.ones(batch_size, 2, 3))
        self.theta = (noise + torch.eye(2, 3).view(1, 2, 3)).to(device)
        self.control_points = make_coordinate_grid((points_tps, points_tps), device=device).view(
            1, 1, -1, 2
        )
        self.control_params = torch.normal(
            mean=0, std=sigma_tps * torch.ones(batch_size, 1, points_tps**2)
        ).to(device)
        self.bs = batch_size

    def warp_coordinates(self, coordinates: torch.Tensor) -> torch.Tensor:
        """Map ``(1 or B, N, 2)`` points → ``(B, N, 2)``."""
        theta = self.theta.to(coordinates.dtype).unsqueeze(1)
        warped = torch.matmul(theta[..., :2], coordinates.unsqueeze(-1)) + theta[..., 2:]
        warped = warped.squeeze(-1)
        offsets = coordinates.view(coordinates.shape[0], -1, 1, 2) - self.control_points.to(
            coordinates.dtype
        )
        radial = tps_kernel((offsets**2).sum(-1)) * self.control_params.to(coordinates.dtype)
        return warped + radial.sum(dim=2).view(self.bs, coordinates.shape[1], 1)

    def transform_frame(self, frame: torch.Tensor) -> torch.Tensor:
        """``frame`` ``(B, C, H, W)`` resampled through the warp (reflection padding)."""
        h, w = frame.shape[2:]
        grid = make_coordinate_grid((h, w), frame.dtype, frame.device).view(1, h * w, 2)
        grid = self.warp_coordinates(grid).view(self.bs, h, w, 2)
        return grid_sample(frame, grid, align_corners=True, padding_mode="reflection")


def _resnet18(in_channels: int, outputs: int) -> nn.Module:
    """torchvision's ResNet-18 without pretrained weights, ``in_channels`` → ``outputs``
    (modules created in upstream's order, so a seed gives upstream's initialisation)."""
    resnet = torchvision.models.resnet18(weights=None)
    if in_channels != 3:
        resnet.conv1 = nn.Conv2d(
            in_channels, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False
        )
    resnet.fc = nn.Linear(resnet.fc.in_features, outputs)
    return resnet


class KPDetector(nn.Module):
    """K·5 control points in [-1, 1]: ResNet-18 on the full image, sigmoid·2 − 1 (float32
    under autocast)."""

    def __init__(self, num_tps: int, **_: Any) -> None:
        super().__init__()
        self.num_tps = num_tps
        self.fg_encoder = _resnet18(3, num_tps * POINTS_PER_TPS * 2)

    def forward(self, image: torch.Tensor) -> Keypoints:
        with _float32(image.device):
            fg_kp = torch.sigmoid(self.fg_encoder(image.float())) * 2 - 1
        return {"fg_kp": fg_kp.view(image.shape[0], self.num_tps * POINTS_PER_TPS, 2)}


class BGMotionPredictor(nn.Module):
    """Background affine (3×3, last row 0 0 1) from the (source, driving) pair; ResNet-18 with
    a 6-channel input, its head initialised to the identity (float32 under autocast)."""

    def __init__(self) -> None:
        super().__init__()
        self.bg_encoder = _resnet18(6, 6)
        with torch.no_grad():
            self.bg_encoder.fc.weight.zero_()
            self.bg_encoder.fc.bias.copy_(torch.tensor([1.0, 0, 0, 0, 1, 0]))

    def forward(self, source_image: torch.Tensor, driving_image: torch.Tensor) -> torch.Tensor:
        bs = source_image.shape[0]
        with _float32(source_image.device):
            pair = torch.cat([source_image, driving_image], dim=1).float()
            prediction = self.bg_encoder(pair)
        last_row = torch.tensor([0.0, 0.0, 1.0], device=prediction.device).expand(bs, 1, 3)
        return torch.cat([prediction.view(bs, 2, 3), last_row.to(prediction.dtype)], dim=1)


class AVDNetwork(AVDCore):
    """Animation via disentanglement: the source's identity code and the driving pose code
    decode to new control points (float32 under autocast;
    :class:`~talking_heads.models.motion.avd.AVDCore` over 5·K·2 values)."""

    def __init__(self, num_tps: int, id_bottle_size: int = 64, pose_bottle_size: int = 64) -> None:
        super().__init__(POINTS_PER_TPS * 2 * num_tps, id_bottle_size, pose_bottle_size)
        self.num_tps = num_tps

    def forward(self, kp_source: Keypoints, kp_random: Keypoints) -> Keypoints:
        bs = kp_source["fg_kp"].shape[0]
        with _float32(kp_source["fg_kp"].device):
            rec = self.decode(
                kp_source["fg_kp"].reshape(bs, -1).float(),
                kp_random["fg_kp"].reshape(bs, -1).float(),
            )
        return {"fg_kp": rec.view(bs, self.num_tps * POINTS_PER_TPS, -1)}


class MultiLevelHourglass(Hourglass):
    """InstanceNorm hourglass returning every decoder level (upstream's ``mode=1``).

    ``out_channels`` lists, as upstream, the first up block's input channels and then the
    channels of each returned level (coarsest first; the last is ``out_filters``).
    """

    def __init__(
        self, block_expansion: int, in_features: int, num_blocks: int, max_features: int
    ) -> None:
        super().__init__(block_expansion, in_features, num_blocks, max_features, norm="instance")
        self.out_channels = [
            (1 if i == num_blocks - 1 else 2) * min(max_features, block_expansion * 2 ** (i + 1))
            for i in reversed(range(num_blocks))
        ] + [self.out_filters]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.encoder(x)
        out = features.pop()
        levels = []
        for block in self.decoder.up_blocks:
            out = torch.cat([block(out), features.pop()], dim=1)
            levels.append(out)
        return levels


def to_homogeneous(coordinates: torch.Tensor) -> torch.Tensor:
    """Append a 1 to the last dimension."""
    return torch.cat([coordinates, torch.ones_like(coordinates[..., :1])], dim=-1)


def from_homogeneous(coordinates: torch.Tensor) -> torch.Tensor:
    """Divide by, and drop, the last coordinate."""
    return coordinates[..., :2] / coordinates[..., 2:3]


def dropout_softmax(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Softmax over the K+1 contribution maps with each TPS map dropped with probability ``p``
    (Eq. 7-8); the background map (channel 0) is never dropped.

    As upstream, the drop mask draws from torch's global CPU generator and the denominator has
    ``+1e-6``. Upstream also divides the logits by (1 − p) *after* exponentiating them, which
    changes nothing; that no-op is left out.
    """
    bs, maps = logits.shape[:2]
    keep = (torch.rand(bs, maps) < (1 - p)).to(logits.device, logits.dtype)
    keep[:, 0] = 1
    exp = (logits - logits.max(1, keepdim=True).values).exp() * keep.view(bs, maps, 1, 1)
    return exp / (exp.sum(dim=1, keepdim=True) + 1e-6)


class DenseMotionNetwork(nn.Module):
    """Optical flow and multi-resolution occlusion masks from K TPS warps and a background
    affine, at ``scale_factor`` of the input resolution."""

    #: occlusion masks with ``multi_mask`` (one per inpainting level)
    OCCLUSION_NUM = 4

    def __init__(
        self,
        block_expansion: int,
        num_blocks: int,
        max_features: int,
        num_tps: int,
        num_channels: int,
        scale_factor: float = 0.25,
        bg: bool = False,
        multi_mask: bool = True,
        kp_variance: float = 0.01,
    ) -> None:
        super().__init__()
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)
        self.scale_factor = scale_factor
        self.multi_mask = multi_mask
        self.hourglass = MultiLevelHourglass(
            block_expansion,
            in_features=num_channels * (num_tps + 1) + num_tps * POINTS_PER_TPS + 1,
            num_blocks=num_blocks,
            max_features=max_features,
        )
        channels = self.hourglass.out_channels
        self.maps = nn.Conv2d(channels[-1], num_tps + 1, kernel_size=(7, 7), padding=(3, 3))
        if multi_mask:
            self.up_nums = int(math.log(1 / scale_factor, 2))
            self.occlusion_num = self.OCCLUSION_NUM
            self.up = nn.ModuleList(
                UpBlock2d(channels[-1] // 2**i, channels[-1] // 2 ** (i + 1), norm="instance")
                for i in range(self.up_nums)
            )
            from_hourglass = self.occlusion_num - self.up_nums
            mask_inputs = [channels[-1 - i] for i in reversed(range(from_hourglass))] + [
                channels[-1] // 2 ** (i + 1) for i in range(self.up_nums)
            ]
        else:
            self.up_nums = 0
            self.occlusion_num = 1
            mask_inputs = [channels[-1]]
        self.occlusion = nn.ModuleList(
            nn.Conv2d(c, 1, kernel_size=(7, 7), padding=(3, 3)) for c in mask_inputs
        )
        self.num_tps = num_tps
        self.bg = bg
        self.kp_variance = kp_variance

    def downsample(self, source_image: torch.Tensor) -> torch.Tensor:
        """The source at the network's working resolution (anti-aliased)."""
        return self.down(source_image) if self.scale_factor != 1 else source_image

    def create_heatmap_representations(
        self, source_image: torch.Tensor, kp_driving: Keypoints, kp_source: Keypoints
    ) -> torch.Tensor:
        """Gaussian(driving) − Gaussian(source) per control point, a zero map first."""
        size = source_image.shape[2:]
        heatmap = kp2gaussian(kp_driving["fg_kp"], size, self.kp_variance) - kp2gaussian(
            kp_source["fg_kp"], size, self.kp_variance
        )
        zeros = heatmap.new_zeros(heatmap.shape[0], 1, *size)
        return torch.cat([zeros, heatmap], dim=1)

    def create_transformations(
        self,
        source_image: torch.Tensor,
        kp_driving: Keypoints,
        kp_source: Keypoints,
        bg_param: torch.Tensor | None,
    ) -> torch.Tensor:
        """``(B, K+1, H, W, 2)``: the background (identity or ``bg_param`` affine) then the K
        TPS warps, each mapping driving positions to source positions."""
        bs, _, h, w = source_image.shape
        kp_1 = kp_driving["fg_kp"].reshape(bs, -1, POINTS_PER_TPS, 2)
        kp_2 = kp_source["fg_kp"].reshape(bs, -1, POINTS_PER_TPS, 2)
        driving_to_source = KeypointTPS(kp_1, kp_2).transform_frame((h, w))
        identity = make_coordinate_grid((h, w), driving_to_source.dtype, source_image.device)
        identity = identity.view(1, 1, h, w, 2).repeat(bs, 1, 1, 1, 1)
        if bg_param is not None:
            with _float32(source_image.device):
                affine = bg_param.float().view(bs, 1, 1, 1, 3, 3)
                identity = torch.matmul(affine, to_homogeneous(identity).unsqueeze(-1))
                identity = from_homogeneous(identity.squeeze(-1))
        return torch.cat([identity, driving_to_source], dim=1)

    def create_deformed_source_image(
        self, source_image: torch.Tensor, transformations: torch.Tensor
    ) -> torch.Tensor:
        """The source warped by each of the K+1 transformations, ``(B, K+1, C, H, W)``."""
        bs, c, h, w = source_image.shape
        maps = self.num_tps + 1
        repeated = source_image.unsqueeze(1).expand(bs, maps, c, h, w).reshape(bs * maps, c, h, w)
        grids = transformations.reshape(bs * maps, h, w, 2).to(repeated.dtype)
        deformed = grid_sample(repeated, grids, align_corners=True)
        return deformed.view(bs, maps, c, h, w)

    def forward(
        self,
        source_image: torch.Tensor,
        kp_driving: Keypoints,
        kp_source: Keypoints,
        bg_param: torch.Tensor | None = None,
        dropout_flag: bool = False,
        dropout_p: float = 0.0,
        *,
        source_downsampled: torch.Tensor | None = None,
    ) -> dict[str, Any]:
        """Flow ``deformation`` ``(B, H', W', 2)``, ``contribution_maps``, ``deformed_source``
        and the ``occlusion_map`` list (coarsest first). ``source_downsampled`` =
        :meth:`downsample` of the source may be passed to skip that step."""
        if source_downsampled is None:
            source_downsampled = self.downsample(source_image)
        source_image = source_downsampled
        bs, _, h, w = source_image.shape
        heatmap = self.create_heatmap_representations(source_image, kp_driving, kp_source)
        transformations = self.create_transformations(source_image, kp_driving, kp_source, bg_param)
        deformed_source = self.create_deformed_source_image(source_image, transformations)
        out: dict[str, Any] = {"deformed_source": deformed_source}
        inputs = torch.cat(
            [heatmap.to(deformed_source.dtype), deformed_source.view(bs, -1, h, w)], 1
        )
        prediction = self.hourglass(inputs)

        logits = self.maps(prediction[-1])
        if dropout_flag:
            contribution_maps = dropout_softmax(logits, dropout_p)
        else:
            contribution_maps = F.softmax(logits, dim=1)
        out["contribution_maps"] = contribution_maps
        deformation = (transformations.permute(0, 1, 4, 2, 3) * contribution_maps.unsqueeze(2)).sum(
            dim=1
        )
        out["deformation"] = deformation.permute(0, 2, 3, 1)

        occlusion_map = []
        from_hourglass = self.occlusion_num - self.up_nums
        for i in range(from_hourglass):
            level = prediction[len(prediction) - from_hourglass + i]
            occlusion_map.append(torch.sigmoid(self.occlusion[i](level)))
        level = prediction[-1]
        for i in range(self.up_nums):
            level = self.up[i](level)
            occlusion_map.append(torch.sigmoid(self.occlusion[from_hourglass + i](level)))
        out["occlusion_map"] = occlusion_map
        return out


class InpaintingNetwork(nn.Module):
    """Encode the source, warp and occlude every encoder level by the dense motion, decode
    with 2 ResBlocks + UpBlock per level and the warped skips, blend with the warped source by
    the last occlusion mask."""

    def __init__(
        self,
        num_channels: int,
        block_expansion: int,
        max_features: int,
        num_down_blocks: int,
        multi_mask: bool = True,
        **_: Any,
    ) -> None:
        super().__init__()
        self.num_down_blocks = num_down_blocks
        self.multi_mask = multi_mask
        self.first = SameBlock2d(
            num_channels, block_expansion, kernel_size=7, padding=3, norm="instance"
        )
        down_blocks, up_blocks, resblock = [], [], []
        for i in range(num_down_blocks):
            in_features = min(max_features, block_expansion * 2**i)
            out_features = min(max_features, block_expansion * 2 ** (i + 1))
            down_blocks.append(DownBlock2d(in_features, out_features, norm="instance"))
            decoder_in = out_features if i == num_down_blocks - 1 else out_features * 2
            up_blocks.append(UpBlock2d(decoder_in, in_features, norm="instance"))
            resblock += [ResBlock2d(decoder_in, norm="instance") for _ in range(2)]
        self.down_blocks = nn.ModuleList(down_blocks)
        self.up_blocks = nn.ModuleList(up_blocks[::-1])
        self.resblock = nn.ModuleList(resblock[::-1])
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=(7, 7), padding=(3, 3))
        self.num_channels = num_channels

    @staticmethod
    def deform_input(inp: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
        """Warp ``inp`` by a flow field, resized bilinearly (align_corners=True) to its size."""
        h, w = inp.shape[2:]
        if deformation.shape[1:3] != (h, w):
            deformation = F.interpolate(
                deformation.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=True
            ).permute(0, 2, 3, 1)
        return grid_sample(inp, deformation.to(inp.dtype), align_corners=True)

    def occlude_input(self, inp: torch.Tensor, occlusion_map: torch.Tensor) -> torch.Tensor:
        """``inp`` times the mask (resized bilinearly, align_corners=True, without multi_mask)."""
        if not self.multi_mask and occlusion_map.shape[2:] != inp.shape[2:]:
            occlusion_map = F.interpolate(
                occlusion_map, size=inp.shape[2:], mode="bilinear", align_corners=True
            )
        return inp * occlusion_map

    def mask_for_level(self, occlusion_map: Sequence[torch.Tensor], level: int) -> torch.Tensor:
        """The mask of decoder level ``level`` (0: the bottleneck); one mask without multi_mask."""
        return occlusion_map[level] if self.multi_mask else occlusion_map[0]

    def encode(self, source_image: torch.Tensor) -> list[torch.Tensor]:
        """The source's encoder features, finest first (``first`` then each down block)."""
        out = self.first(source_image)
        encoder_maps = [out]
        for block in self.down_blocks:
            out = block(out)
            encoder_maps.append(out)
        return encoder_maps

    def _warp_level(
        self, features: torch.Tensor, deformation: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Warped and occluded features, and the copy for the warp loss (gradient through the
        flow only: features and mask detached, as upstream)."""
        warped = self.occlude_input(self.deform_input(features, deformation), mask)
        if torch.is_grad_enabled():
            for_loss = self.occlude_input(
                self.deform_input(features.detach(), deformation), mask.detach()
            )
        else:
            for_loss = warped
        return warped, for_loss

    def forward(
        self,
        source_image: torch.Tensor,
        dense_motion: dict[str, Any],
        encoder_maps: list[torch.Tensor] | None = None,
    ) -> dict[str, Any]:
        """``prediction`` ``(B, C, H, W)`` in [0, 1] plus the intermediate outputs upstream
        returns; ``encoder_maps`` = :meth:`encode` of the source may be passed to skip it."""
        if encoder_maps is None:
            encoder_maps = self.encode(source_image)
        occlusion_map = dense_motion["occlusion_map"]
        deformation = dense_motion["deformation"]
        output: dict[str, Any] = {
            "contribution_maps": dense_motion["contribution_maps"],
            "deformed_source": dense_motion["deformed_source"],
            "occlusion_map": occlusion_map,
        }
        out, for_loss = self._warp_level(
            encoder_maps[-1], deformation, self.mask_for_level(occlusion_map, 0)
        )
        warped_encoder_maps = [for_loss]
        skip = out
        for i in range(self.num_down_blocks):
            out = self.resblock[2 * i + 1](self.resblock[2 * i](out))
            out = self.up_blocks[i](out)
            skip, for_loss = self._warp_level(
                encoder_maps[-(i + 2)], deformation, self.mask_for_level(occlusion_map, i + 1)
            )
            warped_encoder_maps.append(for_loss)
            if i < self.num_down_blocks - 1:
                out = torch.cat([out, skip], dim=1)

        deformed_source = self.deform_input(source_image, deformation)
        output["deformed"] = deformed_source
        output["warped_encoder_maps"] = warped_encoder_maps
        occlusion_last = occlusion_map[-1]
        if not self.multi_mask:
            occlusion_last = F.interpolate(
                occlusion_last, size=out.shape[2:], mode="bilinear", align_corners=True
            )
        out = out * (1 - occlusion_last) + skip
        out = torch.sigmoid(self.final(out))
        output["prediction"] = out * (1 - occlusion_last) + deformed_source * occlusion_last
        return output

    def encode_driving(
        self, driving_image: torch.Tensor, occlusion_map: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        """The driving frame's encoder features, each occluded by the mask of its level, finest
        first, all without gradient (upstream's ``get_encode``, the warp loss's target).

        Upstream indexes the masks as ``occlusion_map[2 - i]``, i.e. for three down blocks;
        here the level's mask is found for any depth (the same masks for three)."""
        with torch.no_grad():
            out = self.first(driving_image)
            last = self.num_down_blocks
            encoded = [self.occlude_input(out, self.mask_for_level(occlusion_map, last))]
            for i, block in enumerate(self.down_blocks):
                out = block(out)
                mask = self.mask_for_level(occlusion_map, last - 1 - i)
                encoded.append(self.occlude_input(out, mask))
        return encoded


def build_networks(model_params: dict) -> dict[str, nn.Module]:
    """The networks from a ``model_params`` dict laid out as upstream's YAML: ``kp_detector``,
    ``dense_motion_network``, ``inpainting_network``, ``bg_predictor`` (when
    ``common_params.bg``) and ``avd_network``, created in ``run.py``'s order."""
    common = model_params["common_params"]
    networks: dict[str, nn.Module] = {
        "inpainting_network": InpaintingNetwork(**model_params["generator_params"], **common),
        "kp_detector": KPDetector(**common),
        "dense_motion_network": DenseMotionNetwork(**common, **model_params["dense_motion_params"]),
    }
    if common.get("bg", False):
        networks["bg_predictor"] = BGMotionPredictor()
    networks["avd_network"] = AVDNetwork(
        num_tps=common["num_tps"], **model_params.get("avd_network_params", {})
    )
    return networks
