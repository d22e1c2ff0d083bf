"""FOMM's training losses (first-order-model ``modules/model.py``), as functions.

``GeneratorFullModel`` and ``DiscriminatorFullModel`` upstream compute, per training batch:

- a perceptual loss: Σ_scales Σ_layers w_i · mean|φ_i(pyramid(ŷ)) − φ_i(pyramid(y))| with the
  VGG19 features φ of :class:`~talking_heads.nets.vgg19.Vgg19`;
- an LSGAN generator loss w · mean (1 − D(ŷ))² and a feature-matching L1 between the
  discriminator's feature maps of the real and generated pyramids;
- equivariance of keypoint values and Jacobians under a random affine + TPS warp;
- the LSGAN discriminator loss w · mean[(1 − D(y))² + D(ŷ)²].

The keypoint-, generator- and discriminator-specific pieces are separate so the later FOMM-
lineage methods can reuse them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from talking_heads.models.motion.blocks import Transform
from talking_heads.nets.vgg19 import Vgg19

Keypoints = dict[str, torch.Tensor]


def perceptual_loss(
    vgg: Vgg19,
    generated: Mapping[str, torch.Tensor],
    real: Mapping[str, torch.Tensor],
    scales: Sequence[float],
    weights: Sequence[float],
) -> torch.Tensor:
    """Pyramid VGG19 L1 loss; ``generated``/``real`` are ``ImagePyramide`` outputs."""
    total = torch.zeros((), device=next(iter(generated.values())).device)
    for scale in scales:
        x_vgg = vgg(generated[f"prediction_{scale}"])
        y_vgg = vgg(real[f"prediction_{scale}"])
        for i, weight in enumerate(weights):
            total = total + weight * torch.abs(x_vgg[i] - y_vgg[i].detach()).mean()
    return total


def generator_gan_loss(
    maps_generated: Mapping[str, Any], scales: Sequence[float], weight: float
) -> torch.Tensor:
    """LSGAN generator term Σ_scales w · mean (1 − D(ŷ))²."""
    total = 0.0
    for scale in scales:
        total = total + weight * ((1 - maps_generated[f"prediction_map_{scale}"]) ** 2).mean()
    return total


def feature_matching_loss(
    maps_real: Mapping[str, Any],
    maps_generated: Mapping[str, Any],
    scales: Sequence[float],
    weights: Sequence[float],
) -> torch.Tensor:
    """Σ_scales Σ_blocks w_i · mean|D_i(y) − D_i(ŷ)| over the discriminator feature maps."""
    total = 0.0
    for scale in scales:
        key = f"feature_maps_{scale}"
        for i, (a, b) in enumerate(zip(maps_real[key], maps_generated[key], strict=False)):
            if weights[i] != 0:
                total = total + weights[i] * torch.abs(a - b).mean()
    return total


def discriminator_gan_loss(
    maps_real: Mapping[str, Any],
    maps_generated: Mapping[str, Any],
    scales: Sequence[float],
    weight: float,
) -> torch.Tensor:
    """LSGAN discriminator term Σ_scales w · mean[(1 − D(y))² + D(ŷ)²]."""
    total = 0.0
    for scale in scales:
        key = f"prediction_map_{scale}"
        value = (1 - maps_real[key]) ** 2 + maps_generated[key] ** 2
        total = total + weight * value.mean()
    return total


def equivariance_losses(
    kp_detector: Callable[[torch.Tensor], Keypoints],
    driving: torch.Tensor,
    kp_driving: Keypoints,
    transform_params: Mapping[str, Any],
    weight_value: float,
    weight_jacobian: float,
) -> dict[str, torch.Tensor]:
    """Keypoint equivariance under a random warp T of the driving frame.

    Value: mean|kp(y) − T(kp(T⁻¹-warped y))|; Jacobian: mean|I − J(y)⁻¹ · (∇T · J(warped y))|.
    The random warp draws from torch's global CPU generator, as upstream.
    """
    losses: dict[str, torch.Tensor] = {}
    if weight_value + weight_jacobian == 0:
        return losses
    transform = Transform(driving.shape[0], device=driving.device, **transform_params)
    transformed_kp = kp_detector(transform.transform_frame(driving))
    if weight_value != 0:
        value = torch.abs(
            kp_driving["value"] - transform.warp_coordinates(transformed_kp["value"])
        ).mean()
        losses["equivariance_value"] = weight_value * value
    if weight_jacobian != 0:
        jacobian_transformed = torch.matmul(
            transform.jacobian(transformed_kp["value"]), transformed_kp["jacobian"]
        )
        value = torch.matmul(torch.inverse(kp_driving["jacobian"]), jacobian_transformed)
        eye = torch.eye(2, dtype=value.dtype, device=value.device).view(1, 1, 2, 2)
        losses["equivariance_jacobian"] = weight_jacobian * torch.abs(eye - value).mean()
    return losses
