"""DaGAN inference: FOMM's keypoint transfer on RGB‖depth, batched over driving frames.

Follows CVPR2022-DaGAN's ``demo.py`` ``make_animation``: the depth network gives the source's
disparity and the first driving frame's once; the keypoints of the source and of that frame are
detected on image‖disparity (4 channels); then, per driving frame, its disparity, its keypoints
on frame‖disparity, ``normalize_kp`` (FOMM's, upstream's ``animate.py``) and the generator on
the source with the source's disparity. Here the driving frames run in batches and the source's
two encoders (RGB and depth features) run once; in eval mode every network is a per-sample
computation, so batching changes nothing but speed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from talking_heads.models.dagan.depth import build_depth, estimate_depth
from talking_heads.models.dagan.networks import build_networks
from talking_heads.models.motion.animate import MotionAnimator, expand_batch
from talking_heads.models.motion.transfer import normalize_kp


class DaGANAnimator(MotionAnimator):
    """Depth network + keypoint detector + depth-aware generator in eval mode."""

    NETWORKS = ("depth_encoder", "depth_decoder", "kp_detector", "generator")

    @classmethod
    def build(cls, hyper_parameters: Mapping[str, Any]) -> dict[str, torch.nn.Module]:
        model_params = hyper_parameters["model_params"]
        kp_detector, generator, _ = build_networks(model_params)
        depth_encoder, depth_decoder = build_depth(model_params.get("depth_params"))
        return {
            "depth_encoder": depth_encoder,
            "depth_decoder": depth_decoder,
            "kp_detector": kp_detector,
            "generator": generator,
        }

    def depth(self, frames: torch.Tensor) -> torch.Tensor:
        """The disparity ``(n, 1, H, W)`` of ``frames`` ``(n, 3, H, W)``."""
        return estimate_depth(self.depth_encoder, self.depth_decoder, frames)

    def keypoints(self, frames: torch.Tensor, depth: torch.Tensor) -> dict[str, torch.Tensor]:
        """Keypoints detected on frames‖disparity, as upstream's ``--rgbd`` detector."""
        return self.kp_detector(torch.cat([frames, depth], dim=1))

    def prepare(self, source: torch.Tensor, driving_initial: torch.Tensor) -> dict[str, Any]:
        source_depth = self.depth(source)
        return {
            "source": source,
            "source_depth": source_depth,
            "kp_source": self.keypoints(source, source_depth),
            "kp_initial": self.keypoints(driving_initial, self.depth(driving_initial)),
            "source_features": self.generator.encode(source),
            "depth_features": self.generator.encode_depth(source_depth),
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
            self.keypoints(frames, self.depth(frames)),
            prepared["kp_initial"],
            adapt_movement_scale=adapt_scale,
            use_relative_movement=relative,
            use_relative_jacobian=relative,
        )
        cached = {}
        if reuse_source:
            cached = {
                "source_features": expand_batch(prepared["source_features"], n),
                "depth_features": expand_batch(prepared["depth_features"], n),
            }
        out = self.generator(
            expand_batch(prepared["source"], n),
            kp_driving=kp_norm,
            kp_source=expand_batch(prepared["kp_source"], n),
            source_depth=expand_batch(prepared["source_depth"], n),
            **cached,
        )
        return out["prediction"]
