"""EmoGen files: ``train.py``'s ``checkpoint_step{N}.pth`` in Wav2Lip's layout
(``state_dict`` with DataParallel's ``module.`` prefix, ``optimizer``, ``global_step``,
``global_epoch``) holding the generator with its ``emotion_encoder``; the expert file
(``lipsync_expert.pth``) is imported too when it lies beside it
(:mod:`talking_heads.models.lipsync.checkpoint`). EmoGen publishes no weights.

A Wav2Lip generator (no emotion encoder) is refused, saying what the file holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from talking_heads.models.lipsync.checkpoint import import_generator, layout_kind, wav2lip_state
from talking_heads.models.lipsync.networks import Wav2LipUNet

NETWORKS = ("generator",)
#: an official file is recognised by :func:`claims`, not by top-level network names
REQUIRED: tuple[str, ...] = ()
EMOTIONS = 6


def claims(checkpoint: Mapping[str, Any]) -> bool:
    """Whether an official file is an EmoGen generator (Wav2Lip with an emotion encoder)."""
    state = wav2lip_state(checkpoint)
    return state is not None and layout_kind(state) == "emotion_generator"


def build(width: int = 1) -> Wav2LipUNet:
    """EmoGen's generator (6 emotions) at ``width``."""
    return Wav2LipUNet(width, EMOTIONS)


def import_official(path: Path | str, out: Path | str, model_cfg: dict[str, Any]) -> Path:
    """Convert an EmoGen ``checkpoint_step*.pth`` to our checkpoint."""
    model_cfg = {**dict(model_cfg), "emotions": int(model_cfg.get("emotions") or EMOTIONS)}
    return import_generator(
        path, out, model_cfg, kind="emotion_generator", method="emogen", build=build
    )
