"""CPBD: cumulative probability of blur detection (Narvekar & Karam), a no-reference sharpness.

Reproduces the ``cpbd`` 1.0.7 package (0x64746b/python-cpbd ``cpbd/compute.py`` and
``cpbd/octave.py``, the Python port of the authors' MATLAB release) value for value, with
its per-pixel Python loops replaced by array operations:

1. edges for block classification: ``skimage.feature.canny`` with its defaults;
2. edges for widths: Octave's one-directional Sobel (``HSOBEL_WEIGHTS.T / sum|h|``,
   ``scipy.ndimage.convolve`` with reflection), strength² thresholded at
   ``2 sqrt(mean(strength²))`` and thinned (a local maximum along x or y);
3. Marziliano widths on interior edge pixels whose gradient angle (``np.gradient``,
   ``atan2``; the package leaves the angle 0 where the x gradient is exactly 0) quantises
   to 0° or ±180°: pixels walked left and right while the intensity keeps changing
   monotonically, at most 101 per side; no widths at all if every angle is 0 (as upstream);
4. 64x64 blocks (remainder dropped) with more than 0.2 % Canny pixels; just noticeable
   width 5 where the block contrast ``int(max - min)`` is ≤ 50, else 3;
5. ``P = 1 - exp(-(w / w_JNB)^3.6)`` per edge pixel into a 101-bin histogram by
   ``round(100 P)``; CPBD = the fraction with bin < 64.

Input: upstream takes a 2-D grayscale image in 0–255. :data:`GRAY_CONVERSION` fixes how a
frame becomes one: the uint8 RGB frame (float [0, 1] × 255, rounded) converted by PIL's
``Image.convert("L")`` (ITU-R 601-2 luma in 16-bit fixed point,
``(19595 R + 38470 G + 7471 B + 2^15) >> 16``). That is what the package's own command line
does (``scipy.ndimage.imread(path, mode="L")`` is PIL's ``convert("L")``) and what
talking-head evaluation code feeding it does (ATVGnet ``evaluation_matrix.py``:
``Image.open(path).convert("L")``; bangskitchen/talking-head-metrics ``metric.py``:
``Image.fromarray(rgb).convert("L")``). ``cv2.cvtColor(RGB2GRAY)`` rounds differently (14-bit
weights) and changes some pixels by one level. A frame smaller than one 64x64 block has no
blocks: CPBD is then 0, as upstream returns.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from talking_heads.metrics.base import METRICS, Metric

__all__ = [
    "CPBD",
    "GRAY_CONVERSION",
    "cpbd",
    "marziliano_widths",
    "octave_sobel_edges",
    "to_gray_uint8",
]

THRESHOLD = 0.002
BETA = 3.6
BLOCK = 64
MAX_MARGIN = 100
#: just noticeable width by block contrast 0..255: 5 up to contrast 50, then 3
WIDTH_JNB = np.concatenate([5 * np.ones(51), 3 * np.ones(205)])


def octave_sobel_edges(image: np.ndarray) -> np.ndarray:
    """cpbd's ``octave.sobel``: thresholded, thinned one-directional Sobel edges (bool)."""
    from scipy.ndimage import convolve
    from skimage.filters.edges import HSOBEL_WEIGHTS

    kernel = np.array(HSOBEL_WEIGHTS, dtype=np.float64)
    kernel /= np.sum(np.abs(kernel))
    strength = np.square(convolve(image, kernel.T))
    strength[strength <= 2 * np.sqrt(np.mean(strength))] = 0
    zero_col = np.zeros((strength.shape[0], 1))
    zero_row = np.zeros((1, strength.shape[1]))
    along_x = (strength > np.c_[zero_col, strength[:, :-1]]) & (
        strength > np.c_[strength[:, 1:], zero_col]
    )
    along_y = (strength > np.r_[zero_row, strength[:-1, :]]) & (
        strength > np.r_[strength[1:, :], zero_row]
    )
    return along_x | along_y


def _run_ending_at(flags: np.ndarray) -> np.ndarray:
    """Per row, the number of consecutive True values ending at each column (inclusive)."""
    index = np.broadcast_to(np.arange(flags.shape[1]), flags.shape)
    last_false = np.maximum.accumulate(np.where(flags, -1, index), axis=1)
    return index - last_false


def _run_starting_at(flags: np.ndarray) -> np.ndarray:
    """Per row, the number of consecutive True values starting at each column (inclusive)."""
    return _run_ending_at(flags[:, ::-1])[:, ::-1]


def marziliano_widths(edges: np.ndarray, image: np.ndarray) -> np.ndarray:
    """cpbd's ``marziliano_method``: edge widths at edge pixels, 0 elsewhere."""
    width = image.shape[1]
    widths = np.zeros(image.shape)
    gradient_y, gradient_x = np.gradient(image)
    with np.errstate(invalid="ignore"):
        angles = np.where(
            gradient_x != 0,
            np.arctan2(gradient_y, gradient_x) * (180 / np.pi),
            np.where(gradient_y == np.pi / 2, 90.0, 0.0),
        )
    if not np.any(angles) or width < 3:
        return widths
    quantized = 45 * np.round(angles / 45)
    # forward differences along each row: step[c] = image[c + 1] - image[c]
    step = np.diff(image, axis=1)
    runs = {
        # walking left from col: steps col-2, col-3, ... ; right: steps col+1, col+2, ...
        "falling_left": _run_ending_at(step < 0),
        "falling_right": _run_starting_at(step < 0),
        "rising_left": _run_ending_at(step > 0),
        "rising_right": _run_starting_at(step > 0),
    }
    interior = np.zeros(image.shape, dtype=bool)
    interior[1:-1, 1:-1] = True
    cols = np.arange(width)

    def side(run: np.ndarray, offset: int) -> np.ndarray:
        """1 + min(run length at col + offset, 100); a run outside the row counts 0."""
        k = cols + offset
        valid = (k >= 0) & (k < width - 1)
        lengths = np.zeros(image.shape, dtype=np.int64)
        lengths[:, valid] = run[:, k[valid]]
        return 1 + np.minimum(lengths, MAX_MARGIN)

    candidates = interior & edges.astype(bool)
    horizontal_180 = candidates & (np.abs(quantized) == 180)
    horizontal_0 = candidates & (quantized == 0)
    widths[horizontal_180] = (side(runs["falling_left"], -2) + side(runs["falling_right"], 1))[
        horizontal_180
    ]
    widths[horizontal_0] = (side(runs["rising_left"], -2) + side(runs["rising_right"], 1))[
        horizontal_0
    ]
    return widths


def _blocks(array: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The ``rows x cols`` top-left 64x64 blocks of a 2-D array, one per row (row-major)."""
    cut = array[: rows * BLOCK, : cols * BLOCK]
    return cut.reshape(rows, BLOCK, cols, BLOCK).swapaxes(1, 2).reshape(rows * cols, BLOCK * BLOCK)


def cpbd(image: np.ndarray) -> float:
    """CPBD of a 2-D grayscale image in 0–255 (any real dtype), as ``cpbd.compute``."""
    from skimage.feature import canny

    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"CPBD takes a 2-D grayscale image, got shape {image.shape}")
    canny_edges = canny(image)
    widths = marziliano_widths(octave_sobel_edges(image), image)
    rows, cols = image.shape[0] // BLOCK, image.shape[1] // BLOCK
    # edge blocks: more than THRESHOLD of their pixels on a Canny edge
    edge_blocks = np.count_nonzero(_blocks(canny_edges, rows, cols), axis=1) > (
        BLOCK * BLOCK * THRESHOLD
    )
    pixels = _blocks(image, rows, cols)[edge_blocks]
    contrast = (pixels.max(axis=1) - pixels.min(axis=1)).astype(np.int64)  # int(max - min)
    jnb = WIDTH_JNB[contrast][:, None]
    block_widths = _blocks(widths, rows, cols)[edge_blocks]
    measured = block_widths != 0
    probability = 1 - np.exp(-(np.abs(block_widths / jnb) ** BETA))
    buckets = np.round(probability[measured] * 100).astype(np.int64)
    histogram = np.bincount(buckets, minlength=101).astype(np.float64)
    if buckets.size > 0:
        histogram = histogram / buckets.size
    return float(np.sum(histogram[:64]))


#: how an RGB frame becomes CPBD's 0–255 grayscale input (see the module docstring)
GRAY_CONVERSION = (
    'PIL Image.convert("L") of the uint8 RGB frame: (19595 R + 38470 G + 7471 B + 32768) >> 16'
)


def to_gray_uint8(frames: Tensor) -> np.ndarray:
    """Float RGB ``(N, 3, H, W)`` in [0, 1] -> ``(N, H, W)`` uint8 gray, :data:`GRAY_CONVERSION`.

    Equals ``np.asarray(Image.fromarray(rgb_uint8).convert("L"))`` per frame, computed in
    integer arithmetic on the frames' device.
    """
    rgb = (frames.detach().float().clamp(0, 1) * 255).round().to(torch.int32)
    gray = (rgb[:, 0] * 19595 + rgb[:, 1] * 38470 + rgb[:, 2] * 7471 + 32768) >> 16
    return gray.to(torch.uint8).cpu().numpy()


@METRICS.register("cpbd")
class CPBD(Metric):
    """CPBD of each generated frame (no reference; higher is sharper)."""

    name: ClassVar[str] = "cpbd"
    higher_is_better: ClassVar[bool] = True
    needs_reference: ClassVar[bool] = False
    reference: ClassVar[str] = (
        "cpbd 1.0.7 cpbd.compute (python-cpbd, port of the CPBDM MATLAB release: canny + "
        "Octave Sobel edges, Marziliano widths, 64x64 blocks, threshold 0.002, w_JNB 5/3, "
        "beta 3.6, P(P_blur <= 0.63)) on each generated frame converted by PIL "
        "convert('L') (as cpbd's own imread(mode='L') and ATVGnet's evaluation read it); "
        "vectorised, values identical"
    )

    def __call__(self, generated: Tensor, reference: Tensor | None, **inputs: Any) -> Tensor:
        """Per-frame CPBD."""
        if generated.ndim != 4 or generated.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) frames, got {tuple(generated.shape)}")
        values = [cpbd(gray) for gray in to_gray_uint8(generated)]
        return torch.tensor(values, dtype=torch.float64, device=generated.device)
