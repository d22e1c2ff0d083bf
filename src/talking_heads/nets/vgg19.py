"""VGG19 features of the FOMM-lineage perceptual loss (torchvision's ImageNet VGG19).

The losses take the relu1_1 … relu5_1 outputs of torchvision's VGG19 on ImageNet-normalised
frames, as first-order-model's ``modules/model.py`` ``Vgg19`` does; the weights are
torchvision's ``vgg19-dcbb9e9d.pth`` from the weights directory (sha256 prefix checked).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class Vgg19(nn.Module):
    """torchvision VGG19 features cut at relu1_1 … relu5_1, ImageNet-normalised input.

    ``weights`` is a torchvision VGG19 state dict (``vgg19-dcbb9e9d.pth``) or ``None`` for a
    randomly initialised network (used only where no weights can be had, e.g. the offline
    demo: the loss is then a random-feature perceptual loss, not upstream's).
    """

    SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))

    def __init__(self, weights: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        import torchvision

        vgg = torchvision.models.vgg19(weights=None)
        if weights is not None:
            vgg.load_state_dict(weights)
        features = vgg.features
        self.slices = nn.ModuleList(
            nn.Sequential(*[features[i] for i in range(start, stop)]) for start, stop in self.SLICES
        )
        self.register_buffer(
            "mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False
        )
        self.requires_grad_(False)
        self.pretrained = weights is not None

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = (x - self.mean) / self.std
        features = []
        for block in self.slices:
            out = block(out)
            features.append(out)
        return features


def load_vgg19(perceptual_pretrained: bool | str | Path | None) -> Vgg19:
    """The perceptual-loss VGG19: ImageNet weights (sha256-checked) or random when ``False``.

    ``True`` resolves upstream's ``vgg19-dcbb9e9d.pth`` in the weights directory
    (:func:`talking_heads.weights.resolve`); a path loads that file. ``False``/``None`` gives a
    randomly initialised VGG19: a deviation from upstream (which always uses torchvision's
    ImageNet VGG19) for offline runs where the 548 MB file cannot be had; the loss is then a
    random-feature perceptual loss.
    """
    if perceptual_pretrained is False or perceptual_pretrained is None:
        return Vgg19(weights=None)
    from talking_heads import weights

    spec = weights.WEIGHTS.get("vgg19")
    if perceptual_pretrained is True:
        path = weights.resolve("vgg19")
    else:
        path = Path(perceptual_pretrained)
        if not path.is_file():
            raise weights.MissingWeightsError(
                f"VGG19 weights for the perceptual loss not found at {path}. Download "
                f"{spec.filename} from {spec.url} into {weights.weights_dir()}/, or set "
                "model.perceptual_pretrained=false to train with random VGG features."
            )
    return Vgg19(weights.load_state_dict(path, sha256=spec.sha256))
