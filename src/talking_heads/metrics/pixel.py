"""Pixel metrics: L1, PSNR and SSIM (two variants), batched in torch on any device.

All take float RGB frames ``(N, 3, H, W)`` in ``[0, 1]`` and return one value per frame. They
compute in float64 by default so that they equal the scikit-image / numpy references to
~1e-12 (tests require 1e-6); pass ``dtype=torch.float32`` for speed where that is not needed.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from talking_heads.metrics.base import METRICS, Metric

__all__ = ["L1", "PSNR", "SSIM", "SSIMSkimageDefault", "psnr", "ssim"]


def _as(x: Tensor, dtype: torch.dtype) -> Tensor:
    # MPS has no float64; fall back to float32 there
    if dtype == torch.float64 and x.device.type == "mps":
        dtype = torch.float32
    return x.to(dtype)


@METRICS.register("l1")
class L1(Metric):
    """Mean absolute error per frame, as FOMM's ``reconstruction.py`` reports it."""

    name: ClassVar[str] = "l1"
    higher_is_better: ClassVar[bool] = False
    reference: ClassVar[str] = (
        "first-order-model reconstruction.py: torch.abs(prediction - driving).mean() per frame, "
        "i.e. mean |pred - gt| over pixels and channels of float RGB in [0, 1]"
    )

    def __init__(self, dtype: torch.dtype = torch.float64) -> None:
        self.dtype = dtype

    def __call__(self, generated: Tensor, reference: Tensor, **inputs: Any) -> Tensor:
        """Per-frame mean |generated - reference|."""
        self.check_pair(generated, reference)
        diff = _as(generated, self.dtype) - _as(reference, self.dtype)
        return diff.abs().mean(dim=(1, 2, 3))


def psnr(generated: Tensor, reference: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-frame ``10 log10(data_range^2 / MSE)``; ``+inf`` where the frames are identical."""
    mse = (generated - reference).square().mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(data_range**2 / mse)


@METRICS.register("psnr")
class PSNR(Metric):
    """PSNR per frame on RGB in ``[0, 1]`` (data range 1).

    Identical frames (MSE = 0) give ``+inf``, exactly as scikit-image does; no cap is applied
    (ATVGnet's 100 dB cap would clip real values: at 256x256 one uint8 level in one channel
    of one pixel already gives 101 dB). A mean over frames that contains an identical frame
    is therefore ``inf``; :func:`talking_heads.metrics.score.score` counts such frames.
    """

    name: ClassVar[str] = "psnr"
    higher_is_better: ClassVar[bool] = True
    reference: ClassVar[str] = (
        "skimage.metrics.peak_signal_noise_ratio(gt, pred, data_range=1.0) per frame on RGB "
        "in [0, 1] (= skimage.measure.compare_psnr on [0, 1] floats, as in the DaGAN/MCNet "
        "harness); +inf when MSE = 0, no cap"
    )

    def __init__(self, data_range: float = 1.0, dtype: torch.dtype = torch.float64) -> None:
        self.data_range = data_range
        self.dtype = dtype

    def __call__(self, generated: Tensor, reference: Tensor, **inputs: Any) -> Tensor:
        """Per-frame PSNR in dB."""
        self.check_pair(generated, reference)
        return psnr(_as(generated, self.dtype), _as(reference, self.dtype), self.data_range)


def _window_1d(
    window: str, win_size: int, sigma: float, dtype: torch.dtype, device: torch.device
) -> Tensor:
    if window == "uniform":
        return torch.full((win_size,), 1.0 / win_size, dtype=dtype, device=device)
    if window == "gaussian":
        # scipy.ndimage.gaussian_filter's kernel: exp(-x^2 / (2 sigma^2)), normalised to sum 1
        radius = win_size // 2
        x = torch.arange(-radius, radius + 1, dtype=torch.float64)
        kernel = torch.exp(-0.5 * (x / sigma) ** 2)
        return (kernel / kernel.sum()).to(dtype=dtype, device=device)
    raise ValueError(f"unknown SSIM window {window!r}; use 'gaussian' or 'uniform'")


def separable_filter_valid(maps: Tensor, kernel: Tensor, *, use_conv: bool | None = None) -> Tensor:
    """Filter ``(B, 1, H, W)`` maps with ``kernel`` along W then H, keeping the valid region.

    Uses ``conv2d`` with the 1-D kernel on accelerators; on the CPU scipy's
    ``correlate1d`` (what scikit-image's own filtering runs on), which gives the same values
    to float rounding and is 2-4x faster than either torch path in float64 there.
    """
    size = kernel.numel()
    if use_conv is None:
        use_conv = maps.device.type != "cpu"
    if use_conv:
        maps = F.conv2d(maps, kernel.view(1, 1, 1, size))
        return F.conv2d(maps, kernel.view(1, 1, size, 1))
    from scipy.ndimage import correlate1d

    half = size // 2
    weights = kernel.detach().cpu().numpy()
    rows = correlate1d(maps.detach().numpy(), weights, axis=3, mode="constant")
    rows = rows[..., half : maps.shape[-1] - half]
    both = correlate1d(rows, weights, axis=2, mode="constant")[..., half : maps.shape[-2] - half, :]
    return torch.from_numpy(np.ascontiguousarray(both))


def ssim(
    generated: Tensor,
    reference: Tensor,
    *,
    window: str = "gaussian",
    win_size: int | None = None,
    sigma: float = 1.5,
    truncate: float = 3.5,
    k1: float = 0.01,
    k2: float = 0.03,
    data_range: float = 1.0,
    sample_covariance: bool = False,
) -> Tensor:
    """Per-frame SSIM of ``(N, C, H, W)`` frames, computed per channel and averaged.

    Follows ``skimage.metrics.structural_similarity``: local (weighted) means, variances and
    covariance from a separable window, the SSIM map, then the mean over the valid region
    (skimage filters with reflection and then crops ``(win_size - 1) // 2`` pixels per side,
    which equals a padding-free convolution). ``window="gaussian"`` uses skimage's
    ``gaussian_weights=True`` kernel (radius ``int(truncate * sigma + 0.5)``, 11 taps for
    sigma 1.5); ``"uniform"`` a ``win_size`` box (default 7). ``sample_covariance`` scales the
    (co)variances by ``NP / (NP - 1)`` with ``NP = win_size ** 2``.
    """
    if window == "gaussian":
        size = 2 * int(truncate * sigma + 0.5) + 1 if win_size is None else win_size
    else:
        size = 7 if win_size is None else win_size
    if size % 2 != 1:
        raise ValueError(f"SSIM window size must be odd, got {size}")
    num, channels, height, width = generated.shape
    if height < size or width < size:
        raise ValueError(f"frames of {height}x{width} are smaller than the {size}x{size} window")
    kernel = _window_1d(window, size, sigma, generated.dtype, generated.device)
    # five maps (x, y, xx, yy, xy) of every channel of every frame, filtered in one conv pair
    maps = torch.stack(
        [generated, reference, generated * generated, reference * reference, generated * reference]
    ).reshape(5 * num * channels, 1, height, width)
    maps = separable_filter_valid(maps, kernel)
    ux, uy, uxx, uyy, uxy = maps.reshape(5, num, channels, height - size + 1, width - size + 1)
    cov_norm = size**2 / (size**2 - 1) if sample_covariance else 1.0
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    s_map = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s_map.mean(dim=(2, 3)).mean(dim=1)


@METRICS.register("ssim")
class SSIM(Metric):
    """Gaussian SSIM (Wang et al. 2004) per frame on RGB in ``[0, 1]``.

    11x11 Gaussian window (sigma 1.5, truncate 3.5), K1 0.01, K2 0.03, data range 1,
    population covariance, per channel then averaged, mean over the valid region. Equals
    ``skimage.metrics.structural_similarity(gt, pred, channel_axis=-1, data_range=1.0,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
    """

    name: ClassVar[str] = "ssim"
    higher_is_better: ClassVar[bool] = True
    reference: ClassVar[str] = (
        "Gaussian SSIM (Wang et al. 2004): skimage.metrics.structural_similarity(gt, pred, "
        "channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5, "
        "use_sample_covariance=False) per frame on RGB in [0, 1]: 11x11 window, K1 0.01, "
        "K2 0.03, population covariance, per channel then averaged, valid region"
    )
    window: ClassVar[str] = "gaussian"
    win_size: ClassVar[int | None] = None
    sample_covariance: ClassVar[bool] = False
    data_range: ClassVar[float] = 1.0

    def __init__(self, dtype: torch.dtype = torch.float64) -> None:
        self.dtype = dtype

    def __call__(self, generated: Tensor, reference: Tensor, **inputs: Any) -> Tensor:
        """Per-frame SSIM."""
        self.check_pair(generated, reference)
        return ssim(
            _as(generated, self.dtype),
            _as(reference, self.dtype),
            window=self.window,
            win_size=self.win_size,
            data_range=self.data_range,
            sample_covariance=self.sample_covariance,
        )


@METRICS.register("ssim_skimage_default")
class SSIMSkimageDefault(SSIM):
    """SSIM as the DaGAN/MCNet evaluation harness computes it.

    ICCV2023-MCNET ``evaluation/metrics.py`` reads PNGs, divides by 255 and calls
    ``skimage.measure.compare_ssim(gt, gen, multichannel=True)`` with every other argument at
    its default (skimage < 0.19): a 7x7 **uniform** window, **sample** covariance and, because
    the frames are float64 and no ``data_range`` is given, ``data_range = 2`` (skimage's float
    dtype range is (-1, 1)). That raises C1 and C2 fourfold compared with data range 1 and
    gives higher values than :class:`SSIM`. In scikit-image >= 0.19 the same number is
    ``structural_similarity(gt, gen, channel_axis=-1, data_range=2.0)``.
    """

    name: ClassVar[str] = "ssim_skimage_default"
    reference: ClassVar[str] = (
        "DaGAN/MCNet harness SSIM: skimage.measure.compare_ssim(gt, pred, multichannel=True) "
        "with skimage<0.19 defaults on float64 RGB in [0, 1] (ICCV2023-MCNET "
        "evaluation/metrics.py): 7x7 uniform window, sample covariance, data_range 2 (float "
        "dtype range); = skimage.metrics.structural_similarity(gt, pred, channel_axis=-1, "
        "data_range=2.0) per frame"
    )
    window: ClassVar[str] = "uniform"
    win_size: ClassVar[int | None] = 7
    sample_covariance: ClassVar[bool] = True
    data_range: ClassVar[float] = 2.0
