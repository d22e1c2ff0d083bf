"""CPBD: equal to the ``cpbd`` package on real frames; blur lowers it."""

from __future__ import annotations

import itertools
import sys
import types

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from metric_media import carphone_frames, to_tensor
from talking_heads.metrics import build_metric
from talking_heads.metrics.sharpness import cpbd, to_gray_uint8


@pytest.fixture(scope="module")
def reference_cpbd():
    """``cpbd.compute``; the package imports ``scipy.ndimage.imread`` (removed in SciPy 1.2)
    at module level, so a placeholder is put there for the import only."""
    import scipy.ndimage

    added = not hasattr(scipy.ndimage, "imread")
    if added:
        scipy.ndimage.imread = None  # only its name is imported; compute() never calls it
    try:
        sys.modules.pop("cpbd", None)
        sys.modules.pop("cpbd.compute", None)
        import cpbd as package
    finally:
        if added:
            del scipy.ndimage.imread
    assert isinstance(package, types.ModuleType)
    return package.compute


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.concatenate([carphone_frames(3, start=20), carphone_frames(3, distorted=True)])


@pytest.mark.parity("cpbd")
def test_cpbd_equals_the_package_on_real_frames(reference_cpbd, frames) -> None:
    gray = to_gray_uint8(to_tensor(frames))
    ours = [cpbd(image) for image in gray]
    theirs = [reference_cpbd(image) for image in gray]
    assert ours == pytest.approx(theirs, rel=1e-12, abs=0)
    assert len(set(ours)) > 1 and all(0 < v < 1 for v in ours)
    # a larger image with many 64x64 blocks, as float, and one without any block
    from skimage import data

    camera = data.camera().astype(np.float64)
    assert cpbd(camera) == pytest.approx(reference_cpbd(camera), rel=1e-12)
    assert cpbd(gray[0][:60, :100]) == reference_cpbd(gray[0][:60, :100]) == 0.0


def test_cpbd_metric_reads_frames_as_pil_grayscale(frames) -> None:
    from PIL import Image

    pil_gray = np.stack([np.asarray(Image.fromarray(frame).convert("L")) for frame in frames])
    noise = np.random.default_rng(0).integers(0, 256, (2, 37, 41, 3), dtype=np.uint8)
    noise_gray = np.stack([np.asarray(Image.fromarray(frame).convert("L")) for frame in noise])
    np.testing.assert_array_equal(to_gray_uint8(to_tensor(frames)), pil_gray)
    np.testing.assert_array_equal(to_gray_uint8(to_tensor(noise)), noise_gray)
    metric = build_metric("cpbd")
    values = metric(to_tensor(frames), None)
    assert values.dtype == torch.float64
    assert values.tolist() == [cpbd(image) for image in pil_gray]
    assert metric.needs_reference is False and metric.higher_is_better


def test_blur_lowers_cpbd_monotonically(frames) -> None:
    gray = to_gray_uint8(to_tensor(frames[:1]))[0].astype(np.float64)
    values = [cpbd(gaussian_filter(gray, sigma)) if sigma else cpbd(gray) for sigma in (0, 1, 2, 3)]
    assert all(a > b for a, b in itertools.pairwise(values)), values


def test_cpbd_rejects_colour_images() -> None:
    with pytest.raises(ValueError, match="2-D grayscale"):
        cpbd(np.zeros((64, 64, 3)))
