"""face-vid2vid inference: relative/absolute keypoint transfer and free view, batched.

Follows the official ``demo.py`` ``make_animation``: the canonical keypoints and the head pose
of the source and of the reference driving frame are computed once; then, per driving frame,
the head pose and expression are estimated, the canonical keypoints are transformed, made
relative to the reference frame (``normalize_kp`` of ``animate.py``) and the generator renders
the frame. The driving frames run in batches and the source's feature volume is encoded once;
in eval mode both are per-frame computations, so batching changes nothing but speed. As in the
other animators, the 2-D convolutions run in channels-last layout (values equal up to float
rounding); the 3-D ones keep the default layout.

Free view (``--free_view --yaw/--pitch/--roll``) replaces the estimated angles of every driving
frame by fixed ones (the reference frame keeps its estimated pose, as upstream). Upstream's
free view runs on CUDA only (it builds the angle tensors with ``.cuda()``); ours runs anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from talking_heads.models.fv2v.networks import (
    HEEstimator,
    Keypoints,
    KPDetector,
    build_generator,
    keypoint_transformation,
)
from talking_heads.models.motion import animate as motion
from talking_heads.models.motion import transfer
from talking_heads.models.motion.animate import MotionAnimator, expand_batch


@dataclass(frozen=True)
class FreeView:
    """Fixed head angles in degrees for every driving frame; ``None`` keeps the estimate.

    The official README recommends |yaw| ≤ 45°, |pitch| ≤ 20° and |roll| ≤ 20°.
    """

    yaw: float | None = None
    pitch: float | None = None
    roll: float | None = None


def movement_scale(kp_source: Keypoints, kp_driving_initial: Keypoints) -> float:
    """sqrt(hull volume of the source keypoints) / sqrt(that of the reference driving frame).

    Upstream takes scipy's ``ConvexHull(...).volume`` of the full 3-D keypoints (x, y, z), not
    of their (x, y) projection as the 2-D methods do. Upstream raises on a degenerate hull
    (e.g. an untrained detector's coplanar keypoints); here the scale falls back to 1 with a
    warning.
    """
    return motion.movement_scale(kp_source["value"], kp_driving_initial["value"], dims=3)


#: Upstream's ``normalize_kp`` (FOMM's :func:`~talking_heads.models.fomm.animate.normalize_kp`)
#: with the 3-D keypoints' hull-volume :func:`movement_scale`: kp_src + (kp_drv − kp_drv0)·s for
#: relative movement and Jacobians J_drv·J_drv0⁻¹·J_src; the driving keypoints unchanged for
#: absolute transfer.
normalize_kp = partial(transfer.normalize_kp, scale_of=movement_scale)


class FV2VAnimator(MotionAnimator):
    """Canonical keypoint detector, head-pose estimator and generator in eval mode."""

    NETWORKS = ("kp_detector", "he_estimator", "generator")

    def __init__(
        self,
        networks: Mapping[str, torch.nn.Module],
        resolution: int = 256,
        channels_last: bool = True,
    ) -> None:
        super().__init__(networks, resolution, channels_last)
        #: the configuration's ``estimate_jacobian`` (whether the detector has a Jacobian head)
        self.estimate_jacobian = getattr(self.kp_detector, "jacobian", None) is not None
        self._free_view: FreeView | None = None

    @classmethod
    def build(cls, hyper_parameters: Mapping[str, Any]) -> dict[str, torch.nn.Module]:
        params = hyper_parameters["model_params"]
        common = params["common_params"]
        return {
            "kp_detector": KPDetector(**params["kp_detector_params"], **common),
            "he_estimator": HEEstimator(**params["he_estimator_params"], **common),
            "generator": build_generator(params, hyper_parameters.get("generator_type", "spade")),
        }

    def prepare(self, source: torch.Tensor, driving_initial: torch.Tensor) -> dict[str, Any]:
        kp_canonical = self.kp_detector(source)
        jacobian = self.estimate_jacobian
        return {
            "source": source,
            "kp_canonical": kp_canonical,
            "kp_source": keypoint_transformation(kp_canonical, self.he_estimator(source), jacobian),
            "kp_initial": keypoint_transformation(
                kp_canonical, self.he_estimator(driving_initial), jacobian
            ),
            "source_features": self.generator.encode(source),
        }

    def generate(
        self,
        prepared: Mapping[str, Any],
        frames: torch.Tensor,
        *,
        relative: bool,
        adapt_scale: bool,
        reuse_source: bool = True,
        free_view: FreeView | None = None,
    ) -> torch.Tensor:
        """The frames generated for driving ``frames``; ``free_view`` (default: the one given
        to :meth:`animate`) fixes the head angles."""
        n = frames.shape[0]
        view = free_view if free_view is not None else self._free_view
        angles = {} if view is None else {"yaw": view.yaw, "pitch": view.pitch, "roll": view.roll}
        kp_driving = keypoint_transformation(
            prepared["kp_canonical"],
            self.he_estimator(frames),
            self.estimate_jacobian,
            **angles,
        )
        kp_norm = normalize_kp(
            prepared["kp_source"],
            kp_driving,
            prepared["kp_initial"],
            adapt_movement_scale=adapt_scale,
            use_relative_movement=relative,
            use_relative_jacobian=relative and self.estimate_jacobian,
        )
        out = self.generator(
            expand_batch(prepared["source"], n),
            kp_driving=kp_norm,
            kp_source=expand_batch(prepared["kp_source"], n),
            source_features=expand_batch(prepared["source_features"], n) if reuse_source else None,
        )
        return out["prediction"]

    def animate(
        self,
        source: torch.Tensor,
        driving: torch.Tensor,
        *,
        free_view: FreeView | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """:meth:`MotionAnimator.animate`, with the head angles fixed by ``free_view``."""
        self._free_view = free_view
        try:
            return super().animate(source, driving, **kwargs)
        finally:
            self._free_view = None
