"""Helpers shared by the motion-transfer method tests (FOMM, MRAA, TPSM, face-vid2vid).

Imported by the test modules as ``from motion_testing import ...`` (``tests/`` is on the path, as
for ``conftest``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

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
