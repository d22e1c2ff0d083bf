"""EmoGen's colour augmentation (``train.py``'s ``A.Compose``, albumentations), in torch.

Upstream augments the 5 target frames and the 5 reference frames together (``additional_
targets``: one draw of the parameters for all 10), with probability 0.8, each transform with
probability 0.4, in this order: RandomBrightnessContrast (±0.2, by max), RandomGamma (80–120),
CLAHE (clip 1–4, 8×8 tiles), HueSaturationValue (hue ±20, saturation ±50, value ±50),
ChannelShuffle, RGBShift (±20 per channel), RandomBrightness (±0.2), RandomContrast (±0.2)
and GaussNoise (variance 10–50; albumentations draws one noise field for all targets).
As upstream, the frames are uint8-valued BGR handed to transforms that assume RGB, and every
transform rounds and clips to 0…255 as it does on uint8 images.

Deviation: CLAHE equalises the BT.601 luminance and rescales the three channels by its
change (albumentations: OpenCV's CLAHE on the LAB ``L`` channel); the tiling, the clip limit
and the bilinear blend of the tiles' look-up tables are OpenCV's.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

#: probability of the whole pipeline and of each transform (``train.py``)
P_PIPELINE = 0.8
P_EACH = 0.4


def _u8(x: torch.Tensor) -> torch.Tensor:
    return x.round().clamp(0, 255)


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """(3, …) in 0…255 → OpenCV's uint8 HSV: H in [0, 180), S and V in 0…255."""
    r, g, b = x / 255.0
    high, _ = x.max(0)
    high = high / 255.0
    low = torch.minimum(torch.minimum(r, g), b)
    delta = high - low
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(
        high == r,
        (g - b) / safe % 6,
        torch.where(high == g, (b - r) / safe + 2, (r - g) / safe + 4),
    )
    hue = torch.where(delta > 0, hue * 30.0, torch.zeros_like(hue))
    sat = torch.where(
        high > 0, delta / torch.where(high > 0, high, torch.ones_like(high)), 0 * high
    )
    return torch.stack([hue.round() % 180, _u8(sat * 255), _u8(high * 255)])


def _hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    hue, sat, val = x[0] * 2.0, x[1] / 255.0, x[2] / 255.0
    k = lambda n: (n + hue / 60.0) % 6
    f = lambda n: val - val * sat * k(n).clamp(min=0).minimum(4 - k(n)).clamp(0, 1)
    return _u8(torch.stack([f(5), f(3), f(1)]) * 255)


def clahe(luma: torch.Tensor, clip_limit: float, grid: int = 8) -> torch.Tensor:
    """OpenCV-style CLAHE of ``(N, H, W)`` 0…255 images (each its own histograms)."""
    n, h, w = luma.shape
    th, tw = math.ceil(h / grid), math.ceil(w / grid)
    padded = F.pad(luma[:, None], (0, tw * grid - w, 0, th * grid - h), mode="reflect")[:, 0]
    tiles = padded.reshape(n, grid, th, grid, tw).permute(0, 1, 3, 2, 4).reshape(n, grid, grid, -1)
    hist = F.one_hot(tiles.long(), 256).sum(-2).float()
    area = th * tw
    limit = max(clip_limit * area / 256.0, 1.0)
    clipped = hist.clamp(max=limit)
    clipped = clipped + (hist - clipped).sum(-1, keepdim=True) / 256.0
    lut = (clipped.cumsum(-1) * (255.0 / area)).clamp(0, 255)  # (N, gy, gx, 256)
    # bilinear blend of the four nearest tiles' tables, as OpenCV
    fy = ((torch.arange(h, dtype=torch.float32) + 0.5) / th - 0.5).clamp(0, grid - 1)
    fx = ((torch.arange(w, dtype=torch.float32) + 0.5) / tw - 0.5).clamp(0, grid - 1)
    y0, x0 = fy.floor().long(), fx.floor().long()
    y1, x1 = (y0 + 1).clamp(max=grid - 1), (x0 + 1).clamp(max=grid - 1)
    wy, wx = (fy - y0)[:, None], (fx - x0)[None, :]
    index = luma.long()
    frames = torch.arange(n)[:, None, None]

    def table(ty: torch.Tensor, tx: torch.Tensor) -> torch.Tensor:
        return lut[frames, ty[None, :, None], tx[None, None, :], index]

    top = table(y0, x0) * (1 - wx) + table(y0, x1) * wx
    bottom = table(y1, x0) * (1 - wx) + table(y1, x1) * wx
    return _u8(top * (1 - wy) + bottom * wy)


def colour_transform(frames: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """One draw of upstream's pipeline applied to all frames ``(3, T, H, W)`` in 0…255."""
    x = frames
    u = lambda low, high: float(rng.uniform(low, high))
    if rng.random() < P_EACH:  # RandomBrightnessContrast
        alpha, beta = 1 + u(-0.2, 0.2), u(-0.2, 0.2)
        x = _u8(x * alpha + beta * 255)
    if rng.random() < P_EACH:  # RandomGamma
        x = _u8((x / 255.0) ** (u(80, 120) / 100.0) * 255)
    if rng.random() < P_EACH:  # CLAHE
        luma = _u8(0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])
        equalised = clahe(luma, u(1.0, 4.0))
        x = _u8(x * (equalised / luma.clamp(min=1))[None])
    if rng.random() < P_EACH:  # HueSaturationValue
        hsv = _rgb_to_hsv(x)
        hue, sat, val = u(-20, 20), u(-50, 50), u(-50, 50)
        hsv = torch.stack([(hsv[0] + round(hue)) % 180, _u8(hsv[1] + sat), _u8(hsv[2] + val)])
        x = _hsv_to_rgb(hsv)
    if rng.random() < P_EACH:  # ChannelShuffle
        x = x[torch.from_numpy(rng.permutation(3))]
    if rng.random() < P_EACH:  # RGBShift
        x = _u8(x + torch.tensor([u(-20, 20) for _ in range(3)]).view(3, 1, 1, 1))
    if rng.random() < P_EACH:  # RandomBrightness
        x = _u8(x + u(-0.2, 0.2) * 255)
    if rng.random() < P_EACH:  # RandomContrast
        x = _u8(x * (1 + u(-0.2, 0.2)))
    if rng.random() < P_EACH:  # GaussNoise: one field for all frames
        sigma = math.sqrt(u(10.0, 50.0))
        noise = torch.from_numpy(rng.normal(0.0, sigma, (x.shape[0], *x.shape[2:]))).float()
        x = _u8(x + noise[:, None])
    return x


def augment(
    window: torch.Tensor, wrong: torch.Tensor, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Target and reference windows ``(3, 5, H, W)`` in [0, 1] → the same colour transform
    applied to both (probability 0.8), as ``train.py``'s ``augmentVideo``."""
    if rng.random() >= P_PIPELINE:
        return window, wrong
    frames = _u8(torch.cat([window, wrong], dim=1) * 255.0)
    out = colour_transform(frames, rng) / 255.0
    return out[:, : window.shape[1]].contiguous(), out[:, window.shape[1] :].contiguous()
