"""MRAA networks with the official module and parameter names (articulated-animation ``modules/``).

``RegionPredictor`` (regions as heatmaps; shift = heatmap mean, affine = square root of the
heatmap covariance by SVD, the "PCA" representation), ``BGMotionPredictor`` (one affine
background motion from source ‖ driving), ``PixelwiseFlowPredictor`` (dense flow and occlusion
from K region motions + the background motion, covariance-shaped Gaussian heatmaps),
``Generator`` (FOMM's encoder-decoder with occlusion-weighted warped skips at every level) and
``AVDNetwork`` (animation via disentanglement: identity/pose MLP auto-encoder of the region
parameters) are built from the same hyperparameter dicts as ``config/vox256.yaml``; their state
dicts use the official keys, so the released ``vox256.pth`` sub-dicts load without renaming.

Deviations (none changes a value in fp32):

- The SVD runs on the CPU in float32 (float64 stays float64), as upstream's default
  (``fast_svd: False``: ``torch.svd(covar.cpu())``); ``torch.linalg.svd`` gives the same U and
  singular values.
  ``fast_svd: True`` (upstream: the ``torch-batch-svd`` CUDA extension, not a dependency here)
  runs ``torch.linalg.svd`` on the covariance's own device instead.
- Under autocast (``amp``) the region predictor (2 % of the FLOPs at vox256) and the 2×2
  inverses stay in float32: the temperature-0.1 softmax turns half-precision logits into
  visibly different regions, whose square roots and inverses amplify it (bf16 autocast on the
  demo model: 31.9 dB PSNR against fp32 with a bf16 region predictor, 44.7 dB with it in
  float32).
- ``u`` and ``d`` of the region parameters are returned as ``(B, K, 2, 2)`` (upstream leaves
  them flattened to ``(B·K, 2, 2)``; nothing reads them but the visualiser).
- ``AVDNetwork.forward`` drops upstream's unused ``alpha`` argument.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from talking_heads.models.motion.avd import AVDCore
from talking_heads.models.motion.blocks import (
    AntiAliasInterpolation2d,
    Encoder,
    Hourglass,
    WarpingGenerator,
    grid_sample,
    make_coordinate_grid,
)

RegionParams = dict[str, torch.Tensor]


@contextlib.contextmanager
def full_precision(tensor: torch.Tensor) -> Iterator[None]:
    """Autocast off on ``tensor``'s device (the small region maths stays in float32)."""
    with torch.autocast(tensor.device.type, enabled=False):
        yield


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """Half-precision tensors as float32; float32 and float64 unchanged."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def inverse(matrices: torch.Tensor) -> torch.Tensor:
    """``torch.inverse`` in at least float32 (half-precision inverses are not supported)."""
    with full_precision(matrices):
        return torch.inverse(at_least_float32(matrices))


def region2gaussian(
    center: torch.Tensor, covar: float | torch.Tensor, spatial_size: Sequence[int]
) -> torch.Tensor:
    """Gaussian-like heatmaps ``(..., H, W)`` of regions with ``center`` ``(..., 2)``.

    ``covar`` is a scalar variance (isotropic) or per-region covariances ``(..., 2, 2)``:
    exp(−½ (z − μ)ᵀ Σ⁻¹ (z − μ)).
    """
    grid = make_coordinate_grid(spatial_size, center.dtype, center.device)
    leading = center.shape[:-1]
    mean_sub = grid.view(*((1,) * len(leading)), *grid.shape) - center.reshape(*leading, 1, 1, 2)
    if isinstance(covar, float | int):
        return torch.exp(-0.5 * (mean_sub**2).sum(-1) / covar)
    covar_inverse = inverse(covar).to(mean_sub.dtype).view(*leading, 1, 1, 2, 2)
    under_exp = torch.matmul(
        torch.matmul(mean_sub.unsqueeze(-2), covar_inverse), mean_sub.unsqueeze(-1)
    )
    return torch.exp(-0.5 * under_exp.sum(dim=(-1, -2)))


def to_homogeneous(coordinates: torch.Tensor) -> torch.Tensor:
    """Append a coordinate 1: ``(..., 2)`` → ``(..., 3)``."""
    return torch.cat([coordinates, torch.ones_like(coordinates[..., :1])], dim=-1)


def from_homogeneous(coordinates: torch.Tensor) -> torch.Tensor:
    """Divide by the last coordinate: ``(..., 3)`` → ``(..., 2)``."""
    return coordinates[..., :2] / coordinates[..., 2:3]


def covariance_sqrt(
    covar: torch.Tensor, fast_svd: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(sqrt, u, d)`` of covariances ``(..., 2, 2)``: Σ = U S Vᵀ, d = diag(√s), sqrt = U·d.

    Upstream's PCA affine: the SVD runs on the CPU (``fast_svd=False``), as upstream, so that
    the singular vectors' signs are LAPACK's on every device; see the module doc.
    """
    shape = covar.shape
    flat = at_least_float32(covar.reshape(-1, 2, 2))
    with full_precision(covar):
        if fast_svd:
            u, s, _ = torch.linalg.svd(flat)
        else:
            u, s, _ = torch.linalg.svd(flat.cpu())
            u, s = u.to(covar.device), s.to(covar.device)
        d = torch.diag_embed(s**0.5)
        sqrt = torch.matmul(u, d)
    return sqrt.view(shape), u.view(shape), d.view(shape)


class RegionPredictor(nn.Module):
    """Region heatmaps of an hourglass; shift = heatmap mean, affine = √covariance (PCA).

    With ``estimate_affine`` and not ``pca_based`` a regression head ``jacobian`` (FOMM-like,
    identity-initialised) gives the affines instead and covar = A·Aᵀ.
    """

    def __init__(
        self,
        block_expansion: int,
        num_regions: int,
        num_channels: int,
        max_features: int,
        num_blocks: int,
        temperature: float,
        estimate_affine: bool = False,
        scale_factor: float = 1,
        pca_based: bool = False,
        fast_svd: bool = False,
        pad: int = 3,
    ) -> None:
        super().__init__()
        self.predictor = Hourglass(
            block_expansion,
            in_features=num_channels,
            max_features=max_features,
            num_blocks=num_blocks,
        )
        self.regions = nn.Conv2d(
            self.predictor.out_filters, num_regions, kernel_size=(7, 7), padding=pad
        )
        if estimate_affine and not pca_based:
            self.jacobian = nn.Conv2d(
                self.predictor.out_filters, 4, kernel_size=(7, 7), padding=pad
            )
            with torch.no_grad():
                self.jacobian.weight.zero_()
                self.jacobian.bias.copy_(torch.tensor([1.0, 0, 0, 1]))
        else:
            self.jacobian = None
        self.temperature = temperature
        self.scale_factor = scale_factor
        self.pca_based = pca_based
        self.fast_svd = fast_svd
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def region2affine(self, region: torch.Tensor) -> RegionParams:
        """``shift`` (heatmap mean) and, when PCA-based, ``covar`` of heatmaps ``(B, K, H, W)``."""
        with full_precision(region):
            region = at_least_float32(region)
            grid = make_coordinate_grid(region.shape[2:], region.dtype, region.device)
            weights = region.unsqueeze(-1)
            mean = (weights * grid[None, None]).sum(dim=(2, 3))
            params = {"shift": mean}
            if self.pca_based:
                mean_sub = grid[None, None] - mean[:, :, None, None]
                covar = torch.matmul(mean_sub.unsqueeze(-1), mean_sub.unsqueeze(-2))
                params["covar"] = (covar * weights.unsqueeze(-1)).sum(dim=(2, 3))
        return params

    def forward(self, x: torch.Tensor) -> RegionParams:
        with full_precision(x):  # see the module doc: regions stay float32 under autocast
            return self._regions(at_least_float32(x))

    def _regions(self, x: torch.Tensor) -> RegionParams:
        if self.scale_factor != 1:
            x = self.down(x)
        feature_map = self.predictor(x)
        prediction = self.regions(feature_map)
        b, k, h, w = prediction.shape
        heatmap = F.softmax(prediction.view(b, k, -1) / self.temperature, dim=2)
        heatmap = heatmap.view(b, k, h, w)
        params = self.region2affine(heatmap)
        params["heatmap"] = heatmap
        if self.jacobian is not None:
            jacobian_map = self.jacobian(feature_map).reshape(b, 1, 4, h, w)
            jacobian = (heatmap.unsqueeze(2) * jacobian_map).view(b, k, 4, -1).sum(dim=-1)
            affine = jacobian.view(b, k, 2, 2)
            params["affine"] = affine
            params["covar"] = torch.matmul(affine, affine.transpose(-1, -2))
        elif self.pca_based:
            params["affine"], params["u"], params["d"] = covariance_sqrt(
                params["covar"], self.fast_svd
            )
        return params


class BGMotionPredictor(nn.Module):
    """The background's motion as one 3×3 matrix from the source ‖ driving pair.

    ``bg_type``: ``zero`` (identity, no weights), ``shift``, ``affine`` or ``perspective``; the
    ``fc`` head starts at the identity motion.
    """

    BG_PARAMS: ClassVar[dict[str, tuple[int, ...]]] = {
        "shift": (0, 0),
        "affine": (1, 0, 0, 0, 1, 0),
        "perspective": (1, 0, 0, 0, 1, 0, 0, 0),
    }

    def __init__(
        self,
        block_expansion: int,
        num_channels: int,
        max_features: int,
        num_blocks: int,
        bg_type: str = "zero",
    ) -> None:
        super().__init__()
        if bg_type not in ("zero", *self.BG_PARAMS):
            raise ValueError(f"bg_type {bg_type!r} is not one of zero, shift, affine, perspective")
        self.bg_type = bg_type
        if bg_type != "zero":
            self.encoder = Encoder(
                block_expansion,
                in_features=num_channels * 2,
                max_features=max_features,
                num_blocks=num_blocks,
            )
            in_features = min(max_features, block_expansion * (2**num_blocks))
            identity = torch.tensor(self.BG_PARAMS[bg_type], dtype=torch.float32)
            self.fc = nn.Linear(in_features, identity.numel())
            with torch.no_grad():
                self.fc.weight.zero_()
                self.fc.bias.copy_(identity)

    def forward(self, source_image: torch.Tensor, driving_image: torch.Tensor) -> torch.Tensor:
        bs = source_image.shape[0]
        dtype = at_least_float32(source_image).dtype
        out = torch.eye(3, dtype=dtype, device=source_image.device).repeat(bs, 1, 1)
        if self.bg_type == "zero":
            return out
        features = self.encoder(torch.cat([source_image, driving_image], dim=1))[-1]
        prediction = at_least_float32(self.fc(features.mean(dim=(2, 3))))
        if self.bg_type == "shift":
            out[:, :2, 2] = prediction
        elif self.bg_type == "affine":
            out[:, :2, :] = prediction.view(bs, 2, 3)
        else:
            out[:, :2, :] = prediction[:, :6].view(bs, 2, 3)
            out[:, 2, :2] = prediction[:, 6:].view(bs, 2)
        return out


class PixelwiseFlowPredictor(nn.Module):
    """Dense flow and occlusion from the K region motions and the background motion.

    The K+1 sparse motions (background: ``bg_params`` on the identity grid; region k:
    A_src·A_drv⁻¹·(z − μ_drv) + μ_src, A_src·A_drv⁻¹ sign-normalised by its (0, 0) entry when
    ``revert_axis_swap``) warp the downscaled source; with the Gaussian heatmap differences
    (covariance-shaped when ``use_covar_heatmap``) an hourglass predicts softmax masks that
    blend them, and a sigmoid occlusion map.
    """

    def __init__(
        self,
        block_expansion: int,
        num_blocks: int,
        max_features: int,
        num_regions: int,
        num_channels: int,
        estimate_occlusion_map: bool = False,
        scale_factor: float = 1,
        region_var: float = 0.01,
        use_covar_heatmap: bool = False,
        use_deformed_source: bool = True,
        revert_axis_swap: bool = False,
    ) -> None:
        super().__init__()
        self.hourglass = Hourglass(
            block_expansion=block_expansion,
            in_features=(num_regions + 1) * (num_channels * use_deformed_source + 1),
            max_features=max_features,
            num_blocks=num_blocks,
        )
        self.mask = nn.Conv2d(
            self.hourglass.out_filters, num_regions + 1, kernel_size=(7, 7), padding=(3, 3)
        )
        self.occlusion = (
            nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=(7, 7), padding=(3, 3))
            if estimate_occlusion_map
            else None
        )
        self.num_regions = num_regions
        self.scale_factor = scale_factor
        self.region_var = region_var
        self.use_covar_heatmap = use_covar_heatmap
        self.use_deformed_source = use_deformed_source
        self.revert_axis_swap = revert_axis_swap
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def create_heatmap_representations(
        self,
        source_image: torch.Tensor,
        driving_region_params: RegionParams,
        source_region_params: RegionParams,
    ) -> torch.Tensor:
        """H_k(z) (eq. 6): driving minus source Gaussians, a zero background channel first."""
        size = source_image.shape[2:]
        covar_driving = (
            driving_region_params["covar"] if self.use_covar_heatmap else self.region_var
        )
        covar_source = source_region_params["covar"] if self.use_covar_heatmap else self.region_var
        heatmap = region2gaussian(
            driving_region_params["shift"], covar_driving, size
        ) - region2gaussian(source_region_params["shift"], covar_source, size)
        zeros = torch.zeros_like(heatmap[:, :1])
        return torch.cat([zeros, heatmap], dim=1).unsqueeze(2)

    def create_sparse_motions(
        self,
        source_image: torch.Tensor,
        driving_region_params: RegionParams,
        source_region_params: RegionParams,
        bg_params: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The K+1 backward warps ``(B, K+1, H, W, 2)``: background first, then the regions."""
        bs, _, h, w = source_image.shape
        shift_source = source_region_params["shift"]
        identity = make_coordinate_grid((h, w), shift_source.dtype, shift_source.device)
        grid = identity.view(1, 1, h, w, 2) - driving_region_params["shift"].reshape(
            bs, self.num_regions, 1, 1, 2
        )
        if "affine" in driving_region_params:
            affine = torch.matmul(
                source_region_params["affine"], inverse(driving_region_params["affine"])
            )
            if self.revert_axis_swap:
                affine = affine * torch.sign(affine[:, :, 0:1, 0:1])
            grid = torch.matmul(affine[:, :, None, None], grid.unsqueeze(-1)).squeeze(-1)
        driving_to_source = grid + shift_source.reshape(bs, self.num_regions, 1, 1, 2)
        if bg_params is None:
            bg_grid = identity.view(1, 1, h, w, 2).expand(bs, 1, h, w, 2)
        else:
            homogeneous = to_homogeneous(identity).view(1, 1, h, w, 3, 1)
            bg_grid = torch.matmul(bg_params.reshape(bs, 1, 1, 1, 3, 3), homogeneous).squeeze(-1)
            bg_grid = from_homogeneous(bg_grid)
        return torch.cat([bg_grid.to(driving_to_source.dtype), driving_to_source], dim=1)

    def create_deformed_source_image(
        self, source_image: torch.Tensor, sparse_motions: torch.Tensor
    ) -> torch.Tensor:
        """The source warped by each sparse motion, ``(B, K+1, C, H, W)``."""
        bs, c, h, w = source_image.shape
        k = self.num_regions + 1
        repeated = source_image.unsqueeze(1).expand(bs, k, c, h, w).reshape(bs * k, c, h, w)
        motions = sparse_motions.reshape(bs * k, h, w, 2)
        return grid_sample(repeated, motions).view(bs, k, c, h, w)

    def forward(
        self,
        source_image: torch.Tensor,
        driving_region_params: RegionParams,
        source_region_params: RegionParams,
        bg_params: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        if self.scale_factor != 1:
            source_image = self.down(source_image)
        bs, _, h, w = source_image.shape
        heatmap = self.create_heatmap_representations(
            source_image, driving_region_params, source_region_params
        )
        sparse_motion = self.create_sparse_motions(
            source_image, driving_region_params, source_region_params, bg_params
        )
        if self.use_deformed_source:
            deformed = self.create_deformed_source_image(source_image, sparse_motion)
            predictor_input = torch.cat([heatmap, deformed], dim=2)
        else:
            predictor_input = heatmap
        prediction = self.hourglass(predictor_input.view(bs, -1, h, w))
        mask = F.softmax(self.mask(prediction), dim=1).unsqueeze(2)
        deformation = (sparse_motion.permute(0, 1, 4, 2, 3) * mask).sum(dim=1)
        out = {"optical_flow": deformation.permute(0, 2, 3, 1)}
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(prediction))
        return out


class Generator(WarpingGenerator):
    """Johnson-style encoder-decoder that warps the source by the predicted flow.

    With ``skips`` every decoder level blends the occlusion-weighted warped encoder features
    with its input, and the output blends the warped source image with the decoded one.
    """

    def __init__(
        self,
        num_channels: int,
        num_regions: int,
        block_expansion: int,
        max_features: int,
        num_down_blocks: int,
        num_bottleneck_blocks: int,
        pixelwise_flow_predictor_params: dict | None = None,
        skips: bool = False,
        revert_axis_swap: bool = True,
    ) -> None:
        super().__init__()
        self.pixelwise_flow_predictor = (
            PixelwiseFlowPredictor(
                num_regions=num_regions,
                num_channels=num_channels,
                revert_axis_swap=revert_axis_swap,
                **pixelwise_flow_predictor_params,
            )
            if pixelwise_flow_predictor_params is not None
            else None
        )
        self.build_trunk(
            num_channels, block_expansion, max_features, num_down_blocks, num_bottleneck_blocks
        )
        self.skips = skips

    def apply_optical(
        self,
        input_previous: torch.Tensor | None = None,
        input_skip: torch.Tensor | None = None,
        motion_params: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Warp ``input_skip``; blend it with ``input_previous`` by the occlusion map."""
        if motion_params is None:
            return input_previous if input_previous is not None else input_skip
        warped = self.deform_input(input_skip, motion_params["optical_flow"])
        occlusion = motion_params.get("occlusion_map")
        if occlusion is None:
            return warped
        if occlusion.shape[2:] != warped.shape[2:]:
            occlusion = F.interpolate(
                occlusion, size=warped.shape[2:], mode="bilinear", align_corners=False
            )
        if input_previous is None:
            return warped * occlusion
        return warped * occlusion + input_previous * (1 - occlusion)

    def encode(self, source_image: torch.Tensor) -> list[torch.Tensor]:
        """The source's encoder features of every level (``first``, then each down block)."""
        skips = [self.first(source_image)]
        for block in self.down_blocks:
            skips.append(block(skips[-1]))
        return skips

    def forward(
        self,
        source_image: torch.Tensor,
        driving_region_params: RegionParams,
        source_region_params: RegionParams,
        bg_params: torch.Tensor | None = None,
        source_skips: list[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Generate the driving frame; ``source_skips`` = ``encode(source_image)`` may be
        passed to skip the encoder (inference with one source, many driving frames)."""
        skips = self.encode(source_image) if source_skips is None else source_skips
        output: dict[str, torch.Tensor] = {}
        motion_params = None
        if self.pixelwise_flow_predictor is not None:
            motion_params = self.pixelwise_flow_predictor(
                source_image=source_image,
                driving_region_params=driving_region_params,
                source_region_params=source_region_params,
                bg_params=bg_params,
            )
            output["optical_flow"] = motion_params["optical_flow"]
            output["deformed"] = self.deform_input(source_image, motion_params["optical_flow"])
            if "occlusion_map" in motion_params:
                output["occlusion_map"] = motion_params["occlusion_map"]
        out = self.apply_optical(input_skip=skips[-1], motion_params=motion_params)
        out = self.bottleneck(out)
        for i, block in enumerate(self.up_blocks):
            if self.skips:
                out = self.apply_optical(
                    input_previous=out, input_skip=skips[-(i + 1)], motion_params=motion_params
                )
            out = block(out)
        if self.skips:
            out = self.apply_optical(
                input_previous=out, input_skip=skips[0], motion_params=motion_params
            )
        out = torch.sigmoid(self.final(out))
        if self.skips:
            out = self.apply_optical(
                input_previous=out, input_skip=source_image, motion_params=motion_params
            )
        output["prediction"] = out
        return output


class AVDNetwork(AVDCore):
    """Animation via disentanglement: pose from the driving regions, identity from the source.

    Region parameters are flattened to (2 + 4)·K values; an identity and a pose MLP encoder
    (→256→512→1024→bottleneck) and a decoder (→1024→512→256→(2+4)·K) reconstruct the driving
    regions in the source's shape (:class:`~talking_heads.models.motion.avd.AVDCore`).
    """

    def __init__(
        self,
        num_regions: int,
        id_bottle_size: int = 64,
        pose_bottle_size: int = 64,
        revert_axis_swap: bool = True,
    ) -> None:
        super().__init__((2 + 4) * num_regions, id_bottle_size, pose_bottle_size)
        self.num_regions = num_regions
        self.revert_axis_swap = revert_axis_swap

    @staticmethod
    def region_params_to_emb(params: RegionParams) -> torch.Tensor:
        """(shift, affine) of K regions → ``(B, 6K)``."""
        shift, affine = params["shift"], params["affine"]
        emb = torch.cat([shift, affine.reshape(*affine.shape[:2], -1)], dim=-1)
        return emb.reshape(emb.shape[0], -1)

    def emb_to_region_params(self, emb: torch.Tensor) -> RegionParams:
        """``(B, 6K)`` → ``shift`` ``(B, K, 2)`` and ``affine`` ``(B, K, 2, 2)``."""
        emb = emb.view(emb.shape[0], self.num_regions, 6)
        return {"shift": emb[:, :, :2], "affine": emb[:, :, 2:].reshape(-1, self.num_regions, 2, 2)}

    def forward(self, x_id: RegionParams, x_pose: RegionParams) -> RegionParams:
        if self.revert_axis_swap:
            affine = torch.matmul(x_id["affine"], inverse(x_pose["affine"]))
            x_id = {
                "affine": x_id["affine"] * torch.sign(affine[:, :, 0:1, 0:1]),
                "shift": x_id["shift"],
            }
        rec = self.decode(self.region_params_to_emb(x_id), self.region_params_to_emb(x_pose))
        rec = self.emb_to_region_params(at_least_float32(rec))
        rec["covar"] = torch.matmul(rec["affine"], rec["affine"].transpose(-1, -2))
        return rec


def build_networks(model_params: dict) -> dict[str, nn.Module]:
    """``generator``, ``region_predictor``, ``bg_predictor``, ``avd_network`` from a
    ``model_params`` dict laid out as upstream's YAML, as upstream's ``run.py`` builds them."""
    num_regions = model_params["num_regions"]
    num_channels = model_params["num_channels"]
    revert_axis_swap = model_params.get("revert_axis_swap", True)
    return {
        "generator": Generator(
            num_regions=num_regions,
            num_channels=num_channels,
            revert_axis_swap=revert_axis_swap,
            **model_params["generator_params"],
        ),
        "region_predictor": RegionPredictor(
            num_regions=num_regions,
            num_channels=num_channels,
            estimate_affine=model_params["estimate_affine"],
            **model_params["region_predictor_params"],
        ),
        "bg_predictor": BGMotionPredictor(
            num_channels=num_channels, **model_params["bg_predictor_params"]
        ),
        "avd_network": AVDNetwork(
            num_regions=num_regions,
            revert_axis_swap=revert_axis_swap,
            **model_params["avd_network_params"],
        ),
    }
