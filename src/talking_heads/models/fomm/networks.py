"""FOMM networks with the official module and parameter names (first-order-model ``modules/``).

``KPDetector`` (keypoints + local affine Jacobians), ``DenseMotionNetwork``,
``OcclusionAwareGenerator`` and ``MultiScaleDiscriminator`` are built from the same
hyperparameter dicts as ``config/vox-256.yaml``, and their state dicts use the official keys,
so the released ``vox-cpk.pth.tar`` sub-dicts load without renaming.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from talking_heads.models.motion.blocks import (  # noqa: F401 (re-exported, as before)
    AntiAliasInterpolation2d,
    DownBlock2d,
    Hourglass,
    ResBlock2d,
    SameBlock2d,
    UpBlock2d,
    WarpingGenerator,
    grid_sample,
    kp2gaussian,
    make_coordinate_grid,
)

Keypoints = dict[str, torch.Tensor]

#: ``model_params`` of first-order-model's ``config/vox-256.yaml`` (vox-cpk.pth.tar).
VOX256_MODEL_PARAMS: dict = {
    "common_params": {"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
    "kp_detector_params": {
        "temperature": 0.1,
        "block_expansion": 32,
        "max_features": 1024,
        "scale_factor": 0.25,
        "num_blocks": 5,
    },
    "generator_params": {
        "block_expansion": 64,
        "max_features": 512,
        "num_down_blocks": 2,
        "num_bottleneck_blocks": 6,
        "estimate_occlusion_map": True,
        "dense_motion_params": {
            "block_expansion": 64,
            "max_features": 1024,
            "num_blocks": 5,
            "scale_factor": 0.25,
        },
    },
    "discriminator_params": {
        "scales": [1],
        "block_expansion": 32,
        "max_features": 512,
        "num_blocks": 4,
        "sn": True,
    },
}


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


def build_networks(
    model_params: dict,
) -> tuple[KPDetector, OcclusionAwareGenerator, MultiScaleDiscriminator]:
    """The three networks from a ``model_params`` dict laid out as upstream's YAML."""
    common = model_params["common_params"]
    kp_detector = KPDetector(**model_params["kp_detector_params"], **common)
    generator = OcclusionAwareGenerator(**model_params["generator_params"], **common)
    discriminator = MultiScaleDiscriminator(**model_params["discriminator_params"], **common)
    return kp_detector, generator, discriminator
