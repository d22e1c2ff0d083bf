"""ArcFace: insightface arcface_torch's ``IResNet`` for 112x112 faces -> 512-d embeddings.

:class:`IResNet` keeps arcface_torch's parameter names (``backbones/iresnet.py``), so the model
zoo's ``backbone.pth`` files registered in :data:`ARCFACE_MODELS` load strictly
(:func:`load_arcface`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from talking_heads.nets import load_pretrained

#: iresnet depth -> blocks per stage (arcface_torch ``backbones/iresnet.py``)
IRESNET_LAYERS = {
    "r18": (2, 2, 2, 2),
    "r34": (3, 4, 6, 3),
    "r50": (3, 4, 14, 3),
    "r100": (3, 13, 30, 3),
}

#: registered ArcFace weights -> iresnet depth
ARCFACE_MODELS = {
    "arcface_r100": "r100",
    "arcface_r50": "r50",
    "arcface_glint360k_r100": "r100",
}


class IBasicBlock(nn.Module):
    """arcface_torch's pre-activation basic block: BN, conv, BN, PReLU, conv (stride), BN."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                nn.BatchNorm2d(planes, eps=1e-05),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """arcface_torch ``IResNet`` (insightface ``recognition/arcface_torch/backbones/
    iresnet.py``) for 112x112 faces -> 512-d embeddings, with its parameter names."""

    def __init__(self, depth: str = "r100", num_features: int = 512) -> None:
        super().__init__()
        layers = IRESNET_LAYERS[depth]
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-05)
        self.prelu = nn.PReLU(64)
        inplanes = 64
        for index, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            stage = [IBasicBlock(inplanes, planes, 2)]
            stage += [IBasicBlock(planes, planes) for _ in range(1, blocks)]
            setattr(self, f"layer{index + 1}", nn.Sequential(*stage))
            inplanes = planes
        self.bn2 = nn.BatchNorm2d(512, eps=1e-05)
        self.dropout = nn.Dropout(p=0.0)
        self.fc = nn.Linear(512 * 7 * 7, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-05)

    def forward(self, x: Tensor) -> Tensor:
        """Embeddings ``(N, 512)`` of ``(N, 3, 112, 112)`` RGB faces in ``[-1, 1]``."""
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def load_arcface(model: str = "arcface_r100") -> IResNet:
    """The iresnet of the registered ArcFace weights ``model``, loaded strictly, in eval mode."""
    return load_pretrained(lambda: IResNet(ARCFACE_MODELS[model]), model)  # type: ignore[return-value]
