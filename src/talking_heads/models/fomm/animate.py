"""FOMM inference: relative/absolute keypoint transfer, batched over driving frames.

``normalize_kp`` follows first-order-model's ``animate.py``; ``FOMMAnimator.animate`` does
what ``demo.py``'s ``make_animation`` does (source and first-driving-frame keypoints computed
once, then keypoints + generator per driving frame) but runs the driving frames in batches and
encodes the source once. In eval mode both are per-frame computations, so batching changes
nothing but speed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from talking_heads.models.fomm.networks import KPDetector, OcclusionAwareGenerator, build_networks
from talking_heads.models.motion.animate import MotionAnimator, expand_batch
from talking_heads.models.motion.transfer import movement_scale, normalize_kp

__all__ = ["FOMMAnimator", "movement_scale", "normalize_kp"]


class FOMMAnimator(MotionAnimator):
    """Keypoint detector + generator in eval mode, for animation and reconstruction."""

    NETWORKS = ("kp_detector", "generator")
    #: first-order-model's ``vox-cpk.pth.tar`` layout: ``kp_detector`` and ``generator``
    OFFICIAL_EXPERIMENT = "fomm_vox256"

    def __init__(
        self,
        kp_detector: KPDetector | torch.nn.Module | Mapping[str, torch.nn.Module],
        generator: OcclusionAwareGenerator | torch.nn.Module | None = None,
        resolution: int = 256,
        channels_last: bool = True,
    ) -> None:
        networks = (
            kp_detector
            if isinstance(kp_detector, Mapping)
            else {"kp_detector": kp_detector, "generator": generator}
        )
        super().__init__(networks, resolution, channels_last)

    @classmethod
    def build(cls, hyper_parameters: Mapping[str, Any]) -> dict[str, torch.nn.Module]:
        kp_detector, generator, _ = build_networks(hyper_parameters["model_params"])
        return {"kp_detector": kp_detector, "generator": generator}

    def prepare(self, source: torch.Tensor, driving_initial: torch.Tensor) -> dict[str, Any]:
        return {
            "source": source,
            "kp_source": self.kp_detector(source),
            "kp_initial": self.kp_detector(driving_initial),
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
    ) -> torch.Tensor:
        n = frames.shape[0]
        kp_norm = normalize_kp(
            prepared["kp_source"],
            self.kp_detector(frames),
            prepared["kp_initial"],
            adapt_movement_scale=adapt_scale,
            use_relative_movement=relative,
            use_relative_jacobian=relative,
        )
        out = self.generator(
            expand_batch(prepared["source"], n),
            kp_source=expand_batch(prepared["kp_source"], n),
            kp_driving=kp_norm,
            source_features=expand_batch(prepared["source_features"], n) if reuse_source else None,
        )
        return out["prediction"]
