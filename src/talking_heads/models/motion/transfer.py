"""Keypoint transfer of first-order-model's ``animate.py`` (``normalize_kp``), shared by the
keypoint methods (FOMM, DaGAN, face-vid2vid with its own scale)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from talking_heads.models.motion import animate as motion
from talking_heads.models.motion.keypoint_networks import Keypoints

__all__ = ["movement_scale", "normalize_kp"]


def movement_scale(kp_source: Keypoints, kp_driving_initial: Keypoints) -> float:
    """sqrt(hull area of the source keypoints / hull area of the initial driving keypoints)
    (:func:`talking_heads.models.motion.animate.movement_scale` of the keypoint values)."""
    return motion.movement_scale(kp_source["value"], kp_driving_initial["value"])


def normalize_kp(
    kp_source: Keypoints,
    kp_driving: Keypoints,
    kp_driving_initial: Keypoints,
    adapt_movement_scale: bool = False,
    use_relative_movement: bool = False,
    use_relative_jacobian: bool = False,
    scale_of: Callable[[Keypoints, Keypoints], float] = movement_scale,
) -> Keypoints:
    """Driving keypoints made relative to the first driving frame and applied to the source.

    Relative movement: kp_src + (kp_drv − kp_drv0)·s, with s = ``scale_of(kp_src, kp_drv0)``
    (default :func:`movement_scale`) when ``adapt_movement_scale`` else 1; relative Jacobians:
    J_drv · J_drv0⁻¹ · J_src. Without relative movement the driving keypoints are returned
    unchanged (absolute transfer).
    """
    scale = scale_of(kp_source, kp_driving_initial) if adapt_movement_scale else 1.0
    kp_new = dict(kp_driving)
    if use_relative_movement:
        kp_new["value"] = (kp_driving["value"] - kp_driving_initial["value"]) * scale + kp_source[
            "value"
        ]
        if use_relative_jacobian:
            jacobian_diff = torch.matmul(
                kp_driving["jacobian"], torch.inverse(kp_driving_initial["jacobian"])
            )
            kp_new["jacobian"] = torch.matmul(jacobian_diff, kp_source["jacobian"])
    return kp_new
