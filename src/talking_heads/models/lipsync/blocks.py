"""Wav2Lip's building blocks (``models/conv.py``) and encoders, with the official parameter
names, so the released state dicts load key by key.

``width`` divides every channel count (1 = the published networks). The demo experiments
use narrow networks (``width`` 8) to train in seconds on a CPU; the key names stay those of
the official files, only the shapes shrink.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Conv2d(nn.Module):
    """Conv → BatchNorm → ReLU, with the input added before the ReLU when ``residual``."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int],
        padding: int | tuple[int, int],
        residual: bool = False,
    ) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout)
        )
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class NoNormConv2d(nn.Module):
    """Conv → LeakyReLU(0.01), no normalisation (upstream ``nonorm_Conv2d``, discriminator)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int],
        padding: int | tuple[int, int],
    ) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding))
        self.act = nn.LeakyReLU(0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


class Conv2dTranspose(nn.Module):
    """Transposed conv → BatchNorm → ReLU."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int,
        stride: int,
        padding: int,
        output_padding: int = 0,
    ) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding),
            nn.BatchNorm2d(cout),
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


def scaled(channels: int, width: int) -> int:
    """``channels`` divided by ``width`` (at least 1); the input channels are never scaled."""
    return max(1, channels // width)


def residual_stage(
    cin: int,
    cout: int,
    stride: int | tuple[int, int],
    residuals: int,
    *,
    kernel_size: int = 3,
    padding: int = 1,
) -> list[Conv2d]:
    """A strided ``Conv2d`` then ``residuals`` residual 3×3 ``Conv2d`` blocks."""
    blocks = [Conv2d(cin, cout, kernel_size, stride, padding)]
    blocks += [Conv2d(cout, cout, 3, 1, 1, residual=True) for _ in range(residuals)]
    return blocks


def mel_audio_encoder(width: int = 1, residuals: Sequence[int] = (2, 2, 2, 1)) -> nn.Sequential:
    """The encoder of one ``1×80×16`` mel window to ``512×1×1`` (Wav2Lip's and the expert's).

    Four stages at 32, 64, 128, 256 channels with strides 1, (3, 1), 3, (3, 2), each followed
    by ``residuals[i]`` residual blocks (the generator: 2, 2, 2, 1; the expert: 2, 2, 2, 2),
    then a 3×3 valid conv and a 1×1 conv at 512.
    """
    c = [scaled(n, width) for n in (32, 64, 128, 256, 512)]
    layers: list[nn.Module] = []
    cin = 1
    for cout, stride, count in zip(c[:4], (1, (3, 1), 3, (3, 2)), residuals, strict=True):
        layers += residual_stage(cin, cout, stride, count)
        cin = cout
    layers += [Conv2d(cin, c[4], 3, 1, 0), Conv2d(c[4], c[4], 1, 1, 0)]
    return nn.Sequential(*layers)


def fold_time(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``(B, ..., T, ...)`` with time at ``dim`` → ``(T·B, ...)``, frame-major as upstream's
    ``torch.cat([x[:, i] for i in range(T)], dim=0)``."""
    return torch.cat(x.unbind(dim), dim=0)


def unfold_time(x: torch.Tensor, batch: int) -> torch.Tensor:
    """Inverse of :func:`fold_time` for channel-first outputs: ``(T·B, C, H, W)`` →
    ``(B, C, T, H, W)``."""
    return torch.stack(torch.split(x, batch, dim=0), dim=2)
