"""FOMM inference: relative/absolute keypoint transfer, batched over driving frames.

``normalize_kp`` follows first-order-model's ``animate.py``; ``FOMMAnimator.animate`` does
what ``demo.py``'s ``make_animation`` does (source and first-driving-frame keypoints computed
once, then keypoints + generator per driving frame) but runs the driving frames in batches and
encodes the source once. In eval mode both are per-frame computations, so batching changes
nothing but speed.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch

from talking_heads.models.fomm.networks import (
    VOX256_MODEL_PARAMS,
    Keypoints,
    KPDetector,
    OcclusionAwareGenerator,
    build_networks,
)
from talking_heads.models.motion.blocks import convex_hull_area


def movement_scale(kp_source: Keypoints, kp_driving_initial: Keypoints) -> float:
    """sqrt(hull area of the source keypoints / hull area of the initial driving keypoints).

    Upstream raises when a hull is degenerate (keypoints collapsed onto a line, as in an
    untrained model); here the scale falls back to 1 with a warning.
    """
    from scipy.spatial import QhullError

    try:
        source_area = convex_hull_area(kp_source["value"][0].detach().float().cpu().numpy())
        driving_area = convex_hull_area(
            kp_driving_initial["value"][0].detach().float().cpu().numpy()
        )
    except QhullError:
        source_area = driving_area = 0.0
    if source_area <= 0 or driving_area <= 0:
        warnings.warn(
            "degenerate keypoint convex hull: movement scale set to 1", RuntimeWarning, stacklevel=2
        )
        return 1.0
    return math.sqrt(source_area) / math.sqrt(driving_area)


def normalize_kp(
    kp_source: Keypoints,
    kp_driving: Keypoints,
    kp_driving_initial: Keypoints,
    adapt_movement_scale: bool = False,
    use_relative_movement: bool = False,
    use_relative_jacobian: bool = False,
) -> Keypoints:
    """Driving keypoints made relative to the first driving frame and applied to the source.

    Relative movement: kp_src + (kp_drv − kp_drv0)·s, with s = :func:`movement_scale` when
    ``adapt_movement_scale`` else 1; relative Jacobians: J_drv · J_drv0⁻¹ · J_src. Without
    relative movement the driving keypoints are returned unchanged (absolute transfer).
    """
    scale = movement_scale(kp_source, kp_driving_initial) if adapt_movement_scale else 1.0
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


def _expand(kp: Keypoints, batch: int) -> Keypoints:
    return {key: value.expand(batch, *value.shape[1:]) for key, value in kp.items()}


def _state_of(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


class FOMMAnimator:
    """Keypoint detector + generator in eval mode, for animation and reconstruction."""

    def __init__(
        self,
        kp_detector: KPDetector | torch.nn.Module,
        generator: OcclusionAwareGenerator | torch.nn.Module,
        resolution: int = 256,
    ) -> None:
        self.kp_detector = kp_detector.eval()
        self.generator = generator.eval()
        self.resolution = int(resolution)

    @classmethod
    def from_checkpoint(cls, path: Path | str, map_location: str = "cpu") -> FOMMAnimator:
        """Load a Lightning checkpoint of :class:`FOMMLightning` (``weights_only=True``)."""
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        hparams = checkpoint["hyper_parameters"]
        kp_detector, generator, _ = build_networks(hparams["model_params"])
        state = checkpoint["state_dict"]
        kp_detector.load_state_dict(_state_of(state, "kp_detector."), strict=True)
        generator.load_state_dict(_state_of(state, "generator."), strict=True)
        device = "cpu" if map_location == "auto" else map_location
        return cls(
            kp_detector.to(device), generator.to(device), int(hparams.get("resolution", 256))
        )

    @classmethod
    def from_official(
        cls,
        path: Path | str,
        model_params: dict | None = None,
        map_location: str = "cpu",
        resolution: int = 256,
    ) -> FOMMAnimator:
        """Load an official first-order-model checkpoint (e.g. ``vox-cpk.pth.tar``).

        Its ``kp_detector`` and ``generator`` sub-dicts load strictly into networks built from
        ``model_params`` (default: vox-256). ``weights_only=True`` reads these files, which hold
        only tensors, optimiser state and an epoch number.
        """
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        kp_detector, generator, _ = build_networks(model_params or VOX256_MODEL_PARAMS)
        kp_detector.load_state_dict(checkpoint["kp_detector"], strict=True)
        generator.load_state_dict(checkpoint["generator"], strict=True)
        device = "cpu" if map_location == "auto" else map_location
        return cls(kp_detector.to(device), generator.to(device), resolution)

    @property
    def device(self) -> torch.device:
        """Where the networks live."""
        return next(self.generator.parameters()).device

    def to(self, device: torch.device | str) -> FOMMAnimator:
        """Move both networks to ``device``."""
        self.kp_detector.to(device)
        self.generator.to(device)
        return self

    def animate(
        self,
        source: torch.Tensor,
        driving: torch.Tensor,
        *,
        relative: bool = True,
        adapt_scale: bool = True,
        batch_size: int = 16,
        device: torch.device | str | None = None,
        amp: bool = False,
    ) -> torch.Tensor:
        """Animate ``source`` ``(3, H, W)`` with ``driving`` ``(T, 3, H, W)``, both in [0, 1].

        ``relative`` transfers the motion relative to the first driving frame (relative
        keypoints and Jacobians); ``adapt_scale`` then scales it by the keypoint hull areas.
        ``device`` moves the networks there first (``None``: where they are); ``amp`` runs
        fp16 autocast on CUDA. Returns ``(T, 3, H, W)`` float32 on the CPU.
        """
        if device is not None and torch.device(device) != self.device:
            self.to(device)
        device = self.device
        use_amp = amp and device.type == "cuda"
        outputs = []
        with torch.inference_mode(), torch.autocast(device.type, enabled=use_amp):
            source_batch = source.unsqueeze(0).to(device, torch.float32)
            kp_source = self.kp_detector(source_batch)
            kp_initial = self.kp_detector(driving[:1].to(device, torch.float32))
            source_features = self.generator.encode(source_batch)
            for start in range(0, driving.shape[0], batch_size):
                frames = driving[start : start + batch_size].to(device, torch.float32)
                n = frames.shape[0]
                kp_driving = self.kp_detector(frames)
                kp_norm = normalize_kp(
                    kp_source,
                    kp_driving,
                    kp_initial,
                    adapt_movement_scale=adapt_scale and relative,
                    use_relative_movement=relative,
                    use_relative_jacobian=relative,
                )
                out = self.generator(
                    source_batch.expand(n, -1, -1, -1),
                    kp_source=_expand(kp_source, n),
                    kp_driving=kp_norm,
                    source_features=source_features.expand(n, -1, -1, -1),
                )
                outputs.append(out["prediction"].float().cpu())
        return torch.cat(outputs)

    def reconstruct(
        self,
        video: torch.Tensor,
        *,
        batch_size: int = 16,
        device: torch.device | str | None = None,
        amp: bool = False,
    ) -> torch.Tensor:
        """FOMM's reconstruction protocol: frame 0 is the source, absolute motion."""
        return self.animate(
            video[0],
            video,
            relative=False,
            adapt_scale=False,
            batch_size=batch_size,
            device=device,
            amp=amp,
        )
