"""Helpers shared by the motion-transfer method tests (FOMM, MRAA, TPSM, DaGAN, face-vid2vid).

Imported by the test modules as ``from motion_testing import ...`` (``tests/`` is on the path, as
for ``conftest``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

#: the official state-dict layouts (key → shape per network) of every method's released files
LAYOUTS_DIR = Path(__file__).parent / "data" / "official_layouts"


def official_layouts(method: str) -> dict[str, Any]:
    """``tests/data/official_layouts/<method>.json``'s ``layouts`` (layout → network → key →
    shape)."""
    return json.loads((LAYOUTS_DIR / f"{method}.json").read_text())["layouts"]


def shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    """``module``'s state-dict layout, as the layout files list it."""
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def layout_state(
    keys: Mapping[str, Sequence[int]], generator: torch.Generator, batches_tracked: int = 7
) -> dict[str, torch.Tensor]:
    """Random tensors (drawn from ``generator`` in key order) in every key of a network's
    layout; ``num_batches_tracked`` entries are the integer ``batches_tracked``."""
    return {
        key: torch.tensor(batches_tracked)
        if key.endswith("num_batches_tracked")
        else torch.randn(shape, generator=generator)
        for key, shape in keys.items()
    }


def quiet_trainer(**kwargs: Any) -> pl.Trainer:
    """A CPU Lightning trainer without logger, checkpoints, progress bar or model summary."""
    return pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def pairs(frames: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """(source, driving) training pairs from ``frames``: frame i with frame n − 1 − i."""
    n = frames.shape[0]
    return [{"source": frames[i], "driving": frames[n - 1 - i]} for i in range(n)]


def config_fixtures(vox: str, demo: str) -> tuple[Any, Any]:
    """Module-scoped ``vox_config`` and ``demo_config`` fixtures: the ``model`` configs of the
    experiments ``vox`` and ``demo``."""
    from talking_heads.config import experiment_model_config

    @pytest.fixture(scope="module")
    def vox_config() -> dict:
        return experiment_model_config(vox)

    @pytest.fixture(scope="module")
    def demo_config() -> dict:
        return experiment_model_config(demo)

    return vox_config, demo_config


def fit_pairs(
    module: pl.LightningModule, frames: torch.Tensor, batch_size: int, max_steps: int = 2
) -> tuple[pl.Trainer, DataLoader, dict[str, torch.Tensor]]:
    """Fit ``module`` for ``max_steps`` on :func:`pairs` of ``frames``; returns the trainer,
    the loader and a copy of the state dict from before the fit."""
    before = copy.deepcopy(module.state_dict())
    loader = DataLoader(pairs(frames), batch_size=batch_size)
    trainer = quiet_trainer(max_steps=max_steps)
    trainer.fit(module, loader)
    assert trainer.global_step == max_steps
    return trainer, loader, before


def assert_training_losses(
    trainer: pl.Trainer,
    names: Sequence[str],
    *,
    positive: bool = False,
    outside_total: Sequence[str] = (),
) -> dict[str, float]:
    """The logged ``train/`` losses are exactly ``names`` (+ ``loss``), finite (and positive
    when ``positive``), ``train/loss`` being the sum of those not in ``outside_total`` (the
    discriminator's); returns them."""
    losses = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
    assert set(losses) == {f"train/{name}" for name in (*names, "loss")}
    assert all(np.isfinite(v) and (v > 0 or not positive) for v in losses.values())
    excluded = {f"train/{name}" for name in (*outside_total, "loss")}
    total = sum(v for k, v in losses.items() if k not in excluded)
    assert losses["train/loss"] == pytest.approx(total, rel=1e-5)
    return losses


def assert_avd_animation_matches_loop(
    animator: Any, official_loop: Callable[..., torch.Tensor], frames: Callable[[int], torch.Tensor]
) -> None:
    """The batched ``relative``, ``standard`` and ``avd`` animations (and the relative one
    without source reuse) equal ``official_loop(animator, source, driving, mode)``, and the
    modes differ; ``frames(n)`` gives ``(n, 3, H, W)`` test frames."""
    torch.manual_seed(2)
    source, driving = frames(1)[0], frames(4)
    expected = {
        mode: official_loop(animator, source, driving, mode)
        for mode in ("relative", "standard", "avd")
    }
    # batches of 3 and 1 frames, as the per-frame loop; the relative mode also without reuse
    relative = animator.animate(source, driving, batch_size=3)
    assert relative.shape == driving.shape
    torch.testing.assert_close(relative, expected["relative"], atol=1e-5, rtol=0)
    standard = animator.animate(source, driving, relative=False, batch_size=3)
    torch.testing.assert_close(standard, expected["standard"], atol=1e-5, rtol=0)
    avd = animator.animate_avd(source, driving, batch_size=3)
    torch.testing.assert_close(avd, expected["avd"], atol=1e-5, rtol=0)
    unshared = animator.animate(source, driving, batch_size=2, reuse_source=False)
    torch.testing.assert_close(unshared, expected["relative"], atol=1e-5, rtol=0)
    # the modes give different frames (by far more than the batching round-off)
    assert (expected["relative"] - expected["standard"]).abs().max() > 1e-3
    assert (expected["avd"] - expected["standard"]).abs().max() > 1e-3


def assert_reconstruction_uses_background(
    animator: Any, official_loop: Callable[..., torch.Tensor], frames: Callable[[int], torch.Tensor]
) -> None:
    """:meth:`reconstruct` equals ``official_loop``'s ``reconstruction`` mode, which differs
    from the ``standard`` one (the background motion), and the animator is back in its
    animation modes afterwards."""
    torch.manual_seed(4)
    video = frames(3)
    expected = official_loop(animator, video[0], video, "reconstruction")
    torch.testing.assert_close(
        animator.reconstruct(video, batch_size=2), expected, atol=1e-5, rtol=0
    )
    without_bg = official_loop(animator, video[0], video, "standard")
    assert (expected - without_bg).abs().max() > 1e-3
    torch.testing.assert_close(
        animator.animate(video[0], video, relative=False), without_bg, atol=1e-5, rtol=0
    )


def assert_batched_matches(
    animator: Any,
    source: torch.Tensor,
    driving: torch.Tensor,
    relative: torch.Tensor,
    absolute: torch.Tensor,
    batch_sizes: Sequence[int],
    differ: float,
) -> None:
    """The relative and absolute animations in batches of each of ``batch_sizes`` (and the
    relative one without source reuse) equal the per-frame ``relative`` and ``absolute``
    frames, which differ by more than ``differ``."""
    for batch_size in batch_sizes:
        batched = animator.animate(source, driving, batch_size=batch_size)
        assert batched.shape == driving.shape
        torch.testing.assert_close(batched, relative, atol=1e-5, rtol=0)
        batched = animator.animate(source, driving, relative=False, batch_size=batch_size)
        torch.testing.assert_close(batched, absolute, atol=1e-5, rtol=0)
    per_frame = animator.animate(source, driving, batch_size=2, reuse_source=False)
    torch.testing.assert_close(per_frame, relative, atol=1e-5, rtol=0)
    assert (relative - absolute).abs().max() > differ
