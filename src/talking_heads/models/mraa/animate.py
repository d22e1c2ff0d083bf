"""MRAA inference: the official demo's animation modes and reconstruction, batched.

``get_animation_region_params`` follows articulated-animation's ``animate.py``;
:class:`MRAAAnimator` does what ``demo.py``'s ``make_animation`` does (source and
first-driving-frame regions computed once, then regions + generator per driving frame) but
runs the driving frames in batches and encodes the source once. The official modes map to

- ``relative=True`` ↔ ``--mode relative``: the driving regions' motion relative to the first
  driving frame is applied to the source's regions (shift difference scaled by
  sqrt(hull area ratio), affine J_drv·J_drv0⁻¹·J_src);
- ``relative=False`` ↔ ``--mode standard``: the driving regions as they are (absolute);
- :meth:`MRAAAnimator.animate_avd` ↔ ``--mode avd``: the AVD network's regions;
- :meth:`MRAAAnimator.reconstruct` ↔ ``reconstruction.py``: absolute regions plus the
  background motion predicted from (source, driving frame).

The demo passes no background motion (identity) in every animation mode. As upstream, the
relative mode replaces only the shifts and affines: the heatmap covariances given to the flow
predictor stay the driving frame's. Upstream's relative mode always adapts the movement scale;
here ``adapt_scale=False`` gives scale 1 (the CLI's default adapts, as upstream), and a
degenerate hull gives scale 1 with a warning where upstream raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from talking_heads.models.motion import animate as motion
from talking_heads.models.motion.animate import expand_batch
from talking_heads.models.motion.avd import AVDAnimator
from talking_heads.models.mraa.networks import (
    AVDNetwork,
    RegionParams,
    build_networks,
    inverse,
)

MODES = ("standard", "relative", "avd")


def movement_scale(source_region_params: RegionParams, driving_initial: RegionParams) -> float:
    """sqrt(hull area of the source's region shifts / that of the first driving frame's)."""
    return motion.movement_scale(source_region_params["shift"], driving_initial["shift"])


def get_animation_region_params(
    source_region_params: RegionParams,
    driving_region_params: RegionParams,
    driving_region_params_initial: RegionParams,
    mode: str = "standard",
    avd_network: AVDNetwork | None = None,
    adapt_movement_scale: bool = True,
) -> RegionParams:
    """The region parameters that drive the generator in ``mode`` (upstream ``animate.py``).

    ``relative``: shift = μ_src + (μ_drv − μ_drv0)·s with s = :func:`movement_scale` (1 when
    not ``adapt_movement_scale``), affine = A_drv·A_drv0⁻¹·A_src; the other entries (the
    covariances) stay the driving frame's. ``standard``: the driving regions unchanged.
    ``avd``: the AVD network's reconstruction from (source identity, driving pose).
    """
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    if mode == "avd":
        if avd_network is None:
            raise ValueError("mode 'avd' needs the AVD network")
        return avd_network(source_region_params, driving_region_params)
    new_region_params = dict(driving_region_params)
    if mode == "relative":
        scale = (
            movement_scale(source_region_params, driving_region_params_initial)
            if adapt_movement_scale
            else 1.0
        )
        shift_diff = driving_region_params["shift"] - driving_region_params_initial["shift"]
        new_region_params["shift"] = shift_diff * scale + source_region_params["shift"]
        affine_diff = torch.matmul(
            driving_region_params["affine"], inverse(driving_region_params_initial["affine"])
        )
        new_region_params["affine"] = torch.matmul(affine_diff, source_region_params["affine"])
    return new_region_params


class MRAAAnimator(AVDAnimator):
    """Region predictor + generator (+ background predictor, AVD network) in eval mode."""

    NETWORKS = ("region_predictor", "generator", "bg_predictor", "avd_network")
    #: articulated-animation's ``vox256.pth``; as upstream's ``demo.py``, a file without
    #: ``avd_network`` keeps a freshly initialised one
    OFFICIAL_EXPERIMENT = "mraa_vox256"
    OFFICIAL_OPTIONAL = ("avd_network",)

    @classmethod
    def build(cls, hyper_parameters: Mapping[str, Any]) -> dict[str, torch.nn.Module]:
        return build_networks(hyper_parameters["model_params"])

    def prepare(self, source: torch.Tensor, driving_initial: torch.Tensor) -> dict[str, Any]:
        return {
            "source": source,
            "source_region_params": self.region_predictor(source),
            "driving_region_params_initial": self.region_predictor(driving_initial),
            "source_skips": self.generator.encode(source),
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
        source_region_params = expand_batch(prepared["source_region_params"], n)
        driving_region_params = self.region_predictor(frames)
        bg_params = None
        if self._mode == "reconstruction":
            new_region_params = driving_region_params
            bg_params = self.bg_predictor(source, frames)
        else:
            mode = self._mode or ("relative" if relative else "standard")
            new_region_params = get_animation_region_params(
                source_region_params,
                driving_region_params,
                prepared["driving_region_params_initial"],
                mode=mode,
                avd_network=self.avd_network,
                adapt_movement_scale=adapt_scale,
            )
        out = self.generator(
            source,
            source_region_params=source_region_params,
            driving_region_params=new_region_params,
            bg_params=bg_params,
            source_skips=expand_batch(prepared["source_skips"], n) if reuse_source else None,
        )
        return out["prediction"]
