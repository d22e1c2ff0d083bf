"""EmoGen's perceptual loss (``utils.py`` ``perceptionLoss``): the sum over torchvision
VGG19 ``features`` layers 4, 9, 18, 27 and 36 (the five max-pool outputs) of the MSE between
the generated and the ground-truth windows' features, the targets' features detached.

As upstream: no ImageNet normalisation (BGR frames in [0, 1] go in as they are), and each
``(B, 3, T, H, W)`` window is turned into images by the raw ``view(B·T, 3, H, W)`` of its
memory, which regroups channel-time planes instead of separating the frames.

(:class:`talking_heads.nets.vgg19.Vgg19` stops at relu5_1 and normalises, so this module
builds the full ``features`` stack itself, from the same sha256-checked ``vgg19-dcbb9e9d.pth``.)
``pretrained`` ``False`` gives random VGG features (offline demo and tests: a deviation);
``width`` > 1 divides VGG's channels (random weights only; the demo's CPU budget).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

FEATURE_LAYERS = (4, 9, 18, 27, 36)
#: torchvision's ``cfgs["E"]`` (VGG19): channels, "M" for a max-pool
VGG19_CFG = (64, 64, "M", 128, 128, "M", *(256,) * 4, "M", *(512,) * 4, "M", *(512,) * 4, "M")


def vgg19_weights(pretrained: bool | str | Path | None) -> dict[str, torch.Tensor] | None:
    """torchvision's VGG19 state dict (sha256-checked) for ``True`` or a path; ``None`` when
    ``pretrained`` is false."""
    if not pretrained:
        return None
    from talking_heads import weights

    spec = weights.WEIGHTS.get("vgg19")
    path = weights.resolve("vgg19") if pretrained is True else Path(pretrained)
    if not path.is_file():
        raise weights.MissingWeightsError(
            f"VGG19 weights for EmoGen's perceptual loss not found at {path}. Download "
            f"{spec.filename} from {spec.url} into {weights.weights_dir()}/, or set "
            "model.perceptual_pretrained=false to train with random VGG features."
        )
    return weights.load_state_dict(path, sha256=spec.sha256)


def vgg19_features(width: int = 1) -> nn.Sequential:
    """torchvision's ``vgg19().features`` layer for layer (indices as upstream's names)."""
    layers: list[nn.Module] = []
    cin = 3
    for item in VGG19_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            cout = max(1, int(item) // width)
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]
            cin = cout
    return nn.Sequential(*layers)


class PerceptionLoss(nn.Module):
    """Upstream's ``perceptionLoss`` (frozen VGG19 features, eval mode)."""

    def __init__(self, pretrained: bool | str | Path | None = True, width: int = 1) -> None:
        super().__init__()
        state = vgg19_weights(pretrained)
        if state is not None and width != 1:
            raise ValueError("perceptual width must be 1 with the pretrained VGG19")
        self.features = vgg19_features(width)
        if state is not None:
            prefix = "features."
            self.features.load_state_dict(
                {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            )
        self.pretrained = state is not None
        self.requires_grad_(False)
        self.eval()

    def feature_list(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in FEATURE_LAYERS:
                out.append(x)
        return out

    def forward(self, generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Windows ``(B, 3, T, H, W)`` → Σ_layers MSE(features)."""
        n, c, t, h, w = generated.shape
        fake = self.feature_list(generated.reshape(n * t, c, h, w))
        with torch.no_grad():
            real = self.feature_list(target.reshape(n * t, c, h, w))
        return sum(F.mse_loss(a, b.detach()) for a, b in zip(fake, real, strict=True))
