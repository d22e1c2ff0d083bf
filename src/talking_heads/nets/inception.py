"""pytorch-fid 0.3.0's FID Inception v3 (the TF ``inception-2015-12-05`` port): the network of
the ``fid`` and ``is`` metrics, loading ``pt_inception-2015-12-05-6726825d.pth`` from the
weights directory, with pytorch-fid's and torch-fidelity's input paths."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from talking_heads.weights import load_state_dict, resolve

__all__ = ["FIDInception", "load_fid_inception", "resize_bilinear_tf1"]


def resize_bilinear_tf1(images: Tensor, height: int, width: int) -> Tensor:
    """TensorFlow 1.x ``tf.image.resize_bilinear(align_corners=False)`` of ``(N, C, H, W)``.

    Output pixel ``i`` samples the input at ``i * in / out`` (no half-pixel offset): the
    lower neighbour is its floor, the upper one clamped to the border, weights the fraction;
    computed in float32 in the order torch-fidelity's ``interpolate_bilinear_2d_like_
    tensorflow1x(method="slow")`` uses, so the values are the same bits.
    """

    def grid(size_in: int, size_out: int) -> tuple[Tensor, Tensor, Tensor]:
        position = torch.arange(size_out, dtype=images.dtype, device=images.device)
        position = position * torch.tensor(size_in / size_out, dtype=torch.float32)
        low = position.long()
        return low, (low + 1).clamp_max(size_in - 1), position - low.float()

    y_lo, y_hi, dy = grid(images.shape[2], height)
    x_lo, x_hi, dx = grid(images.shape[3], width)
    top, bottom = images[:, :, y_lo, :], images[:, :, y_hi, :]
    top_left, top_right = top[:, :, :, x_lo], top[:, :, :, x_hi]
    bottom_left, bottom_right = bottom[:, :, :, x_lo], bottom[:, :, :, x_hi]
    upper = top_left + (top_right - top_left) * dx.view(1, 1, 1, width)
    lower = bottom_left + (bottom_right - bottom_left) * dx.view(1, 1, 1, width)
    return upper + (lower - upper) * dy.view(1, 1, height, 1)


class FIDInception(nn.Module):
    """pytorch-fid's FID Inception v3 (TF ``inception-2015-12-05`` port), pool3 and logits."""

    def __init__(self) -> None:
        super().__init__()
        from pytorch_fid.inception import (
            FIDInceptionA,
            FIDInceptionC,
            FIDInceptionE_1,
            FIDInceptionE_2,
            _inception_v3,
        )

        net = _inception_v3(num_classes=1008, aux_logits=False, weights=None)
        net.Mixed_5b = FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = FIDInceptionE_1(1280)
        net.Mixed_7c = FIDInceptionE_2(2048)
        self.inception = net

    def forward(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """2048-d pool3 features and 1008 unbiased logits of frames in [0, 1], on
        pytorch-fid's input path (float bilinear resize to 299, ``2x - 1``)."""
        x = F.interpolate(frames, size=(299, 299), mode="bilinear", align_corners=False)
        return self.trunk(2 * x - 1)

    def forward_tf1(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """The same outputs on torch-fidelity's input path: frames quantised to uint8,
        TensorFlow 1's bilinear resize to 299 (:func:`resize_bilinear_tf1`, float32),
        ``(x - 128) / 128``."""
        pixels = (frames.float().clamp(0, 1) * 255).round()
        return self.trunk((resize_bilinear_tf1(pixels, 299, 299) - 128) / 128)

    def trunk(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Pool3 features and unbiased logits of a normalised 299x299 batch."""
        n = self.inception
        x = F.max_pool2d(n.Conv2d_2b_3x3(n.Conv2d_2a_3x3(n.Conv2d_1a_3x3(x))), 3, 2)
        x = F.max_pool2d(n.Conv2d_4a_3x3(n.Conv2d_3b_1x1(x)), 3, 2)
        for block in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(n, f"Mixed_{block}")(x)
        pool3 = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return pool3, pool3 @ n.fc.weight.T


@functools.lru_cache(maxsize=1)
def load_fid_inception() -> FIDInception:
    """The FID Inception with ``pt_inception-2015-12-05-6726825d.pth``, strictly; loaded once
    per process and shared by ``fid`` and ``is`` (eval mode, no gradients)."""
    network = FIDInception()
    network.inception.load_state_dict(load_state_dict(resolve("pt_inception")))
    return network
