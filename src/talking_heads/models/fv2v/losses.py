"""face-vid2vid's own training losses (official ``modules/model.py``), as functions.

The perceptual and feature-matching losses are FOMM's (:mod:`talking_heads.models.motion.losses`);
this module adds the hinge/LS GAN terms chosen by ``gan_mode``, the equivariance of the
keypoints' (x, y) projection under a random warp, the keypoint prior, the headpose loss against
a teacher's angles and the L1 of the expression deltas.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from talking_heads.models.fv2v.networks import Keypoints, headpose_pred_to_degree
from talking_heads.models.motion import losses as motion_losses

GAN_MODES = ("hinge", "ls")


def _check_mode(gan_mode: str) -> None:
    if gan_mode not in GAN_MODES:
        raise ValueError(f"Unexpected gan_mode {gan_mode!r} (one of {GAN_MODES})")


def generator_gan_loss(
    maps_generated: Mapping[str, Any], scales: Sequence[float], weight: float, gan_mode: str
) -> torch.Tensor:
    """Σ_scales w · (−mean D(ŷ)) for ``hinge``, w · mean (1 − D(ŷ))² for ``ls`` (FOMM's)."""
    _check_mode(gan_mode)
    if gan_mode == "ls":
        return motion_losses.generator_gan_loss(maps_generated, scales, weight)
    total = 0.0
    for scale in scales:
        total = total + weight * -maps_generated[f"prediction_map_{scale}"].mean()
    return total


def discriminator_gan_loss(
    maps_real: Mapping[str, Any],
    maps_generated: Mapping[str, Any],
    scales: Sequence[float],
    weight: float,
    gan_mode: str,
) -> torch.Tensor:
    """Hinge: −mean min(D(y) − 1, 0) − mean min(−D(ŷ) − 1, 0); LS: mean[(1 − D(y))² + D(ŷ)²]
    (FOMM's)."""
    _check_mode(gan_mode)
    if gan_mode == "ls":
        return motion_losses.discriminator_gan_loss(maps_real, maps_generated, scales, weight)
    total = 0.0
    for scale in scales:
        real = maps_real[f"prediction_map_{scale}"]
        fake = maps_generated[f"prediction_map_{scale}"]
        value = -torch.clamp(real - 1, max=0).mean() - torch.clamp(-fake - 1, max=0).mean()
        total = total + weight * value
    return total


def projected_xy(kp: Keypoints) -> Keypoints:
    """Keypoints projected on the image plane: (x, y) values and the 2×2 Jacobian blocks."""
    out = {"value": kp["value"][:, :, :2]}
    if "jacobian" in kp:
        out["jacobian"] = kp["jacobian"][:, :, :2, :2]
    return out


def equivariance_losses(
    transformed_keypoints: Callable[[torch.Tensor], Keypoints],
    driving: torch.Tensor,
    kp_driving: Keypoints,
    transform_params: Mapping[str, Any],
    weight_value: float,
    weight_jacobian: float,
) -> dict[str, torch.Tensor]:
    """FOMM's equivariance losses on the keypoints' (x, y) projection (:func:`projected_xy`)
    under a random warp T of the driving frame: value mean|kp(y)_xy − T(kp(T-warped y)_xy)|,
    Jacobian mean|I − J_xy⁻¹·(∇T·J'_xy)|.

    ``transformed_keypoints`` maps a frame to its keypoints (the source's canonical keypoints
    transformed by the head pose estimated on that frame, upstream).
    """
    return motion_losses.equivariance_losses(
        lambda frame: projected_xy(transformed_keypoints(frame)),
        driving,
        projected_xy(kp_driving),
        transform_params,
        weight_value,
        weight_jacobian,
    )


def keypoint_prior_loss(
    kp_value: torch.Tensor, distance: float = 0.1, depth: float = 0.33
) -> torch.Tensor:
    """Σ_{i,j} mean_b max(0, Dt − ‖kp_i − kp_j‖²) + mean_b |mean_k z − Zt|.

    Keypoints closer than Dt (squared, 0.1) are pushed apart and their mean depth is pulled to
    Zt = 0.33. As upstream, the sum runs over all ordered pairs including i = j, whose term is
    the constant Dt (up to ``F.pairwise_distance``'s ε = 1e-6).
    """
    k = kp_value.shape[1]
    first = kp_value.unsqueeze(2).expand(-1, k, k, -1)
    second = kp_value.unsqueeze(1).expand(-1, k, k, -1)
    squared = F.pairwise_distance(first, second, p=2) ** 2  # (B, K, K)
    margin = distance - squared
    spread = (margin * (margin > 0)).mean(dim=0).sum()
    return spread + torch.abs(kp_value[:, :, -1].mean(-1) - depth).mean()


def headpose_loss(
    he_driving: Mapping[str, torch.Tensor],
    teacher: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """Σ_angles mean|degrees(he) − degrees(teacher)| over yaw, pitch and roll."""
    total = 0.0
    for name, logits in zip(("yaw", "pitch", "roll"), teacher, strict=True):
        target = headpose_pred_to_degree(logits)
        total = total + torch.abs(headpose_pred_to_degree(he_driving[name]) - target).mean()
    return total


def expression_loss(exp: torch.Tensor) -> torch.Tensor:
    """mean_b ‖δ‖₁ of the expression deltas ``(B, 3K)``."""
    return torch.norm(exp, p=1, dim=-1).mean()
