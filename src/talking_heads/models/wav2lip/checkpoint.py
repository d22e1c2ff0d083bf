"""Upstream Wav2Lip files: ``wav2lip.pth`` and ``wav2lip_gan.pth`` (the generator), with
``lipsync_expert.pth`` and ``visual_quality_disc.pth`` imported too when they lie beside it
(:mod:`talking_heads.models.lipsync.checkpoint`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from talking_heads.models.lipsync.checkpoint import import_generator, layout_kind, wav2lip_state
from talking_heads.models.lipsync.networks import Wav2LipUNet

NETWORKS = ("generator",)
#: an official file is recognised by :func:`claims`, not by top-level network names
REQUIRED: tuple[str, ...] = ()


def claims(checkpoint: Mapping[str, Any]) -> bool:
    """Whether an official file is a Wav2Lip generator."""
    state = wav2lip_state(checkpoint)
    return state is not None and layout_kind(state) == "generator"


def import_official(path: Path | str, out: Path | str, model_cfg: dict[str, Any]) -> Path:
    """Convert upstream's ``wav2lip.pth`` / ``wav2lip_gan.pth`` to our checkpoint."""
    return import_generator(
        path, out, model_cfg, kind="generator", method="wav2lip", build=Wav2LipUNet
    )
