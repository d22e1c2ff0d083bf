"""LPIPS v0.1 AlexNet (richzhang/PerceptualSimilarity, ``lpips`` 0.1.4): the network of the
``lpips`` metric.

Backbone: torchvision's ImageNet AlexNet ``alexnet-owt-7be5be79.pth`` from the weights
directory (what ``lpips`` downloads through ``tv.alexnet(pretrained=True)``); heads: the v0.1
``alex.pth`` that torchmetrics ships (byte-identical to the one inside the ``lpips`` wheel;
sha256 checked).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
from torch import Tensor, nn

from talking_heads.weights import load_state_dict, resolve, verify_sha256

__all__ = ["LPIPSNet", "load_lpips", "lpips_heads_path"]

#: sha256 of lpips v0.1 ``alex.pth`` (the same bytes in lpips 0.1.4 and torchmetrics)
LPIPS_ALEX_HEADS_SHA256 = "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0"
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
ALEX_CHANNELS = (64, 192, 384, 256, 256)
#: AlexNet ``features`` indices after which lpips takes its five ReLU outputs
ALEX_SLICES = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))


def lpips_heads_path() -> Path:
    """The v0.1 AlexNet linear heads shipped inside torchmetrics."""
    root = resources.files("torchmetrics") / "functional" / "image" / "lpips_models" / "alex.pth"
    return Path(str(root))


class LPIPSNet(nn.Module):
    """LPIPS v0.1 with AlexNet: parameters ``net.*`` (AlexNet features) and ``lins.<k>``."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import alexnet

        features = alexnet(weights=None).features
        self.slices = nn.ModuleList(
            nn.Sequential(*[features[i] for i in range(a, b)]) for a, b in ALEX_SLICES
        )
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in ALEX_CHANNELS)
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))

    def load_alexnet(self, state: dict[str, Tensor]) -> None:
        """Load torchvision AlexNet weights (``features.<i>.weight`` ...), strictly."""
        features = {k: v for k, v in state.items() if k.startswith("features.")}
        mapping = {}
        for s, (a, b) in enumerate(ALEX_SLICES):
            for i in range(a, b):
                for p in ("weight", "bias"):
                    if f"features.{i}.{p}" in features:
                        mapping[f"slices.{s}.{i - a}.{p}"] = features.pop(f"features.{i}.{p}")
        if features:
            raise KeyError(f"unexpected AlexNet keys {sorted(features)}")
        missing, unexpected = self.load_state_dict(mapping, strict=False)
        if unexpected or [k for k in missing if k.startswith("slices.")]:
            raise KeyError(
                f"AlexNet weights do not fit: missing {missing}, unexpected {unexpected}"
            )

    def load_heads(self, state: dict[str, Tensor]) -> None:
        """Load lpips' ``lin<k>.model.1.weight`` heads, strictly."""
        expected = {f"lin{k}.model.1.weight" for k in range(5)}
        if set(state) != expected:
            raise KeyError(f"LPIPS heads: expected keys {sorted(expected)}, got {sorted(state)}")
        for k in range(5):
            self.lins[k].weight.data.copy_(state[f"lin{k}.model.1.weight"])

    def forward(self, generated: Tensor, reference: Tensor) -> Tensor:
        """LPIPS per pair of ``(N, 3, H, W)`` frames in [0, 1]."""
        x = torch.cat([generated, reference]) * 2 - 1
        x = (x - self.shift) / self.scale
        total = torch.zeros(len(generated), device=x.device, dtype=x.dtype)
        for s, block in enumerate(self.slices):
            x = block(x)
            unit = x / (torch.sqrt(torch.sum(x**2, dim=1, keepdim=True)) + 1e-10)
            gen, ref = unit.chunk(2)
            total = total + self.lins[s]((gen - ref) ** 2).mean(dim=(1, 2, 3))
        return total


def load_lpips() -> LPIPSNet:
    """LPIPSNet with the registered AlexNet backbone and torchmetrics' v0.1 heads, strictly."""
    network = LPIPSNet()
    network.load_alexnet(load_state_dict(resolve("alexnet")))
    heads = lpips_heads_path()
    verify_sha256(heads, LPIPS_ALEX_HEADS_SHA256)
    network.load_heads(torch.load(heads, map_location="cpu", weights_only=True))
    return network.eval()
