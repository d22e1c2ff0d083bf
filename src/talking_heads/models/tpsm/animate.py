"""TPSM inference: the official demo's animation modes and reconstruction, batched.

``relative_kp`` follows Thin-Plate-Spline-Motion-Model's ``demo.py``; :class:`TPSMAnimator`
does what ``demo.py``'s ``make_animation`` does (source and first-driving-frame keypoints
computed once, then keypoints + dense motion + inpainting per driving frame) but runs the
driving frames in batches and computes the per-source work once (the inpainting encoder's
features and the dense motion network's downsampled source). The official modes map to

- ``relative=True`` ↔ ``--mode relative`` (upstream's default): kp_src + (kp_drv − kp_drv0)·s
  with s = sqrt(hull area of the source keypoints / that of the first driving frame's);
- ``relative=False`` ↔ ``--mode standard``: the driving keypoints as they are (absolute);
- :meth:`TPSMAnimator.animate_avd` ↔ ``--mode avd``: the AVD network's keypoints;
- :meth:`TPSMAnimator.reconstruct` ↔ ``reconstruction.py``: absolute keypoints plus, when the
  checkpoint has a background predictor, the background motion of (source, driving frame).

The demo passes no background motion (identity) in every animation mode. Upstream's relative
mode always adapts the movement scale; here ``adapt_scale=False`` gives scale 1 (the CLI's
default adapts, as upstream), and a degenerate hull gives scale 1 with a warning where
upstream raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from talking_heads.models.motion import animate as motion
from talking_heads.models.motion.animate import expand_batch
from talking_heads.models.motion.avd import AVDAnimator
from talking_heads.models.tpsm.networks import (
    AVDNetwork,
    Keypoints,
    build_networks,
)

MODES = ("standard", "relative", "avd")


def movement_scale(kp_source: Keypoints, kp_driving_initial: Keypoints) -> float:
    """sqrt(hull area of the source keypoints / that of the first driving frame's)."""
    return motion.movement_scale(kp_source["fg_kp"], kp_driving_initial["fg_kp"])


def relative_kp(
    kp_source: Keypoints,
    kp_driving: Keypoints,
    kp_driving_initial: Keypoints,
    adapt_movement_scale: bool = True,
) -> Keypoints:
    """kp_src + (kp_drv − kp_drv0)·s, s = :func:`movement_scale` (1 without adaptation)."""
    scale = movement_scale(kp_source, kp_driving_initial) if adapt_movement_scale else 1.0
    kp_new = dict(kp_driving)
    kp_new["fg_kp"] = (kp_driving["fg_kp"] - kp_driving_initial["fg_kp"]) * scale + kp_source[
        "fg_kp"
    ]
    return kp_new


def animation_keypoints(
    kp_source: Keypoints,
    kp_driving: Keypoints,
    kp_driving_initial: Keypoints,
    mode: str = "relative",
    avd_network: AVDNetwork | None = None,
    adapt_movement_scale: bool = True,
) -> Keypoints:
    """The keypoints that drive the dense motion in ``mode`` (upstream ``make_animation``)."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    if mode == "standard":
        return kp_driving
    if mode == "relative":
        return relative_kp(kp_source, kp_driving, kp_driving_initial, adapt_movement_scale)
    if avd_network is None:
        raise ValueError("mode 'avd' needs the AVD network")
    return avd_network(kp_source, kp_driving)


class TPSMAnimator(AVDAnimator):
    """Keypoint detector + dense motion + inpainting (+ AVD, background predictor), eval mode.

    The background predictor is optional (configurations with ``bg: false`` have none) and is
    used only by :meth:`reconstruct`.
    """

    NETWORKS = ("kp_detector", "dense_motion_network", "inpainting_network", "avd_network")
    #: Thin-Plate-Spline-Motion-Model's ``vox.pth.tar``; as upstream's ``demo.py``, a file
    #: without ``avd_network`` or ``bg_predictor`` keeps freshly initialised ones
    OFFICIAL_EXPERIMENT = "tpsm_vox256"
    OFFICIAL_OPTIONAL = ("avd_network", "bg_predictor")

    def __init__(
        self,
        networks: Mapping[str, torch.nn.Module],
        resolution: int = 256,
        channels_last: bool = True,
    ) -> None:
        bg_predictor = networks.get("bg_predictor")
        self.bg_predictor = bg_predictor.eval() if bg_predictor is not None else None
        super().__init__(networks, resolution, channels_last)

    @classmethod
    def build(cls, hyper_parameters: Mapping[str, Any]) -> dict[str, torch.nn.Module]:
        return build_networks(hyper_parameters["model_params"])

    def to(self, device: torch.device | str) -> TPSMAnimator:
        super().to(device)
        if self.bg_predictor is not None:
            self.bg_predictor.to(device, memory_format=self.memory_format)
        return self

    def prepare(self, source: torch.Tensor, driving_initial: torch.Tensor) -> dict[str, Any]:
        return {
            "source": source,
            "kp_source": self.kp_detector(source),
            "kp_driving_initial": self.kp_detector(driving_initial),
            "encoder_maps": self.inpainting_network.encode(source),
            "source_downsampled": self.dense_motion_network.downsample(source),
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
        source = expand_batch(prepared["source"], n)
        kp_source = expand_batch(prepared["kp_source"], n)
        kp_driving = self.kp_detector(frames)
        bg_param = None
        if self._mode == "reconstruction":
            kp_norm = kp_driving
            if self.bg_predictor is not None:
                bg_param = self.bg_predictor(source, frames)
        else:
            kp_norm = animation_keypoints(
                kp_source,
                kp_driving,
                prepared["kp_driving_initial"],
                mode=self._mode or ("relative" if relative else "standard"),
                avd_network=self.avd_network,
                adapt_movement_scale=adapt_scale,
            )
        dense_motion = self.dense_motion_network(
            source_image=source,
            kp_driving=kp_norm,
            kp_source=kp_source,
            bg_param=bg_param,
            source_downsampled=expand_batch(prepared["source_downsampled"], n)
            if reuse_source
            else None,
        )
        out = self.inpainting_network(
            source,
            dense_motion,
            encoder_maps=expand_batch(prepared["encoder_maps"], n) if reuse_source else None,
        )
        return out["prediction"]
