"""FOMM's keypoint networks (first-order-model ``modules/keypoint_detector.py``,
``dense_motion.py``, ``generator.py``), the base the lineage builds on: FOMM uses them as they
are, DaGAN extends the keypoint detector and the generator, MRAA reuses the detector's heads.

``KPDetector`` (keypoints + local affine Jacobians), ``DenseMotionNetwork`` and
``OcclusionAwareGenerator`` keep upstream's module and parameter names, so the released
checkpoints' sub-dicts load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talking_heads.models.motion.blocks import (
    AntiAliasInterpolation2d,
    Hourglass,
    WarpingGenerator,
    grid_sample,
    kp2gaussian,
    make_coordinate_grid,
)

__all__ = ["DenseMotionNetwork", "KPDetector", "Keypoints", "OcclusionAwareGenerator"]

Keypoints = dict[str, torch.Tensor]


class KPDetector(nn.Module):
    """Keypoints as soft-argmax of hourglass heatmaps; Jacobians heatmap-weighted.

    ``pad`` is the padding of the 7×7 heads: 0 in FOMM (58² heatmaps at 256²), 3 in MRAA.
    """

    def __init__(
        self,
        block_expansion: int,
        num_kp: int,
        num_channels: int,
        max_features: int,
        num_blocks: int,
        temperature: float,
        estimate_jacobian: bool = False,
        scale_factor: float = 1,
        single_jacobian_map: bool = False,
        pad: int = 0,
    ) -> None:
        super().__init__()
        self.predictor = Hourglass(
            block_expansion,
            in_features=num_channels,
            max_features=max_features,
            num_blocks=num_blocks,
        )
        self.kp = nn.Conv2d(self.predictor.out_filters, num_kp, kernel_size=7, padding=pad)
        if estimate_jacobian:
            self.num_jacobian_maps = 1 if single_jacobian_map else num_kp
            self.jacobian = nn.Conv2d(
                self.predictor.out_filters, 4 * self.num_jacobian_maps, kernel_size=7, padding=pad
            )
            with torch.no_grad():
                self.jacobian.weight.zero_()
                self.jacobian.bias.copy_(torch.tensor([1.0, 0, 0, 1] * self.num_jacobian_maps))
        else:
            self.jacobian = None
        self.temperature = temperature
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    @staticmethod
    def gaussian2kp(heatmap: torch.Tensor) -> torch.Tensor:
        """Expected (x, y) under each normalised heatmap ``(B, K, H, W)`` → ``(B, K, 2)``."""
        grid = make_coordinate_grid(heatmap.shape[2:], heatmap.dtype, heatmap.device)
        return (heatmap.unsqueeze(-1) * grid[None, None]).sum(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> Keypoints:
        if self.scale_factor != 1:
            x = self.down(x)
        feature_map = self.predictor(x)
        prediction = self.kp(feature_map)
        b, k, h, w = prediction.shape
        heatmap = F.softmax(prediction.view(b, k, -1) / self.temperature, dim=2).view(b, k, h, w)
        out = {"value": self.gaussian2kp(heatmap)}
        if self.jacobian is not None:
            jacobian_map = self.jacobian(feature_map).reshape(b, self.num_jacobian_maps, 4, h, w)
            jacobian = (heatmap.unsqueeze(2) * jacobian_map).view(b, k, 4, -1).sum(dim=-1)
            out["jacobian"] = jacobian.view(b, k, 2, 2)
        return out


class DenseMotionNetwork(nn.Module):
    """Dense flow and occlusion from K+1 sparse motions (background + first-order keypoints)."""

    def __init__(
        self,
        block_expansion: int,
        num_blocks: int,
        max_features: int,
        num_kp: int,
        num_channels: int,
        estimate_occlusion_map: bool = False,
        scale_factor: float = 1,
        kp_variance: float = 0.01,
    ) -> None:
        super().__init__()
        self.hourglass = Hourglass(
            block_expansion,
            in_features=(num_kp + 1) * (num_channels + 1),
            max_features=max_features,
            num_blocks=num_blocks,
        )
        self.mask = nn.Conv2d(self.hourglass.out_filters, num_kp + 1, kernel_size=7, padding=3)
        self.occlusion = (
            nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=7, padding=3)
            if estimate_occlusion_map
            else None
        )
        self.num_kp = num_kp
        self.scale_factor = scale_factor
        self.kp_variance = kp_variance
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def create_heatmap_representations(
        self, source: torch.Tensor, kp_driving: Keypoints, kp_source: Keypoints
    ) -> torch.Tensor:
        size = source.shape[2:]
        heatmap = kp2gaussian(kp_driving["value"], size, self.kp_variance) - kp2gaussian(
            kp_source["value"], size, self.kp_variance
        )
        zeros = torch.zeros(heatmap.shape[0], 1, *size, dtype=heatmap.dtype, device=heatmap.device)
        return torch.cat([zeros, heatmap], dim=1).unsqueeze(2)

    def create_sparse_motions(
        self, source: torch.Tensor, kp_driving: Keypoints, kp_source: Keypoints
    ) -> torch.Tensor:
        bs, _, h, w = source.shape
        identity = make_coordinate_grid((h, w), kp_source["value"].dtype, source.device).view(
            1, 1, h, w, 2
        )
        grid = identity - kp_driving["value"].view(bs, self.num_kp, 1, 1, 2)
        if "jacobian" in kp_driving:
            jacobian = torch.matmul(kp_source["jacobian"], torch.inverse(kp_driving["jacobian"]))
            jacobian = jacobian.unsqueeze(-3).unsqueeze(-3)
            grid = torch.matmul(jacobian, grid.unsqueeze(-1)).squeeze(-1)
        driving_to_source = grid + kp_source["value"].view(bs, self.num_kp, 1, 1, 2)
        return torch.cat([identity.expand(bs, 1, h, w, 2), driving_to_source], dim=1)

    def create_deformed_source_image(
        self, source: torch.Tensor, sparse_motions: torch.Tensor
    ) -> torch.Tensor:
        bs, c, h, w = source.shape
        repeated = source.unsqueeze(1).expand(bs, self.num_kp + 1, c, h, w)
        repeated = repeated.reshape(bs * (self.num_kp + 1), c, h, w)
        motions = sparse_motions.reshape(bs * (self.num_kp + 1), h, w, 2)
        return grid_sample(repeated, motions).view(bs, self.num_kp + 1, c, h, w)

    def forward(
        self, source_image: torch.Tensor, kp_driving: Keypoints, kp_source: Keypoints
    ) -> dict[str, torch.Tensor]:
        if self.scale_factor != 1:
            source_image = self.down(source_image)
        bs, _, h, w = source_image.shape
        heatmaps = self.create_heatmap_representations(source_image, kp_driving, kp_source)
        sparse_motion = self.create_sparse_motions(source_image, kp_driving, kp_source)
        deformed = self.create_deformed_source_image(source_image, sparse_motion)
        prediction = self.hourglass(torch.cat([heatmaps, deformed], dim=2).view(bs, -1, h, w))
        mask = F.softmax(self.mask(prediction), dim=1)
        deformation = (sparse_motion.permute(0, 1, 4, 2, 3) * mask.unsqueeze(2)).sum(dim=1)
        out = {
            "sparse_deformed": deformed,
            "mask": mask,
            "deformation": deformation.permute(0, 2, 3, 1),
        }
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(prediction))
        return out


class OcclusionAwareGenerator(WarpingGenerator):
    """Encoder → warp by the dense motion → occlusion mask → residual bottleneck → decoder."""

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
        super().__init__()
        self.dense_motion_network = (
            DenseMotionNetwork(
                num_kp=num_kp,
                num_channels=num_channels,
                estimate_occlusion_map=estimate_occlusion_map,
                **dense_motion_params,
            )
            if dense_motion_params is not None
            else None
        )
        self.build_trunk(
            num_channels, block_expansion, max_features, num_down_blocks, num_bottleneck_blocks
        )
        self.estimate_occlusion_map = estimate_occlusion_map

    def encode(self, source_image: torch.Tensor) -> torch.Tensor:
        """The source's encoder features (``first`` + down blocks), before warping."""
        out = self.first(source_image)
        for block in self.down_blocks:
            out = block(out)
        return out

    def forward(
        self,
        source_image: torch.Tensor,
        kp_driving: Keypoints,
        kp_source: Keypoints,
        source_features: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Generate the driving frame from the source; ``source_features`` = ``encode(source)``
        may be passed to skip the encoder (inference with one source, many driving frames)."""
        out = self.encode(source_image) if source_features is None else source_features
        return self.generate(source_image, out, kp_driving, kp_source)

    def refine_warped(self, features: torch.Tensor, **context: torch.Tensor) -> torch.Tensor:
        """The warped, occluded source features before the bottleneck (unchanged here; a
        subclass may transform them using the ``context`` passed to :meth:`generate`)."""
        return features

    def generate(
        self,
        source_image: torch.Tensor,
        source_features: torch.Tensor,
        kp_driving: Keypoints,
        kp_source: Keypoints,
        **context: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Warp ``source_features`` by the dense motion, mask them by the occlusion map,
        :meth:`refine_warped` them (with ``context``), then the bottleneck and decoder."""
        out = source_features
        output: dict[str, torch.Tensor] = {}
        if self.dense_motion_network is not None:
            motion = self.dense_motion_network(
                source_image=source_image, kp_driving=kp_driving, kp_source=kp_source
            )
            output["mask"] = motion["mask"]
            output["sparse_deformed"] = motion["sparse_deformed"]
            out = self.deform_input(out, motion["deformation"])
            occlusion = motion.get("occlusion_map")
            if occlusion is not None:
                output["occlusion_map"] = occlusion
                if occlusion.shape[2:] != out.shape[2:]:
                    occlusion = F.interpolate(
                        occlusion, size=out.shape[2:], mode="bilinear", align_corners=False
                    )
                out = out * occlusion
            out = self.refine_warped(out, **context)
            output["deformed"] = self.deform_input(source_image, motion["deformation"])
        out = self.bottleneck(out)
        for block in self.up_blocks:
            out = block(out)
        output["prediction"] = torch.sigmoid(self.final(out))
        return output
