"""OpenFace nn4.small2.v1 as thnkim/OpenFacePytorch builds it (``loadOpenFace.py``).

:class:`OpenFaceNet` keeps ``netOpenFace``'s ``layerN`` names, so ``openface.pth`` loads
strictly (:func:`load_openface`); its LRN layers reproduce that port's off-by-one
(:func:`legacy_cross_map_lrn`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from talking_heads.nets import load_pretrained


def legacy_cross_map_lrn(
    x: Tensor, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> Tensor:
    """OpenFacePytorch's ``SpatialCrossMapLRN_temp`` (a port of torch.legacy's
    ``SpatialCrossMapLRN``), vectorised, including its off-by-one.

    The sum over channels ``[c - size//2, c + size//2]`` is built as a running window whose
    0-based translation never removes channel 0 (``if c > prePad``): every channel from
    ``prePad = size//2 + 1`` on also adds ``x[:, 0]**2``. ``x * (k + alpha/size * sum)**-beta``.
    """
    if size % 2 != 1:
        raise ValueError("odd LRN sizes only")
    half = size // 2
    square = x * x
    channels = x.shape[1]
    padded = F.pad(square, (0, 0, 0, 0, half, half))
    window = sum(padded[:, i : i + channels] for i in range(size))
    stale = (torch.arange(channels, device=x.device) >= half + 1).to(x.dtype).view(1, -1, 1, 1)
    window = window + stale * square[:, :1]
    return x * (window * (alpha / size) + k).pow(-beta)


class _LRN(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return legacy_cross_map_lrn(x, 5, 1e-4, 0.75, 1.0)


def _conv_bn_relu(
    in_ch: int, out_ch: int, kernel: int, stride: int, first: int
) -> list[tuple[str, nn.Module]]:
    """OpenFacePytorch's numbered conv (``kernel // 2`` padding) - BatchNorm - ReLU layers,
    named ``{first}_conv``, ``{first + 1}_bn``, ``{first + 2}_relu``."""
    return [
        (f"{first}_conv", nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2)),
        (f"{first + 1}_bn", nn.BatchNorm2d(out_ch)),
        (f"{first + 2}_relu", nn.ReLU()),
    ]


class _Inception(nn.Module):
    """OpenFacePytorch's ``Inception`` block: ``seq_list`` branches (1x1 reduce -> nxn conv;
    pool -> optional 1x1; optional 1x1), zero-padded to the largest map and concatenated."""

    def __init__(
        self,
        in_ch: int,
        kernels: Sequence[int],
        strides: Sequence[int],
        out_ch: Sequence[int],
        reduce: Sequence[int | None],
        pool: nn.Module,
    ) -> None:
        super().__init__()
        branches = []
        for i, (kernel, stride, out) in enumerate(zip(kernels, strides, out_ch, strict=True)):
            mid = int(reduce[i])  # type: ignore[arg-type]
            layers = _conv_bn_relu(in_ch, mid, 1, 1, 1) + _conv_bn_relu(mid, out, kernel, stride, 4)
            branches.append(nn.Sequential(OrderedDict(layers)))
        n = len(kernels)
        pool_branch = [("1_pool", pool)]
        if n < len(reduce) and reduce[n] is not None:
            pool_branch += _conv_bn_relu(in_ch, int(reduce[n]), 1, 1, 2)  # type: ignore[arg-type]
        branches.append(nn.Sequential(OrderedDict(pool_branch)))
        if n + 1 < len(reduce) and reduce[n + 1] is not None:
            mid = int(reduce[n + 1])  # type: ignore[arg-type]
            branches.append(nn.Sequential(OrderedDict(_conv_bn_relu(in_ch, mid, 1, 1, 1))))
        self.seq_list = nn.ModuleList(branches)

    def forward(self, x: Tensor) -> Tensor:
        ys = [branch(x) for branch in self.seq_list]
        height = max(y.shape[2] for y in ys)
        width = max(y.shape[3] for y in ys)
        out = []
        for y in ys:
            left, top = (width - y.shape[3]) // 2, (height - y.shape[2]) // 2
            out.append(F.pad(y, (left, width - y.shape[3] - left, top, height - y.shape[2] - top)))
        return torch.cat(out, 1)


class OpenFaceNet(nn.Module):
    """OpenFace nn4.small2.v1 as thnkim/OpenFacePytorch's ``netOpenFace`` builds it (same
    ``layerN`` names; the LRN layers 5 and 12 hold no parameters): ``(N, 3, 96, 96)`` BGR in
    ``[0, 1]`` -> L2-normalised 128-d embeddings (``x / sqrt(sum x^2 + 1e-6)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer1 = nn.Conv2d(3, 64, 7, 2, 3)
        self.layer2 = nn.BatchNorm2d(64)
        self.layer3 = nn.ReLU()
        self.layer4 = nn.MaxPool2d(3, 2, 1)
        self.layer5 = _LRN()
        self.layer6 = nn.Conv2d(64, 64, 1)
        self.layer7 = nn.BatchNorm2d(64)
        self.layer8 = nn.ReLU()
        self.layer9 = nn.Conv2d(64, 192, 3, 1, 1)
        self.layer10 = nn.BatchNorm2d(192)
        self.layer11 = nn.ReLU()
        self.layer12 = _LRN()
        self.layer13 = nn.MaxPool2d(3, 2, 1)

        def max_pool() -> nn.Module:
            return nn.MaxPool2d(3, 2, 0)

        def lp_pool() -> nn.Module:
            return nn.LPPool2d(2, 3, 3)

        self.layer14 = _Inception(192, (3, 5), (1, 1), (128, 32), (96, 16, 32, 64), max_pool())
        self.layer15 = _Inception(256, (3, 5), (1, 1), (128, 64), (96, 32, 64, 64), lp_pool())
        self.layer16 = _Inception(320, (3, 5), (2, 2), (256, 64), (128, 32, None, None), max_pool())
        self.layer17 = _Inception(640, (3, 5), (1, 1), (192, 64), (96, 32, 128, 256), lp_pool())
        self.layer18 = _Inception(
            640, (3, 5), (2, 2), (256, 128), (160, 64, None, None), max_pool()
        )
        self.layer19 = _Inception(1024, (3,), (1,), (384,), (96, 96, 256), lp_pool())
        self.layer21 = _Inception(736, (3,), (1,), (384,), (96, 96, 256), max_pool())
        self.layer22 = nn.AvgPool2d(3, 1, 0)
        self.layer25 = nn.Linear(736, 128)

    def forward(self, x: Tensor) -> Tensor:
        """Unit-norm embeddings ``(N, 128)`` (upstream's first output)."""
        for index in (*range(1, 20), 21, 22):
            x = getattr(self, f"layer{index}")(x)
        x = self.layer25(x.view(-1, 736))
        return x / torch.sqrt((x * x).sum(1) + 1e-6).view(-1, 1)


def load_openface() -> OpenFaceNet:
    """OpenFace with ``openface.pth``, loaded strictly, in eval mode."""
    return load_pretrained(OpenFaceNet, "openface")  # type: ignore[return-value]
