"""FOMM inference: relative/absolute keypoint transfer, batched over driving frames.

``normalize_kp`` follows first-order-model's ``animate.py``; ``FOMMAnimator.animate`` does
what ``demo.py``'s ``make_animation`` does (source and first-driving-frame keypoints computed
once, then keypoints + generator per driving frame) but runs the driving frames in batches.
"""

from __future__ import annotations

from pathlib import Path

import torch

from talking_heads.models.fomm.networks import Keypoints, build_networks
from talking_heads.models.motion.blocks import convex_hull_area


def normalize_kp(
    kp_source: Keypoints,
    kp_driving: Keypoints,
    kp_driving_initial: Keypoints,
    adapt_movement_scale: bool = False,
    use_relative_movement: bool = False,
    use_relative_jacobian: bool = False,
) -> Keypoints:
    """Driving keypoints made relative to the first driving frame and applied to the source.

    With ``adapt_movement_scale`` the motion is scaled by sqrt(hull area of the source
    keypoints / hull area of the initial driving keypoints).
    """
    scale = 1.0
    if adapt_movement_scale:
        source_area = convex_hull_area(kp_source["value"][0].detach().float().cpu().numpy())
        driving_area = convex_hull_area(
            kp_driving_initial["value"][0].detach().float().cpu().numpy()
        )
        scale = (source_area / driving_area) ** 0.5
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


class FOMMAnimator:
    """Keypoint detector + generator in eval mode, for animation and reconstruction."""

    def __init__(
        self, kp_detector: torch.nn.Module, generator: torch.nn.Module, resolution: int
    ) -> None:
        self.kp_detector = kp_detector.eval()
        self.generator = generator.eval()
        self.resolution = resolution

    @classmethod
    def from_checkpoint(cls, path: Path | str, map_location: str = "cpu") -> FOMMAnimator:
        """Load one of our Lightning checkpoints (``torch.load(weights_only=True)``)."""
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        hparams = checkpoint["hyper_parameters"]
        kp_detector, generator, _ = build_networks(hparams["model_params"])
        state = checkpoint["state_dict"]
        for name, net in (("kp_detector", kp_detector), ("generator", generator)):
            prefix = name + "."
            net.load_state_dict(
                {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, strict=True
            )
        device = map_location if map_location != "auto" else "cpu"
        return cls(
            kp_detector.to(device), generator.to(device), int(hparams.get("resolution", 256))
        )

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def animate(
        self,
        source: torch.Tensor,
        driving: torch.Tensor,
        *,
        relative: bool = True,
        adapt_scale: bool = True,
        batch_size: int = 16,
        device: str | None = None,
        amp: bool = False,
    ) -> torch.Tensor:
        """Animate ``source`` ``(3, H, W)`` with ``driving`` ``(T, 3, H, W)`` in [0, 1]."""
        if device is not None and torch.device(device) != self.device:
            self.kp_detector.to(device)
            self.generator.to(device)
        device = self.device
        use_amp = amp and device.type == "cuda"
        outputs = []
        with torch.inference_mode(), torch.autocast(device.type, enabled=use_amp):
            source_batch = source.unsqueeze(0).to(device)
            kp_source = self.kp_detector(source_batch)
            kp_initial = self.kp_detector(driving[:1].to(device))
            for start in range(0, driving.shape[0], batch_size):
                frames = driving[start : start + batch_size].to(device, non_blocking=True)
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
                    kp_driving=_expand(kp_norm, n),
                )
                outputs.append(out["prediction"].float().cpu())
        return torch.cat(outputs)

    def reconstruct(
        self, video: torch.Tensor, *, batch_size: int = 16, device: str | None = None
    ) -> torch.Tensor:
        """FOMM's reconstruction protocol: frame 0 is the source, absolute motion."""
        return self.animate(
            video[0], video, relative=False, adapt_scale=False, batch_size=batch_size, device=device
        )
